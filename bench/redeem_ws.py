"""Online redeem over the websocket, 16 doors of one event with fan-out on, beside an echo.

The shape of issue 17's table. Starts a real Tessera server as `make run` does (`tessera serve`,
access log on) on a scratch database (SQLite by default; `--backend postgresql|both`, a scratch
PostgreSQL database dropped afterwards), an event with an unlimited-entry list (every scan is
accepted) and paired devices at 4 gates, then runs with the same client code, each for the same
time, `--clients` (16) sockets in a closed loop (send, await the answer, repeat):

  ws_echo     a Litestar websocket on uvicorn answering each frame with a result-sized frame:
              the floor of this stack on this machine (no database)
  ws_scan     `scan` -> `result`, one ticket per frame (each socket cycles over its own tickets)
  ws_batch    `scan_batch` of `--batch` scans -> `results` (scans counted, not frames);
              `--batch 0` leaves it out

Fan-out on: before the clock starts, every Tessera socket sends `hello {cursor: head}`, so the
hub streams it every change of the event after that, the other doors' accepted scans and the
counters included, as a door following the change log gets them; the sockets read those frames
while they wait for their own answers, and each line counts them (`changes_frames`,
`changes_items`).

Devices and the scan-item budget. Each device may send ITEM_RATE scans/s (50) with bursts of
ITEM_BURST (5,000), websocket and REST together (server/checkin/writer.py); over it a frame gets
`error {code: "rate_limited"}` and nothing is recorded. Each socket is its own device, and each
contender gets a fresh set of devices (full buckets). A contender runs 1 s of warm-up plus
`--seconds` (8 s by default, at most 20 s): per device that is (scans/s / clients) x 9 s, e.g.
~1,700 scans at 3,000 scans/s over 16 sockets, inside the 5,000-scan burst (budget 5,000 + 50 x
9 = 5,450), so these runs never reach the limiter even though `ws_batch` sends above 50 scans/s
per device (as an offline backlog upload does). Each line says the busiest device's scans beside
its budget, counts `rate_limited` and other error answers, and the script exits 1 when there was
any.

Prints one JSON line per contender: backend, clients, frames, scans, scans_per_second,
p50_ms, p99_ms (per frame), accepted, rate_limited, errors, max_scans_per_device,
item_budget_per_device, server_cpu_ms_per_scan (the server's process tree, /proc) and its CPU
share of one core, then a ratio line against the echo.

Run: ``.venv/bin/python bench/redeem_ws.py [--backend sqlite|postgresql|both] [--seconds 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _httpbench import profiled
from _httpbench import tree_cpu_seconds as cpu_seconds
from _wsbench import (  # bench/ is on sys.path when a script of it runs
    VERSIONS,
    free_port,
    item_budget,
    percentile,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
TICKETS_PER_CLIENT = 50
WARM_UP = 1.0
ANSWER_TIMEOUT = 10.0  # seconds; a frame over the frame-rate limit is dropped without answer
MAX_SECONDS = 20.0  # with WARM_UP, inside every device's burst at the rates measured


async def _open(url: str, token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await connect(url, additional_headers=headers, compression=None, max_size=None)


async def _follow(ws: ClientConnection) -> None:
    """Follow the event's change log from its head, as a synced door does (fan-out on)."""
    await ws.send(json.dumps({"type": "hello", "cursor": None}))
    while (welcome := json.loads(await ws.recv()))["type"] != "welcome":
        pass
    await ws.send(json.dumps({"type": "hello", "cursor": welcome["head"]}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass


async def _loop(
    ws: ClientConnection, make_frame: Any, deadline: float, stats: dict[str, Any], n: int
) -> None:
    i = 0
    while time.perf_counter() < deadline:
        frame, scans = make_frame(i)
        i += 1
        started = time.perf_counter()
        await ws.send(frame)
        stats["sent"][n] += scans  # against the device's budget, answered or not
        try:
            while True:
                answer = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT))
                if answer["type"] in ("result", "results", "error"):
                    break
                if answer["type"] == "changes":
                    stats["changes_frames"] += 1
                    stats["changes_items"] += len(answer["items"])
        except TimeoutError:  # a frame dropped unanswered (the frame-rate limit): stop here
            stats["errors"] += 1
            return
        if answer["type"] == "error":  # nothing of the frame recorded: not a scan
            key = "rate_limited" if answer.get("code") == "rate_limited" else "errors"
            stats[key] += 1
            continue
        stats["latencies"].append(time.perf_counter() - started)
        stats["scans"] += scans
        items = answer.get("items", [answer])
        stats["accepted"] += sum(item.get("verdict") == "accepted" for item in items)


def _stats(clients: int) -> dict[str, Any]:
    return {
        "latencies": [],
        "scans": 0,
        "accepted": 0,
        "rate_limited": 0,
        "errors": 0,
        "sent": [0] * clients,
        "changes_frames": 0,
        "changes_items": 0,
    }


