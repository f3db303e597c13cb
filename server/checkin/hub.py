"""The websocket check-in hub, `/ws/scanner` (ARCHITECTURE §5; the wire spec is docs/protocol.md).

A socket goes: accepted -> authenticated (device token in the `Authorization` header, or a first
`auth` frame within `auth_timeout`) -> serving. `hello {cursor}` starts (or restarts) the stream of
`changes` after the cursor; `scan`, `scan_batch` and `annul` may come at any time once
authenticated.

Invariants:
- `Connection.sent_seq` is the last change-log seq sent on the socket; `changes` go out gap-free
  and in seq order, and are always read through the `ChangeFeed` (notices only say when to look).
- The socket's cursor rules are `ChangeStream`'s (stream.py); the database is reached only through
  the `ChangeFeed` (feed.py) and the redeem writer, which owns authentication, redeem and annul.
- A `scan` or `scan_batch` frame is one job of the redeem writer (recorded all or none, in a
  transaction it may share with other callers' jobs); an `annul` is one transaction. The fan-out
  notices are published after commit.
- What a frame asks for (rate limit, strict decoding, dispatch) is decided by `FrameCore`
  (core.py), fed bytes and the time; this module only moves bytes and runs what it dispatches.
- Nothing a client sends can crash the hub: every failure is caught at its socket and answered
  with an `error` frame or a close code; other sockets never notice.
- The database out of reach (PostgreSQL stopped or restarting) is no bug: wherever the hub meets
  it (authentication, a frame, the room's reads, a socket's catch-up) the socket gets
  `error {code: database_unavailable}` and close 1013, and one warning line is logged, no
  traceback. Nothing was recorded that the door will not send again with the same scan_id.

Close codes: 4401 authentication failed, 4403 device revoked (or its event archived), 1008 rate
limit exceeded for `close_after` seconds, 1009 frame too large, 1001 server shutting down, 1011
internal error, 1013 database unavailable (try again later).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from protocol.messages import (
    Annul,
    Auth,
    Error,
    FrameError,
    Hello,
    Result,
    Results,
    Scan,
    ScanBatch,
    ScanItem,
    Welcome,
    decode_client_frame,
)
from server.checkin import service
from server.checkin.config import HubConfig
from server.checkin.connection import CLOSE_INTERNAL, Connection
from server.checkin.core import Close, FrameCore, Reply
from server.checkin.fanout import Fanout
from server.checkin.feed import ChangeFeed, DatabaseFeed
from server.checkin.ratelimit import RateLimiter
from server.checkin.room import CLOSE_REVOKED, EventRoom
from server.checkin.writer import RedeemWriter
from server.db import Database
from server.db.unavailable import is_database_unavailable
from server.errors import DomainError, EventArchived
from server.http import bearer_token
from server.metrics.fanout import FanoutDelays

__all__ = ["HubConfig", "ScannerHub", "scanner_socket"]

log = logging.getLogger("tessera.hub")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_GOING_AWAY = 1001


class ScannerHub:
    """Serves `/ws/scanner` sockets; one per app (`app.state.hub`)."""

    def __init__(
        self,
        database: Database,
        fanout: Fanout,
        writer: RedeemWriter,
        config: HubConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.feed: ChangeFeed = DatabaseFeed(database)
        self.fanout = fanout
        self.writer = writer
        self.config = config or HubConfig()
        self.clock = clock
        self.limiter = RateLimiter(self.config.rate, self.config.burst, self.config.close_after)
        self.rooms: dict[str, EventRoom] = {}
        self.fanout_delays = FanoutDelays()  # read by /metrics
        self.background: set[asyncio.Task[Any]] = set()

    def configure(self, config: HubConfig) -> None:
        """Replace the limits (tests and benchmarks); affects sockets connected afterwards."""
        self.config = config
        self.limiter = RateLimiter(config.rate, config.burst, config.close_after)

    async def close(self) -> None:
        """Close every socket with 1001 and stop every room (server shutdown)."""
        for room in list(self.rooms.values()):
            for connection in list(room.connections):
                await connection.close(CLOSE_GOING_AWAY, "server shutting down")
            await room.stop()
        self.rooms.clear()

    async def serve(self, socket: WebSocket[Any, Any, Any]) -> None:
        """The whole life of one socket; returns when it is closed."""
        connection = Connection(socket, self.feed, self.config, self.background)
        await socket.accept()
        try:
            device = await self._authenticate(connection)
            if device is None:
                return
            connection.device = device
            room = await self._join(device.event_id, connection)
            pusher = asyncio.create_task(connection.run_pusher())
            try:
                await self._read_frames(connection)
            finally:
                pusher.cancel()
                await self._leave(room, connection)
        except WebSocketDisconnect:
            connection.closed = True
        except Exception as exc:
            if is_database_unavailable(exc):
                log.warning("scanner socket closed: database unavailable (%s)", type(exc).__name__)
                await connection.close_unavailable()
                return
            log.exception("scanner socket failed")
            await connection.close(CLOSE_INTERNAL, "internal error")

    async def _join(self, event_id: str, connection: Connection) -> EventRoom:
        room = self.rooms.get(event_id)
        if room is None or room.task.done():
            room = self.rooms[event_id] = EventRoom(
                event_id,
                feed=self.feed,
                fanout=self.fanout,
                config=self.config,
                forget_device=self.writer.forget_device,
                clock=self.clock,
                delays=self.fanout_delays,
            )
        room.connections.add(connection)  # before waiting, so a concurrent leave keeps the room
        try:
            await _until_ready(room)
        except BaseException:
            await self._leave(room, connection)
            raise
        if connection.device is not None:
            await self.fanout.mark_online(event_id, {connection.device.device_id}, room.online_ttl)
        return room

    async def _leave(self, room: EventRoom, connection: Connection) -> None:
        room.connections.discard(connection)
        device = connection.device
        if device is not None and device.device_id not in room.device_ids():
            await self.fanout.drop_online(room.event_id, device.device_id)
        if not room.connections and self.rooms.get(room.event_id) is room:
            del self.rooms[room.event_id]
            await room.stop()
        self.limiter.forget_idle(self.clock())

    async def _authenticate(self, connection: Connection) -> service.DeviceContext | None:
        token = bearer_token(connection.socket)
        if token is None:
            token = await self._auth_frame(connection)
            if token is None:
                return None
        device = await self.writer.authenticate(token)
        if device is None:
            async with self.database.transaction(read_only=True) as session:
                why = await service.refusal(session, token)
            if isinstance(why, EventArchived):  # closed for good, as a revoked device
                await connection.send(Error(code=why.code, detail=why.detail[:2048]))
                await connection.close(CLOSE_REVOKED, "event archived")
                return None
            await _refuse(connection, "unauthenticated", "unknown, unpaired or revoked token")
        connection.token = token
        return device

    async def _auth_frame(self, connection: Connection) -> str | None:
        try:
            async with asyncio.timeout(self.config.auth_timeout):
                message = await connection.socket.receive()
        except TimeoutError:
            await _refuse(connection, "unauthenticated", "no auth frame within the time allowed")
            return None
        if message["type"] != "websocket.receive":
            connection.closed = True
            return None
        try:
            frame = decode_client_frame(_payload(message))
        except FrameError as exc:
            await _refuse(connection, exc.code, f"expected an auth frame: {exc.detail}")
            return None
        if not isinstance(frame, Auth):
            await _refuse(connection, "unauthenticated", "the first frame must be auth")
            return None
        return frame.token

    async def _read_frames(self, connection: Connection) -> None:
        """Move bytes: each received frame goes to the socket's `FrameCore` with the time, and
        its actions are carried out in order."""
        assert connection.device is not None
        core = FrameCore(connection.device.device_id, self.limiter, self.config)
        while not connection.closed:
            message = await connection.socket.receive()
            if message["type"] != "websocket.receive":
                return
            for action in core.receive(_payload(message), self.clock()):
                if isinstance(action, Reply):
                    await connection.send(action.frame)
                elif isinstance(action, Close):
                    await connection.close(action.code, action.reason)
                else:
                    await self._handle(connection, action.frame)

    async def _handle(
        self, connection: Connection, frame: Hello | Scan | ScanBatch | Annul
    ) -> None:
        """Answer one decoded frame; a refusal becomes an `error` frame, never an exception."""
        try:
            if isinstance(frame, Hello):
                await self._hello(connection, frame)
            elif isinstance(frame, Scan):
                await self._redeem_one(connection, _scan_item(frame))
            elif isinstance(frame, ScanBatch):
                await self._redeem_batch(connection, frame.items)
            else:
                await self._annul(connection, frame)
        except DomainError as exc:
            await connection.send(Error(code=exc.code[:64], detail=exc.detail[:2048]))
        except Exception as exc:
            if is_database_unavailable(exc):
                # The frame changed nothing the door will not send again (same scan_id).
                log.warning(
                    "scanner frame %s: database unavailable (%s)",
                    type(frame).__name__,
                    type(exc).__name__,
                )
                await connection.close_unavailable()
                return
            log.exception("scanner frame %s failed", type(frame).__name__)
            await connection.send(Error(code="internal", detail="the hub could not do that now"))

    async def _hello(self, connection: Connection, frame: Hello) -> None:
        device = connection.device
        assert device is not None
        async with connection.sync_lock:
            current, snapshot = await self.feed.position(device.event_id, frame.cursor)
            await connection.send(
                Welcome(
                    device_id=device.device_id,
                    event_id=device.event_id,
                    head=current,
                    snapshot_required=snapshot,
                )
            )
            if snapshot or frame.cursor is None:
                connection.stream.restart(None)
                return
            connection.stream.restart(frame.cursor)
            await connection.catch_up(always_send=True)
        await connection.send(await self.feed.counters(device.event_id))

    async def _redeem_one(self, connection: Connection, item: ScanItem) -> None:
        """A lone scan joins the group-committing writer (the REST redeem's): every scan of an
        event takes the event's change-log row lock, so one transaction per scan would serialise
        all doors on it; the writer takes it once for all the scans waiting (each still decided
        atomically per ticket, and retried alone if its batch fails). The writer checks the token
        again, so a device revoked a moment ago is refused (`error unauthenticated`)."""
        assert connection.token is not None
        result = await self.writer.redeem(connection.token, item)
        await connection.send(_as_result(result))  # the writer published the notices

    async def _redeem_batch(self, connection: Connection, items: list[ScanItem]) -> None:
        """A `scan_batch` is recorded all or none, in order, as one job of the writer: it shares
        the writer's transaction (and the event's change-log lock) with the scans of every other
        socket and REST caller waiting at that moment, and is retried alone if that fails."""
        assert connection.token is not None
        if not items:
            await connection.send(Results(items=[]))
            return
        results = await self.writer.redeem_many(connection.token, items)
        await connection.send(Results(items=results))  # the writer published the notices

    async def _annul(self, connection: Connection, frame: Annul) -> None:
        """The writer's annul, REST's too: checks the token again, publishes after commit."""
        assert connection.token is not None
        result = await self.writer.annul(frame.scan_id, token=connection.token)
        await connection.send(_as_result(result))


@websocket("/ws/scanner", name="scanner_socket")
async def scanner_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """The scanner's websocket: JSON text frames, see docs/protocol.md."""
    await socket.app.state.hub.serve(socket)


async def _until_ready(room: EventRoom) -> None:
    """Wait for `room` to read its head; raise what stopped it (the database being away)."""
    ready = asyncio.ensure_future(room.ready.wait())
    try:
        await asyncio.wait({ready, room.task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if room.ready.is_set():
        return
    if room.task.done() and not room.task.cancelled() and room.task.exception() is not None:
        raise room.task.exception()  # type: ignore[misc]
    raise TimeoutError(f"room {room.event_id} did not start")


async def _refuse(connection: Connection, code: str, detail: str) -> None:
    await connection.send(Error(code=code, detail=detail))
    await connection.close(CLOSE_UNAUTHENTICATED, "unauthenticated")


def _payload(message: Any) -> bytes | str:
    text = message.get("text")
    return text if text is not None else (message.get("bytes") or b"")


def _scan_item(frame: Scan) -> ScanItem:
    return ScanItem(
        scan_id=frame.scan_id,
        code=frame.code,
        list_id=frame.list_id,
        direction=frame.direction,
        scanned_at=frame.scanned_at,
        offline=frame.offline,
    )


def _as_result(item: Any) -> Result:
    return Result(**msgspec.structs.asdict(item))
