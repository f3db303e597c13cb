"""Issue e-tickets through the API (`POST bookings {confirm: true}`), beside raw PyJWT signing.

The shape of issue 17's table: a real Tessera server started as `make run` does (`tessera
serve`, access log on) on a scratch SQLite file (`--backend postgresql` for a scratch PostgreSQL
database), one event and ticket type, then `--concurrency` (4) keep-alive connections from an
asyncio client (bench/_httpbench.py), each posting bookings of `--per-booking` (50) tickets with
`confirm: true`, one after the other, until `--bookings` (400) are confirmed. Every answer must
be a 201 with the booking confirmed. Contenders, each in its own process:

  tessera.api_confirm  tickets/s confirmed, p50/p99 per booking, the server's CPU per ticket
                       (its process tree, /proc) and per booking
  bare                 POST /redeem of bench/_echo_app.py (bare Litestar on uvicorn) at the same
                       concurrency: the request floor of this stack, requests/s and CPU each
  pyjwt.encode         `jwt.encode` EdDSA of a ticket's claims (`jti`, `evt`, `ver`, header `kid`)
                       for as many tickets: the raw signing floor
  tessera.sign         `protocol.token.sign_ticket_token` of the same claims

Prints one JSON line per contender (versions included), then the ratio of issuing to raw signing
and the target (≥ 8,000 tickets/s on SQLite, ARCHITECTURE §9).

Run: ``.venv/bin/python bench/issue_tickets.py [--backend sqlite|postgresql] [--bookings 400]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import jwt
from _httpbench import bare_server, http_load, post, profiled, wait_port
from _wsbench import free_port, scratch_database, tessera_server, wait_ready

from server.auth.service import create_token
from server.db import Database

VERSIONS = {
    "python": platform.python_version(),
    "sqlite": sqlite3.sqlite_version,
    "sqlalchemy": version("sqlalchemy"),
    "pyjwt": version("pyjwt"),
    "cryptography": version("cryptography"),
    "litestar": version("litestar"),
}
HOST = "127.0.0.1"
TARGET = 8_000


async def _organiser(url: str) -> str:
    database = Database(url)
    try:
        async with database.transaction() as session:
            _, token = await create_token(session, "bench")
    finally:
        await database.dispose()
    return token


async def _event(base: str, token: str) -> tuple[str, str]:
    """A new event and ticket type (no capacity): their ids."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        body = {"name": "Bench", "starts_at": "2031-06-14T20:00:00+02:00", "timezone": "UTC"}
        event = (await client.post("/api/v1/events", json=body)).json()
        kind = await client.post(f"/api/v1/events/{event['id']}/ticket-types", json={"name": "GA"})
    return event["id"], kind.json()["id"]


def _booking(event_id: str, ticket_type_id: str, per_booking: int, token: str) -> Any:
    path = f"/api/v1/events/{event_id}/bookings"

    def make(_connection: int, n: int) -> bytes:
        body = json.dumps(
            {
                "buyer": {"name": f"Guest {n}", "email": f"guest{n}@example.org"},
                "items": [{"ticket_type_id": ticket_type_id, "quantity": per_booking}],
                "confirm": True,
            }
        ).encode()
        return post(HOST, path, body, token)

    return make


