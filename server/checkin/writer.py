"""One writer task that group-commits redeems: many callers' scans, one transaction; and the
one annul, for the websocket and REST alike.

Callers are REST redeems and websocket `scan` and `scan_batch` frames, from every socket. Why: a
transaction per scan costs several driver round trips plus a commit, which caps SQLite near
1,000-1,400 scans/s (MEASUREMENTS "SQLite write path"), and on PostgreSQL every scan transaction
of an event waits on the event's change-log row lock. Here each caller queues its job (its scans)
and awaits its own future; the writer takes everything queued, decides and records it in one
transaction (`decide_and_record` loads and writes a whole batch in a handful of statements),
commits, then answers each caller and publishes the fan-out notices (`publish_committed`). While
one batch commits the next one gathers, so batches grow with load; a lone scan at rest is never
delayed, and under load the writer lingers `linger` seconds so that the callers it just answered
can join.

Correctness is the database's, not the writer's: decisions still lock presence rows, so several
instances (each with its own writer) stay atomic per ticket, and a scan_id is still stored once.
A batch that fails is retried in halves, down to the job that fails, so one bad job cannot fail
its neighbours and costs O(log n) extra transactions; a job (a `scan_batch`) is recorded all or
none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from protocol.messages import ResultItem, ScanItem
from server.changes.publish import publish_committed
from server.checkin import service
from server.checkin.fanout import Fanout
from server.checkin.redeem import RepeatedScans, decide_and_record
from server.checkin.store import DeviceContext
from server.db import Database, utcnow
from server.db.unavailable import is_database_unavailable
from server.errors import DomainError, RateLimited
from server.ratelimit import TokenBuckets

__all__ = ["DEVICE_CACHE_TTL", "ITEM_BURST", "ITEM_RATE", "DeviceCache", "RedeemWriter"]

# A job is one caller's scans (a lone scan, or a whole `scan_batch`): recorded all or none.
_Job = tuple[str, list[ScanItem], "asyncio.Future[list[ResultItem]]"]

DEVICE_CACHE_TTL = 1.0  # seconds a token's device is trusted without asking the database
ITEM_RATE = 50.0  # scan items per second per device (ARCHITECTURE §5)
ITEM_BURST = 5000


class DeviceCache:
    """Token -> paired, unrevoked device, each entry trusted for at most `ttl` seconds.

    Authenticating every batch costs a query and a round trip. A revocation on this instance
    drops the device at once (`forget_device`, called by DELETE /devices/{id} and on the
    `device_revoked` fan-out notice a room receives); one made elsewhere takes effect here within
    `ttl`. Unknown tokens are never cached, so a token paired a moment ago works at once.
    """

    def __init__(
        self, ttl: float = DEVICE_CACHE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[DeviceContext, float]] = {}

    def get(self, token: str) -> DeviceContext | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if self._clock() - entry[1] > self.ttl:
            del self._entries[token]
            return None
        return entry[0]

    def put(self, devices: dict[str, DeviceContext]) -> None:
        now = self._clock()
        if len(self._entries) > 10_000:  # tokens of devices gone quiet: start afresh
            self._entries.clear()
        self._entries.update((token, (device, now)) for token, device in devices.items())

    def forget_device(self, device_id: str) -> None:
        for token in [t for t, (d, _) in self._entries.items() if d.device_id == device_id]:
            del self._entries[token]


class RedeemWriter:
    def __init__(
        self,
        database: Database,
        fanout: Fanout,
        *,
        max_batch: int = 1000,
        linger: float = 0.001,
        item_rate: float = ITEM_RATE,
        item_burst: int = ITEM_BURST,
    ) -> None:
        self._database = database
        self._fanout = fanout
        # Scan items per device (its token: one per device), REST and websocket alike. Frames are
        # limited elsewhere; this bounds guessing codes in bulk through batches of 500, while an
        # offline queue of up to `item_burst` scans still uploads at once.
        self.items = TokenBuckets(rate=item_rate, burst=item_burst)
        self._max_batch = max_batch  # scans per transaction (a job is never split)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.devices = DeviceCache()
        self._linger = linger
        self._busy = False  # the last batch had company: more callers are on their way

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

    def forget_device(self, device_id: str) -> None:
        """Stop trusting the cached authentication of `device_id` (it was just revoked)."""
        self.devices.forget_device(device_id)

    async def redeem(self, token: str, item: ScanItem) -> ResultItem:
        """The result of `item` scanned by the device holding `token`, once committed.

        Raises Unauthenticated when the token is unknown, unpaired or revoked.
        """
        return (await self.redeem_many(token, [item]))[0]

    async def redeem_many(self, token: str, items: list[ScanItem]) -> list[ResultItem]:
        """The results of `items` (in order), recorded in one transaction, all or none.

        Raises RateLimited (nothing recorded) when the device is over its scan-item budget.
        """
        if self._task is None:
            raise RuntimeError("the redeem writer is not running")
        wait = self.items.take(token, time.monotonic(), cost=len(items))
        if wait:
            limits = f"{self.items.rate:g} scans/s with bursts of {self.items.burst}"
            raise RateLimited(
                f"over {limits}: nothing recorded; send again in {wait} s", retry_after=wait
            )
        future: asyncio.Future[list[ResultItem]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((token, items, future))
        return await future

    async def annul(
        self, scan_id: str, *, token: str | None, device_id: str | None = None
    ) -> ResultItem:
        """Annul a scan in one transaction, for the device holding `token` (its own scans) or
        for the organiser (`token` None; `device_id` names whose scan when ambiguous); the
        websocket's `annul` and both REST twins. Published after commit like every change.

        Raises Unauthenticated for a token no paired, unrevoked device holds, and whatever
        `service.annul_scan` raises.
        """
        async with self._database.transaction() as session:
            device = None
            if token is not None:
                device = (await self._authenticate(session, {token})).get(token)
                if device is None:
                    raise await service.refusal(session, token)
            outcome = await service.annul_scan(
                session, scan_id, device=device, now=utcnow(), device_id=device_id
            )
        await publish_committed(session, self._fanout)
        return outcome.results[0]

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            if self._busy and self._linger > 0:
                # Under load the callers just answered are about to send their next scans: a
                # moment's wait lets them join this transaction instead of forming the next one
                # (measured: ~+20 % scans/s at 16 clients). A lone scan at rest never waits.
                await asyncio.sleep(self._linger)
            size = len(jobs[0][1])
            while not self._queue.empty() and size < self._max_batch:
                jobs.append(self._queue.get_nowait())
                size += len(jobs[-1][1])
            self._busy = len(jobs) > 1
            await self._settle(jobs)

    async def _settle(self, jobs: list[_Job]) -> None:
        """Record `jobs` in one transaction; if it fails, each half again, down to the culprit.

        Halving finds a job that fails every transaction it is in with about 2·log2(n) more
        transactions, where retrying job by job took n: one poisoned job slowed every door's
        scans tenfold. Jobs are never split, so each is still recorded all or none.
        """
        try:
            await self._process(jobs)
        except Exception as exc:
            if len(jobs) == 1 or is_database_unavailable(exc):
                # Reported to its own caller; with the database away there is no culprit to
                # look for (halving would only knock 2n times on a closed door).
                for _, _, future in jobs:
                    _fail(future, exc)
                return
            middle = len(jobs) // 2
            await self._settle(jobs[:middle])
            await self._settle(jobs[middle:])

    async def authenticate(self, token: str) -> DeviceContext | None:
        """The paired, unrevoked device holding `token`, read from the database (a socket's
        first check is never a cached one) and cached for the scans that follow."""
        async with self._database.transaction(read_only=True) as session:
            fresh = await service.authenticate_devices(session, [token])
        self.devices.put(fresh)
        return fresh.get(token)

    async def _authenticate(self, session: Any, tokens: set[str]) -> dict[str, DeviceContext]:
        found = {t: d for t in tokens if (d := self.devices.get(t)) is not None}
        missing = tokens - found.keys()
        if missing:
            fresh = await service.authenticate_devices(session, missing)
            self.devices.put(fresh)
            found |= fresh
        return found

    async def _process(self, jobs: list[_Job]) -> None:
        try:  # a retried scan_id is rare online: decide as if none were, look up only if one was
            session, devices, results = await self._record(jobs, optimistic=True)
        except RepeatedScans:
            session, devices, results = await self._record(jobs, optimistic=False)
        by_item = iter(results)
        refused = await self._refusals([t for t, _, _ in jobs if t not in devices])
        for token, items, future in jobs:
            if token in refused:
                _fail(future, refused[token])
                continue
            answer = [next(by_item) for _ in items]
            if not future.done():  # a caller that went away no longer waits
                future.set_result(answer)
        await publish_committed(session, self._fanout)  # after the answers: they wait on nobody

    async def _refusals(self, tokens: list[str]) -> dict[str, DomainError]:
        """Why each of `tokens` is refused (an archived event's doors hear so); read only on
        the refusal path, after the batch's commit."""
        if not tokens:
            return {}
        async with self._database.transaction(read_only=True) as session:
            return {token: await service.refusal(session, token) for token in tokens}

    async def _record(
        self, jobs: list[_Job], *, optimistic: bool
    ) -> tuple[Any, dict[str, DeviceContext], list[ResultItem]]:
        async with self._database.transaction() as session:
            devices = await self._authenticate(session, {token for token, _, _ in jobs})
            known = [(devices[t], item) for t, items, _ in jobs if t in devices for item in items]
            results, _, _ = await decide_and_record(
                session, known, now=utcnow(), optimistic=optimistic
            )
        return session, devices, results


def _fail(future: asyncio.Future[list[ResultItem]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
