"""The one after-commit publish path: every change the doors must hear of is told after its commit.

Rules:
- A notice goes out only after the transaction that made its change committed: a notice about an
  uncommitted change would send doors reading the change log before the change is there.
- What a transaction must tell is kept on its session: `append_changes` records each event's new
  head (`changed_events`), and `notify_after_commit` queues any other notice the change needs (a
  device revoked: close its sockets; a forced offline scan: a `conflict` for every door).
- Whoever commits the session calls `publish_committed` once, after the commit; `committing` opens
  a transaction and does it. The queued notices go first, in the order queued, then the heads:
  a revoked device's sockets close before the other doors read its `device.revoked`, and a
  `conflict` (carried whole in its notice) is not held behind a read of the log.
- A `head` notice carries `committed_at` (epoch seconds, right after the commit): the rooms
  measure the fan-out delay from it.
- A `head` notice may carry `items`: every change the transaction appended to that event, up to
  its head, when the writer kept them (`committed_items`; the redeem writer does, at most
  `ITEMS_IN_NOTICE`). They are for this process only: a room offers them without reading the log
  when they join what it read (server/checkin/room.py), and the Redis fan-out strips them, so a
  notice from another instance still only says "look".
- A notice that cannot be published is logged and dropped: it only says "look", the change log is
  the truth, so a lost notice costs latency (the rooms' heal), never data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.changes.service import changed_events, committed_items

__all__ = ["ITEMS_IN_NOTICE", "Publisher", "committing", "notify_after_commit", "publish_committed"]

ITEMS_IN_NOTICE = 500  # a page of the log (server.changes.feed.PAGE_SIZE) at most

log = logging.getLogger("tessera.changes")

_QUEUED = "tessera.after_commit_notices"


class Publisher(Protocol):
    """What the fan-out offers this module: one notice to every subscriber of an event."""

    async def publish(self, event_id: str, notice: dict[str, Any]) -> None: ...


class _Transactions(Protocol):
    def transaction(self) -> Any: ...


def notify_after_commit(session: AsyncSession, event_id: str, notice: dict[str, Any]) -> None:
    """Queue `notice` for the event's subscribers, sent once `session` has committed."""
    queued: list[tuple[str, dict[str, Any]]] = session.info.setdefault(_QUEUED, [])
    queued.append((event_id, notice))


async def publish_committed(session: AsyncSession, fanout: Publisher) -> None:
    """Publish what the committed `session` must tell: the queued notices, then each changed
    event's head. Call it after the commit, once; it empties what it sent."""
    heads = changed_events(session)
    items = committed_items(session)
    queued: list[tuple[str, dict[str, Any]]] = session.info.pop(_QUEUED, [])
    committed_at = time.time()  # the fan-out delay's start (server/metrics/fanout.py)
    notices = []
    for event_id, h in heads.items():
        notice: dict[str, Any] = {"kind": "head", "head": h, "committed_at": committed_at}
        kept = items.get(event_id)
        if kept and len(kept) <= ITEMS_IN_NOTICE and kept[-1]["seq"] == h:
            notice["items"] = kept
        notices.append((event_id, notice))
    heads.clear()
    items.clear()
    for event_id, notice in [*queued, *notices]:
        try:
            await fanout.publish(event_id, notice)
        except Exception:  # a lost notice costs latency only: the rooms heal from the log
            log.warning("fan-out publish of a %r notice failed", notice.get("kind"), exc_info=True)


@asynccontextmanager
async def committing(database: _Transactions, fanout: Publisher) -> AsyncIterator[AsyncSession]:
    """A read-write transaction whose changes are published once it has committed (nothing is
    published when it rolls back)."""
    async with database.transaction() as session:
        yield session
    await publish_committed(session, fanout)
