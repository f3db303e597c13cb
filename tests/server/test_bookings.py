"""Bookings: create, confirm (capacity and tickets), cancel, list, and what clients get wrong."""

import asyncio

import pytest

from tests.conftest import problem_of
from tests.factories import (
    booking_body,
    confirmed_booking,
    create_booking,
    create_event,
    create_ticket_type,
)


@pytest.fixture
async def stock(api):
    """An event with a ticket type limited to 5 tickets."""
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=5)
    return event["id"], ticket_type["id"]


async def bookings_of(api, event_id, **params):
    return (await api.get(f"/api/v1/events/{event_id}/bookings", params=params)).json()


async def remaining(api, event_id):
    types = (await api.get(f"/api/v1/events/{event_id}/ticket-types")).json()
    return types[0]["remaining"]


async def test_a_new_booking_is_pending_with_a_readable_reference_and_no_tickets(api, stock):
    event_id, type_id = stock
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=booking_body(type_id, 2))
    assert response.status_code == 201
    booking = response.json()
    assert response.headers["location"].endswith(f"/api/v1/bookings/{booking['id']}")
    assert booking["status"] == "pending" and booking["tickets"] == []
    assert booking["reference"].startswith("TSR-") and len(booking["reference"]) == 10
    assert await remaining(api, event_id) == 5, "a pending booking holds nothing"


async def test_confirm_issues_one_ticket_per_admission_and_takes_capacity(api, stock):
    event_id, type_id = stock
    booking = await create_booking(api, event_id, type_id, 3)
    response = await api.post(f"/api/v1/bookings/{booking['id']}/confirm")
    assert response.status_code == 200
    confirmed = response.json()
    assert confirmed["status"] == "confirmed"
    tickets = confirmed["tickets"]
    assert len(tickets) == 3
    assert len({t["code"] for t in tickets}) == 3 and len({t["link"] for t in tickets}) == 3
    assert all(t["status"] == "valid" and t["version"] == 1 for t in tickets)
    assert all(t["holder_name"] == "Camille Martin" for t in tickets)
    assert await remaining(api, event_id) == 2


async def test_confirming_twice_changes_nothing(api, stock):
    event_id, type_id = stock
    booking = await create_booking(api, event_id, type_id, 2)
    first = (await api.post(f"/api/v1/bookings/{booking['id']}/confirm")).json()
    second = await api.post(f"/api/v1/bookings/{booking['id']}/confirm")
    assert second.status_code == 200
    assert second.json() == first
    assert await remaining(api, event_id) == 3


async def test_holders_name_and_seat_each_ticket(api, stock):
    event_id, type_id = stock
    holders = [{"name": "Zoë Ångström", "seat": "B12"}, {"email": "guest@example.org"}]
    body = booking_body(type_id, 3, confirm=True)
    body["items"][0]["holders"] = holders
    booking = (await api.post(f"/api/v1/events/{event_id}/bookings", json=body)).json()
    tickets = booking["tickets"]
    assert (tickets[0]["holder_name"], tickets[0]["seat"]) == ("Zoë Ångström", "B12")
    assert tickets[1]["holder_email"] == "guest@example.org"
    assert tickets[2]["holder_name"] == "Camille Martin"


async def test_capacity_is_never_exceeded(api, stock):
    event_id, type_id = stock
    await create_booking(api, event_id, type_id, 4, confirm=True)
    too_many = await create_booking(api, event_id, type_id, 2)
    response = await api.post(f"/api/v1/bookings/{too_many['id']}/confirm")
    assert response.status_code == 409
    problem = problem_of(response)
    assert problem["code"] == "capacity_exceeded"
    assert problem["ticket_type_id"] == type_id and problem["remaining"] == 1
    still = (await api.get(f"/api/v1/bookings/{too_many['id']}")).json()
    assert still["status"] == "pending" and still["tickets"] == []
    assert await remaining(api, event_id) == 1


async def test_create_and_confirm_over_capacity_writes_nothing(api, stock):
    event_id, type_id = stock
    body = booking_body(type_id, 6, confirm=True)
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=body)
    assert response.status_code == 409
    assert (await bookings_of(api, event_id))["total"] == 0


async def test_concurrent_confirms_for_the_last_seats_never_oversell(api, stock):
    event_id, type_id = stock
    bookings = [await create_booking(api, event_id, type_id, 2) for _ in range(6)]
    responses = await asyncio.gather(
        *(api.post(f"/api/v1/bookings/{b['id']}/confirm") for b in bookings)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 409, 409, 409, 409]
    assert await remaining(api, event_id) == 1
    confirmed = await bookings_of(api, event_id, status="confirmed")
    assert sum(len(b["tickets"]) for b in confirmed["items"]) == 4


