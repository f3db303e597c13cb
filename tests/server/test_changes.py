"""The change log scanners follow: gap-free, written with the change, announced after commit."""

import asyncio
import time

from sqlalchemy import select

from server.changes.models import Change
from server.db import Database
from server.keys.service import Keystore, list_keys, retire_key, rotate_key
from tests.factories import create_booking, create_event, create_ticket_type


async def change_log(settings, event_id):
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            rows = await session.scalars(
                select(Change).where(Change.event_id == event_id).order_by(Change.seq)
            )
            return [(c.seq, c.kind) for c in rows]
    finally:
        await database.dispose()


async def test_confirm_and_cancel_append_gap_free_changes(api, settings):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], 2, confirm=True)
    await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    log = await change_log(settings, event["id"])
    assert [seq for seq, _ in log] == [1, 2, 3, 4, 5]
    assert [kind for _, kind in log] == (
        ["ticket_type.created"] + ["ticket.issued"] * 2 + ["ticket.revoked"] * 2
    )


async def test_a_refused_request_appends_nothing(api, settings):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=1)
    response = await api.post(
        f"/api/v1/events/{event['id']}/bookings",
        json={
            "buyer": {"name": "A", "email": "a@example.org"},
            "items": [{"ticket_type_id": ticket_type["id"], "quantity": 2}],
            "confirm": True,
        },
    )
    assert response.status_code == 409
    assert await change_log(settings, event["id"]) == [(1, "ticket_type.created")]


async def test_doors_are_told_to_look_after_a_commit_that_changed_their_event(api, app):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    async with app.state.fanout.subscribe(event["id"]) as notices:
        await create_booking(api, event["id"], ticket_type["id"], 3, confirm=True)
        notice = await asyncio.wait_for(notices.get(), 5)
    assert notice.pop("committed_at") <= time.time()  # the fan-out delay's start
    assert notice == {"kind": "head", "head": 4}  # the type's creation, then three tickets


async def test_no_notice_for_a_request_that_changed_nothing(api, app):
    event = await create_event(api)
    async with app.state.fanout.subscribe(event["id"]) as notices:
        await api.get(f"/api/v1/events/{event['id']}")
        # Its languages are nothing to the doors (guest pages and mails use them).
        await api.patch(f"/api/v1/events/{event['id']}", json={"languages": ["fr", "en"]})
        assert notices.empty()


async def test_an_event_change_doors_show_is_logged_as_the_snapshot_holds_it(api, settings):
    event = await create_event(api)
    await api.patch(f"/api/v1/events/{event['id']}", json={"venue": "Hangar 32, Nantes"})
    log = await change_log(settings, event["id"])
    assert log == [(1, "event.updated")]


async def test_key_rotation_and_retirement_reach_current_events_logs(api, settings):
    current = await create_event(api)
    ended = await create_event(api, starts_at="2020-01-01T20:00:00+01:00", ends_at=None)
    database = Database(settings.database_url)
    keystore = Keystore(settings.keys_path)
    try:
        async with database.transaction() as session:
            first = (await list_keys(session))[0].kid
            second = (await rotate_key(session, keystore)).kid
        async with database.transaction() as session:
            await retire_key(session, keystore, first)
            rows = await session.scalars(
                select(Change).where(Change.kind == "keys.changed").order_by(Change.seq)
            )
            changes = [(c.event_id, [k["kid"] for k in c.payload["keys"]]) for c in rows]
    finally:
        await database.dispose()
    assert changes == [(current["id"], [first, second]), (current["id"], [second])]
    assert ended["id"] not in {event_id for event_id, _ in changes}
