"""First sync of a 100,000-ticket event: the scanner snapshot served, downloaded and decoded.

A real `tessera serve` on a fresh SQLite file holds one event with N confirmed tickets (issued
through the service layer, 500 per booking), one check-in list and one paired device. The device
GETs `/api/v1/checkin/snapshot` (zstd), decompresses and decodes the msgpack map: that is the
"download + load" half of a first sync that the server controls (the scanner's own store writes
come on top). Baseline, same run: msgpack-encode + zstd-compress + decompress + decode of the same
decoded map in this process, i.e. the serialisation floor with no database and no HTTP.

The server runs as `make run` runs it (`tessera serve`, access log on). After the timed part the
decoded snapshot is checked against the contract (docs/protocol.md section 8): its keys, and every
ticket type, list, ticket and check-in converted to its `protocol.sync` entity (strict: a field
more or less fails), so a shape change cannot go unnoticed here.

Prints one JSON line per contender (seconds, bytes, tickets, versions; for the server, its CPU
seconds for the request from /proc and its RSS after it) (ARCHITECTURE §9: first sync < 5 s,
server memory < 300 MB).
Run: ``.venv/bin/python bench/snapshot.py [N]`` (default 100,000).
"""

from __future__ import annotations

import asyncio
import json
import os
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

from protocol.sync import ListEntry, PresenceEntry, TicketEntry, TicketTypeEntry  # noqa: E402
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
SNAPSHOT_KEYS = {
    "event", "seq", "keys", "ticket_types", "lists", "tickets", "revoked", "blocked", "checkins"
}  # fmt: skip
ENTITIES = {
    "ticket_types": TicketTypeEntry,
    "lists": ListEntry,
    "tickets": TicketEntry,
    "checkins": PresenceEntry,
}


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


def _server_pid() -> int:
    """The `tessera serve` process that live_server started: this process's child."""
    me = str(Path("/proc/self").resolve().name)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = (proc / "stat").read_text().rpartition(")")[2].split()[1]
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if parent == me and b"server.cli" in cmdline and b"serve" in cmdline:
            return int(proc.name)
    raise RuntimeError("the server process was not found")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def _check_shape(snapshot: dict[str, object]) -> dict[str, int]:
    """Raise unless `snapshot` is in the contract's shape; the count of each entity kind."""
    assert set(snapshot) == SNAPSHOT_KEYS, sorted(set(snapshot) ^ SNAPSHOT_KEYS)
    counts = {}
    for key, entity in ENTITIES.items():
        rows = snapshot[key]
        assert isinstance(rows, list), key
        msgspec.convert(rows, list[entity])  # type: ignore[valid-type]
        counts[key] = len(rows)
    return counts


def main(tickets: int) -> None:
    from server.auth.service import create_token

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        settings = Settings(
            database_url=f"sqlite:///{root / 'bench.db'}",
            keys_dir=str(root / "keys"),  # access log on, as `make run`
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
            pid = _server_pid()
            cpu = _cpu_seconds(pid)
            snapshot, seconds, size = _download(base_url, device)
            cpu = _cpu_seconds(pid) - cpu
            rss = _server_rss_mb(pid)
        floor_seconds, floor_size = _floor(snapshot)
    counts = _check_shape(snapshot)
    count = counts["tickets"]
    print(
        json.dumps(
            {
                "name": "tessera.snapshot_first_sync",
                "tickets": count,
                "seconds": round(seconds, 3),
                "bytes": size,
                "seed_seconds": round(seeded, 1),
                "server_cpu_seconds": round(cpu, 2),
                "server_rss_mb": rss,
                "entities": counts,
                "shape": "protocol.sync entities, every key of docs/protocol.md section 8",
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
    if {"-h", "--help"} & set(sys.argv[1:]):
        raise SystemExit(__doc__)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
