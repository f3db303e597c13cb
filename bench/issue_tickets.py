"""Issue 10,000 e-tickets by confirming bookings on SQLite, beside raw PyJWT signing in one run.

Contenders, each in its own process:

- ``tessera.confirm_booking``: B pending bookings of T tickets each (B x T = N) are confirmed
  through the service layer, one transaction per booking (capacity update, N signatures, ticket,
  link and change-log rows), on a fresh migrated SQLite file in WAL mode;
- ``pyjwt.encode``: ``jwt.encode`` EdDSA of the same claims (``jti``, ``evt``, ``ver``) N times;
- ``tessera.guest_page``: the guest page through the ASGI app (httpx ASGITransport): the first
  render of each ticket (cold: QR made and rendered) and the second (cached QR).

Prints one JSON line per contender (versions included), then the ratio of issuing to raw signing
(target ≥ 0.40, ARCHITECTURE §9). Run: ``.venv/bin/python bench/issue_tickets.py [B T]``.
"""

import asyncio
import json
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import jwt

from server.app import create_app
from server.bookings.schemas import BookingCreate, BookingItemIn, Buyer
from server.bookings.service import confirm_booking, create_booking
from server.config import Settings
from server.db import Database
from server.db.migrate import migrate
from server.events.schemas import EventCreate, TicketTypeCreate
from server.events.service import create_event, create_ticket_type
from server.keys.service import KeyRing, Keystore, ensure_signing_key
from server.tickets.service import TicketIssuer, tickets_of

VERSIONS = {
    "python": platform.python_version(),
    "sqlite": sqlite3.sqlite_version,
    "sqlalchemy": version("sqlalchemy"),
    "pyjwt": version("pyjwt"),
    "cryptography": version("cryptography"),
    "litestar": version("litestar"),
}
CONTENDERS = ("tessera.confirm_booking", "pyjwt.encode", "tessera.guest_page")
GUEST_PAGES = 200


def _settings(root: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{root / 'bench.db'}",
        keys_dir=str(root / "keys"),
        base_url="https://tickets.bench",
        access_log=False,
    )


async def _pending_bookings(settings: Settings, bookings: int, per_booking: int) -> list[str]:
    """Migrate, then one event with `bookings` pending bookings of `per_booking` tickets."""
    database = Database(settings.database_url)
    await migrate(database)
    ids = []
    async with database.transaction() as session:
        await ensure_signing_key(session, Keystore(settings.keys_path))
        event = await create_event(
            session,
            EventCreate(
                name="Bench night", starts_at=datetime(2027, 3, 14, 19, tzinfo=UTC), timezone="UTC"
            ),
        )
        ticket_type = await create_ticket_type(session, event.id, TicketTypeCreate(name="Std"))
        issuer = TicketIssuer(await KeyRing(Keystore(settings.keys_path)).keys(session), "")
        for n in range(bookings):
            data = BookingCreate(
                buyer=Buyer(name=f"Guest {n}", email=f"guest{n}@example.org"),
                items=[BookingItemIn(ticket_type_id=ticket_type.id, quantity=per_booking)],
            )
            ids.append((await create_booking(session, event.id, data, issuer)).id)
    await database.dispose()
    return ids


async def _confirm_all(settings: Settings, booking_ids: list[str]) -> list[float]:
    """Confirm each booking in its own transaction, as the API does; seconds per booking."""
    database = Database(settings.database_url)
    keyring = KeyRing(Keystore(settings.keys_path))
    samples = []
    for booking_id in booking_ids:
        started = time.perf_counter()
        async with database.transaction() as session:
            issuer = TicketIssuer(await keyring.keys(session), settings.public_base_url)
            await confirm_booking(session, booking_id, issuer)
        samples.append(time.perf_counter() - started)
    await database.dispose()
    return samples


