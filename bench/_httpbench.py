"""The asyncio HTTP load of the REST benchmarks, the server's CPU from /proc, the bare baseline.

`http_load` is a closed loop over `connections` keep-alive HTTP/1.1 connections, one request in
flight on each (as wrk's connections), written on `asyncio.Protocol` without an HTTP library:
httpx costs 1.6-2.2 ms of client CPU a request here and then measures itself (docs/performance.md,
"wrk against asyncio"); this client costs ~0.05 ms. Each request's bytes come from
`make(connection, n)`, n counting the whole run's requests, so a bench decides which device a
connection speaks for and which ticket request n scans. Answers are read by Content-Length
(Tessera and uvicorn never chunk these small bodies).

`tree_cpu_seconds(pid)` counts the process and every descendant alive at the reading (a server
started through a wrapper, or with worker processes, is counted whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.proc_tree import tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
Make = Callable[[int, int], bytes]
"""`make(connection, n)`: the bytes of the run's request n, sent on `connection`."""


def own_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    errors: int = 0
    sent: int = 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: `ask(request)` sends it and resolves to (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        stop = head.find(b"\r\n", start)
        length = int(head[start + 15 : stop if stop >= 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def ask(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


async def http_load(
    host: str,
    port: int,
    make: Make,
    *,
    connections: int,
    seconds: float,
    limit: int | None = None,
    server_pid: int | None = None,
    accepted_marker: bytes = b'"verdict":"accepted"',
    accepted_status: int = 200,
) -> dict[str, Any]:
    """Drive `connections` closed loops for `seconds` or `limit` requests, whichever ends first.

    Returns requests, per_second (`accepted_status` answers holding `accepted_marker`),
    answers_per_second,
    p50/p99/max in ms, statuses, errors, the server's CPU per answer (`server_pid`'s tree) and
    this client's own.
    """
    loop = asyncio.get_running_loop()
    opened = [await loop.create_connection(_Connection, host, port) for _ in range(connections)]
    tally = _Tally()
    budget = limit if limit is not None else 1 << 62

    async def closed_loop(index: int, connection: _Connection, deadline: float) -> None:
        while tally.sent < budget and time.perf_counter() < deadline:
            n = tally.sent
            tally.sent += 1
            began = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(connection.ask(make(index, n)), 30)
            except (OSError, TimeoutError, ValueError):
                tally.errors += 1
                return
            tally.latencies.append(time.perf_counter() - began)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status == accepted_status and accepted_marker in body:
                tally.accepted += 1

    server_cpu = tree_cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu, started = own_cpu_seconds(), time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(closed_loop(i, c, deadline) for i, (_, c) in enumerate(opened)))
    elapsed = time.perf_counter() - started
    client_cpu = own_cpu_seconds() - client_cpu
    server_cpu = (tree_cpu_seconds(server_pid) - server_cpu) if server_pid else 0.0
    for transport, _ in opened:
        transport.close()
    answers = len(tally.latencies)
    return {
        "requests": answers,
        "seconds": round(elapsed, 3),
        "per_second": round(tally.accepted / elapsed),
        "answers_per_second": round(answers / elapsed),
        "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 2),
        "max_ms": round(max(tally.latencies, default=0.0) * 1000, 2),
        "accepted": tally.accepted,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": tally.errors,
        "server_cpu_ms": round(server_cpu * 1000 / max(1, answers), 3),
        "server_cpu_share": round(server_cpu / elapsed, 2),  # of one core
        "client_cpu_ms": round(client_cpu * 1000 / max(1, answers), 3),
        "client_cpu_share": round(client_cpu / elapsed, 2),
    }


def post(host: str, path: str, body: bytes, token: str | None = None) -> bytes:
    """The bytes of one keep-alive JSON POST."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@contextlib.contextmanager
def bare_server(port: int) -> Iterator[int]:
    """The baseline: bench/_echo_app.py (bare Litestar) on uvicorn, as `tessera serve` runs it
    (uvloop, httptools, no permessage-deflate), no access log. Yields its pid."""
    command = [sys.executable, "-m", "uvicorn", "bench._echo_app:app", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    command += ["--loop", "uvloop", "--http", "httptools", "--ws-per-message-deflate", "false"]
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    try:
        yield process.pid
    finally:
        process.terminate()
        process.wait(15)


async def wait_port(host: str, port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


@contextlib.contextmanager
def profiled(pid: int) -> Iterator[None]:
    """With BENCH_PYSPY=FILE, py-spy samples `pid` meanwhile (collapsed stacks into FILE).

    py-spy is a profiling tool installed into the venv by hand (`pip install py-spy`), not a
    dependency. Blocking sampling (py-spy pauses the server for each sample): `--nonblocking`
    reads the stacks of a running interpreter and lost a third of the frames in our runs.
    """
    target = os.environ.get("BENCH_PYSPY")
    if not target:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--rate", "200"]
    command += ["--format", "raw", "--output", target, "--threads"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    try:
        yield
    finally:
        process.send_signal(2)
        process.wait(60)
