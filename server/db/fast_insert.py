"""INSERT of many rows through the driver's own executemany (bulk imports, the change log)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

__all__ = ["FastInsert", "on_driver_thread"]

T = TypeVar("T")


class FastInsert:
    """An INSERT of many rows by the driver's own executemany, each value converted by its
    column's bind processor for the dialect, as Core would; values that are the same in every
    row (`constants`: the chunk's time, a status) are converted once.

    Why: Core's executemany builds and processes a parameter dictionary per row; for the
    batch's half a million rows that cost about as much CPU as signing the tickets.
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        dialect: Dialect,
        statement: Insert | None = None,
    ) -> None:
        """`statement`: an INSERT of `table` with a bind parameter per column (say, with an
        ON CONFLICT clause); by default the plain INSERT of `columns`."""
        if statement is None:
            statement = insert(table)
        statement = statement.values({c: bindparam(c) for c in columns})
        compiled = statement.compile(dialect=dialect)
        self.order = list(compiled.positiontup or ())
        if sorted(self.order) != sorted(columns):  # a defaulted column the rows do not give
            raise ValueError(f"{table.name}: give every column with a default: {self.order}")
        self.sql = compiled.string
        self.processors = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.order
        }

    async def run(
        self,
        session: AsyncSession,
        rows: Sequence[dict[str, Any]],
        constants: dict[str, Any] | None = None,
    ) -> None:
        if not rows:
            return
        connection = await session.connection()
        await connection.exec_driver_sql(self.sql, self.values(rows, constants))

    def values(
        self, rows: Sequence[dict[str, Any]], constants: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """The driver's parameter tuples of `rows`, in the statement's order."""
        cells = [self._cell(name, constants or {}) for name in self.order]
        return [tuple([cell(row) for cell in cells]) for row in rows]

    def _cell(self, name: str, constants: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
        processor = self.processors[name]
        if name in constants:
            value = processor(constants[name]) if processor else constants[name]
            return lambda _row: value
        get = itemgetter(name)
        if processor is None:
            return get
        return lambda row: processor(get(row))


async def on_driver_thread(session: AsyncSession, work: Callable[[Any], T]) -> T:
    """Run `work(sqlite3_connection)` on aiosqlite's own thread, in the session's transaction.

    For a hot path's several statements in one hop: through SQLAlchemy's async bridge each
    statement costs a few thread hops (cursor, execute, fetch, close), each waking the event loop.
    SQLite only; `work` must not commit or roll back (the session's transaction owns that) and
    runs with the GIL like any Python code, so it should be short.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection  # aiosqlite.Connection
    # aiosqlite runs every call of a connection through `_execute` on its thread, in order.
    return cast(T, await driver._execute(work, driver._conn))  # type: ignore[union-attr]