async def test_cancel_revokes_tickets_and_frees_capacity(api, stock):
    event_id, type_id = stock
    booking = await create_booking(api, event_id, type_id, 2, confirm=True)
    response = await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert {t["status"] for t in cancelled["tickets"]} == {"revoked"}
    assert await remaining(api, event_id) == 5
    again = await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert again.status_code == 200 and await remaining(api, event_id) == 5


async def test_a_cancelled_booking_cannot_be_confirmed(api, stock):
    event_id, type_id = stock
    booking = await create_booking(api, event_id, type_id, 1)
    await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    response = await api.post(f"/api/v1/bookings/{booking['id']}/confirm")
    assert response.status_code == 409
    problem = problem_of(response)
    assert problem["code"] == "invalid_state" and problem["id"] == booking["id"]


async def test_a_reused_external_ref_is_409_naming_the_existing_booking(api, stock):
    event_id, type_id = stock
    first = await create_booking(api, event_id, type_id, 1, external_ref="shop-42")
    body = booking_body(type_id, 1, external_ref="shop-42")
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=body)
    assert response.status_code == 409
    assert problem_of(response)["id"] == first["id"]
    assert (await bookings_of(api, event_id))["total"] == 1


async def test_the_same_external_ref_may_serve_two_events(api, stock):
    event_id, type_id = stock
    other = await create_event(api)
    other_type = await create_ticket_type(api, other["id"])
    await create_booking(api, event_id, type_id, 1, external_ref="shop-42")
    await create_booking(api, other["id"], other_type["id"], 1, external_ref="shop-42")


