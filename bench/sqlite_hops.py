"""SQLite statements through SQLAlchemy's async bridge: one thread hop each, against four.

A `Database` (server/db/engine.py, as the server builds it) on a scratch SQLite file with 20,000
rows, then `--transactions` (3,000) write transactions shaped like a redeem batch: BEGIN
IMMEDIATE, a SELECT of 8 rows by id, an INSERT of 8 rows, an UPDATE, COMMIT; then as many
read-only transactions (one SELECT). Contenders, each in its own process, same inputs:

  one_hop    server/db/sqlite_driver.py: a statement is one call on aiosqlite's thread
  sqlalchemy SQLAlchemy's own aiosqlite adapter (cursor, execute, fetch, close: four calls)

Prints one JSON line per contender: CPU of the process (user + system) per transaction, wall
time per transaction, the driver calls made (aiosqlite `_execute`) per transaction; then the
ratio of one_hop to sqlalchemy.

Run: ``.venv/bin/python bench/sqlite_hops.py [--transactions 3000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import aiosqlite
from sqlalchemy import bindparam, text

from server.db import engine as db_engine

CONTENDERS = ("sqlalchemy", "one_hop")
VERSIONS = {
    "python": platform.python_version(),
    "sqlalchemy": version("sqlalchemy"),
    "aiosqlite": version("aiosqlite"),
    "machine": f"{platform.machine()} x{os.cpu_count()}",
}


async def measure(name: str, transactions: int) -> dict[str, object]:
    db_engine.SQLITE_ONE_HOP = name == "one_hop"
    calls = 0
    real = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await real(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    rng = random.Random(17)
    with tempfile.TemporaryDirectory() as scratch:
        database = db_engine.Database(f"sqlite:///{Path(scratch) / 'hops.db'}")
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER)"))
            await session.execute(text("CREATE TABLE s (id TEXT PRIMARY KEY, t TEXT)"))
            await session.execute(
                text("INSERT INTO t VALUES (:id, 0)"), [{"id": f"t{i}"} for i in range(20_000)]
            )
        ids_in = bindparam("ids", expanding=True)
        select = text("SELECT id, n FROM t WHERE id IN :ids").bindparams(ids_in)
        insert = text("INSERT INTO s VALUES (:id, :t)")
        update = text("UPDATE t SET n = n + 1 WHERE id = :id")
        batches = [[f"t{rng.randrange(20_000)}" for _ in range(8)] for _ in range(transactions)]
        calls = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for number, ids in enumerate(batches):
            async with database.transaction() as session:
                rows = (await session.execute(select, {"ids": ids})).all()
                assert len(rows) == len(set(ids))
                await session.execute(
                    insert, [{"id": f"s{number}-{k}", "t": i} for k, i in enumerate(ids)]
                )
                await session.execute(update, {"id": ids[0]})
        write_cpu, write_wall, write_calls = (
            time.process_time() - cpu,
            time.perf_counter() - wall,
            calls,
        )
        calls = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for ids in batches:
            async with database.transaction(read_only=True) as session:
                (await session.execute(select, {"ids": ids})).all()
        read_cpu, read_wall, read_calls = (
            time.process_time() - cpu,
            time.perf_counter() - wall,
            calls,
        )
        await database.dispose()
    return {
        "name": name,
        "transactions": transactions,
        "write_cpu_ms": round(write_cpu / transactions * 1e3, 4),
        "write_wall_ms": round(write_wall / transactions * 1e3, 4),
        "write_driver_calls": round(write_calls / transactions, 2),
        "read_cpu_ms": round(read_cpu / transactions * 1e3, 4),
        "read_wall_ms": round(read_wall / transactions * 1e3, 4),
        "read_driver_calls": round(read_calls / transactions, 2),
        "versions": VERSIONS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=3_000)
    parser.add_argument("--only", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(asyncio.run(measure(args.only, args.transactions))))
        return
    lines = {}
    for name in CONTENDERS:
        command = [
            sys.executable,
            __file__,
            "--only",
            name,
            "--transactions",
            str(args.transactions),
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        lines[name] = json.loads(output)
        print(output.strip())
    one, base = lines["one_hop"], lines["sqlalchemy"]
    print(
        json.dumps(
            {
                "ratio": "one_hop / sqlalchemy",
                "write_cpu": round(one["write_cpu_ms"] / base["write_cpu_ms"], 3),
                "write_wall": round(one["write_wall_ms"] / base["write_wall_ms"], 3),
                "read_cpu": round(one["read_cpu_ms"] / base["read_cpu_ms"], 3),
                "read_wall": round(one["read_wall_ms"] / base["read_wall_ms"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
