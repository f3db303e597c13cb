"""First sync of a 100,000-ticket event: the scanner snapshot served, downloaded and decoded.

A real `tessera serve` on a fresh SQLite file holds one event with N confirmed tickets (issued
through the service layer, 500 per booking), one check-in list and one paired device. The device
GETs `/api/v1/checkin/snapshot` (zstd), decompresses and decodes the msgpack map: that is the
"download + load" half of a first sync that the server controls (the scanner's own store writes
come on top). Baseline, same run: msgpack-encode + zstd-compress + decompress + decode of the same
decoded map in this process, i.e. the serialisation floor with no database and no HTTP.

Prints one JSON line per contender (seconds, bytes, tickets, versions) and the server's RSS after
the snapshot (ARCHITECTURE §9: first sync < 5 s, server memory < 300 MB).
Run: ``.venv/bin/python bench/snapshot.py [N]`` (default 100,000).
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import msgspec
import zstandard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.bookings.schemas import BookingCreate, BookingItemIn, Buyer  # noqa: E402
from server.bookings.service import create_booking  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import Database  # noqa: E402
from server.db.migrate import migrate  # noqa: E402
from server.events.schemas import EventCreate, TicketTypeCreate  # noqa: E402
from server.events.service import create_event, create_ticket_type  # noqa: E402
from server.keys.service import KeyRing, Keystore, ensure_signing_key  # noqa: E402
from server.tickets.service import TicketIssuer  # noqa: E402
from tests.live import live_server  # noqa: E402

VERSIONS = {
    "python": platform.python_version(),
    "msgspec": version("msgspec"),
    "zstandard": version("zstandard"),
    "sqlalchemy": version("sqlalchemy"),
    "litestar": version("litestar"),
}
PER_BOOKING = 500


async def _seed(settings: Settings, tickets: int) -> str:
    database = Database(settings.database_url)
    await migrate(database)
    async with database.transaction() as session:
        keyring = KeyRing(Keystore(settings.keys_path))
        await ensure_signing_key(session, keyring.keystore)
        event = await create_event(
            session,
            EventCreate(
                name="Stadium", starts_at=datetime(2027, 6, 1, 18, tzinfo=UTC), timezone="UTC"
            ),
        )
        ticket_type = await create_ticket_type(session, event.id, TicketTypeCreate(name="Std"))
        issuer = TicketIssuer(await keyring.keys(session), settings.public_base_url)
    for n in range(0, tickets, PER_BOOKING):
        async with database.transaction() as session:
            item = BookingItemIn(ticket_type.id, min(PER_BOOKING, tickets - n))
            buyer = Buyer(name=f"Buyer {n}", email=f"b{n}@example.org")
            data = BookingCreate(buyer=buyer, items=[item], confirm=True)
            await create_booking(session, event.id, data, issuer)
    await database.dispose()
    return str(event.id)


def _device_token(base_url: str, organiser: str, event_id: str) -> str:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {organiser}"}) as api:
        api.post(f"/api/v1/events/{event_id}/checkin-lists", json={"name": "Gate"})
        device = api.post(f"/api/v1/events/{event_id}/devices", json={"name": "Door"}).json()
        paired = api.post("/api/v1/devices/pair", json={"pairing_code": device["pairing_code"]})
        return str(paired.json()["token"])


def _download(base_url: str, token: str) -> tuple[dict[str, object], float, int]:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "zstd"}
    with httpx.stream(
        "GET", f"{base_url}/api/v1/checkin/snapshot", headers=headers, timeout=60
    ) as r:
        assert r.status_code == 200 and r.headers["content-encoding"] == "zstd", r.status_code
        compressed = b"".join(r.iter_raw())  # as sent; the scanner decompresses it itself
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(compressed)
    snapshot = msgspec.msgpack.decode(raw)
    return snapshot, time.perf_counter() - started, len(compressed)


def _floor(snapshot: dict[str, object]) -> tuple[float, int]:
    started = time.perf_counter()
    body = zstandard.ZstdCompressor(level=3).compress(msgspec.msgpack.encode(snapshot))
    msgspec.msgpack.decode(zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 30))
    return time.perf_counter() - started, len(body)


def _server_rss_mb() -> float | None:
    """RSS of the newest `server.cli serve` process (the one live_server started)."""
    newest = None
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"server.cli" in cmdline and b"serve" in cmdline and proc.name.isdigit():
            newest = max(newest or 0, int(proc.name))
    if newest is None:
        return None
    for line in Path(f"/proc/{newest}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def main(tickets: int) -> None:
    from server.auth.service import create_token

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        settings = Settings(
            database_url=f"sqlite:///{root / 'bench.db'}",
            keys_dir=str(root / "keys"),
            access_log=False,
        )
        seeded = time.perf_counter()
        event_id = asyncio.run(_seed(settings, tickets))
        seeded = time.perf_counter() - seeded

        async def token() -> str:
            database = Database(settings.database_url)
            async with database.transaction() as session:
                _, secret = await create_token(session, "bench")
            await database.dispose()
            return secret

        organiser = asyncio.run(token())
        with live_server(settings, root / "server.log") as base_url:
            device = _device_token(base_url, organiser, event_id)
            snapshot, seconds, size = _download(base_url, device)
            rss = _server_rss_mb()
        floor_seconds, floor_size = _floor(snapshot)
    count = len(snapshot["tickets"])  # type: ignore[arg-type]
    print(
        json.dumps(
            {
                "name": "tessera.snapshot_first_sync",
                "tickets": count,
                "seconds": round(seconds, 3),
                "bytes": size,
                "seed_seconds": round(seeded, 1),
                "server_rss_mb": rss,
                "versions": VERSIONS,
            }
        )
    )
    print(
        json.dumps(
            {
                "name": "baseline.msgpack_zstd_roundtrip",
                "tickets": count,
                "seconds": round(floor_seconds, 3),
                "bytes": floor_size,
                "versions": VERSIONS,
            }
        )
    )
    print(
        json.dumps(
            {
                "ratio": "snapshot / serialisation floor",
                "value": round(seconds / floor_seconds, 2),
                "target_seconds": 5.0,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
