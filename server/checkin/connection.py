"""One hub socket: its change stream, the offers its event's room makes to it, and its sends.

Rules: what is sent of the change log and when the socket must read the log itself are the
`ChangeStream`'s (server/checkin/stream.py). The room offers without waiting (`offer_*`); the
socket's own pusher task sends, so a slow client only delays itself. One writer of `changes` at a
time (`sync_lock`: the pusher, or a `hello`'s catch-up); every send goes through one lock (ASGI
sends must not interleave); a send to a socket that went away marks it closed and never raises.
When the changes after the socket's cursor were pruned under it (retention, archive), the socket
stops following the log and is sent an unprompted `welcome {snapshot_required: true}`: the door
loads a snapshot and says `hello` again, as after any `snapshot_required`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import WebSocket

from protocol.messages import Error, HubFrame, Welcome, encode_frame
from server.checkin.config import HubConfig
from server.checkin.feed import ChangeFeed
from server.checkin.store import DeviceContext
from server.checkin.stream import ChangeStream
from server.db.unavailable import is_database_unavailable
from server.errors import SnapshotRequired

__all__ = ["CLOSE_INTERNAL", "CLOSE_TRY_AGAIN_LATER", "Connection"]

log = logging.getLogger("tessera.hub")

CLOSE_INTERNAL = 1011
# RFC 6455's "Try Again Later": the database cannot be reached now. The door decides offline,
# journals, and reconnects within seconds (docs/protocol.md section 5).
CLOSE_TRY_AGAIN_LATER = 1013
UNAVAILABLE = Error(
    code="database_unavailable",
    detail="the database cannot be reached now: decide scans offline and reconnect in a few "
    "seconds; scans sent again with their scan_id are recorded once",
)


class Connection:
    """One socket: its stream of changes and the pusher queue the room offers to."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        feed: ChangeFeed,
        config: HubConfig,
        background: set[asyncio.Task[Any]],
    ) -> None:
        self.socket = socket
        self.feed = feed
        self.background = background  # where close_soon keeps its task alive
        self.device: DeviceContext | None = None
        self.token: str | None = None  # the device token it authenticated with
        self.stream = ChangeStream(page_size=config.page_size, pending_limit=config.pending_limit)
        self.closed = False
        self.sync_lock = asyncio.Lock()  # one writer of `changes` at a time
        self._send_lock = asyncio.Lock()
        self._frames: list[bytes] = []
        self._counters: bytes | None = None
        self._wake = asyncio.Event()

    @property
    def sent_seq(self) -> int | None:
        return self.stream.sent_seq

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
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close_unavailable(self) -> None:
        """`error {code: database_unavailable}`, then close 1013: the hub cannot decide or
        stream without its database, and a door that knows it is offline decides at once."""
        if self.closed:
            return
        await self.send(UNAVAILABLE)
        await self.close(CLOSE_TRY_AGAIN_LATER, "database unavailable")

    def close_unavailable_soon(self) -> None:
        task = asyncio.create_task(self.close_unavailable())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def offer_changes(self, items: list[dict[str, Any]]) -> None:
        if self.closed:
            return
        self.stream.offer(items)
        self._wake.set()

    def offer_resync(self) -> None:
        """Read the log after `sent_seq` alone at the next push (the room's read was pruned)."""
        if self.closed:
            return
        self.stream.mark_stale()
        self._wake.set()

    def offer_frame(self, data: bytes) -> None:
        self._frames.append(data)
        self._wake.set()

    def offer_counters(self, data: bytes) -> None:
        self._counters = data  # only the newest counters matter
        self._wake.set()

    async def catch_up(self, *, always_send: bool) -> None:
        """Send the change log after `sent_seq` in pages; the caller holds `sync_lock`."""
        assert self.device is not None and self.stream.sent_seq is not None
        event_id, size = self.device.event_id, self.stream.page_size
        try:
            async for page in self.feed.pages(event_id, self.stream.sent_seq, size):
                if self.closed:
                    return
                if page.items or always_send:
                    await self.send(page)
                always_send = False
                self.stream.sent(page)
        except SnapshotRequired as exc:
            self.stream.restart(None)
            head = int(exc.extra.get("head", 0))
            await self.send(
                Welcome(
                    device_id=self.device.device_id,
                    event_id=event_id,
                    head=head,
                    snapshot_required=True,
                )
            )

    async def run_pusher(self) -> None:
        """Send what the room offered, in order: changes after `sent_seq`, frames, counters.

        A socket that cannot read the log it must catch up from is closed (1013 when the
        database is away, else 1011): a socket left without its pusher would stay open and
        silent, and the door reconnects from its cursor anyway."""
        try:
            await self._push()
        except Exception as exc:
            if is_database_unavailable(exc):
                log.warning("socket closed: database unavailable (%s)", type(exc).__name__)
                await self.close_unavailable()
            else:
                log.exception("socket pusher failed")
                await self.close(CLOSE_INTERNAL, "internal error")

    async def _push(self) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            async with self.sync_lock:
                frames, self._frames = self._frames, []
                counters, self._counters = self._counters, None
                changes = self.stream.take()
                if changes is None:
                    await self.catch_up(always_send=False)
                for page in changes or ():
                    await self.send(page)
            for data in frames:
                await self.send_raw(data)
            if counters is not None:
                await self.send_raw(counters)
