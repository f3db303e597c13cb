"""Plain factory functions over the HTTP API: each takes overrides and returns the JSON answer."""

from __future__ import annotations

from typing import Any


def event_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Jazz at the Pier",
        "starts_at": "2027-03-14T20:00:00+01:00",
        "ends_at": "2027-03-14T23:30:00+01:00",
        "timezone": "Europe/Paris",
        "venue": "Le Quai, Nantes",
        "languages": ["fr", "en"],
    }
    body.update(overrides)
    return body


def booking_body(ticket_type_id: str, quantity: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "buyer": {"name": "Camille Martin", "email": "camille@example.org", "language": "fr"},
        "items": [{"ticket_type_id": ticket_type_id, "quantity": quantity}],
    }
    body.update(overrides)
    return body


async def create_event(api: Any, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/api/v1/events", json=event_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_ticket_type(api: Any, event_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Standard", **overrides}
    response = await api.post(f"/api/v1/events/{event_id}/ticket-types", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_booking(
    api: Any, event_id: str, ticket_type_id: str, quantity: int = 1, **overrides: Any
) -> dict[str, Any]:
    body = booking_body(ticket_type_id, quantity, **overrides)
    response = await api.post(f"/api/v1/events/{event_id}/bookings", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def confirmed_booking(
    api: Any, quantity: int = 1, *, capacity: int | None = None, persons: int = 1
) -> dict[str, Any]:
    """An event, a ticket type and a confirmed booking of `quantity` tickets."""
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=capacity, persons=persons)
    return await create_booking(api, event["id"], ticket_type["id"], quantity, confirm=True)
