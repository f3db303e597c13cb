"""Online redeem over REST at 16 concurrent clients, beside the same server's HTTP floor.

For each backend (a scratch SQLite file; a scratch PostgreSQL database, dropped afterwards) this
starts a real uvicorn server (one process, as `tessera serve`) on 127.0.0.1, creates an event with
N tickets, a single-entry list and a paired device, then runs two contenders against it with the
same client code, each for the same time:

  healthz  GET /healthz: the HTTP floor of this server on this machine (no database)
  redeem   POST /api/v1/checkin/redeem of distinct tickets by their QR token (all accepted)

Prints one JSON line per contender: backend, n, per_second, p50_ms, p99_ms, accepted, versions.

Run: ``.venv/bin/python bench/redeem_rest.py [--backend sqlite|postgresql|both] [--seconds 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from server.auth.service import create_token
from server.db import Database
from server.db.migrate import migrate

POSTGRES_ADMIN_URL = os.environ.get("TESSERA_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
VERSIONS = {
    "python": platform.python_version(),
    "litestar": version("litestar"),
    "uvicorn": version("uvicorn"),
    "sqlalchemy": version("sqlalchemy"),
    "machine": f"{platform.machine()} x{os.cpu_count()}",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _prepare_database(url: str) -> str:
    """Migrate `url` and return a fresh organiser token."""
    database = Database(url)
    try:
        await migrate(database)
        async with database.transaction() as session:
            _, token = await create_token(session, "bench")
        return token
    finally:
        await database.dispose()


def _start_server(url: str, keys: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "TESSERA_DATABASE_URL": url,
        "TESSERA_KEYS_DIR": str(keys),
        "TESSERA_PORT": str(port),
        "TESSERA_ACCESS_LOG": "false",
    }
    command = [sys.executable, "-m", "uvicorn", "server.app:app_from_env", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    return subprocess.Popen(command, env=env, start_new_session=True)


async def _wait_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(200):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


async def _setup_event(base: str, token: str, tickets: int) -> tuple[str, str, list[str]]:
    """An event with `tickets` tickets; returns (device token, list id, QR tokens)."""
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=120) as client:
        event = (
            await client.post(
                "/api/v1/events",
                json={"name": "Bench", "starts_at": "2031-06-14T20:00:00+02:00", "timezone": "UTC"},
            )
        ).json()
        path = f"/api/v1/events/{event['id']}"
        ticket_type = (await client.post(f"{path}/ticket-types", json={"name": "GA"})).json()
        items = [{"ticket_type_id": ticket_type["id"], "quantity": 500}] * (tickets // 500)
        buyer = {"name": "Bench", "email": "bench@example.org"}
        qr_tokens: list[str] = []
        for item in items:  # a booking holds at most 500 tickets
            body = {"buyer": buyer, "items": [item], "confirm": True}
            response = await client.post(f"{path}/bookings", json=body)
            assert response.status_code == 201, response.text[:300]
            booking = response.json()
            qr_tokens += [t["token"] for t in booking["tickets"]]
        checkin_list = (await client.post(f"{path}/checkin-lists", json={"name": "Door"})).json()
        device = (await client.post(f"{path}/devices", json={"name": "D", "gate": "A"})).json()
        paired = await client.post(
            "/api/v1/devices/pair", json={"pairing_code": device["pairing_code"]}
        )
        return paired.json()["token"], checkin_list["id"], qr_tokens


Call = Callable[[httpx.AsyncClient, int], Awaitable[bool]]


async def _run(base: str, clients: int, seconds: float, call: Call) -> dict[str, Any]:
    """`clients` connections calling `call(client, i)` for `seconds`; latencies and successes."""
    latencies: list[float] = []
    successes = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal successes
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            i = index
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                ok = await call(client, i)
                latencies.append(time.perf_counter() - started)
                successes += ok
                i += clients

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "n": len(latencies),
        "per_second": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "ok": successes,
    }


async def bench_backend(backend: str, url: str, args: argparse.Namespace) -> None:
    token = await _prepare_database(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as keys:
        server = _start_server(url, Path(keys), port)
        try:
            await _wait_ready(base)
            device_token, list_id, qr_tokens = await _setup_event(base, token, args.tickets)
            device = {"Authorization": f"Bearer {device_token}"}

            async def healthz(client: httpx.AsyncClient, _: int) -> bool:
                return (await client.get("/healthz")).status_code == 200

            async def redeem(client: httpx.AsyncClient, i: int) -> bool:
                body = {"scan_id": str(uuid.uuid4()), "code": qr_tokens[i], "list_id": list_id}
                response = await client.post("/api/v1/checkin/redeem", json=body, headers=device)
                return response.status_code == 200 and response.json()["verdict"] == "accepted"

            for name, call in (("healthz", healthz), ("redeem", redeem)):
                await _run(base, args.clients, 1.0, call if name == "healthz" else healthz)
                result = await _run(base, args.clients, args.seconds, call)
                line = {"bench": "redeem_rest", "backend": backend, "contender": name}
                line |= {"clients": args.clients, **result, "versions": VERSIONS}
                print(json.dumps(line), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tickets", type=int, default=30_000)
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as scratch:
            await bench_backend("sqlite", f"sqlite:///{scratch}/bench.db", args)
    if args.backend in ("postgresql", "both"):
        name = f"tessera_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
            await bench_backend("postgresql", f"{base}/{name}", args)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
