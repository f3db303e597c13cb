"""`tessera backup` while `tessera serve` takes a scan load, then `tessera restore`, on SQLite
(the online backup API) and on PostgreSQL (pg_dump, pg_restore into databases the test creates).

Four doors redeem over REST from asyncio clients for ~10 s (bounded: at most RATE scans/s each,
127.0.0.1 only). One backup is taken in the middle of the load, one after it stops. The final
backup, restored into a new database, holds every scan the server answered, exactly once and
with the verdict it answered, and nothing else. The mid-load backup, restored too, is one
consistent snapshot: it passes the restore's checks, each scan in it is one the server answered
with that verdict, and its tables agree with each other (every accepted scan is folded into its
ticket's presence and has its change-log row, as the writer commits them together).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server.config import Settings
from tests.conftest import (
    POSTGRES_ADMIN_URL,
    _create_pg_database,
    _create_token,
    _drop_pg_database,
    _pg_url,
)
from tests.factories import create_booking, create_event, create_ticket_type
from tests.live import live_server, settings_env

DOORS = 4
RATE = 25.0  # scans per second per door at most: ~100/s in all, far below the writer's limits
LOAD_SECONDS = 10.0
MID_BACKUP_AT = 4.0  # seconds into the load
TICKETS = 300  # in bookings of 100: most scans are second entries, refused but recorded

Key = tuple[str, str]  # (device_id, scan_id), the scan's primary key


@dataclass
class Load:
    answered: dict[Key, bool] = field(default_factory=dict)  # -> accepted
    errors: list[str] = field(default_factory=list)


@dataclass
class Backend:
    """The served database and a way to make new empty ones to restore into."""

    settings: Settings
    new_database: Callable[[str], Awaitable[Settings]]
    suffix: str  # of the backup files: .db (SQLite) or .dump (pg_dump)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Backend]:
    base = Settings(keys_dir=str(tmp_path / "keys"), access_log=False)
    if request.param == "sqlite":
        (tmp_path / "var").mkdir(mode=0o700)
        shutil.copyfile(sqlite_template, tmp_path / "var" / "tessera.db")

        async def new_sqlite(name: str) -> Settings:
            return base.replace(database_url=f"sqlite:///{tmp_path}/{name}/tessera.db")

        yield Backend(
            base.replace(database_url=f"sqlite:///{tmp_path}/var/tessera.db"), new_sqlite, ".db"
        )
        return
    if shutil.which("pg_dump") is None or shutil.which("psql") is None:
        pytest.fail("pg_dump and psql are not on PATH: install postgresql-client")
    created = [asyncio.run(_create_pg_database())]

    async def new_pg(name: str) -> Settings:
        database = f"tessera_t_{name}_{secrets.token_hex(4)}"
        await _admin(f'CREATE DATABASE "{database}"')
        created.append(database)
        return base.replace(database_url=_pg_url(database))

    try:
        yield Backend(base.replace(database_url=_pg_url(created[0])), new_pg, ".dump")
    finally:
        for database in created:
            asyncio.run(_drop_pg_database(database))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    url = settings.database_url
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            return [tuple(row) for row in connection.execute(sql).fetchall()]
    connection = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


async def _tessera(settings: Settings, cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(settings_env(settings))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _doors(base: str, organiser: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    """An event with TICKETS tickets, a single-entry list, DOORS paired devices."""
    headers = {"Authorization": f"Bearer {organiser}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
        event = await create_event(api)
        ticket_type = await create_ticket_type(api, event["id"])
        codes = []
        for _ in range(TICKETS // 100):
            booking = await create_booking(api, event["id"], ticket_type["id"], 100, confirm=True)
            codes += [t["token"] for t in booking["tickets"]]
        listed = await api.post(f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "M"})
        assert listed.status_code == 201, listed.text
        devices = []
        for n in range(DOORS):
            created = await api.post(
                f"/api/v1/events/{event['id']}/devices", json={"name": f"Door {n}", "gate": "G"}
            )
            assert created.status_code == 201, created.text
            code = created.json()["pairing_code"]
            paired = await api.post("/api/v1/devices/pair", json={"pairing_code": code})
            assert paired.status_code == 200, paired.text
            devices.append((paired.json()["device_id"], paired.json()["token"]))
    return listed.json()["id"], codes, devices


async def _door(
    base: str, device: tuple[str, str], list_id: str, codes: list[str], until: float, load: Load
) -> None:
    """One door scanning random tickets at most RATE a second until `until` (monotonic)."""
    device_id, token = device
    rng = random.Random(device_id)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=15) as http:
        while (now := time.monotonic()) < until:
            scan_id = str(uuid.uuid4())
            body = {"scan_id": scan_id, "code": rng.choice(codes), "list_id": list_id}
            try:
                response = await http.post("/api/v1/checkin/redeem", json=body)
            except httpx.HTTPError as exc:
                load.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code != 200:
                load.errors.append(f"{response.status_code} {response.text[:200]}")
                continue
            result = response.json()
            assert result["scan_id"] == scan_id
            load.answered[(device_id, scan_id)] = result["verdict"] == "accepted"
            await asyncio.sleep(max(0.0, now + 1 / RATE - time.monotonic()))


async def _scans(settings: Settings) -> list[tuple[str, str, bool]]:
    rows = await _query(settings, "SELECT device_id, scan_id, accepted FROM scan")
    return [(d, s, bool(a)) for d, s, a in rows]


async def _assert_consistent(settings: Settings) -> None:
    """The snapshot's tables agree: presence counts its accepted scans, each has its change."""
    unfolded = await _query(
        settings,
        "SELECT count(*) FROM presence p WHERE p.entries <> (SELECT count(*) FROM scan s"
        " WHERE s.ticket_id = p.ticket_id AND s.list_id = p.list_id AND s.accepted"
        " AND NOT s.annulled AND s.direction = 'entry')",
    )
    orphans = await _query(
        settings,
        "SELECT count(*) FROM scan s WHERE s.accepted AND (s.seq IS NULL OR NOT EXISTS"
        " (SELECT 1 FROM change c WHERE c.event_id = s.event_id AND c.seq = s.seq))",
    )
    unseen = await _query(
        settings,
        "SELECT count(*) FROM scan s WHERE s.accepted AND NOT EXISTS (SELECT 1 FROM"
        " presence p WHERE p.ticket_id = s.ticket_id AND p.list_id = s.list_id)",
    )
    assert (unfolded, orphans, unseen) == ([(0,)], [(0,)], [(0,)])


