"""Retention: old changes of finished events are pruned, and a cursor older than what is kept is
told `snapshot_required` for real, over the websocket and REST, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from server.changes.feed import changes_after, read_pages
from server.changes.models import Change
from server.changes.retention import Pruner, prune
from server.changes.service import append_changes
from server.db import Database, utcnow
from server.errors import SnapshotRequired
from server.events.models import Event
from tests.factories import create_event, create_ticket_type
from tests.server.checkin.conftest import hello, recv, recv_type, send, socket

WEEK = timedelta(days=7)
# The factories' events end on 2027-03-14: a year later they ended long ago.
LATER = utcnow().replace(year=2028)


def _changes(live, token: str, since: int) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{live.base_url}/api/v1/checkin/changes?since={since}", headers=headers)


async def _seqs(database: Database, event_id: str) -> list[int]:
    async with database.transaction(read_only=True) as session:
        query = select(Change.seq).where(Change.event_id == event_id).order_by(Change.seq)
        return list(await session.scalars(query))


async def _scan(live, door, code: str, scan_id: str) -> dict:
    async with socket(live, door.token("B")) as ws:
        await send(ws, {"type": "scan", "scan_id": scan_id, "code": code, "list_id": door.list_id})
        return await recv_type(ws, "result")


async def test_a_cursor_older_than_the_kept_log_gets_snapshot_required(live, door, settings):
    database = Database(settings.database_url)
    try:
        async with socket(live, door.token()) as ws:
            assert (await hello(ws, 0))["snapshot_required"] is False  # nothing pruned yet
        pruned_at = max(await _seqs(database, door.event_id))
        done = await prune(database, retention=WEEK, now=LATER)
        assert [(p.event_id, p.floor, p.kept) for p in done] == [(door.event_id, pruned_at, 0)]
        assert done[0].removed == pruned_at
        assert await _seqs(database, door.event_id) == []
        result = await _scan(live, door, door.tickets[0]["code"], "after-prune")
        assert result["verdict"] == "accepted"
        head = pruned_at + 1
        assert await _seqs(database, door.event_id) == [head]  # seq goes on, never reused

        old = _changes(live, door.token(), 0)
        assert old.status_code == 409
        assert old.json()["code"] == "snapshot_required" and old.json()["head"] == head
        assert _changes(live, door.token(), pruned_at - 1).status_code == 409
        kept = _changes(live, door.token(), pruned_at).json()
        assert [item["seq"] for item in kept["items"]] == [head]
        async with socket(live, door.token()) as ws:
            welcome = await hello(ws, 0)
            assert welcome["snapshot_required"] is True and welcome["head"] == head
            welcome = await hello(ws, pruned_at - 1)
            assert welcome["snapshot_required"] is True
            await send(ws, {"type": "hello", "cursor": pruned_at})
            assert (await recv(ws))["snapshot_required"] is False
            changes = await recv(ws)
            assert [item["seq"] for item in changes["items"]] == [head]
        async with httpx.AsyncClient(base_url=live.base_url) as client:
            snapshot = await client.get(
                "/api/v1/checkin/snapshot", headers={"Authorization": f"Bearer {door.token()}"}
            )
        assert int(snapshot.headers["x-tessera-seq"]) == head  # the way back in
    finally:
        await database.dispose()


async def test_running_events_and_recent_changes_are_kept(live, door, http, settings):
    running = await create_event(
        http, starts_at="2027-01-01T10:00:00+00:00", ends_at="2029-01-01T10:00:00+00:00"
    )
    await create_ticket_type(http, running["id"])  # a change of its own
    database = Database(settings.database_url)
    try:
        assert await prune(database, retention=WEEK) == []  # door's event has not ended
        assert await prune(database, retention=timedelta(days=3650), now=LATER) == []
        done = await prune(database, retention=WEEK, now=LATER)
        assert [p.event_id for p in done] == [door.event_id]  # not the one still running
        assert await _seqs(database, running["id"]) != []
    finally:
        await database.dispose()


async def test_a_dry_run_says_what_it_would_remove_and_removes_nothing(live, door, settings):
    database = Database(settings.database_url)
    try:
        before = await _seqs(database, door.event_id)
        done = await prune(database, retention=WEEK, now=LATER, dry_run=True)
        assert [(p.removed, p.kept) for p in done] == [(len(before), 0)]
        assert await _seqs(database, door.event_id) == before
        assert _changes(live, door.token(), 0).status_code == 200
    finally:
        await database.dispose()


async def test_pruning_in_small_batches_keeps_the_newer_changes_gap_free(live, door, settings):
    database = Database(settings.database_url)
    try:
        first = await _seqs(database, door.event_id)
        async with database.transaction() as session:  # newer changes, a day before LATER
            await append_changes(session, door.event_id, [("event.updated", {})] * 3)
            recent = LATER - timedelta(days=1)
            await session.execute(
                update(Change)
                .where(Change.event_id == door.event_id, Change.seq > first[-1])
                .values(created_at=recent)
            )
        done = await prune(database, retention=WEEK, now=LATER, batch=2)
        assert (done[0].removed, done[0].kept) == (len(first), 3)
        assert await _seqs(database, door.event_id) == [first[-1] + i for i in (1, 2, 3)]
        page = _changes(live, door.token(), first[-1]).json()
        assert [item["seq"] for item in page["items"]] == [first[-1] + i for i in (1, 2, 3)]
        assert await prune(database, retention=WEEK, now=LATER) == []  # idempotent
    finally:
        await database.dispose()


async def test_a_reader_never_skips_changes_pruned_between_two_pages(live, door, settings):
    """The floor rising between two pages of a catch-up raises, never yields a hole."""
    database = Database(settings.database_url)
    try:
        pages = read_pages(database, door.event_id, 0, limit=1)
        assert [item["seq"] for item in (await anext(pages)).items] == [1]
        await prune(database, retention=WEEK, now=LATER)
        with pytest.raises(SnapshotRequired):
            await anext(pages)
        async with database.transaction(read_only=True) as session:
            with pytest.raises(SnapshotRequired):
                await changes_after(session, door.event_id, 1)
    finally:
        await database.dispose()


async def test_a_socket_whose_changes_were_pruned_under_it_is_told_to_load_a_snapshot(
    live, door, settings
):
    """A door that fell behind while the log after its cursor was pruned gets an unprompted
    `welcome {snapshot_required: true}` instead of a hole in its changes."""
    database = Database(settings.database_url)
    try:
        async with socket(live, door.token()) as ws:
            cursor = (await hello(ws, 0))["head"]
            async with database.transaction() as session:
                await append_changes(session, door.event_id, [("event.updated", {})] * 2)
                await session.execute(
                    update(Event).where(Event.id == door.event_id).values(change_floor=cursor + 1)
                )
            notice = {"kind": "head", "head": cursor + 2}
            live.call(live.app.state.fanout.publish(door.event_id, notice))
            frame = await recv_type(ws, "welcome")
            assert frame["snapshot_required"] is True and frame["head"] == cursor + 2
            await send(ws, {"type": "hello", "cursor": cursor + 1})  # as after a snapshot
            assert (await recv(ws))["snapshot_required"] is False
            changes = await recv(ws)
            assert [item["seq"] for item in changes["items"]] == [cursor + 2]
    finally:
        await database.dispose()


async def test_the_periodic_pruner_prunes_and_stops(live, door, settings):
    database = Database(settings.database_url)
    try:
        pruner = Pruner(database, WEEK, interval=0.05, first_delay=0.0, clock=lambda: LATER)
        stop = asyncio.Event()
        task = asyncio.create_task(pruner.run(stop))
        async with asyncio.timeout(10):
            while pruner.runs < 2:  # noqa: ASYNC110 (the pruner has no event to wait on)
                await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert await _seqs(database, door.event_id) == []
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("worker", "retention", "runs"),
    [("embedded", "7d", True), ("external", "7d", False), ("embedded", "never", False)],
)
def test_the_pruner_runs_where_the_outbox_runs_unless_retention_is_off(
    settings, worker, retention, runs
):
    from server.app import build_state

    state = build_state(settings.replace(worker=worker, change_retention=retention))
    assert (state.pruner is not None) is runs
    if runs:
        assert state.pruner.retention == WEEK and state.pruner.first_delay == 60.0
