"""A load of real doors on a running deployment: N `tessera-scan` engines in one asyncio process.

Each door is the very engine `tessera-scan run` runs (`scanner_client.door.Door`: the asyncio
shell, the sans-I/O `SyncCore`, its own `LocalStore` journal in a home of its own), paired to one
event through the proxy's REST API, and scans real ticket tokens (the QR's signed token) at a set
rate through the proxy's websocket. Cut off, it decides offline and queues, and uploads on
reconnect, exactly as at a venue. The harness only watches, through three public seams of each
door: its events (`on_event`: the verdict of each scan), its scan ids (`new_scan_id`: every scan
it recorded) and the pages of changes its store applied (`LocalStore.apply_changes`).

The check-in list admits unlimited entries (`max_entries: null`), so every scan of a valid token
is accepted wherever it is decided (online or offline): a refusal is an error of the run, and no
forced scan or conflict muddies the count. The codes go round a pool of `tickets` tickets, all
doors together, so no door reads one code twice within the debounce window.

What it measures, per run (`LoadReport`):
- offered: scans the doors recorded (journaled); recorded: rows of the `scan` table of the
  event; lost: offered and not recorded; duplicated: a (device, scan_id) with more than one
  `scan.accepted` change in the change log (the table's primary key forbids two rows), or a row
  no door offered;
- fan-out: for each scan the hub accepted online (its verdict came from the hub), the time from
  its read at its door (so the hub's decision is included, as in bench/fanout.py) until each
  other door's store applied its `scan.accepted` change; per door and scan (`fanout`), and until
  the last door had it (`fanout_all`). From the read, not from the verdict shown: in one process
  the order in which the doors' frames are handled is the event loop's, and another door often
  applies the change before the scanning door has shown its verdict;
- gaps: for each door that lost its socket, the time from the close until the next `welcome`
  (and `opens`: until the next socket opened, before its `hello` was answered).

The doors' homes belong on a RAM disk (`door_homes`: /dev/shm when there is one): each journal
write is an fsync (synchronous=FULL), and N doors in one process would otherwise queue N devices'
fsyncs behind one event loop, which measures the harness's disk, not the deployment.

Bounded: the doors scan for `seconds`, then the harness waits up to `settle` seconds for every
queue to drain and every door to reach the change log's head, and stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scanner_client.door import Door, DoorOptions, wait_for_state
from scanner_client.events import DoorEvent, Notice, VerdictShown
from scanner_client.home import save_credentials
from scanner_client.pairing import PAIR_TIMEOUT, PairingError, pair, parse_pairing_input
from tests.factories import create_booking, create_event, create_ticket_type
from tests.proc_tree import tree_cpu_seconds

__all__ = [
    "LoadDoor",
    "LoadPlan",
    "LoadReport",
    "Venue",
    "door_homes",
    "percentile",
    "prepare_venue",
    "run_load",
    "start_doors",
    "stop_doors",
    "tree_cpu_seconds",
]

_BOOKING_MAX = 250  # tickets per booking request (the API takes up to 500)
_PAIR_AT_ONCE = 10  # pairing requests in flight
_PAIR_ATTEMPTS = 3  # a loaded machine may not answer within PAIR_TIMEOUT (a spent code: 401)


@dataclass(frozen=True)
class LoadPlan:
    doors: int = 50
    rate: float = 10.0  # scans per second per door
    seconds: float = 60.0  # how long the doors scan
    tickets: int = 500  # the pool of codes the doors go round
    settle: float = 45.0  # seconds, after scanning, for queues to drain and doors to catch up


@contextlib.contextmanager
def door_homes() -> Iterator[Path]:
    """A directory for the doors' homes, on /dev/shm when it exists; removed at the end."""
    shm = Path("/dev/shm")
    where = tempfile.mkdtemp(prefix="tessera-doors-", dir=shm if shm.is_dir() else None)
    try:
        yield Path(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


@dataclass
class Venue:
    event_id: str
    list_id: str
    tokens: list[str]
    homes: list[Path]
    # Where the doors are in the pool of codes; it carries over from one run to the next, so a
    # door never reads at the start of a run the code it read at the end of the last.
    reads: Iterator[int] = field(default_factory=itertools.count)


async def prepare_venue(
    api: httpx.AsyncClient, workdir: Path, *, doors: int, tickets: int
) -> Venue:
    """An event with `tickets` tickets, a list of unlimited entries, and `doors` paired devices
    (each a home under `workdir` holding its credentials, as `tessera-scan pair` leaves it)."""
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=max(tickets, 1))
    listed = await api.post(
        f"/api/v1/events/{event['id']}/checkin-lists",
        json={"name": "Main", "max_entries": None},
    )
    assert listed.status_code == 201, listed.text
    tokens: list[str] = []
    while len(tokens) < tickets:
        quantity = min(_BOOKING_MAX, tickets - len(tokens))
        booking = await create_booking(api, event["id"], ticket_type["id"], quantity, confirm=True)
        tokens += [ticket["token"] for ticket in booking["tickets"]]
    homes = [workdir / f"door-{n:03d}" for n in range(doors)]
    # One client for every pairing: each new httpx client builds a TLS context (the CA bundle
    # read on the event loop), and 200 of them stall every door already running.
    async with httpx.AsyncClient(timeout=PAIR_TIMEOUT) as guest:
        for first in range(0, doors, _PAIR_AT_ONCE):
            batch = homes[first : first + _PAIR_AT_ONCE]
            await asyncio.gather(*(_pair(api, guest, event["id"], home) for home in batch))
    return Venue(event["id"], listed.json()["id"], tokens, homes)