async def _contender(
    name: str, url: str, tokens: list[str | None], make: Any, seconds: float, pid: int
) -> dict[str, Any]:
    """`tokens[n]` is socket n's device; `pid` the server process whose CPU is counted."""
    sockets = [await _open(url, token) for token in tokens]
    for ws, token in zip(sockets, tokens, strict=True):
        if token is not None:
            await _follow(ws)
    warm = _stats(len(sockets))
    first = time.perf_counter()
    deadline = first + WARM_UP
    await asyncio.gather(*(_loop(ws, make(n), deadline, warm, n) for n, ws in enumerate(sockets)))
    stats = _stats(len(sockets))
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_loop(ws, make(n), deadline, stats, n) for n, ws in enumerate(sockets)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu
    for ws in sockets:
        await ws.close()
    latencies = stats["latencies"] or [0.0]
    sent = [a + b for a, b in zip(warm["sent"], stats["sent"], strict=True)]
    return {
        "contender": name,
        "clients": len(sockets),
        "frames": len(stats["latencies"]),
        "scans": stats["scans"],
        "scans_per_second": round(stats["scans"] / elapsed),
        "frames_per_second": round(len(stats["latencies"]) / elapsed),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "accepted": stats["accepted"],
        "rate_limited": stats["rate_limited"] + warm["rate_limited"],
        "errors": stats["errors"] + warm["errors"],
        "changes_frames": stats["changes_frames"],
        "changes_items": stats["changes_items"],
        "max_scans_per_device": max(sent),
        "item_budget_per_device": round(item_budget(time.perf_counter() - first)),
        "server_cpu_ms_per_scan": round(cpu * 1000 / max(1, stats["scans"]), 3),
        "server_cpu_share": round(cpu / elapsed, 2),  # of one core
    }


def _scan_maker(codes: list[str], list_id: str, batch: int) -> Any:
    def for_client(n: int) -> Any:
        own = codes[n * TICKETS_PER_CLIENT : (n + 1) * TICKETS_PER_CLIENT]

        def item(i: int) -> dict[str, Any]:
            return {"scan_id": uuid.uuid4().hex, "code": own[i % len(own)], "list_id": list_id}

        def make(i: int) -> tuple[str, int]:
            if batch == 1:
                return json.dumps({"type": "scan", **item(i)}), 1
            items = [item(i * batch + k) for k in range(batch)]
            return json.dumps({"type": "scan_batch", "items": items}), batch

        return make

    return for_client


def _start_echo(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "bench._echo_app:app", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    command += ["--loop", "uvloop", "--http", "httptools", "--ws-per-message-deflate", "false"]
    return subprocess.Popen(command, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})


async def _echo_baseline(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    process = _start_echo(port)
    try:
        for _ in range(200):
            try:
                (await _open(f"ws://127.0.0.1:{port}/ws/echo", None)).transport.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        frame = json.dumps({"type": "scan", "scan_id": uuid.uuid4().hex, "code": "x" * 200})

        def make(_n: int) -> Any:
            return lambda _i: (frame, 1)

        url = f"ws://127.0.0.1:{port}/ws/echo"
        clients: list[str | None] = [None] * args.clients
        result = await _contender("ws_echo", url, clients, make, args.seconds, process.pid)
        for key in ("max_scans_per_device", "item_budget_per_device"):  # no devices here
            del result[key]
        result["server_cpu_ms_per_frame"] = result.pop("server_cpu_ms_per_scan")
        return result
    finally:
        process.terminate()
        process.wait(15)


async def bench_backend(backend: str, args: argparse.Namespace) -> int:
    """Echo, then Tessera's contenders on `backend`; the count of refused frames or scans."""
    common = {"backend": backend, "versions": VERSIONS}
    echo = await _echo_baseline(args)
    print(json.dumps(common | echo), flush=True)
    refused = 0
    contenders = [("ws_scan", 1)] + ([("ws_batch", args.batch)] if args.batch > 1 else [])
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(backend, Path(tmp)) as url:
            with tessera_server(url, Path(tmp) / "keys") as (base, pid):
                await wait_ready(base)
                event = await setup_event(
                    base,
                    url,
                    tickets=args.clients * TICKETS_PER_CLIENT,
                    devices=args.clients * len(contenders),  # a fresh set per contender
                    per_booking=50,
                    max_entries=None,
                )
                ws_url = "ws" + base.removeprefix("http") + "/ws/scanner"
                for k, (name, batch) in enumerate(contenders):
                    tokens: list[str | None] = list(
                        event.device_tokens[k * args.clients : (k + 1) * args.clients]
                    )
                    maker = _scan_maker(event.codes, event.list_id, batch)
                    with profiled(pid) if name == "ws_scan" else contextlib.nullcontext():
                        result = await _contender(name, ws_url, tokens, maker, args.seconds, pid)
                    print(json.dumps(common | result | {"batch": batch}), flush=True)
                    refused += result["rate_limited"] + result["errors"]
                    refused += result["scans"] - result["accepted"]
                    if name == "ws_scan":
                        scan = result
    ratio = {
        "per_second": round(scan["scans_per_second"] / echo["frames_per_second"], 3),
        "server_cpu_ms": round(
            scan["server_cpu_ms_per_scan"] / max(echo["server_cpu_ms_per_frame"], 1e-9), 2
        ),
    }
    line = {"bench": "redeem_ws", "backend": backend, "ratio_ws_scan_to_echo": ratio}
    print(json.dumps(line), flush=True)
    return refused


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=50, help="0: no ws_batch contender")
    parser.add_argument("--seconds", type=float, default=8.0, help=f"at most {MAX_SECONDS:g}")
    args = parser.parse_args()
    args.seconds = min(args.seconds, MAX_SECONDS)  # inside every device's burst (see above)
    refused = 0
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            refused += await bench_backend(backend, args)
    if refused:
        raise SystemExit(f"redeem_ws: {refused} frames or scans refused (see the counts above)")


if __name__ == "__main__":
    asyncio.run(main())