async def _restore(backend: Backend, backup: Path, name: str, cwd: Path) -> Settings:
    """`tessera restore` of `backup` into a new database, then `tessera migrate` (a no-op)."""
    target = await backend.new_database(name)
    code, out, err = await _tessera(target, cwd, "restore", str(backup))
    assert code == 0 and "up to date" in out, err
    assert (await _tessera(target, cwd, "migrate"))[0] == 0
    return target


async def test_backups_during_a_scan_load_hold_every_answered_scan_exactly_once(
    backend: Backend, tmp_path: Path
) -> None:
    served = backend.settings
    mid_file, final_file = (tmp_path / f"{name}{backend.suffix}" for name in ("mid", "final"))
    organiser = await _create_token(served)
    with live_server(served, tmp_path / "serve.log") as base:
        list_id, codes, devices = await _doors(base, organiser)
        load = Load()
        started = time.monotonic()
        doors = [
            asyncio.create_task(_door(base, d, list_id, codes, started + LOAD_SECONDS, load))
            for d in devices
        ]
        await asyncio.sleep(MID_BACKUP_AT)
        answered_before_mid = len(load.answered)
        mid = await _tessera(served, tmp_path, "backup", str(mid_file))
        answered_after_mid = len(load.answered)
        await asyncio.gather(*doors)
        final = await _tessera(served, tmp_path, "backup", str(final_file))
    elapsed = time.monotonic() - started

    assert load.errors == [], load.errors[:5]
    assert mid[0] == 0 and final[0] == 0, (mid, final)
    for path in (mid_file, final_file):
        assert path.stat().st_mode & 0o777 == 0o600

    restored = await _restore(backend, final_file, "final", tmp_path)
    scans = await _scans(restored)
    keys = [(d, s) for d, s, _ in scans]
    assert len(keys) == len(set(keys)), "a scan recorded twice"
    assert {(d, s): a for d, s, a in scans} == load.answered, "every answered scan, nothing else"
    await _assert_consistent(restored)

    mid_restored = await _restore(backend, mid_file, "mid", tmp_path)
    in_mid = await _scans(mid_restored)
    assert all(load.answered.get((d, s)) is a for d, s, a in in_mid), "mid: only answered scans"
    assert answered_before_mid <= len(in_mid) <= answered_after_mid + DOORS
    assert 0 < len(in_mid) < len(scans), "the mid-load backup is taken in the middle"
    await _assert_consistent(mid_restored)
    accepted = sum(load.answered.values())
    print(
        f"\nbackup under load: {len(scans)} scans answered in {elapsed:.1f} s"
        f" ({len(scans) / LOAD_SECONDS:.0f}/s, {accepted} accepted), 0 errors;"
        f" mid-load backup {len(in_mid)} scans: {mid[1].strip()}; final: {final[1].strip()}"
    )