async def _pair(
    api: httpx.AsyncClient, guest: httpx.AsyncClient, event_id: str, home: Path
) -> None:
    created = await api.post(
        f"/api/v1/events/{event_id}/devices", json={"name": home.name, "gate": home.name}
    )
    assert created.status_code == 201, created.text
    request = parse_pairing_input(created.json()["pairing_uri"], None)
    for attempt in range(_PAIR_ATTEMPTS):
        try:
            credentials = await pair(request, client=guest)
            break
        except PairingError:  # the loaded machine did not answer in PAIR_TIMEOUT: again
            if attempt == _PAIR_ATTEMPTS - 1:
                raise
    save_credentials(home, credentials)


@dataclass
class LoadDoor:
    """One running door and what the harness saw of it (times: the event loop's clock)."""

    door: Door
    offered: dict[str, float] = field(default_factory=dict)  # scan_id -> when it was read
    verdicts: dict[str, VerdictShown] = field(default_factory=dict)  # the first shown
    hub_accepted: dict[str, float] = field(default_factory=dict)  # scan_id -> hub's yes shown
    seen: dict[tuple[str, str], float] = field(default_factory=dict)  # (device, scan) applied
    downs: list[float] = field(default_factory=list)  # a welcomed socket closed
    gaps: list[float] = field(default_factory=list)  # seconds from a close to the next welcome
    opens: list[float] = field(default_factory=list)  # seconds from a close to the next socket
    unrecorded: int = 0  # reads the door did not record (should stay 0)
    notices: dict[str, int] = field(default_factory=dict)  # Notice code -> how many
    close_codes: dict[str, int] = field(default_factory=dict)  # why its sockets closed

    @property
    def device_id(self) -> str:
        return self.door.credentials.device_id

    def is_settled(self, head: int) -> bool:
        """Nothing queued or awaiting an answer, and the change log read up to `head`."""
        store = self.door.store
        return (
            self.door.core.is_welcomed
            and store.queued_count() == 0
            and not self.door.core.awaiting_answers
            and (store.cursor() or 0) >= head
        )


