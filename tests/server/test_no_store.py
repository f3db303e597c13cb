"""Every answer that carries a secret (pairing code, device token, ticket token or link) says
`Cache-Control: no-store`, so no browser, proxy or shared cache keeps a copy of it."""

from __future__ import annotations

from typing import Any

from tests.factories import booking_body, create_event, create_ticket_type
from tests.server.checkin.helpers import pair


def _cache_controls(answers: dict[str, Any]) -> dict[str, str | None]:
    for name, response in answers.items():
        assert response.status_code < 300, (name, response.text)
    return {name: response.headers.get("cache-control") for name, response in answers.items()}


async def test_answers_carrying_a_pairing_code_or_a_device_token_are_not_stored(api):
    event = await create_event(api)
    created = await api.post(f"/api/v1/events/{event['id']}/devices", json={"name": "Door"})
    answers = {"create device": created, "pair": await pair(api, created.json()["pairing_code"])}
    assert _cache_controls(answers) == dict.fromkeys(answers, "no-store")


async def test_answers_carrying_ticket_tokens_and_links_are_not_stored(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    body = booking_body(ticket_type["id"], 2)
    created = await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)
    booking_id = created.json()["id"]
    confirmed = await api.post(f"/api/v1/bookings/{booking_id}/confirm")
    ticket = f"/api/v1/tickets/{confirmed.json()['tickets'][0]['id']}"
    answers = {
        "create booking": created,
        "confirm booking": confirmed,
        "read booking": await api.get(f"/api/v1/bookings/{booking_id}"),
        "list bookings": await api.get(f"/api/v1/events/{event['id']}/bookings"),
        "read ticket": await api.get(ticket),
        "change ticket": await api.patch(ticket, json={"seat": "B2"}),
        "block ticket": await api.post(f"{ticket}/block"),
        "unblock ticket": await api.post(f"{ticket}/unblock"),
        "reissue ticket": await api.post(f"{ticket}/reissue"),
        "cancel booking": await api.post(f"/api/v1/bookings/{booking_id}/cancel"),
    }
    listed = answers["list bookings"].json()["items"][0]["tickets"]
    assert all(t["token"] and t["link"] for t in listed)
    assert _cache_controls(answers) == dict.fromkeys(answers, "no-store")


async def test_the_guest_page_and_its_files_are_not_stored(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    body = booking_body(ticket_type["id"], confirm=True)
    booking = (await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)).json()
    page = "/t/" + booking["tickets"][0]["link"].rsplit("/", 1)[1]
    files = ["", "/sw.js", "/qr.svg", "/qr.png", "/ticket.pdf", "/event.ics"]
    answers = {page + name: await api.get(page + name) for name in files}
    assert _cache_controls(answers) == dict.fromkeys(answers, "no-store")
