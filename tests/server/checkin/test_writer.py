"""The redeem writer's device cache: trusted for a bounded time, dropped on revocation.

Each database test runs on SQLite and PostgreSQL (the `backend` fixture behind `settings`).
"""

from __future__ import annotations

import asyncio
import gc
import uuid

from sqlalchemy import func, select, update

from server.checkin.models import Device, ScanRow
from server.checkin.store import DeviceContext
from server.checkin.writer import DeviceCache
from server.db import Database, utcnow
from tests.conftest import problem_of
from tests.server.checkin.conftest import hello, socket
from tests.server.checkin.helpers import redeem, venue

DOOR = DeviceContext("dev1", "evt1", "Door", "North")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cached_device_is_trusted_for_the_ttl_and_not_a_moment_longer() -> None:
    clock = Clock()
    cache = DeviceCache(ttl=1.0, clock=clock)
    cache.put({"tsd_a": DOOR})
    clock.now += 1.0
    assert cache.get("tsd_a") == DOOR
    clock.now += 0.01
    assert cache.get("tsd_a") is None


def test_forgetting_a_device_drops_every_token_of_it_and_no_other() -> None:
    cache = DeviceCache(ttl=60.0, clock=Clock())
    other = DeviceContext("dev2", "evt1", "Side door", None)
    cache.put({"tsd_a": DOOR, "tsd_b": DOOR, "tsd_c": other})
    cache.forget_device("dev1")
    assert [cache.get(t) for t in ("tsd_a", "tsd_b", "tsd_c")] == [None, None, other]


async def _scans_of(settings, scan_id: str) -> int:
    database = Database(settings.database_url)  # the app's pool lives on the client's loop
    try:
        async with database.transaction(read_only=True) as session:
            return int(await session.scalar(select(func.count()).where(ScanRow.scan_id == scan_id)))
    finally:
        await database.dispose()


async def _revoke_behind_its_back(settings, device_id: str) -> None:
    """Revoke as another instance would: in the database, with no notice to this one."""
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            await session.execute(
                update(Device).where(Device.id == device_id).values(revoked_at=utcnow())
            )
    finally:
        await database.dispose()


async def test_a_device_revoked_here_after_a_redeem_is_refused_at_once_and_records_nothing(
    api, app, settings
):
    app.state.redeem_writer.devices.ttl = 60.0  # only the revocation can drop the entry
    v = await venue(api, 2)
    first = await redeem(api, v.door, v.tickets[0]["token"], v.list_id)
    assert first.json()["verdict"] == "accepted"
    assert (await api.delete(f"/api/v1/devices/{v.door.device_id}")).status_code == 204
    scan_id = str(uuid.uuid4())
    refused = await redeem(api, v.door, v.tickets[1]["token"], v.list_id, scan_id=scan_id)
    assert refused.status_code == 401
    assert problem_of(refused)["code"] == "unauthenticated"
    assert await _scans_of(settings, scan_id) == 0


async def test_a_device_revoked_by_another_instance_is_refused_once_the_ttl_has_passed(
    api, app, settings
):
    app.state.redeem_writer.devices.ttl = 0.2
    v = await venue(api, 2)
    assert (await redeem(api, v.door, v.tickets[0]["token"], v.list_id)).status_code == 200
    await _revoke_behind_its_back(settings, v.door.device_id)
    await asyncio.sleep(0.3)
    refused = await redeem(api, v.door, v.tickets[1]["token"], v.list_id)
    assert refused.status_code == 401


async def test_a_device_revoked_notice_from_another_instance_drops_the_cached_token(
    live, door, http
):
    writer = live.app.state.redeem_writer
    writer.devices.ttl = 60.0  # only the notice can drop the entry
    headers = {"Authorization": f"Bearer {door.token('A')}"}
    body = {"scan_id": str(uuid.uuid4()), "code": door.tickets[0]["token"], "list_id": door.list_id}
    assert (
        await http.post("/api/v1/checkin/redeem", json=body, headers=headers)
    ).status_code == 200
    async with socket(live, door.token("B")) as ws:  # a room of the event listens here
        await hello(ws, 0)
        database = live.app.state.database

        async def revoke_elsewhere() -> None:
            async with database.transaction() as session:
                await session.execute(
                    update(Device)
                    .where(Device.id == door.device_id("A"))
                    .values(revoked_at=utcnow())
                )
            notice = {"kind": "device_revoked", "device_id": door.device_id("A")}
            await live.app.state.fanout.publish(door.event_id, notice)

        live.call(revoke_elsewhere())
        body = {"scan_id": str(uuid.uuid4()), "code": door.tickets[1]["token"]}
        body["list_id"] = door.list_id
        status = 200
        for _ in range(50):  # the room handles the notice on its own task
            status = (
                await http.post("/api/v1/checkin/redeem", json=body, headers=headers)
            ).status_code
            if status == 401:
                break
            await asyncio.sleep(0.02)
        assert status == 401


async def test_a_running_app_has_its_startup_heap_frozen_out_of_full_collections(api):
    # `api` started the app, which froze the heap it found (once per process), so a full
    # collection no longer walks the app's modules and mappers (a ~90 ms pause, see app.py).
    assert gc.get_freeze_count() > 0
