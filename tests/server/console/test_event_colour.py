"""The brand colour on the console's event form: set, kept with the sender, refused next to
its field when unreadable under white text."""

from __future__ import annotations

import pytest

from tests.server.console.helpers import make_user, sign_in
from tests.server.console.test_event_pages import EVENT_FORM


@pytest.fixture
async def admin(client, settings):
    await make_user(settings)
    return await sign_in(client, settings)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_colour_is_set_and_changed_in_the_form_keeping_the_sender(
    client, admin, organiser_token
):
    created = await client.post(
        "/console/events", data=EVENT_FORM | {"colour": "#7A1F5C", "csrf": admin}
    )
    assert created.status_code == 303, created.text
    event_id = created.headers["location"].rsplit("/", 1)[1]
    sender = {"name": "Camille Martin", "email": "billets@festival.fr"}
    patched = await client.patch(
        f"/api/v1/events/{event_id}",
        json={"branding": {"sender": sender, "colour": "#7A1F5C"}},
        headers=_bearer(organiser_token),
    )
    assert patched.status_code == 200, patched.text
    form = await client.get(f"/console/events/{event_id}/edit")
    assert 'value="#7A1F5C"' in form.text
    edited = EVENT_FORM | {"colour": "#1d2a44", "csrf": admin}
    response = await client.post(f"/console/events/{event_id}/edit", data=edited)
    assert response.status_code == 303, response.text
    event = (
        await client.get(f"/api/v1/events/{event_id}", headers=_bearer(organiser_token))
    ).json()
    assert event["branding"] == {"sender": sender, "colour": "#1d2a44"}
    cleared = await client.post(
        f"/console/events/{event_id}/edit", data=EVENT_FORM | {"colour": "", "csrf": admin}
    )
    assert cleared.status_code == 303
    event = (
        await client.get(f"/api/v1/events/{event_id}", headers=_bearer(organiser_token))
    ).json()
    assert event["branding"] == {"sender": sender, "colour": None}


@pytest.mark.parametrize(("colour", "says"), [("#ffff00", "4.5:1"), ("red;}", "#RRGGBB")])
async def test_an_unreadable_or_malformed_colour_comes_back_next_to_its_field(
    client, admin, colour, says
):
    response = await client.post(
        "/console/events", data=EVENT_FORM | {"colour": colour, "csrf": admin}
    )
    assert response.status_code == 422
    assert 'id="e-colour"' in response.text and says in response.text
    assert 'aria-describedby="h-colour e-colour"' in response.text
    assert "Nuit blanche" in response.text