def _watch(load: LoadDoor, clock: Callable[[], float]) -> None:
    """Hook the harness's notes into the door's public seams (the door's logic is untouched)."""
    core, store = load.door.core, load.door.store
    receive, connected, disconnected = core.receive_frame, core.connected, core.disconnected
    apply_changes = store.apply_changes

    def receive_frame(data: bytes | str, now: float) -> None:
        was_welcomed = core.is_welcomed
        receive(data, now)
        if core.is_welcomed and not was_welcomed and len(load.downs) > len(load.gaps):
            load.gaps.append(clock() - load.downs[-1])

    def on_open(now: float) -> None:
        if len(load.downs) > len(load.opens):
            load.opens.append(clock() - load.downs[-1])
        connected(now)

    def on_close(now: float, close_code: int | None = None) -> None:
        if core.is_welcomed:
            load.downs.append(clock())
        code = str(close_code)
        load.close_codes[code] = load.close_codes.get(code, 0) + 1
        disconnected(now, close_code)

    def apply(items: Sequence[Mapping[str, Any]], *, own_device: str, now: float) -> bool:
        revoked = apply_changes(items, own_device=own_device, now=now)
        at = clock()
        for item in items:
            if item.get("kind") == "scan.accepted":
                scan = item["scan"]
                load.seen.setdefault((scan["device_id"], scan["scan_id"]), at)
        return revoked

    core.receive_frame = receive_frame  # type: ignore[method-assign]
    core.connected = on_open  # type: ignore[method-assign]
    core.disconnected = on_close  # type: ignore[method-assign]
    store.apply_changes = apply  # type: ignore[method-assign]


async def start_doors(venue: Venue) -> list[LoadDoor]:
    """Start a door on each home of `venue`; returns once every one is caught up and welcomed."""
    loop = asyncio.get_running_loop()
    doors: list[LoadDoor] = []
    for home in venue.homes:
        load = LoadDoor(None)  # type: ignore[arg-type]

        def new_scan_id(load: LoadDoor = load) -> str:
            scan_id = str(uuid.uuid4())
            load.offered[scan_id] = loop.time()
            return scan_id

        def on_event(event: DoorEvent, load: LoadDoor = load) -> None:
            if isinstance(event, Notice):
                load.notices[event.code] = load.notices.get(event.code, 0) + 1
            shown = isinstance(event, VerdictShown) and event.scan_id and not event.repeat
            if shown and event.scan_id not in load.verdicts:
                load.verdicts[event.scan_id] = event
                if event.source == "hub" and event.accepted:
                    load.hub_accepted[event.scan_id] = loop.time()

        options = DoorOptions(list_id=venue.list_id)
        load.door = Door(home, options, on_event=on_event, new_scan_id=new_scan_id)
        _watch(load, loop.time)
        doors.append(load)
    for load in doors:
        await load.door.start()
    within = 60.0 + 0.5 * len(doors)  # each door downloads a snapshot first
    deadline = loop.time() + within
    while not all(d.door.core.is_caught_up for d in doors):
        assert loop.time() < deadline, f"doors not caught up within {within:g} s"
        await asyncio.sleep(0.1)
    return doors


async def stop_doors(doors: Iterable[LoadDoor]) -> None:
    await asyncio.gather(*(load.door.stop() for load in doors), return_exceptions=True)


async def scan_for(doors: list[LoadDoor], venue: Venue, plan: LoadPlan) -> None:
    """Every door reads a code every 1/rate seconds for plan.seconds (phases spread evenly).
    A door that falls behind skips ahead rather than bursting: `offered` counts what was read."""
    loop = asyncio.get_running_loop()
    interval = 1.0 / plan.rate
    start = loop.time()
    end = start + plan.seconds

    async def door_loop(n: int, load: LoadDoor) -> None:
        due = start + interval * n / len(doors)
        while due < end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            before = len(load.offered)
            load.door.scan(venue.tokens[next(venue.reads) % len(venue.tokens)])
            if len(load.offered) == before:
                load.unrecorded += 1
            due = max(due + interval, loop.time() - interval)

    await asyncio.gather(*(door_loop(n, load) for n, load in enumerate(doors)))


async def event_head(database_url: str, event_id: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                'SELECT coalesce(max(seq), 0) FROM "change" WHERE event_id = $1', event_id
            )
        )
    finally:
        await connection.close()