async def test_racing_creates_with_one_external_ref_make_one_booking(api, stock):
    event_id, type_id = stock
    body = booking_body(type_id, 1, external_ref="retry-me")
    responses = await asyncio.gather(
        *(api.post(f"/api/v1/events/{event_id}/bookings", json=body) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert {r.json()["id"] for r in responses if r.status_code == 409} == {winner["id"]}


async def test_list_filters_by_status_and_search(api, stock):
    event_id, type_id = stock
    buyer = {"name": "Jonas Weber", "email": "jonas@example.org"}
    await create_booking(api, event_id, type_id, 1, buyer=buyer, confirm=True)
    await create_booking(api, event_id, type_id, 1)
    assert (await bookings_of(api, event_id, status="confirmed"))["total"] == 1
    assert (await bookings_of(api, event_id, status="pending"))["total"] == 1
    found = await bookings_of(api, event_id, q="WEBER")
    assert [b["buyer"]["name"] for b in found["items"]] == ["Jonas Weber"]
    assert (await bookings_of(api, event_id, q="100%_"))["total"] == 0
    page = await bookings_of(api, event_id, limit=1, offset=1)
    assert page["total"] == 2 and len(page["items"]) == 1


@pytest.mark.parametrize("q", ["\x00", "Weber\x00", "\x00%"])
async def test_a_search_holding_nul_finds_nothing_and_is_no_error(api, stock, q):
    event_id, type_id = stock
    buyer = {"name": "Jonas Weber", "email": "jonas@example.org"}
    await create_booking(api, event_id, type_id, 1, buyer=buyer)
    assert (await bookings_of(api, event_id, q=q))["total"] == 0


async def test_list_refuses_an_unknown_status(api, stock):
    event_id, _ = stock
    response = await api.get(f"/api/v1/events/{event_id}/bookings", params={"status": "paid"})
    assert response.status_code == 400
    problem_of(response)


async def test_tickets_of_another_events_type_are_refused(api, stock):
    event_id, _ = stock
    other = await create_event(api)
    foreign = await create_ticket_type(api, other["id"])
    body = booking_body(foreign["id"], 1)
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=body)
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "items[0].ticket_type_id"


def _item(**overrides):
    return {"ticket_type_id": "TYPE", "quantity": 1, **overrides}


INVALID_BOOKINGS = [
    pytest.param({"items": [_item(quantity=0)]}, "items[0].quantity", id="quantity-0"),
    pytest.param({"items": [_item(quantity=-1)]}, "items[0].quantity", id="negative"),
    pytest.param({"items": [_item(quantity=10**9)]}, "items[0].quantity", id="a-billion"),
    pytest.param({"items": [_item(quantity="1")]}, "items[0].quantity", id="string-quantity"),
    pytest.param({"items": [_item(quantity=1.0)]}, "items[0].quantity", id="float-quantity"),
    pytest.param({"items": []}, "items", id="no-items"),
    pytest.param({"items": [_item(quantity=300), _item(quantity=300)]}, "items", id="too-many"),
    pytest.param({"items": [_item(holders=[{}, {}])]}, "items[0].holders", id="extra-holders"),
    pytest.param(
        {"items": [_item(holders=[{"pet": "cat"}])]},
        "items[0].holders[0].pet",
        id="holder-unknown-field",
    ),
    pytest.param({"buyer": {"name": "A", "email": "not-an-email"}}, "buyer.email", id="email"),
    pytest.param(
        {"buyer": {"name": "A", "email": "a@b.c", "language": "it"}},
        "buyer.language",
        id="language",
    ),
    pytest.param(
        {"buyer": {"name": "x" * 1_000_000, "email": "a@b.c"}}, "buyer.name", id="name-of-1mb"
    ),
    pytest.param({"external_ref": ""}, "external_ref", id="empty-ref"),
    pytest.param({"confirm": "yes"}, "confirm", id="confirm-string"),
    pytest.param({"discount": 10}, "discount", id="unknown-field"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_BOOKINGS)
async def test_invalid_booking_is_422_naming_the_field_and_writes_nothing(
    api, stock, change, field
):
    event_id, type_id = stock
    body = booking_body(type_id, 1, **change)
    for item in body["items"]:
        if item["ticket_type_id"] == "TYPE":
            item["ticket_type_id"] = type_id
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in problem_of(response)["errors"]]
    assert (await bookings_of(api, event_id))["total"] == 0


@pytest.mark.parametrize("path", ["/api/v1/bookings/NOPE", "/api/v1/bookings/NOPE/confirm"])
async def test_unknown_booking_is_404(api, path):
    response = await (api.get(path) if path.endswith("NOPE") else api.post(path))
    assert response.status_code == 404
    problem_of(response)


async def test_a_booking_for_an_unknown_event_is_404(api):
    response = await api.post("/api/v1/events/NOPE/bookings", json=booking_body("T", 1))
    assert response.status_code == 404


async def test_persons_per_ticket_admit_several_on_one_ticket(api):
    booking = await confirmed_booking(api, quantity=1, persons=4)
    assert len(booking["tickets"]) == 1


async def _create_in_code(settings, event_id, ticket_type_id, issuer_class=None, *, listen=None):
    """A booking of 3 confirmed on creation through the service, in its own transaction;
    `(booking, whether the confirmation queued mail)`."""
    from sqlalchemy import event as sa_event

    from server.bookings.schemas import BookingCreate, BookingItemIn, Buyer
    from server.bookings.service import create_booking as create_in_code
    from server.bookings.service import queued_mail
    from server.db import Database
    from server.keys.service import KeyRing, Keystore, ensure_signing_key
    from server.tickets.issuer import TicketIssuer

    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            keyring = KeyRing(Keystore(settings.keys_path))
            await ensure_signing_key(session, keyring.keystore)
            keys = await keyring.keys(session)
        issuer = (issuer_class or TicketIssuer)(keys, settings.public_base_url)
        data = BookingCreate(
            buyer=Buyer(name="Ada", email="ada@example.org"),
            items=[BookingItemIn(ticket_type_id, 3)],
            confirm=True,
        )
        if listen is not None:
            sa_event.listen(database.engine.sync_engine, "before_cursor_execute", listen)
        async with database.transaction() as session:
            booking = await create_in_code(session, event_id, data, issuer)
            mailed = queued_mail(session)
    finally:
        await database.dispose()
    return booking, mailed


async def test_a_confirm_on_create_signs_its_tickets_before_its_first_statement(api, settings):
    """Signing (~30 µs a ticket) happens before the transaction's first statement, so on SQLite
    it is not done while holding the write lock that concurrent confirmations wait for."""
    from server.tickets.issuer import TicketIssuer

    created = await create_event(api)
    ticket_type = await create_ticket_type(api, created["id"])
    seen: list[str] = []

    class RecordingIssuer(TicketIssuer):
        def sign(self, ticket_id: str, event_id: str, version: int) -> str:
            seen.append("sign")
            return super().sign(ticket_id, event_id, version)

    booking, _ = await _create_in_code(
        settings,
        created["id"],
        ticket_type["id"],
        RecordingIssuer,
        listen=lambda *_args: seen.append("sql"),
    )
    assert seen[:4] == ["sign", "sign", "sign", "sql"] and seen.count("sign") == 3
    answer = (await api.get(f"/api/v1/bookings/{booking.id}")).json()
    assert answer["status"] == "confirmed" and len(answer["tickets"]) == 3


@pytest.mark.parametrize("auto_send", [False, True])
async def test_a_confirmation_says_whether_it_queued_mail(api, settings, auto_send):
    """The routes wake the outbox only then: a wake costs the outbox a look at the database."""
    created = await create_event(api, auto_send_tickets=auto_send)
    ticket_type = await create_ticket_type(api, created["id"])
    _, mailed = await _create_in_code(settings, created["id"], ticket_type["id"])
    assert mailed is auto_send
