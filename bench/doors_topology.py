"""Real doors on docker/compose.yaml's topology: 200 doors at 10 scans/s each for 60 s (issue 19).

Starts the topology from plain processes as its test does (tests/e2e/topology.py: a PostgreSQL
database and a Redis key prefix of its own, `tessera migrate`, two `tessera serve`, `tessera
worker`, Debian's nginx on docker/nginx.conf), pairs `--doors` door engines to one event through
the proxy and lets them scan real tokens at `--rate` scans/s each for `--seconds`
(tests/e2e/door_load.py: each door is `tessera-scan`'s own engine with its own journal). Then
checks PostgreSQL: every scan offered stored once.

Baseline, same run, same topology, same harness: `--baseline-doors` doors (10) on an event of
their own, at the same rate per door. Why this and not the bare websocket echo of _wsbench.py:
the question item 6 asks is what 200 doors cost against a few, through the same proxy, Redis
and database; an echo server would measure neither the redeem nor the fan-out, so its ratio
would say nothing about Tessera's scaling with doors.

Prints one JSON line per contender: doors, scans offered (and per second: a loaded machine
offers less than asked, the harness never bursts to catch up), recorded, lost, duplicated,
errors (refused by the hub, decided by a door because no answer came within 1.5 s, reads not
recorded), fan-out p50/p99 (the hub's verdict at one door until each other door applied the
change), the server's CPU per scan (both instances' process trees, /proc) and the proxy's, the
harness's own CPU, versions; then a line of ratios.

Run: ``.venv/bin/python bench/doors_topology.py [--doors 200] [--rate 10] [--seconds 60]``
(nginx and PostgreSQL on 127.0.0.1 as for the tests; TESSERA_TEST_POSTGRES, TESSERA_TEST_REDIS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from _wsbench import VERSIONS  # noqa: E402 (bench/ is on sys.path when a script of it runs)

from tests.e2e.door_load import (  # noqa: E402
    LoadPlan,
    door_homes,
    prepare_venue,
    run_load,
    start_doors,
    stop_doors,
)
from tests.e2e.topology import Topology, topology  # noqa: E402
from tests.proc_tree import tree_cpu_seconds  # noqa: E402


async def _contender(
    deployment: Topology, api: httpx.AsyncClient, homes: Path, plan: LoadPlan
) -> dict[str, Any]:
    venue = await prepare_venue(api, homes, doors=plan.doors, tickets=plan.tickets)
    doors = await start_doors(venue)
    servers = [deployment.processes[name].popen.pid for name in deployment.instances]
    proxy = [deployment.processes["nginx"].popen.pid]
    try:
        proxy_cpu = tree_cpu_seconds(proxy)
        report = await run_load(doors, venue, plan, deployment.database_url, servers=servers)
        proxy_cpu = tree_cpu_seconds(proxy) - proxy_cpu
    finally:
        await stop_doors(doors)
    figures = report.figures()
    errors = figures["refused"] + figures["door_decided"] + figures["unrecorded"]
    return {
        "contender": f"{plan.doors} doors",
        **figures,
        "errors": errors,
        "proxy_cpu_per_scan_ms": round(1000 * proxy_cpu / max(1, report.offered_in_run), 3),
        "versions": VERSIONS,
    }


async def _run(deployment: Topology, args: argparse.Namespace) -> None:
    token = deployment.tessera("token", "create", "--name", "bench").strip()
    headers = {"Authorization": f"Bearer {token}"}
    results = []
    async with httpx.AsyncClient(base_url=deployment.proxy, headers=headers, timeout=30) as api:
        for doors in (args.baseline_doors, args.doors):
            plan = LoadPlan(
                doors=doors,
                rate=args.rate,
                seconds=args.seconds,
                tickets=args.tickets,
                settle=120.0,
            )
            with door_homes() as homes:
                result = await _contender(deployment, api, homes, plan)
            print(json.dumps(result), flush=True)
            results.append(result)
    base, many = results
    print(
        json.dumps(
            {
                "ratio": f"{args.doors} / {args.baseline_doors} doors",
                "fanout_p99": round(many["fanout_p99_ms"] / max(0.1, base["fanout_p99_ms"]), 2),
                "server_cpu_per_scan": round(
                    many["server_cpu_per_scan_ms"] / max(0.01, base["server_cpu_per_scan_ms"]), 2
                ),
                "offered_per_s": round(many["offered_per_s"] / max(0.1, base["offered_per_s"]), 2),
            }
        ),
        flush=True,
    )
    if many["lost"] or many["duplicated"] or not many["settled"]:
        raise SystemExit("doors_topology: scans lost or duplicated (above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doors", type=int, default=200)
    parser.add_argument("--baseline-doors", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0, help="scans per second per door")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tickets", type=int, default=1000)
    args = parser.parse_args()
    if min(args.doors, args.baseline_doors) < 2 or args.rate <= 0 or args.seconds <= 0:
        parser.error("at least 2 doors each, a positive rate and a positive duration")
    with tempfile.TemporaryDirectory() as tmp, topology(Path(tmp)) as deployment:
        asyncio.run(_run(deployment, args))


if __name__ == "__main__":
    main()
