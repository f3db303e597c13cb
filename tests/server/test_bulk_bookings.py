"""The bulk booking path (server/bookings/bulk.py): the rules of one booking, for many at once."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from protocol.token import TicketClaims, verify_ticket_token
from server.bookings.bulk import CHUNK_TICKETS, NewBooking, create_bookings
from server.bookings.models import Booking, BookingItem
from server.campaigns.models import Message
from server.changes.models import Change
from server.db import Database
from server.errors import BodyInvalid, CapacityExceeded
from server.events.models import Event, TicketType
from server.keys.service import KeyRing, Keystore
from server.tickets.models import Ticket, TicketLink
from server.tickets.service import TicketIssuer
from server.tickets.signing import PARALLEL_FROM
from tests.factories import create_booking, create_event, create_ticket_type


@pytest.fixture
async def stock(api):
    """An event and a ticket type of 6,000 seats."""
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=6000)
    return event["id"], ticket_type["id"]


def guests(ticket_type_id, count, quantity=1, **overrides):
    return [
        NewBooking(
            buyer_email=f"guest{n}@example.org",
            ticket_type_id=ticket_type_id,
            quantity=quantity,
            **{"buyer_name": f"Guest {n}", "buyer_language": "fr", **overrides},
        )
        for n in range(count)
    ]


async def bulk(settings, event_id, bookings, *, confirm, progress=None):
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            keys = await KeyRing(Keystore(settings.keys_path)).keys(session)
            issuer = TicketIssuer(keys, settings.public_base_url)
            return await create_bookings(
                session,
                event_id,
                bookings,
                issuer,
                confirm=confirm,
                settings=settings,
                progress=progress,
            )
    finally:
        await database.dispose()


async def read(settings, query):
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            return (await session.execute(query)).all()
    finally:
        await database.dispose()


async def count(settings, model, *where):
    return (await read(settings, select(func.count()).select_from(model).where(*where)))[0][0]


async def test_pending_bookings_hold_no_tickets_and_no_seats(api, settings, stock):
    event_id, type_id = stock
    result = await bulk(settings, event_id, guests(type_id, 30, quantity=2), confirm=False)
    assert len(result.booking_ids) == 30 and result.tickets == 0
    rows = await read(
        settings, select(Booking.status, Booking.reference).where(Booking.event_id == event_id)
    )
    assert {status for status, _ in rows} == {"pending"}
    assert len({ref for _, ref in rows}) == 30
    assert all(ref.startswith("TSR-") and len(ref) == 10 for _, ref in rows)
    assert await count(settings, Ticket, Ticket.event_id == event_id) == 0
    assert (await read(settings, select(TicketType.confirmed_count)))[0][0] == 0
    items = await read(settings, select(BookingItem.quantity, BookingItem.ticket_type_id))
    assert set(items) == {(2, type_id)}


async def test_confirmed_bookings_get_signed_tickets_links_and_changes_across_chunks(
    api, settings, stock
):
    """1,700 bookings of 3 tickets: several chunks, so codes drawn for one chunk while the
    previous one is not written yet must not collide with it either; and over PARALLEL_FROM
    tickets, so they are signed in a child process (server/tickets/signing.py)."""
    event_id, type_id = stock
    bookings = guests(type_id, 1700, quantity=3)
    result = await bulk(settings, event_id, bookings, confirm=True)
    assert result.tickets == 5100 > max(3 * CHUNK_TICKETS, PARALLEL_FROM) and result.mails == 0
    tickets = await read(
        settings,
        select(Ticket.id, Ticket.code, Ticket.link, Ticket.token, Ticket.holder_name).where(
            Ticket.event_id == event_id
        ),
    )
    assert len(tickets) == 5100
    assert len({t.code for t in tickets}) == len({t.link for t in tickets}) == 5100
    keys = (await _keys(settings)).verifying
    for t in tickets[:50] + tickets[-50:]:
        claims = verify_ticket_token(t.token, keys, event_id=event_id, now=time.time())
        assert claims == TicketClaims(jti=t.id, evt=event_id, ver=1)
    assert {t.holder_name for t in tickets} == {f"Guest {n}" for n in range(1700)}
    assert await count(settings, TicketLink) == 5100
    seqs = [
        s
        for (s,) in await read(
            settings, select(Change.seq).where(Change.event_id == event_id).order_by(Change.seq)
        )
    ]
    assert seqs == list(range(1, 5102)), "the type's creation, then one change per ticket"
    head = await read(settings, select(Event.change_seq).where(Event.id == event_id))
    assert head[0][0] == 5101
    assert (await read(settings, select(TicketType.confirmed_count)))[0][0] == 5100
    order = await read(
        settings, select(Booking.id, Booking.buyer_email).where(Booking.event_id == event_id)
    )
    by_id = dict(order)
    assert [by_id[i] for i in result.booking_ids] == [b.buyer_email for b in bookings]


async def test_bulk_tickets_are_those_a_single_confirmation_issues(api, settings, stock):
    event_id, type_id = stock
    single = await create_booking(api, event_id, type_id, 2, confirm=True)
    await bulk(settings, event_id, guests(type_id, 1, quantity=2), confirm=True)
    columns = (Ticket.position, Ticket.version, Ticket.status, Ticket.blocked, Ticket.seat)
    rows = await read(settings, select(Ticket.booking_id, *columns).order_by(Ticket.position))
    mine = sorted(r[1:] for r in rows if r[0] != single["id"])
    theirs = sorted(r[1:] for r in rows if r[0] == single["id"])
    assert mine == theirs == [(0, 1, "valid", False, None), (1, 1, "valid", False, None)]


async def test_an_oversell_is_refused_whole(api, settings):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=10)
    await create_booking(api, event["id"], ticket_type["id"], 4, confirm=True)
    with pytest.raises(CapacityExceeded) as refused:
        await bulk(settings, event["id"], guests(ticket_type["id"], 7), confirm=True)
    assert refused.value.extra == {
        "ticket_type_id": ticket_type["id"],
        "asked": 7,
        "remaining": 6,
    }
    assert await count(settings, Booking) == 1
    assert await count(settings, Ticket) == 4
    assert (await read(settings, select(TicketType.confirmed_count)))[0][0] == 4
    # exactly what remains is fine
    result = await bulk(settings, event["id"], guests(ticket_type["id"], 6), confirm=True)
    assert result.tickets == 6


async def test_a_ticket_type_of_another_event_is_refused(api, settings, stock):
    event_id, _ = stock
    other = await create_event(api, name="Elsewhere")
    foreign = await create_ticket_type(api, other["id"])
    with pytest.raises(BodyInvalid) as refused:
        await bulk(settings, event_id, guests(foreign["id"], 2), confirm=True)
    assert refused.value.errors[0]["field"] == "ticket_type_id"
    assert await count(settings, Booking) == 0


async def test_a_quantity_below_one_is_refused(api, settings, stock):
    event_id, type_id = stock
    with pytest.raises(BodyInvalid):
        await bulk(settings, event_id, guests(type_id, 2, quantity=0), confirm=True)
    assert await count(settings, Booking) == 0


async def test_auto_send_queues_one_ticket_mail_per_booking(api, settings, stock):
    event_id, type_id = stock
    patched = await api.patch(f"/api/v1/events/{event_id}", json={"auto_send_tickets": True})
    assert patched.status_code == 200
    bookings = guests(type_id, 1500, buyer_language="de")
    result = await bulk(settings, event_id, bookings, confirm=True)
    assert result.mails == 1500
    messages = await read(
        settings,
        select(Message.source, Message.kind, Message.status, Message.language, Message.to_email),
    )
    assert {m[:4] for m in messages} == {("auto", "tickets", "queued", "de")}
    assert sorted(m.to_email for m in messages) == sorted(b.buyer_email for b in bookings)
    assert len({m for (m,) in await read(settings, select(Message.message_id))}) == 1500


async def test_pending_bookings_send_no_mail_even_with_auto_send(api, settings, stock):
    event_id, type_id = stock
    await api.patch(f"/api/v1/events/{event_id}", json={"auto_send_tickets": True})
    result = await bulk(settings, event_id, guests(type_id, 5), confirm=False)
    assert result.mails == 0 and await count(settings, Message) == 0


async def test_progress_is_reported_per_chunk_up_to_the_total(api, settings, stock):
    event_id, type_id = stock
    seen = []
    await bulk(
        settings,
        event_id,
        guests(type_id, 2500),
        confirm=True,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


async def test_a_buyer_without_name_gets_tickets_without_holder_name(api, settings, stock):
    event_id, type_id = stock
    await bulk(settings, event_id, guests(type_id, 1, buyer_name=None), confirm=True)
    assert await read(settings, select(Ticket.holder_name)) == [(None,)]
    assert await read(settings, select(Booking.buyer_name)) == [("",)]


async def test_an_empty_batch_writes_nothing(api, settings, stock):
    event_id, _ = stock
    result = await bulk(settings, event_id, [], confirm=True)
    assert result.booking_ids == [] and await count(settings, Booking) == 0


async def _keys(settings):
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            return await KeyRing(Keystore(settings.keys_path)).keys(session)
    finally:
        await database.dispose()
