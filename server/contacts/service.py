"""Contact lists: create, read, rename, delete, duplicate; their contacts: list, add, remove.

A list holds each address once (its `email_key`). An archived list (one merged into another)
keeps its contacts read-only: adding, removing, importing or merging into it is refused with
`list_archived` (409); it can still be read, renamed, exported, duplicated and deleted.
Merging lives in merge.py, importing in imports.py; the bulk row work of all of them in store.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import new_id
from server.contacts.models import Contact, ContactList
from server.contacts.schemas import (
    ContactCreate,
    ContactListCreate,
    ContactListOut,
    ContactListPatch,
    ContactOut,
)
from server.contacts.store import CHUNK, ContactRow, insert_contacts, recount, stream_contacts
from server.errors import Conflict, InvalidState, NotFound
from server.imports.analyze import email_key

__all__ = [
    "ListArchived",
    "add_contact",
    "contact_list_out",
    "contact_out",
    "create_list",
    "delete_contact",
    "delete_list",
    "duplicate_list",
    "get_contact",
    "get_list",
    "iter_contacts",
    "list_contacts",
    "list_lists",
    "rename_list",
    "writable_list",
]


class ListArchived(InvalidState):
    code = "list_archived"
    title = "The contact list is archived"


async def create_list(session: AsyncSession, data: ContactListCreate, now: datetime) -> ContactList:
    contact_list = ContactList(
        id=new_id(), name=data.name, contact_count=0, created_at=now, updated_at=now
    )
    session.add(contact_list)
    await session.flush()
    return contact_list


async def get_list(session: AsyncSession, list_id: str, *, for_update: bool = False) -> ContactList:
    query = select(ContactList).where(ContactList.id == list_id)
    if for_update:  # imports and merges of one list wait for each other (PostgreSQL row lock)
        query = query.with_for_update()
    contact_list = await session.scalar(query)
    if contact_list is None:
        raise NotFound("contact list", list_id)
    return contact_list


async def writable_list(session: AsyncSession, list_id: str) -> ContactList:
    """The list, locked for a change of its contacts; ListArchived if it was merged away."""
    contact_list = await get_list(session, list_id, for_update=True)
    if contact_list.archived_at is not None:
        raise ListArchived(
            f"contact list {list_id!r} was merged into {contact_list.merged_into_id!r} "
            "and is read-only",
            id=list_id,
            merged_into_id=contact_list.merged_into_id,
        )
    return contact_list


async def list_lists(
    session: AsyncSession, *, archived: bool, limit: int, offset: int
) -> tuple[list[ContactList], int]:
    """The active lists, or with `archived` the archived ones, oldest first."""
    where = ContactList.archived_at.is_not(None) if archived else ContactList.archived_at.is_(None)
    total = await session.scalar(select(func.count()).select_from(ContactList).where(where))
    rows = await session.scalars(
        select(ContactList)
        .where(where)
        .order_by(ContactList.created_at, ContactList.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def rename_list(
    session: AsyncSession, list_id: str, patch: ContactListPatch, now: datetime
) -> ContactList:
    contact_list = await get_list(session, list_id, for_update=True)
    if patch.name is not msgspec.UNSET:
        contact_list.name = patch.name
        contact_list.updated_at = now
        await session.flush()
    return contact_list


async def delete_list(session: AsyncSession, list_id: str) -> None:
    """Delete the list and its contacts; lists merged into it keep theirs (archived)."""
    contact_list = await get_list(session, list_id, for_update=True)
    await session.delete(contact_list)
    await session.flush()


def _copy_name(name: str) -> str:
    suffix = " (copy)"
    return name[: 200 - len(suffix)] + suffix


async def duplicate_list(
    session: AsyncSession, list_id: str, name: str | None, now: datetime
) -> ContactList:
    """A new, active list holding a copy of every contact (attributes too) of `list_id`,
    archived or not."""
    source = await get_list(session, list_id)
    copy = ContactList(
        id=new_id(),
        name=name if name is not None else _copy_name(source.name),
        contact_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(copy)
    await session.flush()
    async for batch in stream_contacts(session, list_id, batch_size=CHUNK):
        await insert_contacts(session, copy.id, batch, now)
    await recount(session, copy, now)
    return copy


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_contacts(
    session: AsyncSession, list_id: str, *, q: str | None, limit: int, offset: int
) -> tuple[list[Contact], int]:
    """A page of the list's contacts in address order; `q` finds a part of the address or name."""
    await get_list(session, list_id)
    if q and "\x00" in q:
        return [], 0  # no address or name holds NUL, and PostgreSQL cannot even compare with it
    where = [Contact.list_id == list_id]
    if q and q.strip():
        pattern = f"%{_escape_like(q.strip().lower())}%"
        where.append(
            or_(
                func.lower(Contact.email).like(pattern, escape="\\"),
                func.lower(Contact.name).like(pattern, escape="\\"),
            )
        )
    total = await session.scalar(select(func.count()).select_from(Contact).where(*where))
    rows = await session.scalars(
        select(Contact)
        .where(*where)
        .order_by(Contact.email_key, Contact.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def iter_contacts(
    session: AsyncSession, list_id: str, *, batch_size: int = 1_000
) -> AsyncIterator[list[ContactRow]]:
    """Every contact of a list, in address order, `batch_size` at a time: a campaign's audience.

    Raises NotFound for an unknown list. Each batch is one indexed query (keyset paging), so
    memory stays bounded for any list size. Archived lists are read like the others.
    """
    await get_list(session, list_id)
    async for batch in stream_contacts(session, list_id, batch_size=batch_size):
        yield batch


async def add_contact(
    session: AsyncSession, list_id: str, data: ContactCreate, now: datetime
) -> Contact:
    """Add one contact; Conflict (naming the existing contact) if the address is there already."""
    contact_list = await writable_list(session, list_id)
    email = data.email.strip()
    key = email_key(email)
    existing = await session.scalar(
        select(Contact.id).where(Contact.list_id == list_id, Contact.email_key == key)
    )
    if existing is not None:
        raise Conflict(f"{email!r} is in the list already", id=existing)
    contact = Contact(
        id=new_id(),
        list_id=list_id,
        email=email,
        email_key=key,
        name=data.name,
        language=data.language,
        attributes=dict(data.attributes),
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    await session.flush()
    await recount(session, contact_list, now)
    return contact


async def get_contact(session: AsyncSession, list_id: str, contact_id: str) -> Contact:
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.list_id == list_id)
    )
    if contact is None:
        await get_list(session, list_id)  # an unknown list says so rather than "no contact"
        raise NotFound("contact", contact_id)
    return contact


async def delete_contact(
    session: AsyncSession, list_id: str, contact_id: str, now: datetime
) -> None:
    contact_list = await writable_list(session, list_id)
    contact = await get_contact(session, list_id, contact_id)
    await session.delete(contact)
    await session.flush()
    await recount(session, contact_list, now)


def contact_list_out(contact_list: ContactList) -> ContactListOut:
    return ContactListOut(
        id=contact_list.id,
        name=contact_list.name,
        contacts=contact_list.contact_count,
        archived_at=contact_list.archived_at,
        merged_into_id=contact_list.merged_into_id,
        created_at=contact_list.created_at,
        updated_at=contact_list.updated_at,
    )


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.id,
        list_id=contact.list_id,
        email=contact.email,
        name=contact.name,
        language=contact.language,
        attributes=dict(contact.attributes or {}),
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )
