"""Faults under load on docker/compose.yaml's topology (issue 19, item 5).

Each test starts the topology from plain processes (tests/e2e/topology.py: two `tessera serve`
on PostgreSQL and Redis, the worker, Debian's nginx in front), pairs DOORS real door engines to
one event through the proxy (tests/e2e/door_load.py), lets them scan real tokens at RATE scans/s
each for WINDOW seconds, injects one fault in the middle, and then checks against PostgreSQL that
every scan offered is stored exactly once: none lost, none duplicated. Each prints its figures
(scans offered, recorded, duplicated, lost; fan-out p50/p99 before, during and after the fault)
as one JSON line; `pytest -s` shows them.

- `kill -9` of one instance: the doors it held lose their sockets, decide offline meanwhile,
  reconnect to the other instance through the proxy within RECONNECT seconds, and upload.
- Redis stopped and started again on the same port (a private redis-server): fan-out between the
  instances resumes, the doors heal from the change log, no scan is lost.
- A slow door (its socket open, reading nothing) does not delay the others' fan-out.

WINDOW is 15 s, a quarter of the issue's 60 s, and DOORS 20 of its 50, so that the whole suite
stays well inside CI's 20 minutes on the two-core machine: TESSERA_TEST_LOAD_WINDOW=60 and
TESSERA_TEST_LOAD_DOORS=50 run the issue's shape (the figures in docs/performance.md are of 30 s
runs). RATE is the issue's 10 scans/s a door. On the shared 2-core machine 50 doors offered
fewer scans than 25 (60-120/s against 140/s) and, with every door and both instances starved, a
door cut off by the kill waited 4-5 s for the surviving instance to even open its socket
(docs/decisions/0015). The `load` tests run one at a time (tests/conftest.py), never two
side by side.
What a loaded machine cannot offer is not offered (a door that falls behind skips ahead), and
the printed `offered_per_s` says how much was. No assertion is on throughput or on fan-out
speed beyond what each fault's promise needs. These are `load` tests: `-m "not load"` leaves
them out, `make test` runs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.checkin.hub import HubConfig
from tests.e2e.door_load import (
    LoadPlan,
    LoadReport,
    Venue,
    door_homes,
    percentile,
    prepare_venue,
    print_figures,
    probe_fanout,
    run_load,
    start_doors,
    stop_doors,
)
from tests.e2e.topology import Topology, topology
from tests.live import free_port

pytestmark = pytest.mark.load

WINDOW = float(os.environ.get("TESSERA_TEST_LOAD_WINDOW", "15"))  # seconds of scanning per test
DOORS = int(os.environ.get("TESSERA_TEST_LOAD_DOORS", "20"))
RATE = 10.0  # scans per second per door
TICKETS = 1000
RECONNECT = 5.0  # seconds a door may take to be welcomed again after its instance died
WAIT = 15.0


def _plan() -> LoadPlan:
    return LoadPlan(doors=DOORS, rate=RATE, seconds=WINDOW, tickets=TICKETS)


@pytest.fixture
def homes() -> Iterator[Path]:
    with door_homes() as where:
        yield where


async def _venue(deployment: Topology, workdir: Path, doors: int) -> Venue:
    token = deployment.tessera("token", "create", "--name", "load").strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=deployment.proxy, headers=headers, timeout=WAIT) as api:
        return await prepare_venue(api, workdir, doors=doors, tickets=TICKETS)


def _phases(report: LoadReport, fault: float, healed: float) -> dict[str, Any]:
    """Fan-out p99 before the fault, while it lasts (until `healed` s), and after."""
    out: dict[str, Any] = {}
    for name, low, high in (
        ("before", 0.0, fault),
        ("during", fault, healed),
        ("after", healed, float("inf")),
    ):
        window = report.fanout_between(low, high)
        out[f"fanout_{name}_p50_ms"] = round(percentile(window, 0.5) * 1000, 1)
        out[f"fanout_{name}_p99_ms"] = round(percentile(window, 0.99) * 1000, 1)
    return out


# --- kill -9 ------------------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Topology]:
    with topology(tmp_path / "topology") as running:
        yield running


def test_kill_9_of_one_instance_moves_its_doors_to_the_other_and_loses_no_scan(
    deployment: Topology, homes: Path
) -> None:
    report = asyncio.run(_kill_one(deployment, homes))
    assert report.closed > 0, "no door was on the killed instance"
    assert len(report.gaps) >= report.closed
    assert max(report.gaps) <= RECONNECT, sorted(report.gaps)[-5:]
    report.assert_exactly_once()


async def _kill_one(deployment: Topology, tmp_path: Path) -> LoadReport:
    plan = _plan()
    venue = await _venue(deployment, tmp_path, plan.doors)
    victim = next(iter(deployment.instances))
    fault = plan.seconds / 3

    async def kill(started: float) -> None:
        await asyncio.sleep(max(0.0, started + fault - asyncio.get_running_loop().time()))
        deployment.processes[victim].kill()

    doors = await start_doors(venue)
    try:
        report = await run_load(doors, venue, plan, deployment.database_url, during=kill)
    finally:
        await stop_doors(doors)
    print_figures(
        "kill -9",
        report.figures() | _phases(report, fault, fault + RECONNECT) | {"gaps": len(report.gaps)},
    )
    return report


# --- Redis restarted ----------------------------------------------------------------------------

REDIS_DOWN = 5.0  # seconds Redis stays stopped
HEAL = HubConfig().heal_interval  # a room's own re-read after this much silence
PROBES = 6  # idle scans after the run, each must cross the instances faster than a heal


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, stopped and started at will
    (the machine's Redis is never touched)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install -y redis-server)")
        self.binary = binary

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + WAIT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "the private redis-server did not start"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def on_private_redis(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[Topology]:
    with topology(tmp_path / "topology", redis_url=private_redis.url) as running:
        yield running


def test_a_redis_restart_under_load_loses_no_scan_and_fan_out_between_instances_resumes(
    on_private_redis: Topology, private_redis: PrivateRedis, homes: Path
) -> None:
    report, probes = asyncio.run(_restart_redis(on_private_redis, private_redis, homes))
    report.assert_exactly_once()
    # Idle, only a notice carried by Redis brings one instance's scan to the other's doors
    # before the heal: every probe arrives well inside it once Redis is back.
    assert all(p is not None and p < HEAL / 2 for p in probes), probes


async def _restart_redis(
    deployment: Topology, server: PrivateRedis, homes: Path
) -> tuple[LoadReport, list[float | None]]:
    plan = _plan()
    venue = await _venue(deployment, homes, plan.doors)
    fault = plan.seconds / 3

    async def restart(started: float) -> None:
        await asyncio.sleep(max(0.0, started + fault - asyncio.get_running_loop().time()))
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(REDIS_DOWN)
        await asyncio.to_thread(server.start)

    doors = await start_doors(venue)
    try:
        report = await run_load(
            doors,
            venue,
            plan,
            deployment.database_url,
            during=restart,
            servers=_servers(deployment),
        )
        await asyncio.sleep(2.0)  # the listeners' backoff is at most 2 s
        probes = await probe_fanout(doors, venue, PROBES, within=HEAL * 2)
    finally:
        await stop_doors(doors)
    print_figures(
        "redis restart",
        report.figures()
        | _phases(report, fault, fault + REDIS_DOWN)
        | {"probes_ms": [None if p is None else round(p * 1000, 1) for p in probes]},
    )
    return report, probes


def _servers(deployment: Topology) -> list[int]:
    return [deployment.processes[name].popen.pid for name in deployment.instances]


# --- a slow door --------------------------------------------------------------------------------

SLOW = 30.0  # seconds the slow door reads nothing (the 30 s)
# Half the doors scan beside it: the longest of these tests, and the claim (nobody waits for the
# slow socket) is about the hub's sends, which a heavier load does not change.
SLOW_DOORS = max(1, DOORS // 2)


def test_a_door_that_reads_nothing_does_not_delay_the_others_fan_out(
    deployment: Topology, homes: Path
) -> None:
    quick, slowed, slow = asyncio.run(_slow_door(deployment, homes))
    quick.assert_exactly_once()
    slowed.assert_exactly_once()
    assert slow["unread_bytes"] > 0 or slow["closed_by_hub"], slow
    # A fan-out that waited on the slow socket would hold the others for the slow door's whole
    # SLOW seconds; they may only see the load's own noise.
    assert max(d for _, d in slowed.fanout) < SLOW / 3, percentile(
        [d for _, d in slowed.fanout], 1.0
    )


async def _slow_door(
    deployment: Topology, homes: Path
) -> tuple[LoadReport, LoadReport, dict[str, Any]]:
    plan = LoadPlan(doors=SLOW_DOORS, rate=RATE, seconds=SLOW, tickets=TICKETS)
    quick_plan = LoadPlan(doors=SLOW_DOORS, rate=RATE, seconds=WINDOW / 2, tickets=TICKETS)
    venue = await _venue(deployment, homes, plan.doors + 1)
    slow_home = venue.homes.pop()  # paired like the others, but no engine behind it
    credentials = json.loads((slow_home / "device.json").read_text())
    doors = await start_doors(venue)
    try:
        quick = await run_load(
            doors, venue, quick_plan, deployment.database_url, servers=_servers(deployment)
        )
        async with connect(
            credentials["ws_url"],
            additional_headers={"Authorization": f"Bearer {credentials['token']}"},
            max_queue=1,  # once one frame waits unread, websockets stops reading the socket
            ping_interval=None,
            open_timeout=WAIT,
        ) as slow:
            await slow.send(json.dumps({"type": "hello", "cursor": 0}))
            slowed = await run_load(
                doors, venue, plan, deployment.database_url, servers=_servers(deployment)
            )
            slow_figures = await _drain_slow(slow)
    finally:
        await stop_doors(doors)
    figures = {
        "fanout_p99_without_ms": quick.figures()["fanout_p99_ms"],
        "fanout_p99_with_ms": slowed.figures()["fanout_p99_ms"],
        **slow_figures,
    }
    print_figures("without the slow door", quick.figures())
    print_figures("with the slow door", slowed.figures() | figures)
    return quick, slowed, slow_figures


async def _drain_slow(slow: Any) -> dict[str, Any]:
    """What was left for the slow door once it reads again (briefly): unread bytes, or whether
    the hub closed it meanwhile."""
    unread = 0
    closed = False
    try:
        while True:
            frame = await asyncio.wait_for(slow.recv(), 1.0)
            unread += len(frame)
    except TimeoutError:
        pass
    except ConnectionClosed:
        closed = True
    return {"unread_bytes": unread, "closed_by_hub": closed}