async def api_confirm(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(args.backend, Path(tmp)) as url:
            with tessera_server(url, Path(tmp) / "keys") as (base, pid):
                await wait_ready(base)
                token = await _organiser(url)
                event_id, ticket_type_id = await _event(base, token)
                make = _booking(event_id, ticket_type_id, args.per_booking, token)
                port = int(base.rpartition(":")[2])
                warm = await http_load(  # the first requests build caches: not timed
                    HOST,
                    port,
                    make,
                    connections=args.concurrency,
                    seconds=30,
                    limit=8,
                    accepted_status=201,
                    accepted_marker=b'"status":"confirmed"',
                )
                with profiled(pid):
                    result = await http_load(
                        HOST,
                        port,
                        make,
                        connections=args.concurrency,
                        seconds=args.seconds,
                        limit=args.bookings,
                        server_pid=pid,
                        accepted_status=201,
                        accepted_marker=b'"status":"confirmed"',
                    )
    confirmed = result["accepted"]
    tickets = confirmed * args.per_booking
    return {
        "name": "tessera.api_confirm",
        "backend": args.backend,
        "bookings": confirmed,
        "per_booking": args.per_booking,
        "concurrency": args.concurrency,
        "tickets": tickets,
        "per_second": round(tickets / result["seconds"]),
        "p50_ms_per_booking": result["p50_ms"],
        "p99_ms_per_booking": result["p99_ms"],
        "server_cpu_ms_per_ticket": round(result["server_cpu_ms"] / args.per_booking, 4),
        "server_cpu_ms_per_booking": result["server_cpu_ms"],
        "server_cpu_share": result["server_cpu_share"],
        "client_cpu_share": result["client_cpu_share"],
        "statuses": result["statuses"],
        "errors": result["errors"] + warm["errors"],
        "all_confirmed": confirmed == result["requests"] and not result["errors"],
    }


async def bare(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    with bare_server(port) as pid:
        await wait_port(HOST, port)

        def make(_connection: int, n: int) -> bytes:
            body = f'{{"scan_id":"b-{n}","code":"{"x" * 200}","list_id":"l"}}'.encode()
            return post(HOST, "/redeem", body)

        result = await http_load(
            HOST,
            port,
            make,
            connections=args.concurrency,
            seconds=2.0,
            server_pid=pid,
            accepted_marker=b'"scan_id"',
        )
    keep = ("requests", "per_second", "p50_ms", "p99_ms", "server_cpu_ms", "server_cpu_share")
    return {"name": "bare", "concurrency": args.concurrency} | {k: result[k] for k in keep}


def _claims(n: int) -> tuple[Any, str, list[dict[str, Any]]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from protocol.ids import EVENT_ID_LENGTH, TICKET_ID_LENGTH, new_id

    key, kid, event = Ed25519PrivateKey.generate(), new_id(8), new_id(EVENT_ID_LENGTH)
    return key, kid, [{"jti": new_id(TICKET_ID_LENGTH), "evt": event, "ver": 1} for _ in range(n)]


def sign(name: str, n: int) -> dict[str, Any]:
    """Raw signing of `n` ticket claims: pyjwt's `encode`, or Tessera's own codec."""
    from protocol.token import TicketClaims, sign_ticket_token

    key, kid, claims = _claims(n)
    if name == "pyjwt.encode":
        one = lambda c: jwt.encode(c, key, algorithm="EdDSA", headers={"kid": kid})  # noqa: E731
        inputs: list[Any] = claims
    else:
        one = lambda c: sign_ticket_token(c, key, kid)  # noqa: E731
        inputs = [TicketClaims(**c) for c in claims]
    for c in inputs[:500]:
        one(c)
    started = time.perf_counter()
    for c in inputs:
        one(c)
    elapsed = time.perf_counter() - started
    return {"name": name, "n": n, "per_second": round(n / elapsed)}


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "tessera.api_confirm":
        result = asyncio.run(api_confirm(args))
    elif name == "bare":
        result = asyncio.run(bare(args))
    else:
        result = sign(name, args.bookings * args.per_booking)
    return result | {"versions": VERSIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--per-booking", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0, help="at most, for the API run")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one contender, in a child process
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args)))
        return
    results = {}
    for name in ("tessera.api_confirm", "bare", "pyjwt.encode", "tessera.sign"):
        command = [sys.executable, __file__, *sys.argv[1:], "--only", name]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(line.strip(), flush=True)
        results[name] = json.loads(line)
    issued = results["tessera.api_confirm"]
    ratio = issued["per_second"] / results["pyjwt.encode"]["per_second"]
    line = {"ratio": "tessera.api_confirm / pyjwt.encode per_second", "value": round(ratio, 3)}
    line |= {"target_tickets_per_second": TARGET, "met": issued["per_second"] >= TARGET}
    print(json.dumps(line | {"machine": f"{platform.machine()} x{os.cpu_count()}"}))
    if not issued["all_confirmed"]:
        raise SystemExit("issue_tickets: some bookings were not confirmed (see the statuses)")


if __name__ == "__main__":
    main()
