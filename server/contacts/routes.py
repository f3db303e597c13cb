"""Contact-list HTTP API (organiser): lists, their contacts, duplicate, merge, import, export."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import CacheControlHeader, State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from server.contacts import service
from server.contacts.export import attribute_names, export_filename, export_header, export_rows
from server.contacts.import_query import IMPORT_DESCRIPTION, parse_import_query
from server.contacts.imports import ContactImportReport, analyze_contacts, commit_contacts
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
from server.db import Database, utcnow
from server.exports.writers import Cell, XlsxSheet, csv_rows_async
from server.http import Body, DbSession, Limit, Offset, Page, created, organiser_guard, page
from server.imports.report_csv import report_csv
from server.imports.upload import read_upload

__all__ = ["ContactListController"]

BASE = "/api/v1/contact-lists"
Search = Annotated[
    str | None, QueryParameter(max_length=200, description="part of the address or name")
]
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DELIMITERS = {"semicolon": ";", "comma": ",", "tab": "\t"}
Delimiter = Annotated[
    Literal["semicolon", "comma", "tab"],
    QueryParameter(
        description="CSV field separator: `semicolon` (default: Excel in fr/de/it locales), "
        "`comma` (Excel in English locales) or `tab`"
    ),
]
_XLSX_BATCH = 5_000  # rows handed to the worker thread at once
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

    @post(
        "/{list_id:str}/imports",
        status_code=200,
        request_max_body_size=None,  # read_upload enforces TESSERA_IMPORT_MAX_BYTES
        summary="Import a file or pasted lines into a list: analyze, then commit",
        description=IMPORT_DESCRIPTION,
        responses={201: ResponseSpec(ContactImportReport, description="committed")},
    )
    async def import_contacts(
        self,
        request: Request[Any, Any, Any],
        list_id: FromPath[str],
        db_session: DbSession,
        state: State,
    ) -> Response[ContactImportReport]:
        query = parse_import_query(request.query_params.multi_items())
        upload = await read_upload(request, state.settings)
        source = {
            "filename": upload.filename,
            "content_type": upload.content_type,
            "options": query.options,
        }
        if query.mode == "analyze":
            result = await analyze_contacts(db_session, list_id, upload.data, **source)
            status = 200
        else:
            result = await commit_contacts(
                db_session, list_id, upload.data, **source, digest=query.digest, now=utcnow()
            )
            status = 201
        headers = {}
        if status == 201:  # where the imported contacts are
            headers["Location"] = f"{str(request.base_url).rstrip('/')}{BASE}/{list_id}/contacts"
        if query.report == "csv":
            body = report_csv(
                upload.data,
                filename=upload.filename,
                content_type=upload.content_type,
                analysis=result.analysis,
                decisions=result.decisions,
            )
            return Stream(body, status_code=status, media_type=CSV_TYPE, headers=headers)  # type: ignore[return-value]
        return Response(result.report(query.mode), status_code=status, headers=headers)

    @get(
        "/{list_id:str}/export.csv",
        media_type=CSV_TYPE,
        summary="Export a list as CSV: email, name, language, one column per attribute",
        description="Streamed; UTF-8 with a BOM; every cell a spreadsheet could read as a "
        "formula starts with `'`. The columns are the import's, so the file imports again.",
    )
    async def export_csv(
        self,
        list_id: FromPath[str],
        db_session: DbSession,
        state: State,
        delimiter: Delimiter = "semicolon",
    ) -> Stream:
        contact_list = await service.get_list(db_session, list_id)
        body = _csv(state.database, list_id, DELIMITERS[delimiter])
        headers = _download(export_filename(contact_list.name, "csv"))
        return Stream(body, media_type=CSV_TYPE, headers=headers)

    @get(
        "/{list_id:str}/export.xlsx",
        media_type=XLSX_TYPE,
        summary="Export a list as XLSX: the CSV's columns, every cell text (never a formula)",
    )
    async def export_xlsx(
        self, list_id: FromPath[str], db_session: DbSession, state: State
    ) -> Response[bytes]:
        contact_list = await service.get_list(db_session, list_id)
        data = await _xlsx(state.database, list_id, contact_list.name)
        headers = _download(export_filename(contact_list.name, "xlsx"))
        return Response(data, media_type=XLSX_TYPE, headers=headers)


def _download(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
    }


async def _csv(database: Database, list_id: str, delimiter: str) -> AsyncIterator[bytes]:
    # A streamed answer outlives the request's session: the rows are read in one of their own.
    async with database.transaction(read_only=True) as session:
        names = await attribute_names(session, list_id)
        rows = export_rows(session, list_id, names)
        async for chunk in csv_rows_async(export_header(names), rows, delimiter=delimiter):
            yield chunk


def _add_rows(sheet: XlsxSheet, rows: Sequence[Sequence[Cell]]) -> None:
    for row in rows:
        sheet.add(row)


async def _xlsx(database: Database, list_id: str, list_name: str) -> bytes:
    """The file, its rows written in a worker thread so the event loop keeps serving."""
    async with database.transaction(read_only=True) as session:
        names = await attribute_names(session, list_id)
        with XlsxSheet(list_name, export_header(names)) as sheet:
            batch: list[tuple[Cell, ...]] = []
            async for row in export_rows(session, list_id, names):
                batch.append(row)
                if len(batch) >= _XLSX_BATCH:
                    await anyio.to_thread.run_sync(_add_rows, sheet, batch)
                    batch = []
            await anyio.to_thread.run_sync(_add_rows, sheet, batch)
            return await anyio.to_thread.run_sync(sheet.close)
