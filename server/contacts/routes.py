"""Contact-list HTTP API (organiser): lists, their contacts, duplicate, merge, import, export."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody, QueryParameter

from server.contacts import service
from server.contacts.merge import merge_lists
from server.contacts.schemas import (
    ContactCreate,
    ContactListCreate,
    ContactListOut,
    ContactListPatch,
    ContactOut,
    DuplicateIn,
    MergeIn,
    MergeOut,
)
from server.db import utcnow
from server.http import Body, DbSession, Limit, Offset, Page, created, organiser_guard, page

__all__ = ["ContactListController"]

BASE = "/api/v1/contact-lists"
Search = Annotated[
    str | None, QueryParameter(max_length=200, description="part of the address or name")
]
ShowArchived = Annotated[
    bool, QueryParameter(description="list the archived (merged) lists instead of the active ones")
]


class ContactListController(Controller):
    path = BASE
    tags = ["contact lists"]
    guards = [organiser_guard]
    security = [{"organiser": []}]
    # Every answer carries guests' addresses: no cache may keep a copy.
    cache_control = CacheControlHeader(no_store=True)

    @post("/", dto=Body[ContactListCreate], return_dto=None, summary="Create a contact list")
    async def create_list(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ContactListCreate],
        db_session: DbSession,
    ) -> Response[ContactListOut]:
        contact_list = await service.create_list(db_session, data, utcnow())
        body = service.contact_list_out(contact_list)
        return created(body, request, f"{BASE}/{contact_list.id}")

    @get("/", summary="List the contact lists (active ones, or with ?archived=true the merged)")
    async def list_lists(
        self,
        db_session: DbSession,
        archived: ShowArchived = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[ContactListOut]:
        rows, total = await service.list_lists(
            db_session, archived=archived, limit=limit, offset=offset
        )
        return page([service.contact_list_out(r) for r in rows], total, limit, offset)

    @get("/{list_id:str}", summary="Read a contact list")
    async def get_list(self, list_id: FromPath[str], db_session: DbSession) -> ContactListOut:
        return service.contact_list_out(await service.get_list(db_session, list_id))

    @patch("/{list_id:str}", dto=Body[ContactListPatch], return_dto=None, summary="Rename a list")
    async def rename_list(
        self, list_id: FromPath[str], data: JSONBody[ContactListPatch], db_session: DbSession
    ) -> ContactListOut:
        contact_list = await service.rename_list(db_session, list_id, data, utcnow())
        return service.contact_list_out(contact_list)

    @delete("/{list_id:str}", summary="Delete a list and its contacts")
    async def delete_list(self, list_id: FromPath[str], db_session: DbSession) -> None:
        await service.delete_list(db_session, list_id)

    @get("/{list_id:str}/contacts", summary="List a list's contacts in address order")
    async def list_contacts(
        self,
        list_id: FromPath[str],
        db_session: DbSession,
        q: Search = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[ContactOut]:
        rows, total = await service.list_contacts(
            db_session, list_id, q=q, limit=limit, offset=offset
        )
        return page([service.contact_out(r) for r in rows], total, limit, offset)

    @post(
        "/{list_id:str}/contacts",
        dto=Body[ContactCreate],
        return_dto=None,
        summary="Add one contact (409 naming the contact if the address is there already)",
    )
    async def add_contact(
        self,
        request: Request[Any, Any, Any],
        list_id: FromPath[str],
        data: JSONBody[ContactCreate],
        db_session: DbSession,
    ) -> Response[ContactOut]:
        contact = await service.add_contact(db_session, list_id, data, utcnow())
        location = f"{BASE}/{list_id}/contacts/{contact.id}"
        return created(service.contact_out(contact), request, location)

    @get("/{list_id:str}/contacts/{contact_id:str}", summary="Read a contact")
    async def get_contact(
        self, list_id: FromPath[str], contact_id: FromPath[str], db_session: DbSession
    ) -> ContactOut:
        return service.contact_out(await service.get_contact(db_session, list_id, contact_id))

    @delete("/{list_id:str}/contacts/{contact_id:str}", summary="Remove a contact from a list")
    async def delete_contact(
        self, list_id: FromPath[str], contact_id: FromPath[str], db_session: DbSession
    ) -> None:
        await service.delete_contact(db_session, list_id, contact_id, utcnow())

    @post(
        "/{list_id:str}/duplicate",
        dto=Body[DuplicateIn],
        return_dto=None,
        summary="Copy a list with all its contacts into a new list",
    )
    async def duplicate_list(
        self,
        request: Request[Any, Any, Any],
        list_id: FromPath[str],
        data: JSONBody[DuplicateIn],
        db_session: DbSession,
    ) -> Response[ContactListOut]:
        copy = await service.duplicate_list(db_session, list_id, data.name, utcnow())
        return created(service.contact_list_out(copy), request, f"{BASE}/{copy.id}")

    @post(
        "/{list_id:str}/merge",
        dto=Body[MergeIn],
        return_dto=None,
        status_code=200,
        summary="Merge other lists into this one (archiving them), or preview what that does",
    )
    async def merge(
        self, list_id: FromPath[str], data: JSONBody[MergeIn], db_session: DbSession
    ) -> MergeOut:
        return await merge_lists(db_session, list_id, data, utcnow())
