"""aiosqlite without its thread, for the length of a run: every call runs at once, in the caller's.

The hub's database goes through SQLAlchemy's asyncio bridge and aiosqlite, which hands each
call (cursor, execute, fetch, close, commit) to a thread of the connection and wakes the event
loop with the answer. In the simulator, where one coroutine runs at a time and nothing else waits
on the loop, that hand-off is all cost: about half of a run's time on a loaded machine went to
it (docs/simulation.md, "Figures"). Here `aiosqlite.connect` makes a connection whose queue of
calls is run as it is filled, so each awaited future is already done: SQLAlchemy, the dialect,
aiosqlite's `Connection` and `Cursor`, and every statement of the server are the real ones;
only the thread is gone. `server.db.fast_insert.on_driver_thread` still reaches the sqlite3
connection through `driver._execute`, as on the real thread.

Only connections opened inside `inline_sqlite()` are affected (the pool keeps them afterwards,
still inline); others in the process keep their threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
from aiosqlite import core

__all__ = ["inline_sqlite"]


class _InlineQueue:
    """aiosqlite's call queue, run as it is filled: the worker thread's loop, without a thread."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, as the thread does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class _NoThread:
    """Stands in for the connection's worker thread (the dialect sets `daemon`, aiosqlite
    starts it once)."""

    daemon = True

    def start(self) -> None:
        pass


class _InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _InlineQueue()  # type: ignore[assignment]
        self._thread = _NoThread()  # type: ignore[assignment]


def _connect(
    database: str | Path, *, iter_chunk_size: int = 64, **kwargs: Any
) -> aiosqlite.Connection:
    connector = partial(sqlite3.connect, str(database), **kwargs)
    return _InlineConnection(connector, iter_chunk_size)


@contextmanager
def inline_sqlite() -> Iterator[None]:
    """Connections aiosqlite opens meanwhile run their calls in the calling thread."""
    saved = aiosqlite.connect, core.connect
    aiosqlite.connect = core.connect = _connect  # type: ignore[assignment]
    try:
        yield
    finally:
        aiosqlite.connect, core.connect = saved
