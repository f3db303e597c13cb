"""The console's event pages on both backends: the same services and rules as the API, errors
next to their fields, read-only users refused changes, and garbage answered with a page."""

from __future__ import annotations

import re

import pytest

from tests.server.console.helpers import make_user, sign_in

EVENT_FORM = {
    "name": "Nuit blanche",
    "timezone": "Europe/Paris",
    "starts_at": "2031-06-14T20:00",
    "ends_at": "2031-06-15T02:00",
    "venue": "Le Trianon\n80 boulevard de Rochechouart",
    "languages": ["fr", "en"],
}


@pytest.fixture
async def admin(client, settings):
    await make_user(settings)
    return await sign_in(client, settings)


async def _create_event(client, csrf, **overrides):
    response = await client.post("/console/events", data=EVENT_FORM | overrides | {"csrf": csrf})
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


async def test_an_event_made_in_the_console_is_the_apis_event(client, admin, organiser_token):
    event_id = await _create_event(client, admin)
    api = await client.get(
        f"/api/v1/events/{event_id}", headers={"Authorization": f"Bearer {organiser_token}"}
    )
    event = api.json()
    assert event["name"] == "Nuit blanche"
    assert event["starts_at"] == "2031-06-14T20:00:00+02:00"  # the venue's wall clock
    assert event["languages"] == ["fr", "en"]
    listing = await client.get("/console/events")
    assert "Nuit blanche" in listing.text
    assert len(listing.content) < 100_000


async def test_the_services_errors_are_shown_next_to_their_fields(client, admin):
    response = await client.post(
        "/console/events",
        data={
            "csrf": admin,
            "name": "",
            "timezone": "Mars/Olympus",
            "starts_at": "not a date",
            "ends_at": "",
            "languages": ["xx"],
        },
    )
    assert response.status_code == 422
    for field in ("name", "timezone", "starts_at", "languages"):
        assert f'id="e-{field}"' in response.text, field
    assert 'aria-invalid="true"' in response.text
    ends_first = EVENT_FORM | {"ends_at": "2031-06-14T19:00", "csrf": admin}
    response = await client.post("/console/events", data=ends_first)
    assert response.status_code == 422
    assert 'id="e-ends_at"' in response.text and "after starts_at" in response.text
    assert "Nuit blanche" in response.text  # what was typed comes back


async def test_edit_an_event(client, admin):
    event_id = await _create_event(client, admin)
    form = await client.get(f"/console/events/{event_id}/edit")
    assert 'value="2031-06-14T20:00"' in form.text
    changed = EVENT_FORM | {"name": "Nuit bleue", "venue": "", "csrf": admin}
    response = await client.post(f"/console/events/{event_id}/edit", data=changed)
    assert response.status_code == 303
    page = await client.get(f"/console/events/{event_id}")
    assert "Nuit bleue" in page.text and "Trianon" not in page.text


async def test_ticket_types_and_checkin_lists(client, admin, organiser_token):
    event_id = await _create_event(client, admin)
    made = await client.post(
        f"/console/events/{event_id}/ticket-types",
        data={"csrf": admin, "name": "Standard", "capacity": "250", "persons": "1"},
    )
    assert made.status_code == 303
    bad = await client.post(
        f"/console/events/{event_id}/ticket-types",
        data={"csrf": admin, "name": "VIP", "capacity": "-3", "persons": "x" * 100},
    )
    assert bad.status_code == 422
    assert 'id="e-capacity"' in bad.text and 'id="e-persons"' in bad.text
    headers = {"Authorization": f"Bearer {organiser_token}"}
    [standard] = (
        await client.get(f"/api/v1/events/{event_id}/ticket-types", headers=headers)
    ).json()
    assert standard["capacity"] == 250
    listed = await client.post(
        f"/console/events/{event_id}/checkin-lists",
        data={
            "csrf": admin,
            "name": "Main door",
            "max_entries": "",
            "allow_reentry": "1",
            "ticket_type_ids": standard["id"],
        },
    )
    assert listed.status_code == 303
    foreign = await client.post(
        f"/console/events/{event_id}/checkin-lists",
        data={"csrf": admin, "name": "Side", "max_entries": "1", "ticket_type_ids": "NOPE"},
    )
    assert foreign.status_code == 422
    lists = (await client.get(f"/api/v1/events/{event_id}/checkin-lists", headers=headers)).json()
    [main] = lists["items"]
    assert main["max_entries"] is None and main["allow_reentry"] is True
    assert main["ticket_type_ids"] == [standard["id"]]
    page = await client.get(f"/console/events/{event_id}")
    assert "Standard" in page.text and "Main door" in page.text


