"""The asyncio shell around the sync engine: it only moves bytes and time (STYLE §3).

One `Door` per running client. Two tasks:

  connector  opens `/ws/scanner` with the device token (keepalive pings every 10 s, a dead
             socket noticed within 20 s), feeds every frame to the core, and reconnects after
             any close but 4401/4403 with exponential backoff (0.5 s doubling to 30 s, with
             jitter, reset once the hub welcomed us); after a close 1013 (the hub's database is
             away) it tries again within 1-3 s, without growing the delay, so that the queue
             goes up within seconds of the database's return. It downloads the REST snapshot
             when the core asks for one, with progress notices.
  pump       wakes at the core's next deadline or when poked, ticks the core, and sends what
             the core queued, in order, under one lock (frames of one socket never interleave).

Every public method runs the core synchronously and hands its events to `on_event` at once, so
an offline verdict reaches the screen in the same loop iteration as the scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import random
import ssl
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import zstandard
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from protocol.messages import MAX_HUB_FRAME_BYTES, Counters
from protocol.rules import Direction
from protocol.sync import EventEntry, ListEntry, list_rules
from scanner_client.core import ANSWER_TIMEOUT, DEBOUNCE, SyncCore
from scanner_client.counters import local_counters
from scanner_client.decide import presence_seen
from scanner_client.events import DoorEvent, Notice, StatusChanged, TicketMatch, TicketView
from scanner_client.home import STORE_FILE, Credentials, load_credentials
from scanner_client.store import LocalStore, SyncError, decode_snapshot

__all__ = [
    "Door",
    "DoorOptions",
    "NotPaired",
    "SyncReport",
    "reconnect_delay",
    "sync_once",
    "wait_for_state",
]

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
# After a close 1013 ("try again later": the hub cannot reach its database), seconds before the
# next attempt, drawn uniformly: short and flat, not doubling. Each attempt costs the hub one
# refused database connection.
CLOSE_TRY_AGAIN_LATER = 1013
BACKOFF_UNAVAILABLE = (1.0, 3.0)
_SNAPSHOT_TIMEOUT = 60.0
_PROGRESS_EVERY = 512 * 1024
# The store's WAL is copied into the database file when the door is idle for CHECKPOINT_IDLE
# seconds, or after CHECKPOINT_EVERY journal writes in a rush, never inside a scan's commit.
CHECKPOINT_IDLE = 0.5
CHECKPOINT_EVERY = 200


class NotPaired(Exception):
    """This home holds no device credentials: run `tessera-scan pair` first."""


class DoorOptions(msgspec.Struct, frozen=True, kw_only=True):
    list_id: str | None = None  # None: the list remembered in the store, else the first
    direction: Direction = Direction.ENTRY
    debounce: float = DEBOUNCE
    answer_timeout: float = ANSWER_TIMEOUT


class SyncReport(msgspec.Struct, frozen=True, kw_only=True):
    connected: bool
    uploaded: int
    queued: int
    cursor: int | None
    tickets: int


class Door:
    """A paired device at work: the engine, its store, and its connection to the hub."""

    def __init__(
        self,
        home: Path,
        options: DoorOptions,
        *,
        on_event: Callable[[DoorEvent], None],
        clock: Callable[[], float] = time.time,
        new_scan_id: Callable[[], str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        credentials = load_credentials(home)
        if credentials is None:
            raise NotPaired(f"no device paired in {home}")
        self.credentials: Credentials = credentials
        self.store = LocalStore.open(home / STORE_FILE)
        self._on_event = on_event
        self._clock = clock
        self._rng = rng or random.Random()
        self.core = SyncCore(
            self.store,
            device_id=credentials.device_id,
            event_id=credentials.event_id,
            new_scan_id=new_scan_id or (lambda: str(uuid.uuid4())),
            list_id=options.list_id,
            direction=options.direction,
            debounce=options.debounce,
            answer_timeout=options.answer_timeout,
        )
        if options.list_id is not None and self.core.list_id is not None:
            self.store.choose_list(options.list_id)
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshot_task: asyncio.Task[None] | None = None
        self._stopped = False
        self.welcomed = asyncio.Event()  # set on every welcome (tests and `sync` wait on it)
        self.attempts = 0  # connection attempts that ended (failed or closed)
        self.last_close_code: int | None = None  # of the last socket that closed

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, connect: bool = True) -> None:
        """Start the pump and, unless `connect` is False (offline on purpose), the connector."""
        self._dispatch()
        self._tasks.append(asyncio.create_task(self._pump(), name="door-pump"))
        if connect:
            self._tasks.append(asyncio.create_task(self._connector(), name="door-connector"))

    async def stop(self) -> None:
        self._stopped = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
        tasks = [*self._tasks, *([self._snapshot_task] if self._snapshot_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.store.close()

    # --- what the screens call ------------------------------------------------------------------

    def scan(self, code: str) -> None:
        self.core.scan(code, self._clock())
        self._poke()

    def check_in(self, ticket_id: str) -> None:
        self.core.check_in(ticket_id, self._clock())
        self._poke()

    def undo_last(self) -> None:
        self.core.undo_last(self._clock())
        self._poke()

    def set_direction(self, direction: Direction) -> None:
        self.core.set_direction(direction, self._clock())
        self._poke()

    def set_list(self, list_id: str) -> None:
        self.core.set_list(list_id, self._clock())
        self._poke()

    def lists(self) -> list[ListEntry]:
        return self.store.lists()

    def event(self) -> EventEntry | None:
        return self.store.event()

    def counters(self) -> Counters:
        return local_counters(self.store, self.core.device_id)

    @property
    def status(self) -> StatusChanged:
        return self.core.status(self._clock())

    def search(self, text: str, limit: int = 20) -> list[TicketMatch]:
        """Tickets by holder name or code (at least 3 characters), with their state on the
        door's list as the door sees it (its own unconfirmed scans included)."""
        matches = []
        list_id = self.core.list_id
        entry = self.store.checkin_list(list_id) if list_id else None
        event = self.store.event()
        rules = list_rules(entry, event.id) if entry and event else None
        for ticket in self.store.search(text, limit):
            ticket_type = self.store.ticket_type(ticket.ticket_type_id)
            presence = (
                presence_seen(self.store, ticket.id, rules, self.core.device_id) if rules else None
            )
            view = TicketView(
                ticket.id,
                ticket.code,
                ticket.holder_name,
                ticket_type.name if ticket_type else None,
                ticket.seat,
                ticket_type.persons if ticket_type else 1,
            )
            matches.append(
                TicketMatch(
                    view,
                    ticket.status,
                    ticket.blocked,
                    presence.entries if presence else 0,
                    presence.inside if presence else False,
                )
            )
        return matches

    # --- inside ---------------------------------------------------------------------------------

    def _poke(self) -> None:
        self._dispatch()
        self._kick.set()

    def _dispatch(self) -> None:
        for event in self.core.take_events():
            self._on_event(event)

    async def _flush(self) -> None:
        async with self._send_lock:
            frames = self.core.frames_to_send()
            ws = self._ws
            if ws is None:
                return
            with contextlib.suppress(ConnectionClosed):
                for frame in frames:
                    await ws.send(frame.decode())

    async def _pump(self) -> None:
        while not self._stopped:
            now = self._clock()
            self.core.tick(now)
            self._dispatch()
            await self._flush()
            self._maybe_snapshot()
            if self.store.writes_since_checkpoint >= CHECKPOINT_EVERY:
                self.store.checkpoint()  # after the verdict went out, not inside a scan
            deadline = self.core.next_deadline()
            wait = 5.0 if deadline is None else min(5.0, max(0.0, deadline - self._clock()))
            if self.store.writes_since_checkpoint:
                wait = min(wait, CHECKPOINT_IDLE)
            try:
                await asyncio.wait_for(self._kick.wait(), wait)
            except TimeoutError:
                if self.store.writes_since_checkpoint:  # idle: the door can afford the fsync
                    self.store.checkpoint()
            self._kick.clear()

    async def _connector(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopped and not self.core.unpaired:
            welcomed_before = self.welcomed.is_set()
            self.welcomed.clear()
            self.last_close_code = None
            try:
                await self._session()
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.attempts += 1
                if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
                    self.core.disconnected(self._clock(), 4401)
                    self._poke()
                    return
            else:
                self.attempts += 1
            if self.welcomed.is_set() or welcomed_before:
                delay = BACKOFF_FIRST
            if self._stopped or self.core.unpaired:
                return
            wait, delay = reconnect_delay(delay, self.last_close_code, self._rng)
            await asyncio.sleep(wait)

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.credentials.token}"}
        async with connect(
            self.credentials.ws_url,
            additional_headers=headers,
            open_timeout=5,
            ping_interval=10,
            ping_timeout=10,
            close_timeout=2,
            max_size=MAX_HUB_FRAME_BYTES,
            compression=None,
        ) as ws:
            self._ws = ws
            try:
                self.core.connected(self._clock())
                self._poke()
                await self._flush()
                async for message in ws:
                    self.core.receive_frame(message, self._clock())
                    if self.core.is_welcomed:
                        self.welcomed.set()
                    self._dispatch()
                    await self._flush()
                    self._maybe_snapshot()
            finally:
                self._ws = None
                code = ws.close_code if ws.close_code is not None else None
                self.last_close_code = code
                self.core.disconnected(self._clock(), code)
                self._poke()

    def _maybe_snapshot(self) -> None:
        idle = self._snapshot_task is None or self._snapshot_task.done()
        if idle and self.core.wants_snapshot and not self.core.unpaired and not self._stopped:
            self._snapshot_task = asyncio.create_task(self._take_snapshot(), name="snapshot")

    async def _take_snapshot(self) -> None:
        """Download, decode and load a snapshot; on failure the next session tries again."""
        url = f"{self.credentials.server}/api/v1/checkin/snapshot?conflicts=true"
        headers = {
            "Authorization": f"Bearer {self.credentials.token}",
            "Accept-Encoding": "zstd, gzip",
        }
        try:
            async with (
                httpx.AsyncClient(timeout=_SNAPSHOT_TIMEOUT, verify=_tls_context()) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code in (401, 403):
                    self.core.disconnected(self._clock(), 4401)
                    self._poke()
                    return
                if response.status_code != 200:
                    self._notify("hub_error", f"snapshot: HTTP {response.status_code}")
                    return
                body = await self._read_with_progress(response)
                encoding = response.headers.get("content-encoding", "identity")
            raw = await asyncio.to_thread(_decompress, body, encoding)
            snapshot = await asyncio.to_thread(decode_snapshot, raw)
        except (httpx.HTTPError, OSError, SyncError, ValueError, zstandard.ZstdError) as exc:
            self._notify("hub_error", f"snapshot failed: {exc}")
            await asyncio.sleep(self._rng.uniform(1.0, 3.0))
            return
        self.core.snapshot_loaded(snapshot, self._clock())
        self._poke()

    async def _read_with_progress(self, response: httpx.Response) -> bytes:
        total = int(response.headers.get("content-length", "0") or 0)
        chunks: list[bytes] = []
        received = reported = 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            received += len(chunk)
            if received - reported >= _PROGRESS_EVERY:
                reported = received
                of = f" of {total / 1e6:.1f}" if total else ""
                self._notify("snapshot_progress", f"{received / 1e6:.1f}{of} MB")
        return b"".join(chunks)

    def _notify(self, code: str, detail: str) -> None:
        self._on_event(Notice(code, detail))


def reconnect_delay(
    delay: float, close_code: int | None, rng: random.Random
) -> tuple[float, float]:
    """How long to wait before the next connection attempt, and the backoff after it.

    `delay` is the current backoff: the wait is drawn from its upper half, and it doubles up to
    BACKOFF_MAX. A close 1013 (the hub's database is away) waits BACKOFF_UNAVAILABLE instead and
    leaves the backoff as it was: the hub is up and will say when it can serve again."""
    if close_code == CLOSE_TRY_AGAIN_LATER:
        return rng.uniform(*BACKOFF_UNAVAILABLE), delay
    return rng.uniform(delay / 2, delay), min(BACKOFF_MAX, delay * 2)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context of every snapshot download, built once per process: building
    one reads the whole CA bundle, tens of milliseconds of a blocked event loop (the screen, the
    socket, every door of a process) on each download, even of a plain-http hub."""
    return httpx.create_ssl_context()


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 31)
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


async def wait_for_state(predicate: Callable[[], bool], within: float) -> bool:
    """Poll the engine until `predicate` holds or `within` seconds passed (the engine keeps
    state, it raises no asyncio events); returns whether it held."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate():
        if loop.time() >= end:
            return False
        await asyncio.sleep(0.02)
    return True


async def sync_once(home: Path, *, timeout: float) -> SyncReport:  # noqa: ASYNC109
    """Connect, take a snapshot if needed, upload the queue, and stop (`tessera-scan sync`)."""
    door = Door(home, DoorOptions(), on_event=lambda event: None)
    before = door.store.queued_count()
    await door.start()
    try:
        done = await wait_for_state(
            lambda: (
                door.core.unpaired or (door.core.is_caught_up and door.store.queued_count() == 0)
            ),
            timeout,
        )
        queued = door.store.queued_count()
        return SyncReport(
            connected=done and not door.core.unpaired,
            uploaded=max(0, before - queued),
            queued=queued,
            cursor=door.store.cursor(),
            tickets=door.store.ticket_count(),
        )
    finally:
        await door.stop()
