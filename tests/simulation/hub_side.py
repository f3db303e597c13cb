"""The hub as the simulation drives it: today's decision path and change log, no socket.

This is the ONE place that knows how the hub is built (issue 17 is turning `server/checkin/` into
sans-I/O cores: those that landed are driven as they are, the rest is the glue below, and a swap
changes this module only). The rest of the simulator
sees `HubSide`: open a connection for a device token, hand it a client frame, hand it a fan-out
notice, ask it to heal, restart it. Every call returns the frames to send as `(conn, bytes)`.

What it calls, and from where (the same functions `server.checkin.hub` / `room` / `writer` use):
  - authentication: `server.checkin.service.authenticate_device` at connect and
    `authenticate_devices` before every job (what `RedeemWriter.authenticate` reads, without its
    cache), so a device revoked meanwhile is refused `unauthenticated`;
  - `scan` / `scan_batch`: `server.checkin.redeem.decide_and_record(session, [(device, item)],
    now=hub time)` in `database.transaction()`, then `server.changes.publish.publish_committed`
    into the simulated fan-out (what `RedeemWriter._process` does, minus the group commit and the
    wall-clock `utcnow()` and item budget);
  - `annul`: `server.checkin.service.annul_scan(session, scan_id, device=..., now=hub time)`, then
    `publish_committed` (what `RedeemWriter.annul` does);
  - every frame: the socket's `server.checkin.core.FrameCore.receive(data, now)` (rate limit
    with the hub's `RateLimiter` and `HubConfig`, strict decoding); its `Reply` and `Close`
    actions are carried out here, its `Dispatch` goes to the handlers below;
  - notices: the room's `server.checkin.notices.plan_notices`;
  - `hello`: `server.checkin.feed.DatabaseFeed.position` (head, snapshot_required), then
    `DatabaseFeed.pages` after the cursor and `DatabaseFeed.counters` (what `ScannerHub._hello`
    and `catch_up` do); the socket's cursor is the hub's own `server.checkin.stream.ChangeStream`
    (`restart`, `offer`, `take`, `sent`);
  - fan-out: a `head` notice (or the heal after 5 s of silence) reads `DatabaseFeed.pages` once
    after the room's `read_seq` (or takes the items the notice carried, when they join it: the
    room's `carried_run`) and offers the items to every socket's `ChangeStream`; a stream
    that answers None catches up from the log alone (the room's `read_and_offer` + the socket's
    pusher); `conflict` notices are forwarded whole to every socket of the event;
    `device_revoked` closes sockets; a read that found changes makes the counters due, and the
    simulator pushes them (`DatabaseFeed.counters`) at most once per `counters_interval`, as the
    room's `schedule_counters` does;
  - snapshot: `server.checkin.snapshot.build_snapshot` in `snapshot_session`, msgpack-encoded as
    the REST route does (uncompressed: the door decodes the decompressed bytes anyway).

The per-socket rules kept here are the hub's (hub.py / connection.py module comments): `sent_seq`
is None until a `hello` needing no snapshot; `changes` leave gap-free and in seq order; a
refusal is an `error` frame, never an exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from protocol.messages import (
    Changes,
    Error,
    Hello,
    Result,
    ResultItem,
    Results,
    Scan,
    ScanBatch,
    ScanItem,
    Welcome,
    encode_frame,
)
from server.changes.publish import publish_committed
from server.checkin import service, store
from server.checkin.config import HubConfig
from server.checkin.core import Close, Dispatched, FrameCore, Reply
from server.checkin.feed import DatabaseFeed
from server.checkin.notices import NoticePlan, carried_run, plan_notices
from server.checkin.ratelimit import RateLimiter
from server.checkin.redeem import decide_and_record
from server.checkin.room import CLOSE_REVOKED
from server.checkin.snapshot import build_snapshot, snapshot_session
from server.checkin.store import DeviceContext
from server.checkin.stream import ChangeStream
from server.db import Database
from server.errors import DomainError, Unauthenticated
from tests.simulation import mutations

__all__ = ["HubSide", "Outgoing"]

T = TypeVar("T")
Outgoing = list[tuple[int, bytes]]  # (connection id, frame) to deliver
PAGE_SIZE = 500
_json = msgspec.json.Encoder()


class SimFanout:
    """The fan-out the hub publishes into: the simulator carries the notices (and loses them)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, event_id: str, notice: dict[str, Any]) -> None:
        self.published.append((event_id, notice))


