"""The one reader of the change log: pages after a cursor, and whether a cursor can be followed.

Rules:
- A page holds the changes after the cursor up to the head read in the same transaction, in seq
  order: every seq up to a committed head is committed (writers of one event commit in seq
  order, see `server.changes.service`), so a page has no holes and a cursor never skips.
- `read_pages` follows the log to the head one page per read-only transaction, so a long
  catch-up never holds one transaction open while frames go out.
- Retention prunes the oldest changes (server/changes/retention.py): `event.change_floor` is the
  highest seq no longer kept, raised before the rows go. A cursor below the floor cannot be
  followed; a page that would not start right after its cursor (the floor rose between two
  reads) raises `SnapshotRequired` instead of skipping, so a reader never sees a hole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.messages import Changes
from server.changes.models import Change
from server.errors import SnapshotRequired
from server.events.models import Event

__all__ = ["PAGE_SIZE", "changes_after", "log_position", "needs_snapshot", "read_pages"]

PAGE_SIZE = 500  # items per page (and per `changes` frame) unless the caller says otherwise

# Built once: every room read and catch-up runs these, and a statement built per call cost its
# construction and its cache key each time (SQLAlchemy memoizes the key on the object).
_PAGE = (
    select(Change.seq, Change.kind, Change.payload)
    .where(
        Change.event_id == bindparam("event_id"),
        Change.seq > bindparam("cursor"),
        Change.seq <= bindparam("current"),
    )
    .order_by(Change.seq)
    .limit(bindparam("limit"))
)
_POSITION = select(Event.change_seq, Event.change_floor).where(Event.id == bindparam("event_id"))


class _ReadTransactions(Protocol):
    def transaction(self, *, read_only: bool = False) -> Any: ...


async def changes_after(
    session: AsyncSession, event_id: str, cursor: int, limit: int = PAGE_SIZE
) -> Changes:
    """The changes after `cursor`, gap-free and in seq order, at most `limit` of them.

    Raises SnapshotRequired when the changes right after `cursor` are no longer kept."""
    current, floor = await log_position(session, event_id)
    if cursor < floor:
        raise _pruned(cursor, current)
    rows = await session.execute(
        _PAGE, {"event_id": event_id, "cursor": cursor, "current": current, "limit": limit}
    )
    items = [{"seq": seq, "kind": kind, **payload} for seq, kind, payload in rows]
    first = items[0]["seq"] if items else current + 1
    if cursor < current and first != cursor + 1:  # pruned since the floor was read
        raise _pruned(cursor, current)
    last = items[-1]["seq"] if items else cursor
    return Changes(items=items, head=current, has_more=last < current)


async def read_pages(
    database: _ReadTransactions, event_id: str, cursor: int, limit: int = PAGE_SIZE
) -> AsyncIterator[Changes]:
    """Every page after `cursor` up to the head, each read in its own read-only transaction.

    The first page comes even when it is empty (a caller at the head learns so); the last one
    has `has_more` false. A caller may stop early: no transaction is open between pages.
    """
    while True:
        async with database.transaction(read_only=True) as session:
            page = await changes_after(session, event_id, cursor, limit)
        yield page
        if not page.items or not page.has_more:
            return
        cursor = int(page.items[-1]["seq"])


async def log_position(session: AsyncSession, event_id: str) -> tuple[int, int]:
    """The event's head and its change floor (the highest seq no longer kept); (0, 0) for an
    event that does not exist."""
    row = (await session.execute(_POSITION, {"event_id": event_id})).first()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


async def needs_snapshot(session: AsyncSession, event_id: str, cursor: int | None) -> bool:
    """Whether a device at `cursor` must load a snapshot instead of following the change log:
    no cursor, a cursor beyond the head (another database, or a restore), or one below the
    change floor (older than the oldest change still kept)."""
    if cursor is None:
        return True
    current, floor = await log_position(session, event_id)
    return cursor > current or cursor < floor


def _pruned(cursor: int, current: int) -> SnapshotRequired:
    return SnapshotRequired(
        f"cursor {cursor} is older than the change log kept: "
        "load the snapshot, then follow its seq",
        head=current,
    )
