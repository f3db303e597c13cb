"""Server memory (RSS) with 100,000 tickets and 200 open door sockets under load, beside idle.

Issue 17 item 5: the server's resident memory with a large event and many doors must stay under
300 MB. Two real Tessera servers run one after the other, as `make run` runs them (`tessera
serve`, access log on; bench/_wsbench.py), each on its own scratch database (SQLite by default,
`--backend postgresql|both`):

  baseline   an event of 100 tickets, no socket: the server's RSS idle after seeding
  loaded     an event of `--tickets` (100,000) tickets in confirmed bookings of 500; its RSS idle
             after seeding; then `--sockets` (200) paired doors connect, each follows the change
             log from its head (fan-out on: every door receives every other door's accepted
             scans and the counters) and runs a closed loop of `scan` frames for `--seconds`
             (10 s, an unlimited-entry list, so every scan is accepted and fanned out to the 199
             others), while `--snapshots` (4) doors each load the event's snapshot over REST
             (GET /api/v1/checkin/snapshot, all 100,000 tickets) once, concurrently

RSS is the sum of VmRSS over the server's process tree (/proc, read every 0.1 s). Each server
prints one JSON line: RSS idle, at its peak under load and after it (MB), the scans, their rate
and the change frames received; then a `ratio` line (loaded peak / baseline idle) and whether
the peak is under `--limit-mb` (300). Per device the load stays well inside the scan-item budget
(200 sockets share the rate).

Run: ``.venv/bin/python bench/memory.py [--backend sqlite|postgresql|both] [--tickets 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _wsbench import (  # bench/ is on sys.path when a script of it runs
    VERSIONS,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)
from redeem_ws import TICKETS_PER_CLIENT, _follow, _loop, _open, _scan_maker, _stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.proc_tree import tree_rss_bytes


class _Sampler:
    """The peak of `tree_rss_bytes(pid)`, read every `every` seconds while it runs."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, tree_rss_bytes(self.pid))

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            await asyncio.sleep(self.every)


async def _started(base: str) -> None:
    """`wait_ready`, patient: on a crowded machine a start can take longer than its 15 s."""
    for _ in range(3):
        try:
            await wait_ready(base)
            return
        except RuntimeError:
            continue
    await wait_ready(base)


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


async def _snapshot(base: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        response = await client.get("/api/v1/checkin/snapshot", headers=headers)
    assert response.status_code == 200, response.text[:200]
    return len(response.content)


async def _server(backend: str, args: argparse.Namespace, *, tickets: int, load: bool) -> dict:
    sockets = args.sockets if load else 0
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(backend, Path(tmp)) as url:
            with tessera_server(url, Path(tmp) / "keys") as (base, pid):
                await _started(base)
                began = time.monotonic()
                event = await setup_event(
                    base,
                    url,
                    tickets=tickets,
                    devices=sockets + (args.snapshots if load else 0),
                    per_booking=500,
                    max_entries=None,
                )
                seeded = time.monotonic() - began
                await asyncio.sleep(2)
                line: dict[str, Any] = {"bench": "memory", "backend": backend}
                line |= {"tickets": tickets, "sockets": sockets, "seed_seconds": round(seeded)}
                line["rss_idle_mb"] = _mb(tree_rss_bytes(pid))
                if not load:
                    return line
                line |= await _load(base, pid, event, args)
                await asyncio.sleep(2)
                line["rss_after_mb"] = _mb(tree_rss_bytes(pid))
                return line


async def _load(base: str, pid: int, event: Any, args: argparse.Namespace) -> dict[str, Any]:
    ws_url = "ws" + base.removeprefix("http") + "/ws/scanner"
    tokens = event.device_tokens[: args.sockets]
    readers = event.device_tokens[args.sockets :]
    maker = _scan_maker(event.codes, event.list_id, 1)
    stats = _stats(args.sockets)
    async with _Sampler(pid) as sampler:
        sockets = [await _open(ws_url, token) for token in tokens]
        for ws in sockets:
            await _follow(ws)
        connected = tree_rss_bytes(pid)
        started = time.perf_counter()
        deadline = started + args.seconds
        loops = [_loop(ws, maker(n), deadline, stats, n) for n, ws in enumerate(sockets)]
        snapshots = [_snapshot(base, token) for token in readers]
        done = await asyncio.gather(*loops, *snapshots)
        elapsed = time.perf_counter() - started
        for ws in sockets:
            await ws.close()
    return {
        "rss_connected_mb": _mb(connected),
        "rss_peak_mb": _mb(sampler.peak),
        "scans": stats["scans"],
        "accepted": stats["accepted"],
        "scans_per_second": round(stats["scans"] / elapsed),
        "changes_frames": stats["changes_frames"],
        "errors": stats["errors"] + stats["rate_limited"],
        "snapshot_bytes": [size for size in done[len(loops) :]],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--limit-mb", type=float, default=300.0)
    args = parser.parse_args()
    if args.tickets < args.sockets * TICKETS_PER_CLIENT:
        raise SystemExit(f"memory: at least {TICKETS_PER_CLIENT} tickets per socket")
    ok = True
    for backend in ("sqlite", "postgresql"):
        if args.backend not in (backend, "both"):
            continue
        baseline = await _server(backend, args, tickets=100, load=False)
        print(json.dumps(baseline | {"contender": "baseline", "versions": VERSIONS}), flush=True)
        loaded = await _server(backend, args, tickets=args.tickets, load=True)
        print(json.dumps(loaded | {"contender": "loaded", "versions": VERSIONS}), flush=True)
        under = loaded["rss_peak_mb"] < args.limit_mb
        ratio = round(loaded["rss_peak_mb"] / baseline["rss_idle_mb"], 2)
        line = {"bench": "memory", "backend": backend, "ratio_peak_to_baseline_idle": ratio}
        print(json.dumps(line | {"limit_mb": args.limit_mb, "under_limit": under}), flush=True)
        ok = ok and under and not loaded["errors"] and loaded["accepted"] == loaded["scans"]
    if not ok:
        raise SystemExit("memory: over the limit, or some scans were refused (see above)")


if __name__ == "__main__":
    asyncio.run(main())
