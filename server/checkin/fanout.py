"""Fan-out: tell every instance's connected devices that something happened in an event.

A notice only says "look": the database change log is the truth, so a lost notice costs latency,
never data (a device catches up from its cursor on the next notice or reconnect). Notices are
small dicts: `{"kind": "head", "head": 42}` after a commit that appended changes, or
`{"kind": "device_revoked", "device_id": "..."}` to close that device's sockets at once.

`MemoryFanout` serves one process (embedded mode); a Redis pub/sub implementation serves several
instances (scaled mode, `TESSERA_REDIS_URL`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

__all__ = ["Fanout", "MemoryFanout", "Notice"]

Notice = dict[str, Any]


class Fanout(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, event_id: str, notice: Notice) -> None:
        """Deliver `notice` to every subscriber of `event_id`, on every instance."""

    def subscribe(self, event_id: str) -> Any:
        """An async context manager yielding an `asyncio.Queue[Notice]` of the event's notices."""

    async def mark_online(self, event_id: str, device_ids: set[str], ttl: float) -> None:
        """These devices hold a socket on this instance, for the next `ttl` seconds at least."""

    async def drop_online(self, event_id: str, device_id: str) -> None:
        """The device's socket on this instance closed."""

    async def online(self, event_id: str, here: set[str]) -> set[str]:
        """The event's devices with a socket open on any instance (`here`: this one's)."""


class MemoryFanout:
    """In-process fan-out. Each subscriber gets its own bounded queue; a slow one drops notices
    rather than slowing the others (it catches up from the change log anyway)."""

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[Notice]]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._subscribers.clear()

    async def publish(self, event_id: str, notice: Notice) -> None:
        self.deliver(event_id, notice)

    async def mark_online(self, event_id: str, device_ids: set[str], ttl: float) -> None:
        return None  # one process: its own rooms are the whole truth

    async def drop_online(self, event_id: str, device_id: str) -> None:
        return None

    async def online(self, event_id: str, here: set[str]) -> set[str]:
        return set(here)

    def deliver(self, event_id: str, notice: Notice) -> None:
        for queue in list(self._subscribers.get(event_id, ())):
            # A full queue means the subscriber is behind; its next read of the log heals it.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(notice)

    @asynccontextmanager
    async def subscribe(self, event_id: str) -> AsyncIterator[asyncio.Queue[Notice]]:
        queue: asyncio.Queue[Notice] = asyncio.Queue(self._queue_size)
        self._subscribers[event_id].add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(event_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[event_id]