async def test_read_only_users_see_but_cannot_change(client, settings):
    await make_user(settings)
    admin = await sign_in(client, settings)
    event_id = await _create_event(client, admin)
    client.cookies.clear()
    await make_user(settings, email="ro@example.org", name="Reader", role="read_only")
    reader = await sign_in(client, settings, "ro@example.org")
    page = await client.get(f"/console/events/{event_id}")
    assert page.status_code == 200 and "Nuit blanche" in page.text
    assert (
        'ticket-types" class' not in page.text
        and '<form method="post" action="/console/events/' not in page.text
    )
    for path, data in [
        ("/console/events", EVENT_FORM),
        (f"/console/events/{event_id}/edit", EVENT_FORM),
        (f"/console/events/{event_id}/ticket-types", {"name": "X", "persons": "1"}),
        (f"/console/events/{event_id}/checkin-lists", {"name": "X"}),
        ("/console/tokens", {"name": "mine"}),
    ]:
        response = await client.post(path, data=data | {"csrf": reader})
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("text/html")
    assert (await client.get("/console/events/new")).status_code == 403


async def test_unknown_events_answer_the_404_page(client, admin):
    for path in ("/console/events/NOPE", "/console/events/" + "x" * 5000):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
    # NUL in a path is refused app-wide before routing (server/app.py), as problem+json.
    assert (await client.get("/console/events/%00")).status_code == 404
    response = await client.post(
        "/console/events/NOPE/ticket-types", data={"csrf": admin, "name": "X", "persons": "1"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "n" * 10_000},
        {"name": "a\x1bb"},
        {"starts_at": "9999-12-31T23:59"},
        {"starts_at": "0001-01-01T00:00", "timezone": "Pacific/Kiritimati"},
        {"starts_at": "2031-02-30T10:00"},
        {"timezone": "../../etc/passwd"},
        {"languages": ["fr", "fr"]},
        {"venue": "v" * 301},
    ],
)
async def test_garbage_event_fields_get_the_form_again(client, admin, overrides):
    response = await client.post("/console/events", data=EVENT_FORM | overrides | {"csrf": admin})
    assert response.status_code == 422, response.text[:500]


async def test_a_ten_megabyte_field_is_refused_with_413(client, admin):
    data = EVENT_FORM | {"name": "n" * 10_000_000, "csrf": admin}
    response = await client.post("/console/events", data=data)
    assert response.status_code == 413


@pytest.mark.parametrize("value", ["9" * 40, "-1", "1e3", "\u0661", ""])
async def test_garbage_numbers_get_the_form_again(client, admin, value):
    event_id = await _create_event(client, admin)
    response = await client.post(
        f"/console/events/{event_id}/ticket-types",
        data={"csrf": admin, "name": "T", "capacity": value, "persons": value},
    )
    assert response.status_code == 422


async def test_paging_the_event_list(client, admin):
    for n in range(52):
        await _create_event(client, admin, name=f"Event {n:02d}")
    first = await client.get("/console/events")
    event_link = re.compile(r'href="/console/events/(?!new")')
    assert len(event_link.findall(first.text)) == 50
    assert "offset=50" in first.text
    second = await client.get("/console/events?offset=50")
    assert len(event_link.findall(second.text)) == 2
    for offset in ("-5", "abc", "9" * 30):
        assert (await client.get(f"/console/events?offset={offset}")).status_code in (200, 400)


async def test_pages_follow_the_users_language(client, admin):
    page = await client.get("/console/events", headers={"Accept-Language": "de"})
    assert 'lang="de"' in page.text and "Veranstaltungen" in page.text
    await client.post(
        "/console/language", data={"csrf": admin, "language": "fr", "next": "/console/events"}
    )
    page = await client.get("/console/events", headers={"Accept-Language": "de"})
    assert 'lang="fr"' in page.text and "Événements" in page.text
    bad = await client.post("/console/language", data={"csrf": admin, "language": "xx"})
    assert bad.status_code == 422
    away = await client.post(
        "/console/language", data={"csrf": admin, "language": "", "next": "//evil.test/x"}
    )
    assert away.headers["location"] == "/console/events"


async def test_every_page_has_a_skip_link_and_labelled_fields(client, admin):
    event_id = await _create_event(client, admin)
    for path in (
        "/console/events",
        "/console/events/new",
        f"/console/events/{event_id}",
        f"/console/events/{event_id}/edit",
        "/console/tokens",
    ):
        page = (await client.get(path)).text
        assert 'href="#main"' in page and 'id="main"' in page
        ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', page))
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        visible = {i for i in ids if i not in labelled}
        assert not visible, (path, visible)
        assert "<script" not in page


