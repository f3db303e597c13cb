"""A SQLite connection goes back to the pool without a ROLLBACK when its transaction ended, and
with one when it is still open (server/db/engine.py, `_on_reset`)."""

from __future__ import annotations

import aiosqlite
import pytest
from sqlalchemy import text

from server.db.engine import Database


@pytest.fixture
async def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'reset.db'}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER)"))
    yield db
    await db.dispose()


@pytest.fixture
def rollbacks(monkeypatch):
    """How many ROLLBACKs reached the driver (the real one still runs)."""
    calls: list[int] = []
    real = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        calls.append(1)
        await real(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    return calls


async def test_a_committed_transaction_returns_its_connection_without_a_rollback(
    database, rollbacks
):
    for n in range(3):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        async with database.transaction(read_only=True) as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == n + 1
    assert rollbacks == []


async def test_a_failed_transaction_is_rolled_back(database, rollbacks):
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("the caller failed")
    assert rollbacks
    async with database.transaction() as session:  # the write lock of SQLite is free again
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0


async def test_a_transaction_begun_behind_sqlalchemy_is_rolled_back_on_return(database):
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO t VALUES (7)")
    async with database.transaction() as session:  # BEGIN IMMEDIATE again: none is open
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0
        await session.execute(text("INSERT INTO t VALUES (8)"))
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(text("SELECT n FROM t")) == 8
