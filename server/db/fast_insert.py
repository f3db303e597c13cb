"""INSERT of many rows through the driver's own executemany (bulk imports, the change log)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["FastInsert"]


class FastInsert:
    """An INSERT of many rows by the driver's own executemany, each value converted by its
    column's bind processor for the dialect, as Core would; values that are the same in every
    row (`constants`: the chunk's time, a status) are converted once.

    Why: Core's executemany builds and processes a parameter dictionary per row; for the
    batch's half a million rows that cost about as much CPU as signing the tickets.
    """

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        statement = insert(table).values({c: bindparam(c) for c in columns})
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
        cells = [self._cell(name, constants or {}) for name in self.order]
        values = [tuple([cell(row) for cell in cells]) for row in rows]
        connection = await session.connection()
        await connection.exec_driver_sql(self.sql, values)

    def _cell(self, name: str, constants: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
        processor = self.processors[name]
        if name in constants:
            value = processor(constants[name]) if processor else constants[name]
            return lambda _row: value
        get = itemgetter(name)
        if processor is None:
            return get
        return lambda row: processor(get(row))
