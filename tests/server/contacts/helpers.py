"""Factories for contact-list tests, over the HTTP API."""

from __future__ import annotations

from typing import Any

BASE = "/api/v1/contact-lists"


async def create_list(api: Any, name: str = "Friends of the Pier") -> dict[str, Any]:
    response = await api.post(BASE, json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add_contact(api: Any, list_id: str, email: str, **fields: Any) -> dict[str, Any]:
    response = await api.post(f"{BASE}/{list_id}/contacts", json={"email": email, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def contacts_of(api: Any, list_id: str) -> list[dict[str, Any]]:
    """Every contact of a list (address order), paging through it."""
    items: list[dict[str, Any]] = []
    while True:
        params = {"limit": 500, "offset": len(items)}
        answer = (await api.get(f"{BASE}/{list_id}/contacts", params=params)).json()
        items += answer["items"]
        if len(items) >= answer["total"]:
            return items


def content(contact: dict[str, Any]) -> tuple[Any, ...]:
    """What a contact says, apart from its ids and times."""
    return (contact["email"], contact["name"], contact["language"], contact["attributes"])
