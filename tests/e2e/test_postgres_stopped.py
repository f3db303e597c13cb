"""PostgreSQL stopped for 10 s under load: doors go offline, and every scan lands once after.

docker/compose.yaml's topology from plain processes (tests/e2e/topology.py: `tessera migrate`, two
`tessera serve`, `tessera worker`, Debian's nginx), its database on a PostgreSQL cluster of the
test's own (tests/private_postgres.py), the one the test may stop. DOORS real door engines, each
with its own LocalStore, as `tessera-scan` runs them, are paired through the proxy and scan RATE
distinct tickets a second each through it. After BEFORE seconds PostgreSQL is stopped (a fast
shutdown: sessions terminated, transactions in progress rolled back, new connections refused)
for OUTAGE seconds, then started; the doors scan on for AFTER seconds. Issue 19, item 5:

- while it is stopped, `/readyz` answers 503 on both instances and a REST redeem through the
  proxy a 503 problem+json `database_unavailable`, never a 500;
- every door goes OFFLINE (the hub closes its socket with 1013) and decides the scans itself;
- once PostgreSQL is back, every door uploads its queue, and every scan offered is stored exactly
  once: none lost, none twice (by device and code: a scan re-sent with a new scan_id would show);
- no instance logs a traceback or answers a 500.

Printed: scans offered, recorded, duplicated, lost; scan latency (p50/p99, hub- and
door-decided) before, during and after; how long the queues took to land; the instances' CPU.
Bounded: 127.0.0.1 only, DOORS x RATE scans/s (default 20 x 2; TESSERA_PGDOWN_DOORS and _RATE
change them), about 60 s wall.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from scanner_client.door import Door, DoorOptions, wait_for_state
from scanner_client.events import Connection, DoorEvent, StatusChanged, VerdictShown
from scanner_client.home import save_credentials
from scanner_client.pairing import pair, parse_pairing_input
from tests.e2e.test_scanner_doors import Venue, ok
from tests.e2e.topology import Topology, topology
from tests.private_postgres import PrivatePostgres, private_postgres

pytestmark = pytest.mark.load

DOORS = int(os.environ.get("TESSERA_PGDOWN_DOORS", "20"))
RATE = float(os.environ.get("TESSERA_PGDOWN_RATE", "2"))  # scans per second per door
BEFORE, OUTAGE, AFTER = 8.0, 10.0, 8.0  # seconds of scanning around and during the stop
LAND = 45.0  # seconds the queues may take to reach the hub once PostgreSQL is back
WAIT = 30.0
T = TypeVar("T")


@pytest.fixture
def cluster() -> Any:
    with private_postgres() as running:
        yield running


@pytest.fixture
def deployment(tmp_path: Path, cluster: PrivatePostgres) -> Any:
    with topology(tmp_path / "topology", postgres_admin_url=cluster.admin_url) as running:
        try:
            yield running
        finally:
            if not cluster.running:  # the topology drops its database on the way out
                cluster.start()


@dataclass
class Staffed:
    """A running door on an event loop (and thread) of its own, as a handheld is a device of its
    own: the journal's fsync before each verdict must not hold up the other doors. With the time
    each of its scans was read, and what it showed when."""

    name: str
    door: Door = field(init=False)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None
    device_id: str = ""
    read_at: dict[str, float] = field(default_factory=dict)  # scan_id -> monotonic time
    offered: list[str] = field(default_factory=list)  # codes scanned, in order
    code_of: dict[str, str] = field(default_factory=dict)  # scan_id -> code
    shown: dict[str, tuple[float, str]] = field(default_factory=dict)  # scan_id -> (t, source)
    statuses: list[tuple[float, Connection]] = field(default_factory=list)

    def new_scan_id(self) -> str:
        scan_id = str(uuid.uuid4())
        self.read_at[scan_id] = time.monotonic()  # called by the engine as it takes the scan
        self.code_of[scan_id] = self.offered[-1]
        return scan_id

    def begin(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name=self.name, daemon=True)
        self.thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the door's own loop (its store is that thread's) and await it."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await asyncio.wrap_future(future)

    async def holds(self, predicate: Callable[[], bool]) -> bool:
        return await self.run(_now(predicate))

    def end(self) -> None:
        if self.thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT)
        self.loop.close()

    def on_event(self, event: DoorEvent) -> None:
        now = time.monotonic()
        if isinstance(event, VerdictShown) and event.scan_id and event.scan_id not in self.shown:
            self.shown[event.scan_id] = (now, event.source)
        elif isinstance(event, StatusChanged):
            self.statuses.append((now, event.connection))


async def _venue(organiser: httpx.AsyncClient, tickets: int) -> Venue:
    """An event, one ticket type for `tickets`, one single-entry list, the tickets issued."""
    event = await ok(
        await organiser.post(
            "/api/v1/events",
            json={"name": "Rush", "starts_at": "2031-06-14T20:00:00Z", "timezone": "UTC"},
        )
    )
    ticket_type = await ok(
        await organiser.post(
            f"/api/v1/events/{event['id']}/ticket-types",
            json={"name": "Standard", "capacity": tickets},
        )
    )
    checkin_list = await ok(
        await organiser.post(f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main"})
    )
    issued: list[dict[str, Any]] = []
    while len(issued) < tickets:  # bookings hold at most 500 tickets
        booking = await ok(
            await organiser.post(
                f"/api/v1/events/{event['id']}/bookings",
                json={
                    "buyer": {"name": "Camille Martin", "email": "camille@example.org"},
                    "items": [
                        {
                            "ticket_type_id": ticket_type["id"],
                            "quantity": min(500, tickets - len(issued)),
                        }
                    ],
                    "confirm": True,
                },
            )
        )
        issued += booking["tickets"]
    return Venue(event["id"], checkin_list["id"], issued)


async def _staff(tmp_path: Path, organiser: httpx.AsyncClient, venue: Venue, n: int) -> Staffed:
    staffed = Staffed(f"door-{n:02d}")
    device = await ok(
        await organiser.post(
            f"/api/v1/events/{venue.event_id}/devices",
            json={"name": staffed.name, "gate": f"gate-{n % 4}"},
        )
    )
    credentials = await pair(parse_pairing_input(device["pairing_uri"], None))
    staffed.device_id = credentials.device_id
    home = tmp_path / staffed.name
    save_credentials(home, credentials)
    staffed.begin()

    async def start() -> Door:
        door = Door(
            home,
            DoorOptions(list_id=venue.list_id),
            on_event=staffed.on_event,
            new_scan_id=staffed.new_scan_id,
        )
        await door.start()
        return door

    staffed.door = await staffed.run(start())
    return staffed


async def _now(predicate: Callable[[], Any]) -> Any:
    return predicate()


async def _scan(staffed: Staffed, codes: list[str], start: float, until: float) -> None:
    """On the door's loop: scan `codes` one every 1/RATE s from `start` until `until`
    (time.monotonic())."""
    for n, code in enumerate(codes):
        at = start + n / RATE
        if at >= until:
            return
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        staffed.offered.append(code)
        staffed.door.scan(code)


async def _outage_landed(doors: list[Staffed], stopped_at: float, started_at: float) -> float:
    """When every scan read while PostgreSQL was stopped had its result from the hub."""
    waiting = [(s, scan_id) for s in doors for scan_id, t in s.read_at.items() if stopped_at <= t]
    waiting = [(s, i) for s, i in waiting if s.read_at[i] < started_at]
    while waiting:
        left = []
        for s, i in waiting:
            entry = await s.run(_now(lambda s=s, i=i: s.door.store.journal_entry(i)))
            if entry is None or entry.state != "done":
                left.append((s, i))
        waiting = left
        await asyncio.sleep(0.1)
    return time.monotonic()


def _offline_after(doors: list[Staffed], stopped_at: float, started_at: float) -> dict[str, float]:
    """How long after the stop each door first showed OFFLINE: p50 and max, seconds."""
    delays = [
        min(t for t, c in s.statuses if c == Connection.OFFLINE and stopped_at <= t <= started_at)
        - stopped_at
        for s in doors
        if any(c == Connection.OFFLINE and stopped_at <= t <= started_at for t, c in s.statuses)
    ]
    if not delays:
        return {}
    return {"p50": round(statistics.median(delays), 2), "max": round(max(delays), 2)}


async def _watch(
    ws_url: str, token: str, seen: dict[tuple[str, str], float], following: asyncio.Event
) -> None:
    """Another door's view: follow the change log over the websocket (through the proxy, from
    the head on, reconnecting after each close) and note when each accepted scan arrived."""
    cursor: int | None = None
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        try:
            async with connect(ws_url, additional_headers=headers, compression=None) as ws:
                await ws.send(json.dumps({"type": "hello", "cursor": cursor}))
                async for message in ws:
                    frame = json.loads(message)
                    if frame["type"] == "welcome" and frame["snapshot_required"]:
                        cursor = frame["head"]  # from now on: only the fan-out is measured
                        await ws.send(json.dumps({"type": "hello", "cursor": cursor}))
                    elif frame["type"] == "changes":
                        following.set()
                        now = time.monotonic()
                        for item in frame["items"]:
                            cursor = item["seq"]
                            if item["kind"] == "scan.accepted":
                                scan = item["scan"]
                                seen.setdefault((scan["device_id"], scan["scan_id"]), now)
        except (OSError, WebSocketException, TimeoutError):
            pass
        await asyncio.sleep(0.5)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its reaped children, from /proc (clock ticks to seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f} ms p99={p99:.1f} ms"


async def _stored(url: str) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT device_id, code FROM scan")
    finally:
        await connection.close()
    return [(row["device_id"], row["code"]) for row in rows]


async def _during_outage(deployment: Topology, venue: Venue, device_token: str) -> None:
    """What the HTTP side answers while PostgreSQL is stopped."""
    async with httpx.AsyncClient(timeout=WAIT) as client:
        for base in deployment.instances.values():
            ready = await client.get(f"{base}/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["code"] == "database_unreachable"
        body = {"scan_id": str(uuid.uuid4()), "code": venue.tickets[-1]["code"]}
        redeem = await client.post(
            f"{deployment.proxy}/api/v1/checkin/redeem",
            json={**body, "list_id": venue.list_id},
            headers={"Authorization": f"Bearer {device_token}"},
        )
        assert redeem.status_code == 503, redeem.text
        assert redeem.headers["content-type"] == "application/problem+json"
        assert redeem.json()["code"] == "database_unavailable"
        assert redeem.headers["retry-after"].isdigit()


def test_postgresql_stopped_for_10_s_under_load_doors_go_offline_and_every_scan_lands_once(
    tmp_path: Path, deployment: Topology, cluster: PrivatePostgres
) -> None:
    asyncio.run(_run(tmp_path, deployment, cluster))


async def _run(tmp_path: Path, deployment: Topology, cluster: PrivatePostgres) -> None:
    token = deployment.tessera("token", "create", "--name", "pgdown").strip()
    per_door = int((BEFORE + OUTAGE + AFTER) * RATE) + 1
    async with httpx.AsyncClient(
        base_url=deployment.proxy, headers={"Authorization": f"Bearer {token}"}, timeout=WAIT
    ) as organiser:
        venue = await _venue(organiser, DOORS * per_door + 1)
        doors = [await _staff(tmp_path / "doors", organiser, venue, n) for n in range(DOORS)]
        spare = await ok(
            await organiser.post(f"/api/v1/events/{venue.event_id}/devices", json={"name": "r"})
        )
        rest_device = await pair(parse_pairing_input(spare["pairing_uri"], None))
    outage_landed: asyncio.Task[float] | None = None
    seen: dict[tuple[str, str], float] = {}
    following = asyncio.Event()
    watcher = asyncio.create_task(_watch(rest_device.ws_url, rest_device.token, seen, following))
    try:
        await asyncio.wait_for(following.wait(), WAIT)
        for staffed in doors:
            caught_up = wait_for_state(lambda s=staffed: s.door.core.is_caught_up, WAIT)
            assert await staffed.run(caught_up), staffed.name
        pids = [deployment.processes[name].popen.pid for name in deployment.instances]
        cpu_before = sum(_cpu_seconds(pid) for pid in pids)
        doors_cpu_before = _cpu_seconds(os.getpid())
        began_wall = time.monotonic()
        until = began_wall + BEFORE + OUTAGE + AFTER
        codes = [t["code"] for t in venue.tickets]
        scanning = [
            asyncio.ensure_future(
                s.run(
                    _scan(
                        s,
                        codes[n * per_door : (n + 1) * per_door],
                        began_wall + n / DOORS / RATE,
                        until,
                    )
                )
            )
            for n, s in enumerate(doors)
        ]
        await asyncio.sleep(BEFORE)
        stopped_at = time.monotonic()
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(1.0)
        await _during_outage(deployment, venue, rest_device.token)
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
        await asyncio.to_thread(cluster.start)
        started_at = time.monotonic()
        outage_landed = asyncio.create_task(_outage_landed(doors, stopped_at, started_at))
        await asyncio.gather(*scanning)
        landed = all(
            await asyncio.gather(
                *(
                    s.run(
                        wait_for_state(
                            lambda s=s: (
                                s.door.store.queued_count() == 0 and s.door.core.is_caught_up
                            ),
                            LAND,
                        )
                    )
                    for s in doors
                )
            )
        )
        landed_at = time.monotonic()
        outage_landed_at = await asyncio.wait_for(outage_landed, WAIT)
        cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
        doors_cpu = _cpu_seconds(os.getpid()) - doors_cpu_before
        # The watching door may be a moment behind the last uploads.
        everything = {(s.device_id, i) for s in doors for i in s.code_of}
        await wait_for_state(lambda: everything <= seen.keys(), WAIT)
        counts = [await s.holds(s.door.store.queued_count) for s in doors]
        queued = {s.name: n for s, n in zip(doors, counts, strict=True) if n}
        assert landed, f"queues not uploaded within {LAND} s of PostgreSQL's return: {queued}"
    finally:
        watcher.cancel()
        if outage_landed is not None:
            outage_landed.cancel()
        for staffed in doors:
            with contextlib.suppress(Exception):
                await staffed.run(staffed.door.stop())
            staffed.end()

    stored = await _stored(deployment.env["TESSERA_DATABASE_URL"])
    offered = Counter((s.device_id, code) for s in doors for code in s.offered)
    recorded = Counter(pair for pair in stored if pair in offered)
    duplicated = sum(n - 1 for n in recorded.values() if n > 1)
    lost = sum(1 for key in offered if key not in recorded)
    strays = len(stored) - sum(recorded.values())  # the REST redeem above was refused: none
    phases: dict[str, dict[str, list[float]]] = {
        p: {"hub": [], "door": []} for p in ("before", "during", "after")
    }
    fan_out: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for s in doors:
        for scan_id, (shown_at, source) in s.shown.items():
            read = s.read_at[scan_id]
            phase = "before" if read < stopped_at else "during" if read < started_at else "after"
            phases[phase][source].append(shown_at - read)
            if (s.device_id, scan_id) in seen:  # from the read (from the restart, in the outage)
                since = read if phase != "during" else started_at
                fan_out[phase].append(seen[(s.device_id, scan_id)] - since)
    offline_in_outage = [
        s.name
        for s in doors
        if any(c == Connection.OFFLINE and stopped_at <= t <= started_at for t, c in s.statuses)
    ]
    total = sum(offered.values())
    report = {
        "doors": DOORS,
        "rate_per_door": RATE,
        "outage_s": round(started_at - stopped_at, 2),
        "offered": total,
        "recorded": sum(recorded.values()),
        "duplicated": duplicated,
        "lost": lost,
        "strays": strays,
        "outage_scans_landed_after_restart_s": round(outage_landed_at - started_at, 2),
        "all_landed_after_restart_s": round(landed_at - started_at, 2),  # AFTER s of scans too
        "offline_after_stop_s": _offline_after(doors, stopped_at, started_at),
        "doors_offline_in_outage": len(offline_in_outage),
        "server_cpu_ms_per_scan": round(cpu * 1000 / max(1, total), 3),
        "doors_process_cpu_s": round(doors_cpu, 1),  # every door engine runs in this process
        "wall_s": round(landed_at - began_wall, 1),
    }
    print(json.dumps(report))
    for phase, sources in phases.items():
        for source, values in sources.items():
            print(f"scan latency {phase:6} {source:4}: {_percentiles(values)}")
    for phase, values in fan_out.items():
        since = "PostgreSQL's return" if phase == "during" else "the read"
        print(f"fan-out {phase:6} (seen by another door, from {since}): {_percentiles(values)}")

    assert len(offered) == total, "each offered code is distinct per door"
    assert (duplicated, lost, strays) == (0, 0, 0), report
    seen_codes = {
        (s.device_id, s.code_of[i]) for s in doors for i in s.code_of if (s.device_id, i) in seen
    }
    unseen = [key for key in offered if key not in seen_codes]
    assert not unseen, f"{len(unseen)} scans never reached the watching door: {unseen[:3]}"
    assert len(offline_in_outage) == DOORS, f"not offline during the outage: {report}"
    assert phases["during"]["door"], "the doors decided the outage's scans themselves"
    for name in deployment.instances:
        text = deployment.log_of(name).read_text(errors="replace")
        assert "Traceback" not in text, f"{name} logged a traceback:\n{text[-3000:]}"
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                assert not (isinstance(entry, dict) and entry.get("status") == 500), line
