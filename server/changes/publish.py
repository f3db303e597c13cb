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

from server.changes.service import changed_events

__all__ = ["Publisher", "committing", "notify_after_commit", "publish_committed"]

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
    queued: list[tuple[str, dict[str, Any]]] = session.info.pop(_QUEUED, [])
    committed_at = time.time()  # the fan-out delay's start (server/metrics/fanout.py)
    notices = [
        (event_id, {"kind": "head", "head": h, "committed_at": committed_at})
        for event_id, h in heads.items()
    ]
    heads.clear()
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
