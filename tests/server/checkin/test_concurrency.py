"""Atomic per ticket across instances: concurrent redeems of one single-entry ticket admit one.

Two apps on one database stand for two instances: each has its own engine, connection pool and
redeem writer, so nothing but the database's locks can keep them from both accepting.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import event, func, select

from protocol.messages import ScanItem
from server.app import create_app
from server.checkin import service
from server.checkin.models import ScanRow
from server.checkin.store import DeviceContext
from server.db import Database, utcnow
from tests.server.checkin.helpers import venue


async def test_two_instances_racing_on_one_ticket_accept_it_exactly_once(api, settings):
    v = await venue(api, 3)
    second = create_app(settings)
    async with AsyncTestClient(second, base_url="https://tickets.test") as other:
        clients = [api, other]

        async def fire(i: int, code: str) -> Any:
            body = {"scan_id": str(uuid.uuid4()), "code": code, "list_id": v.list_id}
            client = clients[i % 2]
            return await client.post("/api/v1/checkin/redeem", json=body, headers=v.door.headers)

        for ticket in v.tickets:
            responses = await asyncio.gather(*(fire(i, ticket["code"]) for i in range(16)))
            verdicts = sorted(r.json()["verdict"] for r in responses)
            assert verdicts == ["accepted"] + ["rejected"] * 15
            assert {r.json()["reason"] for r in responses} == {None, "already_redeemed"}


async def test_one_scan_id_raced_from_two_sessions_is_recorded_once(api, settings):
    v = await venue(api)
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    item = ScanItem(scan_id="raced", code=v.tickets[0]["code"], list_id=v.list_id)
    first, second = Database(settings.database_url), Database(settings.database_url)

    async def attempt(database: Database) -> Any:
        async with database.transaction() as session:
            return await service.redeem_scans(session, device, [item], now=utcnow())

    try:
        outcomes = await asyncio.gather(attempt(first), attempt(second))
        async with first.session() as session:
            rows = await session.scalar(select(func.count()).select_from(ScanRow))
    finally:
        await first.dispose()
        await second.dispose()
    assert rows == 1
    assert outcomes[0].results == outcomes[1].results
    assert outcomes[0].results[0].verdict == "accepted"
    stats = (await api.get(f"/api/v1/events/{v.event_id}/checkin/stats")).json()
    assert stats["checked_in"] == 1


async def test_the_decision_locks_the_presence_row_it_reads(api, settings, backend):
    """Pins the locking statement: FOR UPDATE on presence (PostgreSQL), BEGIN IMMEDIATE (SQLite,
    where presence is read in the same statement as the tickets)."""
    v = await venue(api)
    device = DeviceContext(v.door.device_id, v.event_id, "Door 1", "A")
    item = ScanItem(scan_id="pinned", code=v.tickets[0]["code"], list_id=v.list_id)
    database = Database(settings.database_url)
    statements: list[str] = []

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    driver_statements: list[str] = []  # SQLite's batch write runs on the driver's thread
    try:
        async with database.transaction() as session:
            if backend == "sqlite":
                raw = await (await session.connection()).get_raw_connection()
                await raw.driver_connection.set_trace_callback(  # type: ignore[union-attr]
                    lambda sql: driver_statements.append(" ".join(sql.split()))
                )
            await service.redeem_scans(session, device, [item], now=utcnow())
            if backend == "sqlite":
                await raw.driver_connection.set_trace_callback(None)  # type: ignore[union-attr]
    finally:
        await database.dispose()
    statements += [s for s in driver_statements if not s.startswith(("BEGIN", "SELECT"))]
    presence_reads = [s for s in statements if s.startswith("SELECT") and " presence" in s]
    assert len(presence_reads) == 1
    if backend == "postgresql":
        assert presence_reads[0].endswith("FOR UPDATE")
        assert any(s.startswith("INSERT INTO presence") and "DO NOTHING" in s for s in statements)
    else:
        assert "FOR UPDATE" not in presence_reads[0]
        assert "LEFT OUTER JOIN presence" in presence_reads[0]
        assert statements[0] == "BEGIN IMMEDIATE"  # the write lock, held before any read
    assert any(
        s.startswith("INSERT INTO scan") and "ON CONFLICT (device_id, scan_id) DO NOTHING" in s
        for s in statements
    )
