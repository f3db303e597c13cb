"""The simulator: one seeded `random.Random`, one event queue, doors, a network, a hub.

Everything happens at a simulated true time `t` (seconds from the start of the run) taken from
one heap of timed actions; nothing sleeps, nothing reads the wall clock for a decision. Each
door's clock is `T0 + skew + t * (1 + drift)`; the hub's is `T0 + hub_skew + t`.

The network (docs/simulation.md has the full list):
  - a websocket is an ordered, lossless channel while it lives (TCP); each frame takes a random
    delay, never overtaking the one before it on the same socket;
  - loss is a socket that breaks: what is in flight on it is lost, each side learns of it after
    its own delay; a partition (one door or a group) breaks its sockets and refuses new ones and
    snapshot downloads until healed;
  - duplication: a client's `scan` / `scan_batch` / `annul` replayed to the hub (a retransmitting
    proxy); reordering: frames of a device's overlapping sockets, and fan-out notices, which are
    delayed independently, duplicated and lost (a lost notice must be healed from the log).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import random
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from protocol.rules import Direction
from scanner_client.core import SyncCore
from scanner_client.events import ConflictNotice, VerdictShown
from scanner_client.store import LocalStore, decode_snapshot
from server.checkin.config import HubConfig
from tests.simulation import mutations
from tests.simulation.config import Config, Failure
from tests.simulation.hub_side import HubSide
from tests.simulation.venue import Venue, build_venue, close_venue

__all__ = ["Door", "Sim", "Socket"]

T0 = datetime(2027, 3, 14, 18, 30, tzinfo=UTC).timestamp()
HEAL_INTERVAL = HubConfig().heal_interval
COUNTERS_INTERVAL = HubConfig().counters_interval
QUIESCE = 150.0  # seconds of calm after the last fault, for the doors to converge


@dataclass
class Socket:
    conn: int
    door: int
    alive: bool = True
    to_hub_at: float = 0.0
    to_door_at: float = 0.0


@dataclass
class Door:
    """One handheld: its store on disk, its engine (None while crashed), what it was shown."""

    index: int
    device_id: str
    token: str
    path: Path
    skew: float
    drift: float
    list_id: str
    direction: Direction
    core: SyncCore | None = None
    store: LocalStore | None = None
    socket: Socket | None = None
    partitioned: bool = False
    backoff: float = 0.5
    life: int = 0  # incarnation: a crash makes every action of the old one stale
    wake_at: float | None = None
    connecting: bool = False
    unnoticed: bool = False  # its socket broke and the engine has not been told yet
    snapshotting: bool = False
    scan_ids: set[str] = field(default_factory=set)  # every id its engine ever returned
    conflicts: set[str] = field(default_factory=set)  # conflicts it showed (every life)
    forced_seen: set[str] = field(default_factory=set)  # forced scans it read in `changes`
    snapshot_seq: int = -1  # the seq of the newest snapshot it loaded

    def clock(self, t: float) -> float:
        return T0 + self.skew + t * (1 + self.drift)

    def true_time(self, door_time: float) -> float:
        return (door_time - T0 - self.skew) / (1 + self.drift)


class Sim:
    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config.resolved()
        self.rng = random.Random(config.seed)
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.t = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._n = 0
        self.trace: deque[str] = deque(maxlen=60)
        self.digest = hashlib.sha256()  # of the whole trace: the same seed, the same digest
        self.steps = 0
        self.faulting = True
        self.hub_up = True
        self.hub_life = 0
        self.hub_skew = self.rng.uniform(-2, 2)
        self._room_heard = 0.0  # when the room last read the log (a notice or a heal)
        self._counters_at, self._counters_life = -1e9, 0  # the room's last counters push
        self._counters_pending = -1  # the hub life whose counters push is scheduled
        # (t, "notice" | "heal" | "counters", hub life): what the room read when (for a test)
        self.room_reads: list[tuple[float, str, int]] = []
        self.venue: Venue = build_venue(
            workdir, self.rng, tickets=self.config.tickets, doors=self.config.doors, run=self.run
        )
        self.hub = HubSide(self.venue.database_url, self.run)
        self.doors = [self._make_door(n) for n in range(self.config.doors)]
        self.scanned: list[tuple[int, str]] = []  # (door, scan_id), in order
        self.labels: dict[str, str] = {}  # code -> how the trace names it

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        for door in self.doors:
            if door.store is not None:
                door.store.close()
        self.hub.close()
        close_venue(self.venue, self.run)
        self.loop.close()

    # --- the queue ------------------------------------------------------------------------------

    def at(self, t: float, action: Callable[[], None]) -> None:
        self._n += 1
        heapq.heappush(self._heap, (max(t, self.t), self._n, action))

    def log(self, text: str) -> None:
        line = f"t={self.t:9.3f} {text}"
        self.trace.append(line)
        self.digest.update(line.encode())

    def hub_now(self) -> datetime:
        return datetime.fromtimestamp(T0 + self.hub_skew + self.t, UTC)

    def run_until(self, end: float) -> None:
        while self._heap and self._heap[0][0] <= end:
            self.t, _, action = heapq.heappop(self._heap)
            self.steps += 1
            action()
        self.t = end

    # --- doors ----------------------------------------------------------------------------------

    def _make_door(self, n: int) -> Door:
        device = self.venue.devices[n]
        lists = self.venue.lists
        chosen = lists[n % len(lists)] if n < len(lists) else self.rng.choice(lists)
        reentry = chosen.get("allow_reentry")
        exit_door = reentry and self.rng.random() < 0.35
        door = Door(
            index=n,
            device_id=device.device_id,
            token=device.token,
            path=self.workdir / f"door{n}.db",
            skew=self.rng.uniform(-300, 300)
            if self.rng.random() < 0.3
            else self.rng.uniform(-2, 2),
            drift=self.rng.uniform(-1e-4, 1e-4),
            list_id=chosen["id"],
            direction=Direction.EXIT if exit_door else Direction.ENTRY,
        )
        self.start_door(door)
        return door

    def start_door(self, door: Door) -> None:
        """Open the store and a new engine: the door's process starts (again)."""
        if mutations.active("lose_journal") and door.path.exists():
            db = sqlite3.connect(door.path)
            db.execute("DELETE FROM journal WHERE state != 'done'")
            db.commit()
            db.close()
        door.store = LocalStore.open(door.path)
        door.store._db.execute("PRAGMA synchronous=OFF")  # a crash here is a process kill
        door.life += 1
        door.core = SyncCore(
            door.store,
            device_id=door.device_id,
            event_id=self.venue.event_id,
            new_scan_id=lambda: f"{self.rng.getrandbits(64):016x}",
            list_id=door.list_id,
            direction=door.direction,
        )
        door.backoff = 0.5
        door.wake_at = None
        self.at(self.t + self.rng.uniform(0, 1), lambda: self.try_connect(door, door.life))

    def crash(self, door: Door) -> None:
        if door.core is None:
            return
        self.log(f"door{door.index} CRASH (journal kept, memory lost)")
        assert door.store is not None
        door.store._db.close()  # no checkpoint: what is committed is in the WAL
        door.core = door.store = None
        door.connecting = door.snapshotting = door.unnoticed = False
        if door.socket is not None:
            sock, door.socket = door.socket, None
            sock.alive = False
            self.at(self.t + self.rng.uniform(0.01, 2), lambda: self.hub.drop(sock.conn))
        life = door.life
        self.at(self.t + self.rng.uniform(0.5, 20), lambda: self._restart(door, life))

    def _restart(self, door: Door, life: int) -> None:
        if door.core is None and door.life == life:
            self.log(f"door{door.index} restart")
            self.start_door(door)

    def try_connect(self, door: Door, life: int) -> None:
        if door.core is None or door.life != life or door.socket is not None:
            return
        if door.core.unpaired or door.unnoticed:
            return
        if door.partitioned or not self.hub_up:
            delay, door.backoff = door.backoff, min(door.backoff * 2, 30.0)
            self.at(
                self.t + delay * self.rng.uniform(0.8, 1.2), lambda: self.try_connect(door, life)
            )
            return
        conn = self.hub.open(door.token)
        if conn is None:
            self.log(f"door{door.index} refused at connect")
            return
        door.socket = Socket(conn, door.index, to_hub_at=self.t, to_door_at=self.t)
        door.backoff = 0.5
        self.log(f"door{door.index} connected as conn{conn}")
        door.core.connected(door.clock(self.t))
        self.after_core(door)

    def hub_closed(self) -> None:
        """Sockets the hub closed itself (rate limit, revoked device): the door hears the code."""
        for conn, code in self.hub.take_closed():
            for door in self.doors:
                if door.socket is not None and door.socket.conn == conn:
                    self.disconnect(door, f"closed by the hub with {code}", code)

    def disconnect(self, door: Door, why: str, close_code: int | None = None) -> None:
        """The socket breaks: in-flight frames are lost; each side notices after its delay."""
        sock = door.socket
        if sock is None:
            return
        door.socket = None
        sock.alive = False
        self.log(f"door{door.index} socket conn{sock.conn} broken ({why})")
        life = door.life
        self.at(self.t + self.rng.uniform(0, 3), lambda: self.hub.drop(sock.conn))

        def noticed() -> None:
            if door.core is not None and door.life == life:
                door.unnoticed = False
                door.core.disconnected(door.clock(self.t), close_code)
                self.after_core(door)
                self.at(self.t + door.backoff, lambda: self.try_connect(door, life))

        # Until the door notices, it thinks it is connected: what it sends is lost.
        door.unnoticed = True
        self.at(self.t + self.rng.uniform(0, 2), noticed)

    def after_core(self, door: Door) -> None:
        """Move what the engine produced: frames onto the socket, events to the record."""
        core = door.core
        if core is None:
            return
        for data in core.frames_to_send():
            self.to_hub(door, data)
        for event in core.take_events():
            if isinstance(event, VerdictShown) and event.scan_id:
                assert door.store is not None
                if door.store.journal_entry(event.scan_id) is None:
                    raise self.fail(
                        "journaled-before-shown", f"{event.scan_id} at door{door.index}"
                    )
            elif isinstance(event, ConflictNotice):
                if event.conflict.scan_id in door.conflicts:
                    raise self.fail(
                        "conflict-shown-once", f"{event.conflict.scan_id} again at door{door.index}"
                    )
                door.conflicts.add(event.conflict.scan_id)
        if core.wants_snapshot and not door.snapshotting and not core.unpaired:
            self.request_snapshot(door)
        self.schedule_wake(door)

    def schedule_wake(self, door: Door) -> None:
        assert door.core is not None
        deadline = door.core.next_deadline()
        if deadline is None:
            return
        t = max(self.t, door.true_time(deadline)) + 1e-6
        if door.wake_at is not None and door.wake_at <= t and door.wake_at >= self.t:
            return
        door.wake_at = t
        life = door.life

        def wake() -> None:
            if door.core is None or door.life != life or door.wake_at != t:
                return
            door.wake_at = None
            door.core.tick(door.clock(self.t))
            self.after_core(door)

        self.at(t, wake)

    def request_snapshot(self, door: Door) -> None:
        if door.partitioned or not self.hub_up:
            return
        door.snapshotting = True
        life = door.life
        raw = self.hub.snapshot(self.venue.event_id)  # what the hub had when it answered
        self.log(f"door{door.index} snapshot requested ({len(raw)} bytes)")

        def arrive() -> None:
            if door.core is None or door.life != life:
                return
            door.snapshotting = False
            if door.partitioned:  # cut in the middle of the download: the shell tries later
                self.at(self.t + 2, lambda: self._retry_snapshot(door, life))
                return
            snapshot = decode_snapshot(raw)
            door.snapshot_seq = max(door.snapshot_seq, snapshot.seq)
            door.core.snapshot_loaded(snapshot, door.clock(self.t))
            self.after_core(door)

        self.at(self.t + self.rng.uniform(0.05, 1.5), arrive)

    def _retry_snapshot(self, door: Door, life: int) -> None:
        alive = door.core is not None and door.life == life
        if alive and door.core.wants_snapshot and not door.snapshotting:  # type: ignore[union-attr]
            self.request_snapshot(door)

    # --- the wire -------------------------------------------------------------------------------

    def delay(self) -> float:
        d = self.rng.expovariate(1 / 0.02)
        if self.faulting and self.rng.random() < 0.03:
            d += self.rng.uniform(0.5, 4)  # a stall: the door's answer timeout may fire
        return d

    def to_hub(self, door: Door, data: bytes) -> None:
        sock = door.socket
        if sock is None or not sock.alive:
            return
        sock.to_hub_at = max(sock.to_hub_at, self.t + self.delay())
        self.at(sock.to_hub_at, lambda: self.hub_receives(sock, data))
        dup = self.faulting and "duplicate" in self.config.faults and self.rng.random() < 0.03
        if dup and data.startswith((b'{"type":"scan', b'{"type":"annul')):
            later = sock.to_hub_at + self.rng.uniform(0, 2)
            self.at(later, lambda: self.hub_receives(sock, data, duplicate=True))
        if (
            self.faulting
            and "upload_crash" in self.config.faults
            and data.startswith(b'{"type":"scan_batch"')
            and self.rng.random() < 0.15
        ):
            self.at(
                self.t + self.rng.uniform(0, sock.to_hub_at - self.t + 0.05),
                lambda: self.crash(door),
            )

    def hub_receives(self, sock: Socket, data: bytes, *, duplicate: bool = False) -> None:
        if (not sock.alive and not duplicate) or not self.hub_up:
            return
        if sock.conn not in self.hub.connections():
            return
        kind = data[9:24].split(b'"')[0].decode()
        self.log(f"hub <- conn{sock.conn} {kind}{' (duplicate)' if duplicate else ''}")
        self.deliver(self.hub.receive(sock.conn, data, self.hub_now()))
        self.hub_closed()
        self.publish()

    def deliver(self, outgoing: list[tuple[int, bytes]]) -> None:
        by_conn = {d.socket.conn: d for d in self.doors if d.socket is not None}
        for conn, data in outgoing:
            door = by_conn.get(conn)
            if door is None or door.socket is None:
                continue
            sock = door.socket
            sock.to_door_at = max(sock.to_door_at, self.t + self.delay())
            self.at(sock.to_door_at, lambda d=door, s=sock, x=data: self.door_receives(d, s, x))

    def door_receives(self, door: Door, sock: Socket, data: bytes) -> None:
        if not sock.alive or door.core is None or door.socket is not sock:
            return
        frame = msgspec.json.decode(data)
        if frame.get("type") == "changes":
            for item in frame["items"]:
                scan = item.get("scan")
                if scan and scan.get("forced"):
                    door.forced_seen.add(scan["scan_id"])
        door.core.receive_frame(data, door.clock(self.t))
        self.after_core(door)

    def publish(self) -> None:
        """Carry what the hub published to its room (Redis between instances: lossy)."""
        for event_id, notice in self.hub.take_published():
            self.notify(event_id, notice)

    def notify(self, event_id: str, notice: dict[str, Any]) -> None:
        lossy = self.faulting and "lose_notice" in self.config.faults
        if lossy and self.rng.random() < 0.2:
            self.log(f"notice {notice.get('kind')} LOST")
            return
        copies = 2 if lossy and self.rng.random() < 0.05 else 1
        life = self.hub_life
        for _ in range(copies):
            when = self.t + self.rng.expovariate(1 / 0.01)

            def arrive() -> None:
                if self.hub_up and self.hub_life == life:
                    self._room_heard = self.t
                    self.room_reads.append((self.t, "notice", life))
                    self.deliver(self.hub.notice(event_id, notice))
                    self.hub_closed()
                    self.counters_due()

            self.at(when, arrive)

    def heal_tick(self) -> None:
        """The room's heal: a read of the log after `heal_interval` of fan-out silence (a room
        that hears notices reads on each of them instead)."""
        due = self._room_heard + HEAL_INTERVAL
        if self.t < due:
            self.at(due, self.heal_tick)
            return
        if self.hub_up:
            self._room_heard = self.t
            self.room_reads.append((self.t, "heal", self.hub_life))
            self.deliver(self.hub.heal(self.venue.event_id))
            self.counters_due()
        self.at(self.t + HEAL_INTERVAL, self.heal_tick)

    def counters_due(self) -> None:
        """The room's `schedule_counters`: push now, or `counters_interval` after the last
        push; one push pending at a time, and none outlives the hub's process."""
        event_id = self.venue.event_id
        life = self.hub_life
        if event_id not in self.hub.counters_wanted or self._counters_pending == life:
            return
        self._counters_pending = life
        last = self._counters_at if self._counters_life == life else -1e9

        def push() -> None:
            if self.hub_life != life or not self.hub_up:
                return
            self._counters_pending = -1
            self._counters_at, self._counters_life = self.t, life
            self.room_reads.append((self.t, "counters", life))
            self.deliver(self.hub.push_counters(event_id))

        self.at(max(self.t, last + COUNTERS_INTERVAL), push)

    def fail(self, invariant: str, detail: str) -> Failure:
        return Failure(invariant, detail, list(self.trace))