@dataclass
class _Conn:
    device: DeviceContext
    token: str
    stream: ChangeStream
    frames: FrameCore

    @property
    def sent_seq(self) -> int | None:
        return self.stream.sent_seq


class HubSide:
    """One hub instance over a database URL; `run` executes its coroutines one at a time."""

    def __init__(self, database_url: str, run: Callable[[Awaitable[Any]], Any]) -> None:
        self.url = database_url
        self._run = run
        self.fanout = SimFanout()
        self.database = Database(database_url)
        self.feed = DatabaseFeed(self.database)
        self._conns: dict[int, _Conn] = {}
        self._next = 0
        self.recorded_twice = 0  # the `dedupe` mutation's count of repeats recorded again
        self.skipped = 0  # the `skip_seq` mutation's count of changes left out
        self.carried = 0  # notices whose own items were offered instead of a read of the log
        self._read_seq: dict[str, int] = {}  # the room's: the last seq it read of each event
        self._config = HubConfig()
        self._limiter = _limiter(self._config)
        self.closed: list[tuple[int, int]] = []  # (conn, close code) the hub closed
        self.counters_wanted: set[str] = set()  # events whose room read changes since a push

    # --- life -----------------------------------------------------------------------------------

    def restart(self) -> list[int]:
        """The process dies and starts again: every socket gone, nothing in memory kept."""
        gone = list(self._conns)
        self._conns.clear()
        self._read_seq.clear()
        self.counters_wanted.clear()
        self._limiter = _limiter(self._config)
        self.fanout.published.clear()  # not yet published: lost with the process
        self._run(self.database.dispose())
        self.database = Database(self.url)
        self.feed = DatabaseFeed(self.database)
        return gone

    def close(self) -> None:
        self._run(self.database.dispose())

    def connections(self) -> list[int]:
        return list(self._conns)

    def device_of(self, conn: int) -> str | None:
        c = self._conns.get(conn)
        return c.device.device_id if c else None

    def sent_seq(self, conn: int) -> int | None:
        c = self._conns.get(conn)
        return c.sent_seq if c else None

    def open(self, token: str) -> int | None:
        """A socket authenticated by header: its id, or None for an unknown or revoked token."""
        device = self._tx(lambda s: service.authenticate_device(s, token), read_only=True)
        if device is None:
            return None
        self._next += 1
        frames = FrameCore(device.device_id, self._limiter, self._config)
        self._conns[self._next] = _Conn(device, token, _stream(), frames)
        return self._next

    def drop(self, conn: int) -> None:
        self._conns.pop(conn, None)

    def take_published(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.fanout.published = self.fanout.published, []
        return out

    # --- frames ---------------------------------------------------------------------------------

    def receive(self, conn: int, data: bytes, now: datetime) -> Outgoing:
        """One client frame on `conn` at hub time `now`: the socket's `FrameCore` (rate limit,
        strict decoding) says what to do, and a dispatched frame is carried out here."""
        c = self._conns.get(conn)
        if c is None:
            return []
        out: Outgoing = []
        for action in c.frames.receive(data, now.timestamp()):
            if isinstance(action, Reply):
                out.append((conn, encode_frame(action.frame)))
            elif isinstance(action, Close):
                self._conns.pop(conn, None)
                self.closed.append((conn, action.code))
                break
            else:
                out += self._dispatch(conn, c, action.frame, now)
        return out

    def _dispatch(self, conn: int, c: _Conn, frame: Dispatched, now: datetime) -> Outgoing:
        """`ScannerHub._handle`: a refusal is an `error` frame, never an exception."""
        try:
            if isinstance(frame, Hello):
                return self._hello(conn, c, frame.cursor)
            if isinstance(frame, Scan):
                item = ScanItem(
                    scan_id=frame.scan_id, code=frame.code, list_id=frame.list_id,
                    direction=frame.direction, scanned_at=frame.scanned_at, offline=frame.offline,
                )  # fmt: skip
                results = self._redeem(c, [item], now)
                return [(conn, encode_frame(Result(**msgspec.structs.asdict(results[0]))))]
            if isinstance(frame, ScanBatch):
                results = self._redeem(c, frame.items, now) if frame.items else []
                return [(conn, encode_frame(Results(items=results)))]
            result = self._annul(c, frame.scan_id, now)
            return [(conn, encode_frame(Result(**msgspec.structs.asdict(result))))]
        except DomainError as exc:
            return [(conn, encode_frame(Error(code=exc.code[:64], detail=exc.detail[:2048])))]

    def _hello(self, conn: int, c: _Conn, cursor: int | None) -> Outgoing:
        """`ScannerHub._hello`: welcome with the head, then the log after the cursor, then the
        counters; a cursor the log cannot follow gets `snapshot_required` and no stream."""
        event_id = c.device.event_id
        current, snapshot = self._run(self.feed.position(event_id, cursor))
        welcome = Welcome(
            device_id=c.device.device_id,
            event_id=event_id,
            head=current,
            snapshot_required=snapshot,
        )
        out: Outgoing = [(conn, encode_frame(welcome))]
        c.stream.restart(None if snapshot else cursor)
        if c.sent_seq is None:
            return out
        out += self._catch_up(conn, c, always_send=True)
        out.append((conn, encode_frame(self._run(self.feed.counters(event_id)))))
        return out

    def _catch_up(self, conn: int, c: _Conn, *, always_send: bool) -> Outgoing:
        """`ScannerHub.catch_up`: the log after `sent_seq` page by page (the first page even
        when empty if `always_send`)."""
        assert c.sent_seq is not None
        pages = self._run(_collect(self.feed.pages(c.device.event_id, c.sent_seq, PAGE_SIZE)))
        out: Outgoing = []
        for page in pages:
            if page.items or always_send:
                out.append((conn, encode_frame(page)))
            always_send = False
            c.stream.sent(page)
        return out

    def _redeem(self, c: _Conn, items: list[ScanItem], now: datetime) -> list[ResultItem]:
        if mutations.active("dedupe"):
            items = self._forget_stored(c, items)

        async def record(session: Any) -> list[ResultItem]:
            devices = await service.authenticate_devices(session, {c.token})
            device = devices.get(c.token)
            if device is None:
                raise Unauthenticated("unknown, unpaired or revoked device token")
            results, _, _ = await decide_and_record(session, [(device, i) for i in items], now=now)
            return results

        results, session = self._tx_session(record)
        self._run(publish_committed(session, self.fanout))
        if mutations.active("dedupe"):
            results = [_original_id(r) for r in results]
        return results

    def _forget_stored(self, c: _Conn, items: list[ScanItem]) -> list[ScanItem]:
        """The `dedupe` mutation: a repeat is recorded again, as if the hub had no scan_id key
        (stored under a new id, since the table's key would refuse it)."""
        keys = [(c.device.device_id, i.scan_id) for i in items]
        stored = self._tx(lambda s: store.stored_scans(s, keys), read_only=True)
        out = []
        for item in items:
            if (c.device.device_id, item.scan_id) in stored:
                self.recorded_twice += 1
                item = msgspec.structs.replace(
                    item, scan_id=f"{item.scan_id}~{self.recorded_twice}"
                )
            out.append(item)
        return out

    def _annul(self, c: _Conn, scan_id: str, now: datetime) -> ResultItem:
        async def annul(session: Any) -> ResultItem:
            devices = await service.authenticate_devices(session, {c.token})
            device = devices.get(c.token)
            if device is None:
                raise Unauthenticated("unknown, unpaired or revoked device token")
            outcome = await service.annul_scan(session, scan_id, device=device, now=now)
            return outcome.results[0]

        result, session = self._tx_session(annul)
        self._run(publish_committed(session, self.fanout))
        return result

    # --- fan-out and heal -----------------------------------------------------------------------

    def notice(self, event_id: str, notice: dict[str, Any]) -> Outgoing:
        """A fan-out notice reaching this instance's room of `event_id`, planned by the room's
        own `plan_notices`: revocations close sockets, conflicts are forwarded whole, anything
        else is one read of the log."""
        plan = plan_notices([notice])
        targets = [(k, c) for k, c in self._conns.items() if c.device.event_id == event_id]
        for device_id in plan.revoked:
            for k, c in targets:
                if c.device.device_id == device_id and self._conns.pop(k, None) is not None:
                    self.closed.append((k, CLOSE_REVOKED))
        out: Outgoing = []
        for frame in plan.conflicts:
            data = _json.encode(frame)
            out += [(k, data) for k, c in targets if k in self._conns]
        if plan.must_read:
            out += self.heal(event_id, carried=plan)
        return out

    def take_closed(self) -> list[tuple[int, int]]:
        out, self.closed = self.closed, []
        return out

    def heal(self, event_id: str, carried: NoticePlan | None = None) -> Outgoing:
        """The room's `read_and_offer` after a `head` notice or 5 s of silence: the log is read
        once, after the room's `read_seq`, and offered to every socket's `ChangeStream`; a
        stream the offer does not join catches up from the log alone. When the read found
        changes, the event's counters are due (`counters_wanted`, `push_counters`). A notice
        whose items join `read_seq` is offered without the read, as the room's `offer_carried`
        does (`carried_run`)."""
        targets = {k: c for k, c in self._conns.items() if c.device.event_id == event_id}
        if not any(c.sent_seq is not None for c in targets.values()):
            return []
        read_seq = self._read_seq.get(event_id)
        if read_seq is None:  # a room starts at the head (subscribed first, then read)
            read_seq = min(c.sent_seq for c in targets.values() if c.sent_seq is not None)
        run = carried_run(carried, read_seq) if carried is not None else None
        if run is not None:
            self.carried += 1
            items = run
        else:
            pages = self._run(_collect(self.feed.pages(event_id, read_seq, PAGE_SIZE)))
            items = [item for page in pages for item in page.items]
        if items:
            self._read_seq[event_id] = int(items[-1]["seq"])
        out: Outgoing = []
        for k, c in targets.items():
            if items:
                c.stream.offer(items)
            frames = c.stream.take()
            if frames is None:
                out += self._catch_up(k, c, always_send=False)
                continue
            for frame in frames:
                if mutations.active("skip_seq") and len(frame.items) >= 2:
                    frame = msgspec.structs.replace(frame, items=frame.items[:1] + frame.items[2:])
                    self.skipped += 1  # the deliberate bug: one change left out
                out.append((k, encode_frame(frame)))
        if items:  # the room's `schedule_counters`: the simulator times the push
            self.counters_wanted.add(event_id)
        return out

    def push_counters(self, event_id: str) -> Outgoing:
        """The room's `_push_counters`: the event's counters to every socket that follows the
        log (at most one push per `counters_interval`, timed by the simulator)."""
        self.counters_wanted.discard(event_id)
        targets = [
            k
            for k, c in self._conns.items()
            if c.device.event_id == event_id and c.sent_seq is not None
        ]
        if not targets:
            return []
        counters = encode_frame(self._run(self.feed.counters(event_id)))
        return [(k, counters) for k in targets]

    def snapshot(self, event_id: str) -> bytes:
        """The snapshot's msgpack bytes, as the REST route encodes them before compressing."""

        async def build() -> dict[str, Any]:
            async with snapshot_session(self.database) as session:
                return await build_snapshot(session, event_id, conflicts=True)

        return msgspec.msgpack.encode(msgspec.to_builtins(self._run(build())))

    # --- inside ---------------------------------------------------------------------------------

    def _tx(self, work: Callable[[Any], Awaitable[T]], *, read_only: bool = False) -> T:
        async def go() -> T:
            async with self.database.transaction(read_only=read_only) as session:
                return await work(session)

        return self._run(go())  # type: ignore[no-any-return]

    def _tx_session(self, work: Callable[[Any], Awaitable[T]]) -> tuple[T, Any]:
        async def go() -> tuple[T, Any]:
            async with self.database.transaction() as session:
                result = await work(session)
            return result, session

        return self._run(go())  # type: ignore[no-any-return]


def _limiter(config: HubConfig) -> RateLimiter:
    return RateLimiter(config.rate, config.burst, config.close_after)


def _stream() -> ChangeStream:
    config = HubConfig()
    return ChangeStream(page_size=config.page_size, pending_limit=config.pending_limit)


async def _collect(pages: AsyncIterator[Changes]) -> list[Changes]:
    return [page async for page in pages]


def _original_id(result: ResultItem) -> ResultItem:
    """Under the `dedupe` mutation: the answer names the id the door sent."""
    return msgspec.structs.replace(result, scan_id=result.scan_id.split("~")[0])
