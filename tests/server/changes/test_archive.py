"""Archiving a finished event: exports written first with private modes, then its doors closed
(`event_archived`, never a 5xx) and its change log removed (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import json
import stat

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from server.changes.models import Change
from server.checkin.fanout import MemoryFanout
from server.checkin.writer import DEVICE_CACHE_TTL
from server.db import Database, utcnow
from server.errors import InvalidState, NotFound
from server.events.archive import archive_event
from tests.server.checkin.conftest import recv, send, socket

LATER = utcnow().replace(year=2028)  # the factories' events end on 2027-03-14


async def _redeem(live, token: str, code: str, list_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        return await client.post(
            "/api/v1/checkin/redeem",
            json={"scan_id": "late", "code": code, "list_id": list_id},
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_an_archived_event_is_exported_then_refuses_its_doors(live, door, settings, tmp_path):
    assert (await _redeem(live, door.token(), door.tickets[0]["code"], door.list_id)).is_success
    database = Database(settings.database_url)
    target = tmp_path / "archive" / "jazz"
    try:
        done = await archive_event(database, MemoryFanout(), door.event_id, target, now=LATER)
        async with database.transaction(read_only=True) as session:
            left = await session.scalars(select(Change.seq).where(Change.event_id == door.event_id))
            assert list(left) == []
        with pytest.raises(InvalidState):  # twice: refused, nothing written again
            await archive_event(database, MemoryFanout(), door.event_id, tmp_path / "b", now=LATER)
    finally:
        await database.dispose()
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    names = sorted(path.name for path in target.iterdir())
    assert len(names) == 4 and all(
        stat.S_IMODE((target / n).stat().st_mode) == 0o600 for n in names
    )
    assert done.devices_revoked == 2 and done.changes_removed > 0
    rows = {path.name: count for path, count in done.files}
    checkins = next(p for p, _ in done.files if p.name.endswith("-checkins.csv"))
    with checkins.open(encoding="utf-8-sig") as f:
        assert len(list(csv.reader(f, delimiter=";"))) == 1 + rows[checkins.name] == 2
    manifest = json.loads(next(target.glob("*-archive.json")).read_text())
    assert manifest["event"]["id"] == door.event_id and len(manifest["files"]) == 3

    # A process that cached the token trusts it for DEVICE_CACHE_TTL more at most (writer.py).
    await asyncio.sleep(DEVICE_CACHE_TTL + 0.1)
    refused = await _redeem(live, door.token(), door.tickets[1]["code"], door.list_id)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "event_archived"
    async with socket(live, door.token()) as ws:
        frame = await recv(ws)
        assert frame == {"type": "error", "code": "event_archived", "detail": frame["detail"]}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        auth = {"Authorization": f"Bearer {door.token()}"}
        changes = await client.get("/api/v1/checkin/changes?since=0", headers=auth)
        assert changes.status_code == 403 and changes.json()["code"] == "event_archived"


async def test_an_event_not_ended_unknown_or_a_bad_directory_changes_nothing(
    live, door, settings, tmp_path
):
    database = Database(settings.database_url)
    try:
        with pytest.raises(InvalidState, match="has not ended"):
            await archive_event(database, MemoryFanout(), door.event_id, tmp_path / "a")
        assert not (tmp_path / "a").exists()
        with pytest.raises(NotFound):
            await archive_event(database, MemoryFanout(), "NOSUCHEVNT", tmp_path / "b", now=LATER)
        (tmp_path / "file").write_text("")
        with pytest.raises(OSError):
            await archive_event(
                database, MemoryFanout(), door.event_id, tmp_path / "file", now=LATER
            )
        taken = tmp_path / "taken"
        taken.mkdir()
        existing = await _first_export_name(database, door.event_id)
        (taken / existing).write_text("keep me")
        with pytest.raises(FileExistsError):
            await archive_event(database, MemoryFanout(), door.event_id, taken, now=LATER)
        assert (taken / existing).read_text() == "keep me"
    finally:
        await database.dispose()
    ok = await _redeem(live, door.token(), door.tickets[0]["code"], door.list_id)
    assert ok.json()["verdict"] == "accepted"  # still open: nothing was archived


async def _first_export_name(database: Database, event_id: str) -> str:
    from server.events.models import Event

    async with database.transaction(read_only=True) as session:
        slug = await session.scalar(select(Event.slug).where(Event.id == event_id))
    return f"{slug}-bookings.csv"


async def test_an_archived_event_takes_no_new_device(live, door, settings, http, tmp_path):
    database = Database(settings.database_url)
    try:
        await archive_event(database, MemoryFanout(), door.event_id, tmp_path / "x", now=LATER)
    finally:
        await database.dispose()
    created = await http.post(f"/api/v1/events/{door.event_id}/devices", json={"name": "Late"})
    assert created.status_code == 403 and created.json()["code"] == "event_archived"


async def test_a_scan_on_a_socket_open_when_the_event_is_archived_is_refused(
    live, door, settings, tmp_path
):
    """The socket was authenticated before: its next scan is refused, nothing recorded."""
    database = Database(settings.database_url)
    try:
        async with socket(live, door.token()) as ws:
            await send(ws, {"type": "hello", "cursor": None})
            assert (await recv(ws))["type"] == "welcome"
            await archive_event(database, MemoryFanout(), door.event_id, tmp_path / "x", now=LATER)
            await asyncio.sleep(DEVICE_CACHE_TTL + 0.1)
            scan = {"type": "scan", "scan_id": "late-ws", "code": door.tickets[0]["code"]}
            await send(ws, scan | {"list_id": door.list_id})
            frame = await recv(ws)
            while frame["type"] == "counters":
                frame = await recv(ws)
            assert frame["type"] == "error" and frame["code"] == "event_archived"
        async with database.transaction(read_only=True) as session:
            from server.checkin.models import ScanRow

            recorded = await session.scalars(
                select(ScanRow.scan_id).where(ScanRow.event_id == door.event_id)
            )
            assert list(recorded) == []
    finally:
        await database.dispose()