def _issue(bookings: int, per_booking: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        settings = _settings(Path(directory))
        ids = asyncio.run(_pending_bookings(settings, bookings, per_booking))
        samples = asyncio.run(_confirm_all(settings, ids))
    n = bookings * per_booking
    return {
        "name": "tessera.confirm_booking",
        "n": n,
        "bookings": bookings,
        "per_second": round(n / sum(samples)),
        "median_ms_per_booking": round(statistics.median(samples) * 1000, 2),
        "p99_ms_per_booking": round(sorted(samples)[int(len(samples) * 0.99)] * 1000, 2),
    }


def _pyjwt(n: int) -> dict[str, object]:
    """Raw `jwt.encode` EdDSA of the claims a ticket carries, with the same header fields."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from protocol.ids import EVENT_ID_LENGTH, TICKET_ID_LENGTH, new_id

    key, kid, event = Ed25519PrivateKey.generate(), new_id(8), new_id(EVENT_ID_LENGTH)
    claims = [{"jti": new_id(TICKET_ID_LENGTH), "evt": event, "ver": 1} for _ in range(n)]
    for c in claims[:500]:
        jwt.encode(c, key, algorithm="EdDSA", headers={"kid": kid})
    started = time.perf_counter()
    for c in claims:
        jwt.encode(c, key, algorithm="EdDSA", headers={"kid": kid})
    elapsed = time.perf_counter() - started
    return {"name": "pyjwt.encode", "n": n, "per_second": round(n / elapsed)}


async def _render_pages(settings: Settings, links: list[str]) -> tuple[list[float], list[float]]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    cold, cached = [], []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for samples in (cold, cached):
            for link in links:
                started = time.perf_counter()
                response = await client.get(f"/t/{link}", headers={"Accept-Language": "fr"})
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
    await app.state.database.dispose()
    return cold, cached


def _guest_pages() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        settings = _settings(Path(directory))
        ids = asyncio.run(_pending_bookings(settings, 1, GUEST_PAGES))
        asyncio.run(_confirm_all(settings, ids))
        links = asyncio.run(_links(settings, ids[0]))
        cold, cached = asyncio.run(_render_pages(settings, links))
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    p99 = lambda xs: round(sorted(xs)[int(len(xs) * 0.99)] * 1000, 2)  # noqa: E731
    return {
        "name": "tessera.guest_page",
        "n": len(links),
        "cold_median_ms": ms(cold),
        "cold_p99_ms": p99(cold),
        "cached_median_ms": ms(cached),
        "cached_p99_ms": p99(cached),
        "page_bytes_note": "first render makes the QR; the second reuses it (cached per token)",
    }


async def _links(settings: Settings, booking_id: str) -> list[str]:
    database = Database(settings.database_url)
    async with database.session() as session:
        links = [t.link for t in await tickets_of(session, [booking_id])]
    await database.dispose()
    return links


def measure(name: str, bookings: int, per_booking: int) -> dict[str, object]:
    if name == "tessera.confirm_booking":
        result = _issue(bookings, per_booking)
    elif name == "pyjwt.encode":
        result = _pyjwt(bookings * per_booking)
    else:
        result = _guest_pages()
    return {**result, "versions": VERSIONS}


def main(bookings: int, per_booking: int) -> None:
    results = {}
    for name in CONTENDERS:
        command = [sys.executable, __file__, str(bookings), str(per_booking), name]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(line.strip(), flush=True)
        results[name] = json.loads(line)
    ratio = results["tessera.confirm_booking"]["per_second"] / results["pyjwt.encode"]["per_second"]
    machine = f"{platform.machine()} {platform.system()} {platform.processor() or ''}".strip()
    print(
        json.dumps(
            {
                "ratio": "tessera.confirm_booking / pyjwt.encode per_second",
                "value": round(ratio, 3),
                "target": 0.40,
                "machine": machine,
            }
        )
    )


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        raise SystemExit(__doc__)
    b = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    t = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    if len(sys.argv) > 3:
        print(json.dumps(measure(sys.argv[3], b, t)))
    else:
        main(b, t)
