"""The redeem writer isolates a failing job by bisection: a poisoned job among n costs about
2·log2(n) extra transactions, its caller gets the exception, every other caller its result.

Each test runs on SQLite and PostgreSQL (the `backend` fixture behind `settings`). The database is
real; only the job is a test double: its scans raise when read, inside the transaction.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from protocol.messages import ScanItem
from server.checkin.fanout import MemoryFanout
from server.checkin.models import ScanRow
from server.checkin.writer import RedeemWriter
from server.db import Database
from tests.server.checkin.helpers import Venue, venue


class PoisonedScans(list[ScanItem]):
    """A job whose scans cannot be read: it fails whatever transaction it takes part in."""

    def __iter__(self) -> Iterator[ScanItem]:
        raise RuntimeError("poisoned job")


class Writer:
    """A real writer on its own engine, counting the transactions it begins on the database
    (one that fails before its first statement never reaches the database and is not counted)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.writer = RedeemWriter(database, MemoryFanout())
        self.transactions = 0
        event.listen(database.engine.sync_engine, "begin", self._count)

    def _count(self, _connection: Any) -> None:
        self.transactions += 1

    async def submit(self, token: str, jobs: list[list[ScanItem]]) -> list[Any]:
        """Queue every job before the writer wakes, so that they form one batch."""
        self.transactions = 0
        return await asyncio.gather(
            *(self.writer.redeem_many(token, job) for job in jobs), return_exceptions=True
        )

    async def stored(self, scan_ids: list[str]) -> int:
        async with self.database.transaction(read_only=True) as session:
            query = select(func.count()).where(ScanRow.scan_id.in_(scan_ids))
            return int(await session.scalar(query))


@pytest.fixture
async def writer(settings) -> AsyncIterator[Writer]:
    database = Database(settings.database_url)  # the app's pool lives on the client's loop
    subject = Writer(database)
    await subject.writer.start()
    try:
        yield subject
    finally:
        await subject.writer.stop()
        await database.dispose()


def _scan(v: Venue, index: int) -> ScanItem:
    return ScanItem(scan_id=str(uuid.uuid4()), code=v.tickets[index]["token"], list_id=v.list_id)


def _bound(jobs: int, poisoned: int) -> int:
    """The failed whole batch, then at each level of halving two transactions per culprit."""
    return 1 + 2 * poisoned * math.ceil(math.log2(jobs))


async def test_one_poisoned_job_among_64_costs_logarithmic_transactions_and_fails_alone(
    api, writer
):
    v = await venue(api, 80)
    clean = await writer.submit(v.door.token, [[_scan(v, i)] for i in range(70, 80)])
    assert [r[0].verdict for r in clean] == ["accepted"] * 10
    assert writer.transactions == 1  # jobs submitted together form one batch
    jobs: list[list[ScanItem]] = [[_scan(v, i)] for i in range(64)]
    jobs[5] = [_scan(v, 5), *(_scan(v, i) for i in range(64, 70))]  # a `scan_batch` of 7
    poisoned = [_scan(v, 37), _scan(v, 38)]
    jobs[37] = PoisonedScans(poisoned)
    results = await writer.submit(v.door.token, jobs)
    assert isinstance(results[37], RuntimeError)
    good = [r for i, r in enumerate(results) if i != 37]
    assert [(item.verdict, item.entries) for r in good for item in r] == [("accepted", 1)] * 69
    assert writer.transactions <= _bound(64, 1)  # job by job it took 64
    good_ids = [item.scan_id for i, job in enumerate(jobs) if i != 37 for item in job]
    assert await writer.stored(good_ids) == 69
    assert await writer.stored([item.scan_id for item in poisoned]) == 0


async def test_two_poisoned_jobs_each_fail_alone_and_the_rest_is_recorded(api, writer):
    v = await venue(api, 42)
    jobs: list[list[ScanItem]] = [[_scan(v, i)] for i in range(40)]
    jobs[3] = PoisonedScans([_scan(v, 3)])
    jobs[29] = PoisonedScans([_scan(v, 29)])
    results = await writer.submit(v.door.token, jobs)
    failed = {i for i, r in enumerate(results) if isinstance(r, BaseException)}
    assert failed == {3, 29}
    assert all(r[0].verdict == "accepted" for i, r in enumerate(results) if i not in failed)
    assert writer.transactions <= _bound(40, 2)
    good_ids = [job[0].scan_id for i, job in enumerate(jobs) if i not in failed]
    assert await writer.stored(good_ids) == 38
    after = await writer.submit(v.door.token, [[_scan(v, 40)], [_scan(v, 41)]])
    assert [r[0].verdict for r in after] == ["accepted"] * 2  # the writer carries on
    assert writer.transactions == 1
