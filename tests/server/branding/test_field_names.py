"""A refused branding names the field it refuses, as docs/organiser-api.md says: `branding.colour`,
`branding.sender.email`, `branding.sender.name`, on create and on `PATCH` alike."""

from __future__ import annotations

import pytest

from tests.conftest import problem_of
from tests.factories import create_event, event_body

CASES = [
    pytest.param({"colour": "#ffff00"}, "branding.colour", id="colour-contrast"),
    pytest.param({"colour": "red"}, "branding.colour", id="colour-format"),
    pytest.param({"colour": 7}, "branding.colour", id="colour-type"),
    pytest.param({"colour": "x" * 100_000}, "branding.colour", id="colour-100kb"),
    pytest.param({"sender": {"email": "not-an-address"}}, "branding.sender.email", id="email"),
    pytest.param({"sender": {"email": "é@festival.fr"}}, "branding.sender.email", id="email-utf8"),
    pytest.param(
        {"sender": {"email": "a@festival.fr", "name": "a\r\nBcc: x"}},
        "branding.sender.name",
        id="name-crlf",
    ),
    pytest.param(
        {"sender": {"email": "a@festival.fr", "name": "=?utf-8?q?x?="}},
        "branding.sender.name",
        id="name-encoded-word",
    ),
    pytest.param({"sender": {"name": "No address"}}, "branding.sender.email", id="email-missing"),
]


@pytest.mark.parametrize(("branding", "field"), CASES)
async def test_create_names_the_refused_branding_field(api, branding, field):
    response = await api.post("/api/v1/events", json={**event_body(), "branding": branding})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in problem_of(response)["errors"]] == [field]


@pytest.mark.parametrize(("branding", "field"), CASES)
async def test_patch_names_the_refused_branding_field(api, branding, field):
    event = await create_event(api)
    response = await api.patch(f"/api/v1/events/{event['id']}", json={"branding": branding})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in problem_of(response)["errors"]] == [field]


async def test_a_ten_megabyte_colour_is_413_not_a_5xx(api):
    response = await api.post(
        "/api/v1/events", json={**event_body(), "branding": {"colour": "x" * 10_000_000}}
    )
    assert response.status_code == 413
