"""SQLite write transactions of one process queue FIFO on an asyncio lock (server/db/engine.py);
a nested write transaction in one task fails at once instead of deadlocking."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from server.db import engine as db_engine
from server.db.engine import Database, NestedWriteTransaction, WriteLockTimeout


@pytest.fixture
async def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'queue.db'}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER)"))
    yield db
    await db.dispose()


async def test_a_nested_write_transaction_in_one_task_raises_instead_of_deadlocking(database):
    async with asyncio.timeout(5):
        with pytest.raises(NestedWriteTransaction, match="inside another of the same task"):
            async with database.transaction() as outer:
                await outer.execute(text("INSERT INTO t VALUES (1)"))
                async with database.transaction():
                    pass
    async with database.transaction(read_only=True) as session:  # the outer one rolled back
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0
    async with database.transaction() as session:  # and the lock was given back
        await session.execute(text("INSERT INTO t VALUES (2)"))


async def test_a_read_inside_a_write_transaction_needs_no_lock(database):
    async with asyncio.timeout(5), database.transaction() as session:
        await session.execute(text("INSERT INTO t VALUES (1)"))
        async with database.transaction(read_only=True) as reader:
            assert await reader.scalar(text("SELECT count(*) FROM t")) == 0  # not yet committed


async def test_concurrent_writers_take_turns_in_arrival_order(database):
    order: list[int] = []

    async def writer(n: int) -> None:
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.01)  # hold the lock across awaits
            order.append(n)

    async with asyncio.timeout(10):
        tasks = []
        for n in range(8):
            tasks.append(asyncio.create_task(writer(n)))
            await asyncio.sleep(0)  # each task reaches the queue before the next starts
        await asyncio.gather(*tasks)
    assert order == list(range(8))
    async with database.transaction(read_only=True) as session:
        rows = (await session.execute(text("SELECT n FROM t ORDER BY rowid"))).scalars().all()
    assert list(rows) == list(range(8))


async def test_a_writer_waiting_longer_than_the_timeout_gets_a_clear_error(database, monkeypatch):
    monkeypatch.setattr(db_engine, "WRITE_LOCK_TIMEOUT", 0.05)
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    with pytest.raises(WriteLockTimeout, match=r"not free within 0\.05 s"):
        async with database.transaction():
            pass
    release.set()
    await task
    async with database.transaction() as session:  # the queue still works afterwards
        await session.execute(text("INSERT INTO t VALUES (2)"))
