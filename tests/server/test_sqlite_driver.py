"""SQLite statements through `server/db/sqlite_driver.py`: one call on aiosqlite's thread each,
with the answers and errors SQLAlchemy's own adapter gives; and a connection goes back to the
pool without a ROLLBACK when its transaction ended, with one when it is still open
(server/db/engine.py, `_on_reset`). Decision 0018."""

from __future__ import annotations

import aiosqlite
import pytest
from sqlalchemy import bindparam, exc, text

from server.db.engine import Database
from server.db.sqlite_driver import OneHopCursor


@pytest.fixture
async def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'driver.db'}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield db
    await db.dispose()


@pytest.fixture
def driver_calls(monkeypatch):
    """The calls made on aiosqlite's threads (each one still runs)."""
    calls: list[object] = []
    real = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        calls.append(fn)
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_the_engine_hands_out_one_hop_cursors(database):
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneHopCursor)


async def test_each_statement_is_one_call_on_the_drivers_thread(database, driver_calls):
    async with database.transaction() as session:  # BEGIN IMMEDIATE
        await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
        await session.execute(text("SELECT * FROM t"))
        await session.execute(text("UPDATE t SET name = 'b'"))
    # COMMIT; no ROLLBACK on the way back to the pool
    assert len(driver_calls) == 5


async def test_rows_rowcount_and_lastrowid_are_the_drivers(database):
    async with database.transaction() as session:
        first = await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert first.lastrowid == 1
        many = await session.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": n} for n in "bcd"]
        )
        assert many.rowcount == 3
        returned = await session.execute(
            text("INSERT INTO t (name) VALUES ('e') RETURNING id, name")
        )
        assert returned.all() == [(5, "e")]
        updated = await session.execute(text("UPDATE t SET name = name || '!' WHERE id > 2"))
        assert updated.rowcount == 3
        query = text("SELECT id, name FROM t WHERE id IN :ids ORDER BY id")
        rows = await session.execute(
            query.bindparams(bindparam("ids", expanding=True)), {"ids": [1, 3]}
        )
        assert list(rows.keys()) == ["id", "name"]
        assert rows.all() == [(1, "a"), (3, "c!")]
        empty = await session.execute(text("SELECT * FROM t WHERE id < 0"))
        assert empty.all() == []
        assert await session.scalar(text("SELECT count(*) FROM t")) == 5


async def test_a_stream_still_reads_in_pages(database):
    async with database.transaction() as session:
        await session.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(250)]
        )
    async with database.transaction(read_only=True) as session:
        result = await session.stream(text("SELECT name FROM t ORDER BY id"))
        names = [row.name async for row in result]
    assert names == [f"n{i}" for i in range(250)]


async def test_driver_errors_are_sqlalchemys_and_roll_the_transaction_back(database):
    async with database.transaction() as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
    with pytest.raises(exc.IntegrityError, match="UNIQUE constraint failed"):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('b')"))
            await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
    with pytest.raises(exc.OperationalError, match="syntax error"):
        async with database.transaction() as session:
            await session.execute(text("SELEC nothing"))
    with pytest.raises(exc.OperationalError, match="no such table"):
        async with database.transaction(read_only=True) as session:
            await session.execute(text("SELECT * FROM missing"))
    async with database.transaction() as session:  # the write lock is free, 'b' was not kept
        assert (await session.execute(text("SELECT name FROM t"))).scalars().all() == ["a"]


@pytest.mark.parametrize(
    "value", ["", "x" * 10_000_000, "\x00nul\ufffd", 2**63 - 1, -(2**63), 1e308, b"\x00\xff"]
)
async def test_values_at_the_edges_round_trip(database, value):
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE v (x)"))
        await session.execute(text("INSERT INTO v VALUES (:x)"), {"x": value})
        assert await session.scalar(text("SELECT x FROM v")) == value


async def test_an_integer_sqlite_cannot_hold_raises_as_with_sqlalchemys_adapter(database):
    # sqlite3 raises OverflowError before SQLite sees the statement, and SQLAlchemy passes it
    # on unwrapped with its own adapter too (the API refuses such integers before this).
    with pytest.raises(OverflowError, match="too large"):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t (id, name) VALUES (:id, 'x')"), {"id": 2**64})
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0


def _rollbacks(calls: list[object]) -> int:
    return sum(1 for fn in calls if getattr(fn, "__name__", "") == "rollback")


async def test_a_committed_transaction_returns_its_connection_without_a_rollback(
    database, driver_calls
):
    for n in range(3):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": str(n)})
        async with database.transaction(read_only=True) as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == n + 1
    assert _rollbacks(driver_calls) == 0


async def test_a_failed_transaction_is_rolled_back(database, driver_calls):
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
            raise RuntimeError("the caller failed")
    assert _rollbacks(driver_calls) >= 1
    async with database.transaction() as session:  # SQLite's write lock is free again
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0


async def test_a_transaction_begun_behind_sqlalchemy_is_rolled_back_on_return(database):
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO t (name) VALUES ('behind')")
    async with database.transaction() as session:  # BEGIN IMMEDIATE again: none is open
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0
        await session.execute(text("INSERT INTO t (name) VALUES ('after')"))
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(text("SELECT name FROM t")) == "after"
