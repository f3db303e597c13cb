"""One hub socket: what it was sent, and the offers its event's room makes to it.

Rules: `sent_seq` is the last change-log seq sent on the socket, None until a `hello` that needs
no snapshot; `changes` leave gap-free and in seq order. The room offers items without waiting
(`offer_*`); the socket's own pusher task sends them, so a slow client only delays itself. An offer
that does not join `sent_seq`, or a backlog over `pending_limit`, makes the pusher read the change
log itself instead. Every send goes through one lock (ASGI sends must not interleave); a send to a
socket that went away marks it closed and never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from litestar import WebSocket

from protocol.messages import Changes, HubFrame, encode_frame
from server.checkin import service

if TYPE_CHECKING:
    from server.checkin.hub import ScannerHub

__all__ = ["Connection"]


class Connection:
    """One socket: what it was sent, and the pusher queue the room offers changes to."""

    def __init__(self, socket: WebSocket[Any, Any, Any], hub: ScannerHub) -> None:
        self.socket = socket
        self.hub = hub
        self.device: service.DeviceContext | None = None
        self.token: str | None = None  # the device token it authenticated with
        self.sent_seq: int | None = None  # None until a `hello` that needs no snapshot
        self.closed = False
        self.sync_lock = asyncio.Lock()  # one writer of `changes` at a time
        self._send_lock = asyncio.Lock()
        self._pending: list[dict[str, Any]] = []
        self._stale = False
        self._frames: list[bytes] = []
        self._counters: bytes | None = None
        self._wake = asyncio.Event()
        self.rate_warned_at = -1e9

    async def send(self, frame: HubFrame) -> None:
        await self.send_raw(encode_frame(frame))

    async def send_raw(self, data: bytes) -> None:
        """Send one text frame; a socket that went away is marked closed, never raised about."""
        if self.closed:
            return
        try:
            async with self._send_lock:
                await self.socket.send_data(data.decode(), mode="text")
        except Exception:
            self.closed = True

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            async with self._send_lock:
                await self.socket.close(code=code, reason=reason)

    def close_soon(self, code: int, reason: str) -> None:
        task = asyncio.create_task(self.close(code, reason))
        self.hub.background.add(task)
        task.add_done_callback(self.hub.background.discard)

    def offer_changes(self, items: list[dict[str, Any]]) -> None:
        if self.sent_seq is None or self.closed:
            return
        if self._stale or len(self._pending) + len(items) > self.hub.config.pending_limit:
            self._pending.clear()
            self._stale = True  # too far behind: the pusher reads the log itself
        else:
            self._pending.extend(items)
        self._wake.set()

    def offer_frame(self, data: bytes) -> None:
        self._frames.append(data)
        self._wake.set()

    def offer_counters(self, data: bytes) -> None:
        self._counters = data  # only the newest counters matter
        self._wake.set()

    def forget_offers(self) -> None:
        self._pending.clear()
        self._stale = False

    async def run_pusher(self) -> None:
        """Send what the room offered, in order: changes after `sent_seq`, frames, counters."""
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            async with self.sync_lock:
                items, self._pending = self._pending, []
                stale, self._stale = self._stale, False
                frames, self._frames = self._frames, []
                counters, self._counters = self._counters, None
                if self.sent_seq is not None:
                    await self._push_changes(items, stale)
            for data in frames:
                await self.send_raw(data)
            if counters is not None:
                await self.send_raw(counters)

    async def _push_changes(self, items: list[dict[str, Any]], stale: bool) -> None:
        assert self.sent_seq is not None
        fresh = [item for item in items if item["seq"] > self.sent_seq]
        if stale or (fresh and fresh[0]["seq"] != self.sent_seq + 1):
            await self.hub.catch_up(self, always_send=False)
            return
        size = self.hub.config.page_size
        for start in range(0, len(fresh), size):
            chunk = fresh[start : start + size]
            more = start + size < len(fresh)
            await self.send(Changes(items=chunk, head=fresh[-1]["seq"], has_more=more))
        if fresh:
            self.sent_seq = int(fresh[-1]["seq"])
