"""The one after-commit publish path (server.changes.publish): every change tells the doors once
it has committed, the device revoke included."""

from __future__ import annotations

import time
import uuid

import pytest

from server.changes.publish import committing, notify_after_commit
from server.changes.service import ChangeKind, append_changes
from server.checkin.fanout import MemoryFanout
from server.checkin.feed import DatabaseFeed
from server.checkin.hub import HubConfig
from server.db import Database
from tests.server.checkin.conftest import hello, recv, recv_type, socket

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


async def test_a_scan_reaches_the_other_door_without_a_read_of_the_log(live, door, http, settings):
    """The writer's own items ride on its head notice (this process only): the room offers them
    as they are, and an organiser's change, which carries none, is read from the log."""
    live.app.state.hub.configure(NO_HEAL)
    reads: list[int] = []
    real_pages = DatabaseFeed.pages

    def counted(self, event_id, after, limit):  # the real reader, counted
        reads.append(after)
        return real_pages(self, event_id, after, limit)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseFeed, "pages", counted)
        async with socket(live, door.token("B")) as b:
            head = (await hello(b, 0))["head"]
            reads.clear()
            ticket = door.tickets[0]
            body = {"scan_id": str(uuid.uuid4()), "code": ticket["token"], "list_id": door.list_id}
            answer = await http.post(
                "/api/v1/checkin/redeem",
                json=body,
                headers={"Authorization": f"Bearer {door.token('A')}"},
            )
            assert answer.json()["verdict"] == "accepted"
            frame = await recv_type(b, "changes")
            [item] = frame["items"]
            assert item["seq"] == head + 1 and item["kind"] == ChangeKind.SCAN_ACCEPTED
            assert item["scan"]["scan_id"] == body["scan_id"]
            assert item["presence"]["ticket_id"] == ticket["id"] and item["presence"]["inside"]
            assert reads == []  # offered from the notice
            # The same item as the log keeps it, field for field.
            database = Database(settings.database_url)
            try:
                async for page in real_pages(DatabaseFeed(database), door.event_id, head, 10):
                    assert page.items == [item]
            finally:
                await database.dispose()
            response = await http.delete(f"/api/v1/devices/{door.device_id('A')}")
            assert response.status_code == 204
            frame = await recv_type(b, "changes")
            assert [i["kind"] for i in frame["items"]] == [ChangeKind.DEVICE_REVOKED]
            assert reads == [head + 1]  # no items on that notice: the room read the log
