"""Merging contact lists into one: the preview and the merge are the same computation.

Rules (the order is the specification):
- The list merged into (the target) keeps every contact it has. Then each source, in the order
  given, adds the contacts whose address (`email_key`) is not there yet.
- An address already there is a duplicate: the contact already there stays (the target's first,
  then the earliest source's), and is completed from the duplicate where it lacks something:
  a missing name or language, and attributes it does not have (or has empty), up to 20 in all.
  Nothing it has is overwritten.
- The merge writes all of it in one transaction and archives the sources (read-only since,
  `merged_into_id` naming the target); they keep their own contacts. A preview writes nothing.
- The target and every source must exist (404) and be active (409 `list_archived`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.contacts.models import ContactList
from server.contacts.schemas import (
    MAX_ATTRIBUTES,
    MergeDuplicateOut,
    MergeIn,
    MergeOut,
    MergeSourceOut,
)
from server.contacts.service import ListArchived
from server.contacts.store import (
    ContactRow,
    insert_contacts,
    read_contacts,
    recount,
    update_contacts,
)
from server.errors import BodyInvalid, FieldError, NotFound

__all__ = ["MergePlan", "complete_contact", "merge_lists", "plan_merge"]

MAX_LISTED_DUPLICATES = 1_000


@dataclass
class MergePlan:
    added: list[ContactRow] = field(default_factory=list)  # new to the target, no id yet
    completed: dict[str, ContactRow] = field(default_factory=dict)  # target contacts, by id
    duplicates_total: int = 0
    duplicates: list[MergeDuplicateOut] = field(default_factory=list)  # the first 1,000


def complete_contact(kept: ContactRow, other: ContactRow) -> bool:
    """Fill what `kept` lacks from `other`, never overwriting; True if anything changed."""
    changed = False
    if not kept.name and other.name:
        kept.name, changed = other.name, True
    if not kept.language and other.language:
        kept.language, changed = other.language, True
    for name, value in other.attributes.items():
        if not value or kept.attributes.get(name):
            continue
        if name in kept.attributes or len(kept.attributes) < MAX_ATTRIBUTES:
            kept.attributes[name] = value
            changed = True
    return changed


def plan_merge(
    target_id: str,
    target_rows: Sequence[ContactRow],
    sources: Sequence[tuple[str, Sequence[ContactRow]]],
) -> MergePlan:
    """What merging `sources` (list id, contacts; in order) into the target's rows does."""
    plan = MergePlan()
    kept: dict[str, tuple[str, ContactRow]] = {
        row.email_key: (target_id, row) for row in target_rows
    }
    for source_id, rows in sources:
        for row in rows:
            found = kept.get(row.email_key)
            if found is None:
                new = ContactRow(
                    row.email, row.email_key, row.name, row.language, dict(row.attributes)
                )
                kept[row.email_key] = (source_id, new)
                plan.added.append(new)
                continue
            kept_from, contact = found
            plan.duplicates_total += 1
            if len(plan.duplicates) < MAX_LISTED_DUPLICATES:
                plan.duplicates.append(MergeDuplicateOut(contact.email, kept_from, source_id))
            if complete_contact(contact, row) and contact.id is not None and kept_from == target_id:
                plan.completed[contact.id] = contact
    return plan


async def _lists(
    session: AsyncSession, target_id: str, source_ids: Sequence[str], *, lock: bool
) -> tuple[ContactList, list[ContactList]]:
    """The target and the sources, checked to exist and be active; locked (in id order, so two
    merges never wait on each other crosswise) unless this is a preview."""
    ids = [target_id, *source_ids]
    query = select(ContactList).where(ContactList.id.in_(ids)).order_by(ContactList.id)
    if lock:
        query = query.with_for_update()
    found = {row.id: row for row in await session.scalars(query)}
    for list_id in ids:
        contact_list = found.get(list_id)
        if contact_list is None:
            raise NotFound("contact list", list_id)
        if contact_list.archived_at is not None:
            raise ListArchived(
                f"contact list {list_id!r} was merged into {contact_list.merged_into_id!r} "
                "already and is read-only",
                id=list_id,
                merged_into_id=contact_list.merged_into_id,
            )
    return found[target_id], [found[list_id] for list_id in source_ids]


async def merge_lists(
    session: AsyncSession, target_id: str, data: MergeIn, now: datetime
) -> MergeOut:
    """Merge `data.sources` into the target, or with `data.preview` say what that would do."""
    if target_id in data.sources:
        raise BodyInvalid([FieldError("sources", "must not name the list merged into")])
    target, sources = await _lists(session, target_id, data.sources, lock=not data.preview)
    target_rows = await read_contacts(session, target_id)
    source_rows = [(source.id, await read_contacts(session, source.id)) for source in sources]
    plan = plan_merge(target_id, target_rows, source_rows)
    if not data.preview:
        await insert_contacts(session, target_id, plan.added, now)
        await update_contacts(session, plan.completed.values(), now)
        for source in sources:
            source.archived_at = now
            source.merged_into_id = target_id
            source.updated_at = now
        await recount(session, target, now)
    return MergeOut(
        list_id=target_id,
        committed=not data.preview,
        sources=[
            MergeSourceOut(id=source.id, name=source.name, contacts=len(rows))
            for source, (_, rows) in zip(sources, source_rows, strict=True)
        ],
        contacts_before=len(target_rows),
        added=len(plan.added),
        duplicates_total=plan.duplicates_total,
        completed=len(plan.completed),
        contacts_after=len(target_rows) + len(plan.added),
        duplicates=plan.duplicates,
    )
