"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of four.

Why: aiosqlite runs each call of a connection on its own thread, and SQLAlchemy's adapter
makes four calls for one statement: create the cursor, execute, fetch the rows, close the
cursor. Each call is a hop (a queue put that wakes the thread, then `call_soon_threadsafe`
that wakes the event loop), and on this machine a hop costs more CPU than the statement it
carries. Here the cursor is made, executed, read and closed in one call on aiosqlite's thread;
SQLAlchemy then reads the description, row count, last row id and rows it kept.

Rules:
- Only the ordinary (buffered) cursor changes: server-side cursors (`stream()`) keep
  SQLAlchemy's own, which fetch in pages.
- Errors are SQLite's, raised by the thread call and handed to the adapter's own exception
  handling, exactly as before.
- `Connection._execute` and `Connection._conn` are aiosqlite's private names (also used by
  `fast_insert.on_driver_thread`): every database test fails at once if an upgrade renames
  them. aiosqlite is pinned in pyproject.toml.

Plugged in by `module=` of `create_async_engine` (server/db/engine.py): SQLAlchemy's dialect
then uses this DBAPI shim, whose connections hand out `OneHopCursor`.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["OneHopCursor", "dbapi"]

_Outcome = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def _run(raw: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: the whole life of one cursor."""
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement runs in one call on aiosqlite's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor is made here (that was a hop of its own): `_run` makes it.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._call(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        self._call(operation, seq_of_parameters, many=True)

    def _call(self, operation: Any, parameters: Any, *, many: bool) -> None:
        try:
            outcome = await_(self._hop(operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _hop(self, operation: Any, parameters: Any, many: bool) -> _Outcome:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            return await connection._execute(_run, connection._conn, operation, parameters, many)

    async def _async_soft_close(self) -> None:
        return  # nothing is open: the driver cursor was closed on its thread

    def close(self) -> None:
        self._rows.clear()


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _OneHopConnection:
        # SQLAlchemy's own connect opens the aiosqlite connection (its thread made a daemon);
        # its adapter is only a lock around it, re-made here with our cursor class.
        adapted = super().connect(*arg, **kw)
        return _OneHopConnection(self, adapted._connection)


def dbapi() -> _OneHopDBAPI:
    """The DBAPI shim to give `create_async_engine(..., module=...)`."""
    return _OneHopDBAPI(aiosqlite, sqlite3)
