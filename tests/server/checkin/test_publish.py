"""The one after-commit publish path (server.changes.publish): every change tells the doors once
it has committed, the device revoke included."""

from __future__ import annotations

import time

import pytest

from server.changes.publish import committing, notify_after_commit
from server.changes.service import ChangeKind, append_changes
from server.checkin.fanout import MemoryFanout
from server.checkin.hub import HubConfig
from server.db import Database
from tests.server.checkin.conftest import hello, recv, socket

# No heal and no periodic revocation check can fire within a test: whatever a door receives, the
# notice published after the commit brought it.
NO_HEAL = HubConfig(heal_interval=3600.0, revocation_check_interval=3600.0)


async def test_a_door_sees_another_device_revoked_at_once_not_at_the_next_heal(live, door, http):
    live.app.state.hub.configure(NO_HEAL)
    async with socket(live, door.token("B")) as b:
        head = (await hello(b, 0))["head"]
        response = await http.delete(f"/api/v1/devices/{door.device_id('A')}")
        assert response.status_code == 204
        while (frame := await recv(b))["type"] != "changes":
            assert frame["type"] == "counters", frame
        [item] = frame["items"]
        assert item["seq"] == head + 1 and item["kind"] == ChangeKind.DEVICE_REVOKED
        assert item["device"]["id"] == door.device_id("A")


async def test_a_committed_change_publishes_its_queued_notices_then_its_head(settings, door):
    fanout, database = MemoryFanout(), Database(settings.database_url)
    try:
        async with fanout.subscribe(door.event_id) as notices:
            async with committing(database, fanout) as session:
                notify_after_commit(session, door.event_id, {"kind": "device_revoked", "x": 1})
                new_head = await append_changes(session, door.event_id, [("test.kind", {})])
                assert notices.empty()  # nothing before the commit
                before_commit = time.time()
            received = [notices.get_nowait() for _ in range(notices.qsize())]
            after_publish = time.time()
    finally:
        await database.dispose()
    committed_at = received[-1].pop("committed_at")  # the fan-out delay's start
    assert before_commit <= committed_at <= after_publish
    assert received == [
        {"kind": "device_revoked", "x": 1},
        {"kind": "head", "head": new_head},
    ]


async def test_a_rolled_back_change_publishes_nothing(settings, door):
    fanout, database = MemoryFanout(), Database(settings.database_url)
    try:
        async with fanout.subscribe(door.event_id) as notices:
            with pytest.raises(RuntimeError, match="boom"):
                async with committing(database, fanout) as session:
                    notify_after_commit(session, door.event_id, {"kind": "device_revoked"})
                    await append_changes(session, door.event_id, [("test.kind", {})])
                    raise RuntimeError("boom")
            assert notices.empty()
    finally:
        await database.dispose()
