"""Names, seats, gates and venues refuse control characters: they end up on door terminals,
guest pages, PDFs and mails, where an escape sequence or a line break does harm."""

from __future__ import annotations

import pytest

from tests.conftest import problem_of
from tests.factories import booking_body, create_event, create_ticket_type, event_body

ESCAPE = "Eve\x1b]0;owned\x07"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(ESCAPE, id="escape-sequence"),
        pytest.param("Eve\x9b2J", id="c1-control"),
        pytest.param("Eve\n", id="trailing-newline"),
        pytest.param("Eve\rMallory", id="carriage-return"),
        pytest.param("Eve\x7f", id="delete"),
    ],
)
async def test_names_with_control_characters_are_refused_with_the_field(api, value):
    response = await api.post("/api/v1/events", json=event_body(name=value))
    assert response.status_code == 422
    assert [e["field"] for e in problem_of(response)["errors"]] == ["name"]
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    body = booking_body(ticket_type["id"], buyer={"name": value, "email": "e@example.org"})
    body["items"][0]["holders"] = [{"name": value, "seat": value}]
    response = await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)
    assert response.status_code == 422
    fields = {e["field"] for e in problem_of(response)["errors"]}
    assert {"buyer.name", "items[0].holders[0].name", "items[0].holders[0].seat"} <= fields
    response = await api.post(
        f"/api/v1/events/{event['id']}/devices", json={"name": "Door", "gate": value}
    )
    assert response.status_code == 422


async def test_a_venue_keeps_its_address_lines_but_no_other_control(api):
    event = await create_event(api, venue="Le Quai\n17 quai Ferdinand-Favre\nNantes")
    assert event["venue"] == "Le Quai\n17 quai Ferdinand-Favre\nNantes"
    response = await api.post("/api/v1/events", json=event_body(venue="Le Quai\x1b[2J"))
    assert response.status_code == 422
    names = ["Élodie Müller", "O'Brien-Łukasiewicz", "李小龍", "Zoë ✓"]
    for name in names:
        assert (await create_event(api, name=name))["name"] == name