async def settle(doors: list[LoadDoor], database_url: str, event_id: str, within: float) -> bool:
    """Wait until every door is settled on the log's head (re-read: uploads move it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        head = await event_head(database_url, event_id)
        if all(load.is_settled(head) for load in doors):
            return True
        await asyncio.sleep(0.25)
    return False


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


@dataclass
class LoadReport:
    doors: int
    seconds: float
    offered: int
    recorded: int
    lost: int  # offered, recorded, lost, duplicated: all runs on this venue so far
    duplicated: int
    unknown: int  # rows of the event no door offered
    refused: int  # scans the hub stored as refused
    offered_in_run: int  # of `offered`, those read in this run (the others: earlier runs)
    door_decided: int  # scans decided offline (socket down, or no answer in time)
    unrecorded: int
    settled: bool
    fanout: list[tuple[float, float]]  # (accepted at, delay) per scan and other door
    fanout_all: list[tuple[float, float]]  # (accepted at, delay until the last other door)
    missing: int  # (scan, door) pairs never seen
    gaps: list[float]
    opens: list[float]  # from a close to the next socket open (the rest of a gap: the welcome)
    closed: int  # doors whose socket closed at least once
    started: float  # the loop time scanning began
    harness_cpu: float  # CPU seconds of this process while scanning (the doors' own cost)
    notices: dict[str, int]  # what the doors noticed, by code, all doors together
    close_codes: dict[str, int] = field(default_factory=dict)  # close code -> sockets closed
    server_cpu: float = 0.0  # CPU seconds of the server processes while scanning

    def fanout_between(self, low: float, high: float) -> list[float]:
        """Delays of scans accepted between `low` and `high` seconds after scanning began."""
        return [d for at, d in self.fanout if low <= at - self.started < high]

    def figures(self, low: float = 0.0, high: float = float("inf")) -> dict[str, Any]:
        window = self.fanout_between(low, high)
        return {
            "doors": self.doors,
            "seconds": self.seconds,
            "offered": self.offered,
            "offered_in_run": self.offered_in_run,
            "offered_per_s": round(self.offered_in_run / self.seconds, 1),
            "recorded": self.recorded,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unknown": self.unknown,
            "refused": self.refused,
            "door_decided": self.door_decided,
            "unrecorded": self.unrecorded,
            "settled": self.settled,
            "missing": self.missing,
            "fanout_samples": len(window),
            "fanout_p50_ms": round(percentile(window, 0.5) * 1000, 1),
            "fanout_p99_ms": round(percentile(window, 0.99) * 1000, 1),
            "fanout_all_p99_ms": round(
                percentile([d for a, d in self.fanout_all if low <= a - self.started < high], 0.99)
                * 1000,
                1,
            ),
            "closed": self.closed,
            "gap_max_s": round(max(self.gaps), 2) if self.gaps else None,
            "gap_p50_s": round(percentile(self.gaps, 0.5), 2) if self.gaps else None,
            "open_max_s": round(max(self.opens), 2) if self.opens else None,
            "open_p50_s": round(percentile(self.opens, 0.5), 2) if self.opens else None,
            "harness_cpu_s": round(self.harness_cpu, 1),
            "server_cpu_s": round(self.server_cpu, 1),
            "server_cpu_per_scan_ms": round(
                1000 * self.server_cpu / max(1, self.offered_in_run), 2
            ),
            "notices": self.notices,
            "close_codes": self.close_codes,
        }

    def assert_exactly_once(self) -> None:
        assert self.settled, "queues did not drain or doors did not catch up in time"
        assert self.unrecorded == 0, f"{self.unrecorded} reads were not recorded by their door"
        assert self.offered > 0
        assert (self.lost, self.duplicated, self.unknown) == (0, 0, 0), self.figures()
        assert self.recorded == self.offered, self.figures()
        assert self.refused == 0, self.figures()
        assert self.missing == 0, self.figures()


async def run_load(
    doors: list[LoadDoor],
    venue: Venue,
    plan: LoadPlan,
    database_url: str,
    *,
    during: Callable[[float], Any] | None = None,
    servers: Sequence[int] = (),
) -> LoadReport:
    """Scan for plan.seconds; `during(started)` (a coroutine function) runs beside the scanning,
    to inject a fault. Then settle, and check the database. The doors keep running. `servers`:
    the pids whose process trees' CPU is the server's (measured over the scanning)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    cpu = _own_cpu()
    server_cpu = tree_cpu_seconds(servers)
    tasks = [asyncio.create_task(scan_for(doors, venue, plan))]
    if during is not None:
        tasks.append(asyncio.create_task(during(started)))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    cpu = _own_cpu() - cpu
    server_cpu = tree_cpu_seconds(servers) - server_cpu
    settled = await settle(doors, database_url, venue.event_id, plan.settle)
    report = await _report(doors, venue, plan, database_url, started, settled)
    report.harness_cpu = cpu
    report.server_cpu = server_cpu
    return report


