"""Incremental counters (server/checkin/counters.py `CounterTally`): folded from the change log,
always equal to the full aggregate (`event_counters`) after any sequence of scans, retries,
annulments, offline uploads and newly issued tickets; SQLite and PostgreSQL (`settings`)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from server.checkin.counters import CounterTally, event_counters, tally_counters
from server.db import Database
from tests.factories import create_booking
from tests.server.checkin.helpers import create_list, paired_door, venue


async def _compare(database: Database, tally: CounterTally | None, event_id: str) -> CounterTally:
    async with database.transaction(read_only=True) as session:
        tally = await tally_counters(session, tally, event_id)
        full = await event_counters(session, event_id)
    assert tally.counters() == full
    return tally


async def test_the_tally_equals_the_full_fold_after_random_scans_retries_and_annuls(api, settings):
    v = await venue(api, 6, persons=2, list_fields={"max_entries": 2, "allow_reentry": True})
    second = await create_list(api, v.event_id, name="Lounge")
    doors = [v.door, await paired_door(api, v.event_id, gate="B")]
    doors.append(await paired_door(api, v.event_id, gate=None, name="Roaming"))
    tickets = list(v.tickets)
    rng = random.Random(17)
    sent: list[tuple[Any, dict[str, Any]]] = []
    database = Database(settings.database_url)
    tally = None
    loads = 0
    try:
        tally = await _compare(database, tally, v.event_id)
        for step in range(90):
            roll = rng.random()
            door = rng.choice(doors)
            if sent and roll < 0.2:  # a retry: stored once, never a change
                door, body = rng.choice(sent)
                await api.post("/api/v1/checkin/redeem", json=body, headers=door.headers)
            elif sent and roll < 0.35:  # an undo, allowed or not
                door, body = rng.choice(sent)
                await api.post(
                    "/api/v1/checkin/annul", json={"scan_id": body["scan_id"]}, headers=door.headers
                )
            elif roll < 0.38:  # tickets issued meanwhile: the totals move (a reload)
                booking = await create_booking(api, v.event_id, v.type_id, 2, confirm=True)
                tickets += booking["tickets"]
            else:
                body = {
                    "scan_id": str(uuid.uuid4()),
                    "code": rng.choice(tickets)["code"],
                    "list_id": rng.choice([v.list_id, second["id"]]),
                    "direction": rng.choice(["entry", "entry", "exit"]),
                }
                if rng.random() < 0.25:
                    said = rng.choice(["accepted", "rejected"])
                    body |= {"offline": True, "verdict": said}
                    if said == "rejected":
                        body["reason"] = "already_redeemed"
                sent.append((door, body))
                response = await api.post("/api/v1/checkin/redeem", json=body, headers=door.headers)
                assert response.status_code == 200, response.text
            if step % rng.choice([1, 3, 7]) == 0:  # pushes at irregular intervals
                before = tally
                tally = await _compare(database, tally, v.event_id)
                loads += tally is not before
        assert tally is not None and tally.counters().checked_in > 0
    finally:
        await database.dispose()
    assert loads < 20  # mostly folded, reloaded only for the issued tickets


async def test_folding_the_same_changes_twice_changes_nothing(api, settings):
    v = await venue(api, 3, persons=3)
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            tally = await CounterTally.load(session, v.event_id)
        start = tally.seq
        for ticket in v.tickets[:2]:
            body = {"scan_id": str(uuid.uuid4()), "code": ticket["code"], "list_id": v.list_id}
            await api.post("/api/v1/checkin/redeem", json=body, headers=v.door.headers)
        tally = await _compare(database, tally, v.event_id)
        assert tally.checked_in == 6
        from server.changes.feed import changes_after

        async with database.transaction(read_only=True) as session:
            items = (await changes_after(session, v.event_id, start)).items
        tally.seq = start  # as if those changes came again (a tally loaded after them)
        assert tally.fold(items) == (False, set())
        assert tally.counters().checked_in == 6 and tally.counters().inside == 6
    finally:
        await database.dispose()


async def test_an_event_of_another_size_pushes_with_the_same_statements(api, settings):
    """Once loaded, a push reads the changes since the last one (and persons of tickets not seen
    before), never the whole event: the statement count does not grow with the event."""
    from sqlalchemy import event as sa_event

    counts = []
    for quantity in (3, 60):
        v = await venue(api, quantity)
        database = Database(settings.database_url)
        statements: list[str] = []
        try:
            tally = await _compare(database, None, v.event_id)

            @sa_event.listens_for(database.engine.sync_engine, "before_cursor_execute")
            def _record(
                _c: Any, _k: Any, statement: str, *_: Any, into: list[str] = statements
            ) -> None:
                into.append(statement)

            for ticket in v.tickets[:3]:
                body = {"scan_id": str(uuid.uuid4()), "code": ticket["code"], "list_id": v.list_id}
                await api.post("/api/v1/checkin/redeem", json=body, headers=v.door.headers)
            async with database.transaction(read_only=True) as session:
                tally = await tally_counters(session, tally, v.event_id)
            counts.append(len(statements))
            assert tally.checked_in == 3
        finally:
            await database.dispose()
    assert counts[0] == counts[1]


def test_a_conflict_change_moves_no_counter_and_needs_no_reload():
    """A `scan.conflict` (decision 0012) carries no presence: the tally steps over it, and a
    kind it does not know still makes it reload."""
    tally = CounterTally("event", nulls_first=True)
    tally.seq = 4
    before = tally.counters()
    conflict = {
        "seq": 5,
        "kind": "scan.conflict",
        "conflict": {"scan_id": "s", "reason": "invalid"},
    }
    assert tally.fold([conflict]) == (False, set())
    assert tally.seq == 5 and tally.counters() == before
    assert tally.fold([{"seq": 6, "kind": "something.new"}]) == (True, set())
