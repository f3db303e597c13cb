"""Fan-out latency of an accepted scan to 200 connected devices, beside a bare broadcast server.

Starts a real Tessera server as `make run` does (`tessera serve`; scratch SQLite by default,
or PostgreSQL, dropped afterwards), pairs 201 devices of one event, connects them all, has 200 of
them `hello` at the head, and makes the 201st scan `--scans` distinct tickets one after the
other. For each scan it measures, for every listening device, the time from sending the `scan`
to receiving the `changes` frame carrying it (so it includes the redeem transaction, the notice,
the change-log read and the 200 sends).

Baseline, same run, same client code: a bare `websockets` server (its own process) that
broadcasts every frame it receives to the 200 others, padded to the size of the Tessera
`changes` frame measured just before.

The scanning device sends `--scans` scans (200 by default) in a few seconds: far inside its
scan-item budget (5,000-scan burst, then 50/s; server/checkin/writer.py). Its answers are
counted (accepted, rejected, rate_limited, other errors) and the script exits 1 unless every scan
was accepted, so a refused scan cannot pass for a fast one (a refused scan is never fanned out,
so its wait would also time out).

Prints one JSON line per contender: devices, scans, samples, p50_ms, p99_ms, max_ms,
p99_last_device_ms (per scan, the slowest device), frame_bytes, the scanner's answers,
server_cpu_ms_per_scan (the server process over the measured scans, /proc, i.e. the redeem plus
its 200 sends), versions.

Run: ``.venv/bin/python bench/fanout.py [--backend sqlite|postgresql] [--devices N] [--scans N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from _wsbench import (  # bench/ is on sys.path when a script of it runs
    VERSIONS,
    cpu_seconds,
    free_port,
    percentile,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


class Listeners:
    """Arrival times of frames by id across every listening socket."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.arrivals: dict[str, list[float]] = {}
        self.done: dict[str, asyncio.Event] = {}
        self.frame_bytes = 0

    def expect(self, frame_id: str) -> asyncio.Event:
        self.arrivals[frame_id] = []
        self.done[frame_id] = asyncio.Event()
        return self.done[frame_id]

    def arrived(self, frame_id: str, now: float, size: int) -> None:
        times = self.arrivals.get(frame_id)
        if times is None:
            return
        times.append(now)
        self.frame_bytes = size
        if len(times) == self.count:
            self.done[frame_id].set()

    async def listen(self, ws: ClientConnection, ids_of: Any) -> None:
        async for message in ws:
            now = time.perf_counter()
            for frame_id in ids_of(json.loads(message)):
                self.arrived(frame_id, now, len(message))


def _scan_ids(frame: dict[str, Any]) -> list[str]:
    if frame.get("type") != "changes":
        return []
    return [i["scan"]["scan_id"] for i in frame["items"] if i.get("kind") == "scan.accepted"]


def _baseline_ids(frame: dict[str, Any]) -> list[str]:
    return [frame["id"]] if frame.get("type") == "changes" else []


async def _measure(
    listeners: Listeners, scanner: ClientConnection, frames: list[tuple[str, str]]
) -> dict[str, Any]:
    """Send each `(id, frame)`, wait for its answer and for every listener; latencies."""
    samples: list[float] = []
    slowest: list[float] = []
    for frame_id, frame in frames:
        done = listeners.expect(frame_id)
        started = time.perf_counter()
        await scanner.send(frame)
        await asyncio.wait_for(done.wait(), WAIT)
        latencies = [t - started for t in listeners.arrivals.pop(frame_id)]
        samples += latencies
        slowest.append(max(latencies))
    return {
        "devices": listeners.count,
        "scans": len(frames),
        "samples": len(samples),
        "p50_ms": round(percentile(samples, 0.50) * 1000, 2),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
        "p99_last_device_ms": round(percentile(slowest, 0.99) * 1000, 2),
        "frame_bytes": listeners.frame_bytes,
    }


async def _drain_scanner(scanner: ClientConnection, answers: dict[str, int]) -> None:
    """Read the scanner's frames so that nothing backs up, counting its answers."""
    async for message in scanner:
        frame = json.loads(message)
        if frame.get("type") == "result":
            answers[str(frame.get("verdict"))] += 1
        elif frame.get("type") == "error":
            answers["rate_limited" if frame.get("code") == "rate_limited" else "errors"] += 1


