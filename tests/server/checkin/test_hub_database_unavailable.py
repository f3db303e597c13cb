"""The hub with PostgreSQL stopped: `error database_unavailable` and close 1013, never a crash.

A real uvicorn server on a PostgreSQL cluster of the test's own (tests/private_postgres.py),
which the test stops (a fast shutdown: sessions terminated, new connections refused) and
starts again. Issue 19, item 5; docs/protocol.md section 5; decision 0014.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server.checkin.config import HubConfig
from server.db import Database
from server.db.migrate import migrate
from tests.private_postgres import PrivatePostgres, private_postgres
from tests.server.checkin.conftest import WAIT, Door, LiveServer, recv, recv_type, socket

REDEEM = "/api/v1/checkin/redeem"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    with private_postgres() as running:
        yield running


@pytest.fixture
def database_url(cluster: PrivatePostgres) -> str:
    """This module's tests run on the private cluster only (it is the one they may stop)."""
    name = f"tessera_down_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await asyncpg.connect(cluster.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        database = Database(cluster.url(name))
        try:
            await migrate(database)
        finally:
            await database.dispose()

    asyncio.run(create())
    return cluster.url(name)


@pytest.fixture
def stopped(cluster: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The cluster, started again after the test whatever happened (the next test needs it)."""
    try:
        yield cluster
    finally:
        if not cluster.running:
            cluster.start()


def _scan(door: Door, n: int, scan_id: str, **extra: Any) -> dict[str, Any]:
    code = door.tickets[n]["code"]
    return {"scan_id": scan_id, "code": code, "list_id": door.list_id, **extra}


async def _closed(ws: ClientConnection) -> int | None:
    """Read until the hub closes the socket; its close code."""
    with pytest.raises(ConnectionClosed):
        while True:
            frame = await recv(ws)
            assert frame["type"] in ("changes", "counters", "error"), frame
    return ws.close_code


async def _stored(url: str, device_id: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT scan_id FROM scan WHERE device_id = $1 ORDER BY scan_id", device_id
        )
    finally:
        await connection.close()
    return [row["scan_id"] for row in rows]


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, [f"{r.name}: {r.getMessage()}" for r in failures]
    assert any("database unavailable" in r.getMessage() for r in caplog.records)


async def test_a_scan_while_postgresql_is_stopped_is_refused_1013_and_lands_once_when_it_is_back(
    live: LiveServer,
    http: httpx.AsyncClient,
    door: Door,
    stopped: PrivatePostgres,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    # No heal, and the room done with the first scan's notice before the stop: the scan below
    # is what meets the stopped database (the room's own reads are the next test's).
    live.app.state.hub.configure(HubConfig(heal_interval=60))
    token, before, during = door.token(), str(uuid.uuid4()), str(uuid.uuid4())
    device = {"Authorization": f"Bearer {token}"}
    async with socket(live, token) as ws:
        await ws.send(json.dumps({"type": "hello", "cursor": 0}))
        await recv_type(ws, "welcome")
        await recv_type(ws, "counters")
        await ws.send(json.dumps({"type": "scan", **_scan(door, 0, before)}))
        assert (await recv_type(ws, "result"))["verdict"] == "accepted"
        await recv_type(ws, "counters")  # pushed after the room read the scan's change
        await asyncio.to_thread(stopped.stop)
        await ws.send(json.dumps({"type": "scan", **_scan(door, 1, during)}))
        error = await recv_type(ws, "error")
        assert error["code"] == "database_unavailable", error
        assert await _closed(ws) == 1013
    for _ in range(2):  # a new socket cannot authenticate: refused alike, at once
        async with socket(live, token) as again:
            assert (await recv(again))["code"] == "database_unavailable"
            assert await _closed(again) == 1013
    ready = await http.get("/readyz")
    assert ready.status_code == 503, ready.text
    rest = await http.post(REDEEM, json=_scan(door, 2, str(uuid.uuid4())), headers=device)
    assert rest.status_code == 503, rest.text
    assert rest.headers["content-type"] == "application/problem+json"
    assert rest.json()["code"] == "database_unavailable"
    await asyncio.to_thread(stopped.start)

    assert (await http.get("/readyz")).status_code == 200
    async with socket(live, token) as ws:
        await ws.send(json.dumps({"type": "hello", "cursor": 0}))
        assert (await recv_type(ws, "welcome"))["snapshot_required"] is False
        items = [
            _scan(door, 0, before),  # answered before the stop, sent again: the stored result
            _scan(door, 1, during, offline=True, verdict="accepted"),  # the door's verdict
        ]
        await ws.send(json.dumps({"type": "scan_batch", "items": items}))
        results = (await recv_type(ws, "results"))["items"]
        assert [(r["scan_id"], r["verdict"], r["forced"]) for r in results] == [
            (before, "accepted", False),
            (during, "accepted", False),
        ]
    assert await _stored(database_url, door.device_id()) == sorted([before, during])
    _no_tracebacks(caplog)


async def test_an_idle_door_is_told_at_the_rooms_next_read_and_closed_1013(
    live: LiveServer,
    http: httpx.AsyncClient,
    door: Door,
    stopped: PrivatePostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    live.app.state.hub.configure(HubConfig(heal_interval=0.3))
    async with socket(live, door.token()) as ws, socket(live, door.token("B")) as other:
        for each in (ws, other):
            await each.send(json.dumps({"type": "hello", "cursor": 0}))
            await recv_type(each, "welcome")
        await asyncio.to_thread(stopped.stop)
        for each in (ws, other):  # neither sent anything: the room's heal found out
            async with asyncio.timeout(WAIT):
                assert await _closed(each) == 1013
    await asyncio.to_thread(stopped.start)
    async with socket(live, door.token()) as ws:
        await ws.send(json.dumps({"type": "hello", "cursor": 0}))
        assert (await recv_type(ws, "welcome"))["type"] == "welcome"
    _no_tracebacks(caplog)
