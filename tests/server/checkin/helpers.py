"""Plain helpers over the HTTP API for check-in tests: lists, paired devices, redeems."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.factories import create_booking, create_event, create_ticket_type


@dataclass
class Door:
    """A paired device: its id, its token headers, and the event it belongs to."""

    device_id: str
    token: str
    event_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def create_list(api: Any, event_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Main entrance", **overrides}
    response = await api.post(f"/api/v1/events/{event_id}/checkin-lists", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_device(api: Any, event_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Door 1", "gate": "A", **overrides}
    response = await api.post(f"/api/v1/events/{event_id}/devices", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def pair(api: Any, code: str) -> Any:
    return await api.post("/api/v1/devices/pair", json={"pairing_code": code}, headers={})


async def paired_door(api: Any, event_id: str, **overrides: Any) -> Door:
    device = await create_device(api, event_id, **overrides)
    response = await pair(api, device["pairing_code"])
    assert response.status_code == 200, response.text
    body = response.json()
    return Door(body["device_id"], body["token"], body["event_id"])


async def redeem(api: Any, door: Door, code: str, list_id: str, **fields: Any) -> Any:
    body = {"scan_id": fields.pop("scan_id", str(uuid.uuid4())), "code": code, "list_id": list_id}
    body.update(fields)
    return await api.post("/api/v1/checkin/redeem", json=body, headers=door.headers)


@dataclass
class Venue:
    """An event with one ticket type, a list, a paired door and `quantity` confirmed tickets."""

    event_id: str
    type_id: str
    list_id: str
    door: Door
    tickets: list[dict[str, Any]]


async def venue(
    api: Any, quantity: int = 1, *, list_fields: dict[str, Any] | None = None, **type_fields: Any
) -> Venue:
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], **type_fields)
    booking = await create_booking(api, event["id"], ticket_type["id"], quantity, confirm=True)
    checkin_list = await create_list(api, event["id"], **(list_fields or {}))
    door = await paired_door(api, event["id"])
    return Venue(event["id"], ticket_type["id"], checkin_list["id"], door, booking["tickets"])