def _own_cpu() -> float:
    usage = os.times()
    return usage.user + usage.system


async def _report(
    doors: list[LoadDoor],
    venue: Venue,
    plan: LoadPlan,
    database_url: str,
    started: float,
    settled: bool,
) -> LoadReport:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT device_id, scan_id, accepted FROM scan WHERE event_id = $1", venue.event_id
        )
        repeated = await connection.fetchval(
            """SELECT count(*) FROM (
                 SELECT 1 FROM "change" WHERE event_id = $1 AND kind = 'scan.accepted'
                 GROUP BY payload->'scan'->>'device_id', payload->'scan'->>'scan_id'
                 HAVING count(*) > 1) AS twice""",
            venue.event_id,
        )
    finally:
        await connection.close()
    offered = {(load.device_id, scan_id) for load in doors for scan_id in load.offered}
    stored = {(row["device_id"], row["scan_id"]) for row in rows}
    fanout: list[tuple[float, float]] = []
    fanout_all: list[tuple[float, float]] = []
    missing = 0
    for load in doors:
        others = [d for d in doors if d is not load]
        for scan_id in load.hub_accepted:
            at = load.offered[scan_id]  # read at its door: the hub's decision is part of it
            if at < started:
                continue  # an earlier run's
            key = (load.device_id, scan_id)
            delays = []
            for other in others:
                seen = other.seen.get(key)
                if seen is None:
                    missing += 1
                else:
                    delays.append(seen - at)
            fanout += [(at, d) for d in delays]
            if delays:
                fanout_all.append((at, max(delays)))
    return LoadReport(
        doors=len(doors),
        seconds=plan.seconds,
        offered=len(offered),
        recorded=len(stored),
        lost=len(offered - stored),
        duplicated=int(repeated or 0),
        unknown=len(stored - offered),
        offered_in_run=sum(1 for load in doors for t in load.offered.values() if t >= started),
        refused=sum(1 for row in rows if not row["accepted"]),
        door_decided=sum(1 for load in doors for v in load.verdicts.values() if v.source == "door"),
        unrecorded=sum(load.unrecorded for load in doors),
        settled=settled,
        fanout=fanout,
        fanout_all=fanout_all,
        missing=missing,
        gaps=[g for load in doors for g in load.gaps],
        opens=[g for load in doors for g in load.opens],
        closed=sum(1 for load in doors if load.downs),
        started=started,
        harness_cpu=0.0,
        notices=_sum_notices(doors),
        close_codes=_sum(load.close_codes for load in doors),
    )


def _sum_notices(doors: Iterable[LoadDoor]) -> dict[str, int]:
    return _sum(load.notices for load in doors)


def _sum(tallies: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for tally in tallies:
        for code, count in tally.items():
            out[code] = out.get(code, 0) + count
    return out


def print_figures(label: str, figures: Mapping[str, Any]) -> None:
    """One JSON line of figures on stdout (pytest -s shows it; the report quotes it)."""
    print(json.dumps({"run": label, **figures, "at": time.strftime("%H:%M:%S")}), flush=True)


async def probe_fanout(
    doors: list[LoadDoor], venue: Venue, count: int, within: float
) -> list[float | None]:
    """With the doors otherwise idle, `count` doors scan one code each, one after the other:
    for each, seconds from the hub's verdict until every other door applied its change (None:
    not within `within`). Idle, a room reads the log only on a notice or its heal, so a probe
    shows whether notices cross between the instances."""
    delays: list[float | None] = []
    for n, load in enumerate(doors[:count]):
        before = set(load.offered)
        load.door.scan(venue.tokens[n % len(venue.tokens)])
        [scan_id] = set(load.offered) - before
        key = (load.device_id, scan_id)
        others = [d for d in doors if d is not load]

        def arrived(
            load: LoadDoor = load, others: list[LoadDoor] = others, key: tuple[str, str] = key
        ) -> bool:
            return key[1] in load.hub_accepted and all(key in d.seen for d in others)

        if await wait_for_state(arrived, within):
            delays.append(max(d.seen[key] for d in others) - load.hub_accepted[scan_id])
        else:
            delays.append(None)
    return delays