async def test_a_capacity_below_the_confirmed_tickets_is_refused_on_its_field(
    client, admin, organiser_token
):
    event_id = await _create_event(client, admin)
    await client.post(
        f"/console/events/{event_id}/ticket-types",
        data={"csrf": admin, "name": "Standard", "capacity": "10", "persons": "1"},
    )
    headers = {"Authorization": f"Bearer {organiser_token}"}
    [standard] = (
        await client.get(f"/api/v1/events/{event_id}/ticket-types", headers=headers)
    ).json()
    booking = {
        "buyer": {"name": "Jo", "email": "jo@example.org"},
        "items": [{"ticket_type_id": standard["id"], "quantity": 3}],
        "confirm": True,
    }
    made = await client.post(f"/api/v1/events/{event_id}/bookings", json=booking, headers=headers)
    assert made.status_code == 201, made.text
    path = f"/console/events/{event_id}/ticket-types/{standard['id']}/edit"
    form = await client.get(path)
    assert 'value="10"' in form.text
    refused = await client.post(path, data={"csrf": admin, "name": "Standard", "capacity": "2"})
    assert refused.status_code == 409
    assert 'id="e-capacity"' in refused.text and "below the 3 tickets confirmed" in refused.text
    kept = await client.post(path, data={"csrf": admin, "name": "Standard", "capacity": "3"})
    assert kept.status_code == 303
    [after] = (await client.get(f"/api/v1/events/{event_id}/ticket-types", headers=headers)).json()
    assert after["capacity"] == 3 and after["remaining"] == 0
    missing = await client.get(f"/console/events/{event_id}/ticket-types/NOPE/edit")
    assert missing.status_code == 404


async def test_edit_a_checkin_list(client, admin, organiser_token):
    event_id = await _create_event(client, admin)
    headers = {"Authorization": f"Bearer {organiser_token}"}
    for name in ("Standard", "VIP"):
        made = await client.post(
            f"/console/events/{event_id}/ticket-types",
            data={"csrf": admin, "name": name, "persons": "1"},
        )
        assert made.status_code == 303
    types = (await client.get(f"/api/v1/events/{event_id}/ticket-types", headers=headers)).json()
    vip = next(t["id"] for t in types if t["name"] == "VIP")
    listed = await client.post(
        f"/console/events/{event_id}/checkin-lists",
        data={"csrf": admin, "name": "Main door", "max_entries": "1"},
    )
    assert listed.status_code == 303
    [main] = (await client.get(f"/api/v1/events/{event_id}/checkin-lists", headers=headers)).json()[
        "items"
    ]
    detail = await client.get(f"/console/events/{event_id}")
    edit_link = f"/console/events/{event_id}/checkin-lists/{main['id']}/edit"
    assert f'href="{edit_link}"' in detail.text
    form = await client.get(edit_link)
    assert form.status_code == 200 and 'value="Main door"' in form.text
    assert len(form.content) < 100_000

    saved = await client.post(
        edit_link,
        data={
            "csrf": admin,
            "name": "Lounge",
            "max_entries": "",
            "allow_reentry": "1",
            "ticket_type_ids": vip,
            "valid_from": "2031-06-14T21:00",
            "valid_until": "",
        },
    )
    assert saved.status_code == 303, saved.text[:500]
    [after] = (
        await client.get(f"/api/v1/events/{event_id}/checkin-lists", headers=headers)
    ).json()["items"]
    assert after["name"] == "Lounge" and after["max_entries"] is None
    assert after["allow_reentry"] is True and after["ticket_type_ids"] == [vip]
    assert after["valid_from"] == "2031-06-14T19:00:00Z"  # 21:00 at the venue, Paris in June
    assert after["valid_until"] is None

    bad = await client.post(
        edit_link,
        data={
            "csrf": admin,
            "name": "",
            "max_entries": "-1",
            "ticket_type_ids": "NOPE",
            "valid_from": "2031-06-14T21:00",
            "valid_until": "2031-06-14T20:00",
        },
    )
    assert bad.status_code == 422
    for field in ("name", "max_entries", "valid_until"):
        assert f'id="e-{field}"' in bad.text, field
    assert 'value=""' in bad.text  # what was typed comes back
    unchanged = (
        await client.get(f"/api/v1/events/{event_id}/checkin-lists", headers=headers)
    ).json()
    assert unchanged["items"] == [after]
    foreign = await client.post(
        edit_link, data={"csrf": admin, "name": "X", "ticket_type_ids": "NOPE"}
    )
    assert foreign.status_code == 422 and 'id="e-ticket_type_ids"' in foreign.text
    assert (
        await client.get(f"/console/events/{event_id}/checkin-lists/NOPE/edit")
    ).status_code == 404
    no_csrf = await client.post(edit_link, data={"name": "Sneaky"})
    assert no_csrf.status_code in (400, 403)


async def test_field_attributes_reach_the_browser_unescaped(client, admin):
    """`field(..., attrs=...)` writes attributes (maxlength, min, placeholder), not text."""
    page = await client.get("/console/events/new")
    assert 'name="name" type="text" value="" required maxlength="200"' in page.text
    assert "&#34;" not in page.text
