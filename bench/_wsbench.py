"""Shared pieces of the websocket benchmarks: scratch databases, a real server process, an event.

The Tessera server runs as its own process, started as `make run` starts it (`tessera serve`, access
log on); the benchmark clients run in this process. Every scan a device sends counts against its
scan-item budget (`ITEM_RATE` scans/s with bursts of `ITEM_BURST`, server/checkin/writer.py): a
benchmark spreads its load over enough devices that none goes over it, and counts the refusals
(`rate_limited`) so that a throttled run cannot pass for a fast one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from server.auth.service import create_token
from server.checkin import service
from server.checkin.schemas import DeviceCreate
from server.checkin.writer import ITEM_BURST, ITEM_RATE
from server.db import Database, utcnow
from server.db.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get("TESSERA_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
VERSIONS = {
    "python": platform.python_version(),
    "litestar": version("litestar"),
    "uvicorn": version("uvicorn"),
    "websockets": version("websockets"),
    "machine": f"{platform.machine()} x{os.cpu_count()}",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def item_budget(seconds: float) -> float:
    """The most scan items one device may send in `seconds` from a full bucket."""
    return ITEM_BURST + ITEM_RATE * seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.asynccontextmanager
async def scratch_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """A migrated scratch database URL; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'bench.db'}"
        await _migrate(url)
        yield url
        return
    name = f"tessera_bench_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = POSTGRES_ADMIN_URL.rpartition("/")[0] + f"/{name}"
    try:
        await _migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await migrate(database)
    finally:
        await database.dispose()


@contextlib.contextmanager
def tessera_server(
    url: str, keys: Path, *, access_log: bool = True, **env: str
) -> Iterator[tuple[str, int]]:
    """`(base_url, pid)` of a Tessera server on a free port, run as `make run` runs it.

    `tessera serve` (one uvicorn process; uvloop and httptools, which uvicorn picks when they are
    installed; no permessage-deflate) with its defaults, the access log included: one JSON line
    per HTTP request on standard output, which goes to `server.log` beside `keys` (as a service
    manager or a container runtime would collect it). `access_log=False` measures without it.
    Stopped with SIGINT (a graceful stop) on exit.
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    environment |= {
        "TESSERA_DATABASE_URL": url,
        "TESSERA_KEYS_DIR": str(keys),
        "TESSERA_PORT": str(port),
        "TESSERA_ACCESS_LOG": "true" if access_log else "false",
        **env,
    }
    command = [sys.executable, "-m", "server.cli", "serve"]
    if os.environ.get("BENCH_PROFILE"):  # a cProfile of the server, written at its exit
        command[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
    with (keys.parent / "server.log").open("ab") as log:
        process = subprocess.Popen(
            command, env=environment, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.send_signal(signal.SIGINT)  # a graceful stop (and the profile written)
        process.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process `pid` has used so far, all its threads (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


@dataclass
class BenchEvent:
    event_id: str
    list_id: str
    codes: list[str]  # QR tokens
    device_tokens: list[str]


async def setup_event(
    base: str,
    url: str,
    *,
    tickets: int,
    devices: int,
    per_booking: int = 500,
    **list_options: Any,
) -> BenchEvent:
    """An event with `tickets` tickets in confirmed bookings of `per_booking` (at most 500),
    one list and `devices` paired devices, device n at gate G{n mod 4}.

    Devices are created and paired through the service directly: the pairing endpoint is rate
    limited per address, on purpose.
    """
    database = Database(url)
    try:
        async with database.transaction() as session:
            _, organiser = await create_token(session, "bench")
        headers = {"Authorization": f"Bearer {organiser}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as client:
            event = await _post(
                client,
                "/api/v1/events",
                {"name": "Bench", "starts_at": "2031-06-14T20:00:00+02:00", "timezone": "UTC"},
            )
            path = f"/api/v1/events/{event['id']}"
            ticket_type = await _post(client, f"{path}/ticket-types", {"name": "GA"})
            codes: list[str] = []
            while len(codes) < tickets:
                quantity = min(per_booking, tickets - len(codes))  # a booking holds at most 500
                body = {
                    "buyer": {"name": "Bench", "email": "bench@example.org"},
                    "items": [{"ticket_type_id": ticket_type["id"], "quantity": quantity}],
                    "confirm": True,
                }
                booking = await _post(client, f"{path}/bookings", body)
                codes += [t["token"] for t in booking["tickets"]]
            checkin_list = await _post(
                client, f"{path}/checkin-lists", {"name": "Door", **list_options}
            )
        tokens = await pair_devices(database, event["id"], devices)
    finally:
        await database.dispose()
    return BenchEvent(event["id"], checkin_list["id"], codes, tokens)


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text[:300]
    return dict(response.json())


async def pair_devices(database: Database, event_id: str, count: int, first: int = 0) -> list[str]:
    """Tokens of `count` new paired devices, numbered from `first` (gate G{n mod 4})."""
    return [await _pair(database, event_id, n) for n in range(first, first + count)]


async def _pair(database: Database, event_id: str, n: int) -> str:
    async with database.transaction() as session:
        new = await service.create_device(
            session, event_id, DeviceCreate(name=f"Door {n}", gate=f"G{n % 4}"), now=utcnow()
        )
    async with database.transaction() as session:
        _, token = await service.pair_device(session, new.pairing_code, now=utcnow())
    return token
