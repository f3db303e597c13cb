"""Engine and session factory for SQLite (embedded) and PostgreSQL (scaled).

SQLite runs in WAL mode with foreign keys on. Its transactions begin IMMEDIATE: a deferred
transaction that reads, then writes, can fail at once with SQLITE_BUSY when another connection
wrote in between, whereas IMMEDIATE takes the write lock up front and waits `busy_timeout`.

Write transactions of one process on SQLite (`Database.transaction()`) also queue on an asyncio
lock, first come first served: SQLite's busy handler sleeps 1, 2, 5 ... 100 ms between attempts,
so writers waiting on each other inside the driver waited far longer than the lock was held
(issuing p99 0.9-1.7 s with 4 concurrent bookings, ~0.1 s with the queue; docs/performance.md).
The queue is per task: a task that opens a write transaction inside its own write transaction
gets `NestedWriteTransaction` at once (the inner one could never get the lock its outer one
holds), and a wait longer than `WRITE_LOCK_TIMEOUT` raises `WriteLockTimeout`, as
`busy_timeout` did. Other processes (a CLI, another server on the same file) still meet the
busy handler.

Each SQLite statement is one call on aiosqlite's thread (server/db/sqlite_driver.py), and a
connection is rolled back on its return to the pool only when a transaction is still open
(`_on_reset`): decision 0018.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.config import async_database_url
from server.db import sqlite_driver

__all__ = ["WRITE_LOCK_TIMEOUT", "Database", "NestedWriteTransaction", "WriteLockTimeout"]

WRITE_LOCK_TIMEOUT = 10.0  # seconds, as the driver's busy_timeout below
# One thread hop per SQLite statement (server/db/sqlite_driver.py); False gives SQLAlchemy's
# own adapter, for bench/sqlite_hops.py's baseline.
SQLITE_ONE_HOP = True


class NestedWriteTransaction(RuntimeError):
    """A task opened a SQLite write transaction while it already held one (a deadlock)."""


class WriteLockTimeout(TimeoutError):
    """The SQLite write queue did not reach this transaction within `WRITE_LOCK_TIMEOUT`."""


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
)


class Database:
    """One engine and its session factory; `session()` is the unit of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_database_url(url)
        self.engine: AsyncEngine = _make_engine(self.url, echo=echo)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads need no write lock: on SQLite their transactions begin DEFERRED (see _on_begin).
        self.read_sessions = async_sessionmaker(
            self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writer: asyncio.Task[Any] | None = None  # the task holding the write lock

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        if read_only or self._write_lock is None:
            factory = self.read_sessions if read_only else self.sessions
            async with factory() as session, session.begin():
                yield session
            return
        async with self._write_queue(), self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _write_queue(self) -> AsyncIterator[None]:
        """Hold SQLite's in-process write lock (FIFO) for the transaction's whole length."""
        assert self._write_lock is not None
        task = asyncio.current_task()
        if task is not None and self._writer is task:
            raise NestedWriteTransaction(
                "a write transaction was opened inside another of the same task: it would "
                "wait forever for the lock its outer transaction holds"
            )
        try:
            async with asyncio.timeout(WRITE_LOCK_TIMEOUT):
                await self._write_lock.acquire()
        except TimeoutError:
            raise WriteLockTimeout(
                f"the database's write lock was not free within {WRITE_LOCK_TIMEOUT:g} s"
            ) from None
        self._writer = task
        try:
            yield
        finally:
            self._writer = None
            self._write_lock.release()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_engine(url: str, *, echo: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        # The pool's own reset (a ROLLBACK on every return) is replaced by `_on_reset`, which
        # rolls back only a connection still in a transaction: see there.
        driver = {"module": sqlite_driver.dbapi()} if SQLITE_ONE_HOP else {}
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 10}, pool_reset_on_return=None, **driver
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _ensure_sqlite_dir(url: str) -> None:
    """Make the database private before SQLite opens it: it holds guest links, names and
    emails in clear.

    The file is created 0600 here, and SQLite gives its -wal and -shm files the database file's
    mode. Files an older version left readable are tightened. The directory is made 0700 when
    created here; an existing one only when it is `var/` under the working directory (Tessera's
    own data directory, which also holds the demo token), never a directory the operator chose.
    """
    path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    database = Path(path)
    directory = database.parent
    created = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if created or directory.resolve() == (Path.cwd() / "var").resolve():
        _tighten(directory)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        _tighten(database.with_name(database.name + suffix))


def _tighten(path: Path) -> None:
    """Take group and other permissions off `path` if it exists and is ours to change."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except FileNotFoundError:
        return
    except PermissionError:
        return  # another owner's file: its modes are the operator's choice


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # A connection comes back to the pool after its transaction committed or rolled back
        # nearly always; the default reset's ROLLBACK then costs a hop to aiosqlite's thread
        # (a redeem batch makes five in all) for nothing. Roll back only what is still open.
        # `_conn` is aiosqlite's sqlite3 connection; `in_transaction` is read while no call of
        # this connection runs (it is being returned), so reading it here is safe.
        raw = getattr(dbapi_connection.driver_connection, "_conn", None)
        if raw is None or raw.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")
