"""Pruning a 1,000,000-change log while doors scan another event: how long, and do scans stall?

One database (a fresh SQLite file, or with `--postgres` a database of its own on the machine's
PostgreSQL, dropped afterwards) holds an event that ended in 2020 with N changes of 2020 and a
running event. A "scanner" task commits one scan-sized write transaction every 10 ms on the
running event (`append_changes` of one `scan.accepted`: it takes the event row's lock and, on
SQLite, the database's write lock, as a redeem does) and times each commit.

Contenders, same run: the scanner alone for 5 s (the baseline), then the scanner while
`server.changes.retention.prune` removes the old event's N changes (batches of 5,000 seqs, each
its own transaction; the default), in the same event loop as `tessera serve` runs it embedded.
Prints one JSON line per contender: scans' p50 / p99 / max commit latency and count; for the
prune, its seconds and rows.
Run: ``.venv/bin/python bench/prune.py [N [BATCH]] [--postgres]`` (default 1,000,000 and 5,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import asyncpg
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.changes.models import Change  # noqa: E402
from server.changes.retention import BATCH, prune  # noqa: E402
from server.changes.service import append_changes  # noqa: E402
from server.db import Database  # noqa: E402
from server.db.migrate import migrate  # noqa: E402
from server.events.models import Event  # noqa: E402

PG_ADMIN = os.environ.get("TESSERA_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
OLD = datetime(2020, 1, 1, tzinfo=UTC)
VERSIONS = {"python": platform.python_version(), "sqlalchemy": version("sqlalchemy")}


async def _fill(database: Database, n: int) -> None:
    async with database.transaction() as session:
        for event_id, when in (("OLDEVENT00", OLD), ("LIVEEVENT0", datetime.now(UTC))):
            session.add(
                Event(
                    id=event_id,
                    slug=event_id.lower(),
                    name=event_id,
                    starts_at=when,
                    ends_at=when + timedelta(hours=3),
                    timezone="UTC",
                    change_seq=n if event_id == "OLDEVENT00" else 0,
                )
            )
    chunk = 20_000
    payload = {"scan": {"id": "x" * 16, "ticket_id": "y" * 16, "at": "2020-01-01T00:00:00Z"}}
    for start in range(0, n, chunk):
        rows = [
            {
                "event_id": "OLDEVENT00",
                "seq": seq + 1,
                "kind": "scan.accepted",
                "payload": payload,
                "created_at": OLD,
            }
            for seq in range(start, min(start + chunk, n))
        ]
        async with database.transaction() as session:
            await session.execute(insert(Change.__table__), rows)


async def _scanner(database: Database, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        async with database.transaction() as session:
            await append_changes(session, "LIVEEVENT0", [("scan.accepted", {"scan": {}})])
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)


def _figures(name: str, latencies: list[float], **more: object) -> dict[str, object]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "contender": name,
        "scans": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "over_20ms": sum(1 for x in ordered if x > 0.02),
        **more,
    }


async def run(url: str, n: int, backend: str, batch: int) -> None:
    database = Database(url)
    await migrate(database)
    await _fill(database, n)
    alone: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_scanner(database, stop, alone))
    await asyncio.sleep(5)
    stop.set()
    await task
    during: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_scanner(database, stop, during))
    started = time.perf_counter()
    done = await prune(database, retention=timedelta(days=7), batch=batch)
    seconds = time.perf_counter() - started
    stop.set()
    await task
    await database.dispose()
    common = {"backend": backend, "changes": n, "batch": batch, "versions": VERSIONS}
    print(json.dumps(_figures("scans_alone", alone, **common)))
    removed = sum(item.removed for item in done)
    print(json.dumps(_figures("scans_during_prune", during, **common)))
    print(
        json.dumps(
            {
                "contender": "prune",
                "seconds": round(seconds, 2),
                "removed": removed,
                "rows_per_s": round(removed / seconds),
                **common,
            }
        )
    )


async def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    batch = int(args[1]) if len(args) > 1 else BATCH
    if "--postgres" in sys.argv:
        name = f"tessera_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await run(PG_ADMIN.rpartition("/")[0] + f"/{name}", n, "postgresql", batch)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        await run(f"sqlite:///{tmp}/bench.db", n, "sqlite", batch)


if __name__ == "__main__":
    asyncio.run(main())
