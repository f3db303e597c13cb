"""Retention of the change log: the changes of finished events are pruned after a while.

Rules:
- A change is pruned once it is older than the retention (`TESSERA_CHANGE_RETENTION`, default
  a week) *and* its event ended (or, with no end, started) more than the retention ago: during an
  event and for a week after it nothing is pruned, so a door that was switched off for the night
  still follows the log.
- Pruning keeps `seq` gap-free among the kept changes: it removes a prefix of the event's log,
  every seq up to the highest one old enough (the floor), never a change in between. A seq is
  never handed out again: the head (`event.change_seq`) does not move.
- The floor (`event.change_floor`) is raised first, in one short transaction, and only then are
  the rows deleted, in batches of `batch` seqs, each its own short transaction: a reader checks
  the floor (server/changes/feed.py), so it never reads a half-deleted log, and scans (which
  take the event row's lock to append) wait at most for one UPDATE, never for the deletes.
- Idempotent and safe to run from several processes at once: the floor only rises, and deleting
  rows another process deleted deletes nothing. An interrupted run leaves rows below the floor,
  which the next run deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.changes.models import Change
from server.db import Database, utcnow
from server.db.unavailable import is_database_unavailable
from server.events.models import Event

__all__ = [
    "BATCH",
    "FIRST_DELAY",
    "INTERVAL",
    "RESTORE_JUMP",
    "Pruned",
    "Pruner",
    "drop_log",
    "prune",
    "seal_restored_log",
]

log = logging.getLogger("tessera.retention")

BATCH = 5000  # seqs deleted per transaction
INTERVAL = 3600.0  # seconds between two runs of the periodic pruner
FIRST_DELAY = 60.0  # seconds after start before its first run (a restart is no prune storm)


@dataclass(frozen=True)
class Pruned:
    """What pruning did (or, dry, would do) to one event's change log."""

    event_id: str
    name: str
    floor: int  # the highest seq no longer kept, after this run
    removed: int  # change rows deleted (dry: that would be deleted)
    kept: int  # change rows left
    seconds: float = 0.0


async def prune(
    database: Database,
    *,
    retention: timedelta,
    now: datetime | None = None,
    batch: int = BATCH,
    dry_run: bool = False,
) -> list[Pruned]:
    """Prune every event's changes past `retention` (see the module's rules); one entry per
    event that had something to prune, in event id order."""
    now = now or utcnow()
    cutoff = now - retention
    async with database.transaction(read_only=True) as session:
        targets = await _targets(session, cutoff)
    done = []
    for event_id, name, floor, total in targets:
        started = time.perf_counter()
        removed = await _count(database, event_id, floor)
        if not dry_run:
            removed = await _remove(database, event_id, floor, batch)
        seconds = time.perf_counter() - started
        done.append(Pruned(event_id, name, floor, removed, total - removed, seconds))
    return done


async def _targets(session: AsyncSession, cutoff: datetime) -> list[tuple[str, str, int, int]]:
    """(event id, name, new floor, rows in its log) of each event with changes to prune.

    Reads only the rows above each ended event's floor (the primary key's range), so an hourly
    run costs the unpruned changes of ended events, not the whole log."""
    ended = func.coalesce(Event.ends_at, Event.starts_at)
    events = await session.execute(
        select(Event.id, Event.name, Event.change_floor).where(ended <= cutoff).order_by(Event.id)
    )
    found = []
    for event_id, name, floor in events.all():
        of_event = Change.event_id == event_id
        newest_old = await session.scalar(
            select(func.max(Change.seq)).where(
                of_event, Change.seq > floor, Change.created_at <= cutoff
            )
        )
        target = max(int(newest_old or 0), int(floor))
        lowest = await session.scalar(select(func.min(Change.seq)).where(of_event))
        if lowest is None or lowest > target:
            continue  # nothing at or below the floor to remove
        total = await session.scalar(select(func.count()).where(of_event))
        found.append((event_id, name, target, int(total or 0)))
    return found


async def _count(database: Database, event_id: str, floor: int) -> int:
    async with database.transaction(read_only=True) as session:
        query = select(func.count()).where(Change.event_id == event_id, Change.seq <= floor)
        return int(await session.scalar(query) or 0)


async def _remove(database: Database, event_id: str, floor: int, batch: int) -> int:
    """Raise the event's floor to `floor`, then delete its rows up to it, `batch` seqs a time."""
    async with database.transaction() as session:
        await session.execute(
            update(Event)
            .where(Event.id == event_id, Event.change_floor < floor)
            .values(change_floor=floor)
        )
    async with database.transaction(read_only=True) as session:
        query = select(func.min(Change.seq)).where(Change.event_id == event_id)
        lowest = await session.scalar(query)
    removed = 0
    low = int(lowest or floor + 1) - 1
    while low < floor:
        high = min(low + batch, floor)
        async with database.transaction() as session:
            result = await session.execute(
                delete(Change).where(
                    Change.event_id == event_id, Change.seq > low, Change.seq <= high
                )
            )
        removed += int(getattr(result, "rowcount", 0) or 0)
        low = high
        await asyncio.sleep(0)  # let the scans of this process run between batches
    return removed


async def drop_log(database: Database, event_id: str, *, batch: int = BATCH) -> int:
    """Remove the whole change log of one event (archive): the floor becomes its head."""
    async with database.transaction(read_only=True) as session:
        current = await session.scalar(select(Event.change_seq).where(Event.id == event_id))
    return await _remove(database, event_id, int(current or 0), batch)


RESTORE_JUMP = 2**32  # seqs skipped after a restore: more than any event's lost history


async def seal_restored_log(database: Database) -> int:
    """After a restore: move every event's head and floor `RESTORE_JUMP` further, so that no seq
    handed out after the backup (and lost with it) is ever handed out again. A door's cursor
    from before the restore is then below the floor or beyond the head: `snapshot_required`,
    never a cursor that names other changes than the ones it applied. The number of events."""
    async with database.transaction() as session:
        result = await session.execute(
            update(Event).values(
                change_seq=Event.change_seq + RESTORE_JUMP,
                change_floor=Event.change_seq + RESTORE_JUMP,
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)


class Pruner:
    """Prunes every `interval` seconds until stopped (in `tessera serve` with the embedded
    worker, and in `tessera worker`); a failed run is logged and tried at the next one."""

    def __init__(
        self,
        database: Database,
        retention: timedelta,
        *,
        interval: float = INTERVAL,
        first_delay: float = FIRST_DELAY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.retention = retention
        self.interval = interval
        self.first_delay = first_delay
        self.clock = clock
        self.runs = 0  # completed runs (tests wait on it)

    async def run(self, stop: asyncio.Event) -> None:
        wait = self.first_delay
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return
            await self.run_once()
            wait = self.interval

    async def run_once(self) -> list[Pruned]:
        try:
            done = await prune(self.database, retention=self.retention, now=self.clock())
        except Exception as exc:  # a database hiccup must not end the worker
            if is_database_unavailable(exc):  # PostgreSQL away: the next run prunes
                log.warning("change log pruning: database unavailable (%s)", type(exc).__name__)
            else:
                log.exception("change log pruning failed")
            return []
        finally:
            self.runs += 1
        for item in done:
            log.info(
                "pruned %d changes of event %s up to seq %d in %.2f s",
                item.removed,
                item.event_id,
                item.floor,
                item.seconds,
            )
        return done
