"""Counter pushes against the event's size (issue 17 item 4): a 100-ticket event and a
100,000-ticket one, each with 200 paired doors (at 50 gates, G0-G49, so that both events' frames
list the same gates) and half its tickets checked in.

In process, on a scratch SQLite file (`--backend postgresql`: a scratch PostgreSQL database),
seeded through the service layer (bookings of 500, confirmed). Then, per event, `--rounds`
rounds of: 16 scans from 16 doors in one redeem batch (16 checked-in tickets leave, or come
back: the list allows re-entry) (the writer's transaction), then one
counter push as the hub's room makes it, timed (process CPU, all threads, and wall):

  tally   `DatabaseFeed.counters` (what a room calls: the tally folded from the changes since
          the last push) + encoding the `counters` frame, once for all 200 doors
  full    `event_counters` (the four aggregate queries the room ran before) + the encoding

The first `tally` call of an event loads it (reported apart). A push then goes out as the same
bytes on each socket, whatever the event's size. Prints one JSON line per event and contender
(median and p90 of the rounds) and the ratio of the large event to the small one.

Run: ``.venv/bin/python bench/counters_push.py [--backend sqlite|postgresql] [--rounds 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _wsbench import VERSIONS, scratch_database  # noqa: E402
from sqlalchemy import select  # noqa: E402

from protocol.messages import ScanItem, encode_frame  # noqa: E402
from server.bookings.schemas import BookingCreate, BookingItemIn, Buyer  # noqa: E402
from server.bookings.service import create_booking  # noqa: E402
from server.checkin import service  # noqa: E402
from server.checkin.counters import event_counters  # noqa: E402
from server.checkin.feed import DatabaseFeed  # noqa: E402
from server.checkin.redeem import decide_and_record  # noqa: E402
from server.checkin.schemas import CheckinListCreate, DeviceCreate  # noqa: E402
from server.db import Database, utcnow  # noqa: E402
from server.events.schemas import EventCreate, TicketTypeCreate  # noqa: E402
from server.events.service import create_event, create_ticket_type  # noqa: E402
from server.keys.service import KeyRing, Keystore, ensure_signing_key  # noqa: E402
from server.tickets.models import Ticket  # noqa: E402
from server.tickets.service import TicketIssuer  # noqa: E402

DOORS = 200
PER_BOOKING = 500


async def _seed(database: Database, keys: Path, tickets: int) -> tuple[str, str, list, list[str]]:
    async with database.transaction() as session:
        keyring = KeyRing(Keystore(keys))
        await ensure_signing_key(session, keyring.keystore)
        event = await create_event(
            session,
            EventCreate(
                name="Size", starts_at=datetime(2031, 6, 1, 18, tzinfo=UTC), timezone="UTC"
            ),
        )
        ticket_type = await create_ticket_type(session, event.id, TicketTypeCreate(name="Std"))
        issuer = TicketIssuer(await keyring.keys(session), "http://127.0.0.1")
        checkin_list = await service.create_list(
            session, event.id, CheckinListCreate(name="Gate", max_entries=None, allow_reentry=True)
        )
    for n in range(0, tickets, PER_BOOKING):
        async with database.transaction() as session:
            item = BookingItemIn(ticket_type.id, min(PER_BOOKING, tickets - n))
            data = BookingCreate(
                buyer=Buyer(name=f"B{n}", email=f"b{n}@example.org"), items=[item], confirm=True
            )
            await create_booking(session, event.id, data, issuer)
    tokens = []
    for n in range(DOORS):
        async with database.transaction() as session:
            new = await service.create_device(
                session, event.id, DeviceCreate(name=f"Door {n}", gate=f"G{n % 50}"), now=utcnow()
            )
        async with database.transaction() as session:
            tokens.append((await service.pair_device(session, new.pairing_code, now=utcnow()))[1])
    async with database.transaction(read_only=True) as session:
        devices = list((await service.authenticate_devices(session, tokens)).values())
        codes = list(await session.scalars(select(Ticket.code).where(Ticket.event_id == event.id)))
    return event.id, checkin_list.id, devices, codes


async def _scan(
    database: Database,
    list_id: str,
    devices: list,
    codes: list[str],
    first: int,
    way: str = "entry",
):
    requests = [
        (
            devices[(first + i) % DOORS],
            ScanItem(scan_id=str(uuid.uuid4()), code=code, list_id=list_id, direction=way),
        )
        for i, code in enumerate(codes)
    ]
    async with database.transaction() as session:
        results, _, _ = await decide_and_record(session, requests, now=utcnow(), optimistic=True)
    assert all(r.verdict == "accepted" for r in results), results[:3]


def _timed() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


async def _measure(database: Database, size: int, keys: Path, rounds: int) -> list[dict]:
    seeded = time.perf_counter()
    event_id, list_id, devices, codes = await _seed(database, keys, size)
    seeded = time.perf_counter() - seeded
    half = size // 2
    for n in range(0, half, 500):  # half the tickets checked in, from every door
        await _scan(database, list_id, devices, codes[n : min(half, n + 500)], n)
    moving = codes[:16]
    feed = DatabaseFeed(database)
    cpu, wall = _timed()
    await feed.counters(event_id)
    load = (time.process_time() - cpu, time.perf_counter() - wall)
    samples: dict[str, list[tuple[float, float]]] = {"tally": [], "full": []}
    for r in range(rounds):
        await _scan(database, list_id, devices, moving, r * 16, "exit" if r % 2 == 0 else "entry")
        for contender in ("tally", "full") if r % 2 else ("full", "tally"):
            cpu, wall = _timed()
            if contender == "tally":
                counters = await feed.counters(event_id)
            else:
                async with database.transaction(read_only=True) as session:
                    counters = await event_counters(session, event_id)
            encode_frame(counters)
            samples[contender].append((time.process_time() - cpu, time.perf_counter() - wall))
    async with database.transaction(read_only=True) as session:
        final = await event_counters(session, event_id)
    assert await feed.counters(event_id) == final
    lines = []
    for contender, values in samples.items():
        cpus = sorted(v[0] * 1000 for v in values)
        walls = sorted(v[1] * 1000 for v in values)
        lines.append(
            {
                "bench": "counters_push",
                "tickets": size,
                "doors": DOORS,
                "checked_in": final.checked_in,
                "gates": len(final.gates),
                "contender": contender,
                "cpu_ms_p50": round(statistics.median(cpus), 3),
                "cpu_ms_p90": round(cpus[int(len(cpus) * 0.9)], 3),
                "wall_ms_p50": round(statistics.median(walls), 3),
                "first_load_cpu_ms": round(load[0] * 1000, 1) if contender == "tally" else None,
                "seed_seconds": round(seeded, 1),
            }
        )
    return lines


async def main(backend: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        results = []
        for size in (100, 100_000):
            (Path(directory) / str(size)).mkdir()
            async with scratch_database(backend, Path(directory) / str(size)) as url:
                database = Database(url)
                try:
                    lines = await _measure(database, size, Path(directory) / f"keys{size}", rounds)
                finally:
                    await database.dispose()
            for line in lines:
                print(json.dumps(line | {"backend": backend}), flush=True)
            results.append({line["contender"]: line["cpu_ms_p50"] for line in lines})
        small, large = results
        ratio = {k: round(large[k] / small[k], 2) for k in small}
        print(
            json.dumps(
                {"bench": "counters_push", "ratio_100000_to_100": ratio, "versions": VERSIONS}
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=30)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.backend, arguments.rounds))
