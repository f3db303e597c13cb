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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from server.changes.models import Change
from server.db import utcnow
from server.db.fast_insert import FastInsert
from server.events.models import Event

__all__ = [
    "ChangeKind",
    "append_changes",
    "append_changes_on_driver",
    "changed_events",
    "committed_items",
    "head",
]

_CHANGED = "tessera.changed_events"
_ITEMS = "tessera.committed_items"


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
    SCAN_CONFLICT = "scan.conflict"  # a forced offline scan, with or without a ticket
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
    dialect = session.get_bind().dialect
    if len(rows) >= (_FAST_FROM if dialect.name == "sqlite" else _FAST_FROM_POSTGRESQL):
        fast = _fast_insert(dialect)
        await fast.run(session, rows, {"event_id": event_id, "created_at": utcnow()})
    else:
        await session.execute(insert(Change.__table__), rows)
    return int(new_head)


def append_changes_on_driver(
    driver: Any, dialect: Dialect, event_id: str, changes: list[tuple[str, dict[str, Any]]]
) -> int:
    """`append_changes` for SQLite's driver connection, on its own thread (`on_driver_thread`):
    the same statements, one hop for the caller's whole write. Returns the new head; the caller
    records it in `changed_events` on the event loop."""
    cursor = driver.cursor()
    try:
        cursor.execute(_RESERVE, (len(changes), event_id))
        new_head = int(cursor.fetchone()[0])
        if changes:
            first = new_head - len(changes) + 1
            rows = [
                {"seq": first + i, "kind": kind, "payload": payload}
                for i, (kind, payload) in enumerate(changes)
            ]
            fast = _fast_insert(dialect)
            constants = {"event_id": event_id, "created_at": utcnow()}
            cursor.executemany(fast.sql, fast.values(rows, constants))
    finally:
        cursor.close()
    return new_head


_RESERVE = "UPDATE event SET change_seq = change_seq + ? WHERE id = ? RETURNING change_seq"
# Core's executemany processes a parameter dictionary per row: on SQLite every append goes
# through FastInsert instead. On PostgreSQL Core sends a few rows as one multi-VALUES INSERT,
# where asyncpg's executemany runs the statement once per row: measured slower for a redeem
# batch (1.02 against 0.89 ms of server CPU per scan), so only an import's hundreds go there.
_FAST_FROM = 1
_FAST_FROM_POSTGRESQL = 100


@lru_cache(maxsize=4)
def _fast_insert(dialect: Dialect) -> FastInsert:
    columns = ["event_id", "seq", "kind", "payload", "created_at"]
    return FastInsert(Change.__table__, columns, dialect)


def committed_items(session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """Change-log items this session appended, by event, as a page of the log shows them
    (`{"seq", "kind", **payload}`), kept by a writer that wants its rooms to be offered them
    without reading them back (server/changes/publish.py)."""
    items: dict[str, list[dict[str, Any]]] = session.info.setdefault(_ITEMS, {})
    return items


def changed_events(session: AsyncSession) -> dict[str, int]:
    """Events whose change log this session appended to, with their new head.

    Whoever commits the session tells those events' scanners to look (after the commit: a
    notice about an uncommitted change would send them reading too early).
    """
    changed: dict[str, int] = session.info.setdefault(_CHANGED, {})
    return changed


_HEAD = select(Event.change_seq).where(Event.id == bindparam("event_id"))  # built once


async def head(session: AsyncSession, event_id: str) -> int:
    value = await session.scalar(_HEAD, {"event_id": event_id})
    return int(value or 0)