async def _tessera(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with scratch_database(args.backend, tmp) as url:
        with tessera_server(url, tmp / "keys") as (base, pid):
            await wait_ready(base)
            event = await setup_event(base, url, tickets=args.scans + 5, devices=args.devices + 1)
            ws_url = "ws" + base.removeprefix("http") + "/ws/scanner"
            listeners = Listeners(args.devices)
            sockets = []
            for token in event.device_tokens[: args.devices]:
                ws = await _connect(ws_url, token)
                await ws.send(json.dumps({"type": "hello", "cursor": None}))
                welcome = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "hello", "cursor": welcome["head"]}))
                assert json.loads(await ws.recv())["type"] == "welcome"
                sockets.append(ws)
            tasks = [asyncio.create_task(listeners.listen(ws, _scan_ids)) for ws in sockets]
            scanner = await _connect(ws_url, event.device_tokens[-1])
            answers = dict.fromkeys(("accepted", "rejected", "rate_limited", "errors"), 0)
            drain = asyncio.create_task(_drain_scanner(scanner, answers))
            frames = []
            for code in event.codes[: args.scans]:
                scan_id = str(uuid.uuid4())
                body = {"type": "scan", "scan_id": scan_id, "code": code, "list_id": event.list_id}
                frames.append((scan_id, json.dumps(body)))
            warm = [(i, f) for i, f in frames[:3]]
            await _measure(listeners, scanner, warm)
            cpu = cpu_seconds(pid)
            result = await _measure(listeners, scanner, frames[3:])
            cpu = cpu_seconds(pid) - cpu
            result["server_cpu_ms_per_scan"] = round(cpu * 1000 / max(1, result["scans"]), 2)
            await asyncio.sleep(0.2)  # the last answers
            for task in [*tasks, drain]:
                task.cancel()
            for ws in [*sockets, scanner]:
                await ws.close()
            return {"contender": "tessera", "backend": args.backend} | result | answers


async def _baseline(args: argparse.Namespace, frame_bytes: int) -> dict[str, Any]:
    port = free_port()
    process = _start_baseline(port, frame_bytes)
    try:
        url = f"ws://127.0.0.1:{port}"
        for _ in range(200):
            try:
                await (await _connect(url, None)).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        listeners = Listeners(args.devices)
        sockets = [await _connect(url, None) for _ in range(args.devices)]
        tasks = [asyncio.create_task(listeners.listen(ws, _baseline_ids)) for ws in sockets]
        scanner = await _connect(url, None)
        drain = asyncio.create_task(_drain_scanner(scanner, defaultdict(int)))
        frames = []
        for _ in range(args.scans):
            frame_id = str(uuid.uuid4())
            frames.append((frame_id, json.dumps({"type": "scan", "id": frame_id})))
        await _measure(listeners, scanner, frames[:3])
        cpu = cpu_seconds(process.pid)
        result = await _measure(listeners, scanner, frames[3:])
        cpu = cpu_seconds(process.pid) - cpu
        result["server_cpu_ms_per_scan"] = round(cpu * 1000 / max(1, result["scans"]), 2)
        for task in [*tasks, drain]:
            task.cancel()
        for ws in [*sockets, scanner]:
            await ws.close()
        return {"contender": "bare_websockets_broadcast"} | result
    finally:
        process.terminate()
        process.wait(15)


def _start_baseline(port: int, frame_bytes: int) -> subprocess.Popen[bytes]:
    script = ROOT / "bench" / "_broadcast_server.py"
    return subprocess.Popen([sys.executable, str(script), str(port), str(frame_bytes)])


async def _connect(url: str, token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await connect(url, additional_headers=headers, compression=None, max_size=None)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--scans", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tessera = await _tessera(args, Path(tmp))
    print(json.dumps(tessera | {"versions": VERSIONS}), flush=True)
    baseline = await _baseline(args, tessera["frame_bytes"])
    print(json.dumps(baseline | {"versions": VERSIONS}), flush=True)
    if tessera["accepted"] != args.scans:
        raise SystemExit(f"fanout: {args.scans - tessera['accepted']} scans not accepted (above)")


if __name__ == "__main__":
    asyncio.run(main())
