"""Online redeem over the websocket, beside a websocket echo on the same server stack.

Starts a real Tessera server (one uvicorn process, as `tessera serve`) on a scratch database
(PostgreSQL by default, dropped afterwards), an event with an unlimited-entry list (every scan is
accepted) and one paired device per client, then runs with the same client code, each for the
same time, `--clients` sockets in a closed loop (send, await the answer, repeat):

  ws_echo     a Litestar websocket on uvicorn answering each frame with a result-sized frame:
              the floor of this stack on this machine (no database)
  ws_scan     `scan` -> `result`, one ticket per frame (each socket cycles over its own tickets)
  ws_batch    `scan_batch` of `--batch` scans -> `results` (scans counted, not frames)

Prints one JSON line per contender: backend, clients, frames, scans, scans_per_second,
p50_ms, p99_ms (per frame), accepted, versions.

Run: ``.venv/bin/python bench/redeem_ws.py [--backend postgresql|sqlite] [--seconds 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _wsbench import (  # bench/ is on sys.path when a script of it runs
    VERSIONS,
    free_port,
    percentile,
    scratch_database,
    setup_event,
    tessera_server,
    wait_ready,
)
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
TICKETS_PER_CLIENT = 50


async def _open(url: str, token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await connect(url, additional_headers=headers, compression=None, max_size=None)


async def _loop(
    ws: ClientConnection, make_frame: Any, deadline: float, stats: dict[str, Any]
) -> None:
    i = 0
    while time.perf_counter() < deadline:
        frame, scans = make_frame(i)
        started = time.perf_counter()
        await ws.send(frame)
        while True:
            answer = json.loads(await ws.recv())
            if answer["type"] in ("result", "results"):
                break
            if answer["type"] == "error":
                raise RuntimeError(answer)
        stats["latencies"].append(time.perf_counter() - started)
        stats["scans"] += scans
        items = answer.get("items", [answer])
        stats["accepted"] += sum(item.get("verdict") == "accepted" for item in items)
        i += 1


async def _contender(
    name: str, url: str, tokens: list[str | None], make: Any, seconds: float
) -> dict[str, Any]:
    sockets = [await _open(url, token) for token in tokens]
    stats: dict[str, Any] = {"latencies": [], "scans": 0, "accepted": 0}
    # warm-up, then the measured run
    await asyncio.gather(
        *(
            _loop(ws, make(n), time.perf_counter() + 1.0, {**stats, "latencies": []})
            for n, ws in enumerate(sockets)
        )
    )
    stats = {"latencies": [], "scans": 0, "accepted": 0}
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_loop(ws, make(n), deadline, stats) for n, ws in enumerate(sockets)))
    elapsed = time.perf_counter() - started
    for ws in sockets:
        await ws.close()
    latencies = stats["latencies"]
    return {
        "contender": name,
        "clients": len(sockets),
        "frames": len(latencies),
        "scans": stats["scans"],
        "scans_per_second": round(stats["scans"] / elapsed),
        "frames_per_second": round(len(latencies) / elapsed),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "accepted": stats["accepted"],
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
        return await _contender("ws_echo", url, [None] * args.clients, make, args.seconds)
    finally:
        process.terminate()
        process.wait(15)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    common = {"backend": args.backend, "versions": VERSIONS}
    print(json.dumps(common | await _echo_baseline(args)), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(args.backend, Path(tmp)) as url:
            with tessera_server(url, Path(tmp) / "keys") as (base, _pid):
                await wait_ready(base)
                event = await setup_event(
                    base,
                    url,
                    tickets=args.clients * TICKETS_PER_CLIENT,
                    devices=args.clients,
                    max_entries=None,
                )
                ws_url = "ws" + base.removeprefix("http") + "/ws/scanner"
                tokens: list[str | None] = list(event.device_tokens)
                for name, batch in (("ws_scan", 1), ("ws_batch", args.batch)):
                    maker = _scan_maker(event.codes, event.list_id, batch)
                    result = await _contender(name, ws_url, tokens, maker, args.seconds)
                    print(json.dumps(common | result | {"batch": batch}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
