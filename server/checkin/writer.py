"""One writer task that group-commits REST redeems: many scans, one transaction.

Why: a transaction per scan costs several driver round trips plus a commit, which caps SQLite near
1,000-1,400 scans/s (MEASUREMENTS "SQLite write path"). Here each request queues its scan and awaits
its own future; the writer takes everything queued, decides and records it in one transaction
(`decide_and_record` loads and writes a whole batch in a handful of statements), commits, then
answers each caller and publishes the fan-out notices. While one batch commits the next one
gathers, so batches grow with load and no timer delays a lone scan.

Correctness is the database's, not the writer's: decisions still lock presence rows, so several
instances (each with its own writer) stay atomic per ticket, and a scan_id is still stored once.
A batch that fails is retried scan by scan, so one bad scan cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec

from protocol.messages import ResultItem, ScanItem
from server.checkin import service
from server.checkin.fanout import Fanout
from server.checkin.redeem import decide_and_record
from server.db import Database, utcnow
from server.errors import Unauthenticated

__all__ = ["RedeemWriter"]

log = logging.getLogger("tessera.checkin.writer")

_Job = tuple[str, ScanItem, "asyncio.Future[ResultItem]"]


class RedeemWriter:
    def __init__(self, database: Database, fanout: Fanout, *, max_batch: int = 500) -> None:
        self._database = database
        self._fanout = fanout
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tessera-redeem-writer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            _, _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the redeem writer stopped"))

    async def redeem(self, token: str, item: ScanItem) -> ResultItem:
        """The result of `item` scanned by the device holding `token`, once committed.

        Raises Unauthenticated when the token is unknown, unpaired or revoked.
        """
        if self._task is None:
            raise RuntimeError("the redeem writer is not running")
        future: asyncio.Future[ResultItem] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((token, item, future))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self._max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            try:
                await self._process(jobs)
            except Exception as exc:  # the batch failed as a whole: isolate the culprit
                if len(jobs) == 1:
                    _fail(jobs[0][2], exc)
                    continue
                for job in jobs:
                    try:
                        await self._process([job])
                    except Exception as single:  # reported to its own caller
                        _fail(job[2], single)

    async def _process(self, jobs: list[_Job]) -> None:
        notices: list[tuple[str, dict[str, Any]]] = []
        async with self._database.transaction() as session:
            devices = await service.authenticate_devices(session, {token for token, _, _ in jobs})
            known = [(devices[token], item) for token, item, _ in jobs if token in devices]
            results, conflicts, heads = await decide_and_record(session, known, now=utcnow())
        by_job = iter(results)
        for token, _, future in jobs:
            if token not in devices:
                _fail(future, Unauthenticated("unknown, unpaired or revoked device token"))
                continue
            result = next(by_job)
            if not future.done():  # a caller that went away no longer waits
                future.set_result(result)
        notices += [(event_id, {"kind": "head", "head": h}) for event_id, h in heads.items()]
        notices += [
            (event_id, {"kind": "conflict", "frame": msgspec.to_builtins(conflict)})
            for event_id, conflict in conflicts
        ]
        for event_id, notice in notices:
            try:
                await self._fanout.publish(event_id, notice)
            except Exception:  # a lost notice costs latency only: devices heal from the log
                log.warning("fan-out publish failed", exc_info=True)


def _fail(future: asyncio.Future[ResultItem], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
