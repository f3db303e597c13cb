"""Append to the change log inside the caller's transaction.

Invariant: for each event, `seq` runs 1, 2, 3, ... without gaps, and a change with a higher `seq`
never becomes visible before a lower one. Both follow from taking the next `seq` by incrementing
`event.change_seq` in the same transaction: the UPDATE row-locks the event (PostgreSQL) or holds the
write lock (SQLite) until commit, so writers of one event commit in `seq` order and a rolled-back
transaction gives its number back.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from server.changes.models import Change
from server.db import utcnow
from server.db.fast_insert import FastInsert
from server.events.models import Event

__all__ = ["ChangeKind", "append_changes", "changed_events", "head"]

_CHANGED = "tessera.changed_events"


class ChangeKind:
    TICKET_ISSUED = "ticket.issued"
    TICKET_UPDATED = "ticket.updated"
    TICKET_REISSUED = "ticket.reissued"
    TICKET_REVOKED = "ticket.revoked"
    TICKET_BLOCKED = "ticket.blocked"
    TICKET_UNBLOCKED = "ticket.unblocked"
    EVENT_UPDATED = "event.updated"
    TICKET_TYPE_CREATED = "ticket_type.created"
    TICKET_TYPE_UPDATED = "ticket_type.updated"
    LIST_CREATED = "list.created"
    LIST_UPDATED = "list.updated"
    SCAN_ACCEPTED = "scan.accepted"
    SCAN_ANNULLED = "scan.annulled"
    KEYS_CHANGED = "keys.changed"
    DEVICE_REVOKED = "device.revoked"


async def append_changes(
    session: AsyncSession, event_id: str, changes: list[tuple[str, dict[str, Any]]]
) -> int:
    """Append `(kind, payload)` changes in order; returns the new head `seq`."""
    if not changes:
        return await head(session, event_id)
    new_head = (
        await session.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(change_seq=Event.change_seq + len(changes))
            .returning(Event.change_seq)
        )
    ).scalar_one()
    changed_events(session)[event_id] = int(new_head)
    first = new_head - len(changes) + 1
    rows = [
        {"event_id": event_id, "seq": first + i, "kind": kind, "payload": payload}
        for i, (kind, payload) in enumerate(changes)
    ]
    if len(rows) >= _FAST_FROM:  # an import's thousands of `ticket.issued`
        fast = _fast_insert(session.get_bind().dialect)
        await fast.run(session, rows, {"event_id": event_id, "created_at": utcnow()})
    else:
        await session.execute(insert(Change.__table__), rows)
    return int(new_head)


_FAST_FROM = 100


@lru_cache(maxsize=4)
def _fast_insert(dialect: Dialect) -> FastInsert:
    columns = ["event_id", "seq", "kind", "payload", "created_at"]
    return FastInsert(Change.__table__, columns, dialect)


def changed_events(session: AsyncSession) -> dict[str, int]:
    """Events whose change log this session appended to, with their new head.

    Whoever commits the session tells those events' scanners to look (after the commit: a
    notice about an uncommitted change would send them reading too early).
    """
    changed: dict[str, int] = session.info.setdefault(_CHANGED, {})
    return changed


async def head(session: AsyncSession, event_id: str) -> int:
    value = await session.scalar(select(Event.change_seq).where(Event.id == event_id))
    return int(value or 0)
