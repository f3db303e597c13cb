"""Events and ticket types over the organiser API, including everything a client may get wrong."""

import pytest

from tests.conftest import problem_of
from tests.factories import create_event, create_ticket_type, event_body

MIB = 1024 * 1024


async def count_events(api):
    return (await api.get("/api/v1/events")).json()["total"]


async def test_create_answers_201_with_location_and_the_event_in_its_zone(api):
    response = await api.post("/api/v1/events", json=event_body())
    assert response.status_code == 201
    event = response.json()
    assert response.headers["location"].endswith(f"/api/v1/events/{event['id']}")
    assert event["starts_at"] == "2027-03-14T20:00:00+01:00"
    assert event["timezone"] == "Europe/Paris"
    assert event["slug"] == "jazz-at-the-pier"
    assert (await api.get(f"/api/v1/events/{event['id']}")).json() == event


async def test_times_given_in_another_offset_are_shown_in_the_event_zone(api):
    event = await create_event(api, starts_at="2027-07-01T18:00:00Z", ends_at=None)
    assert event["starts_at"] == "2027-07-01T20:00:00+02:00"


async def test_two_events_with_one_name_get_distinct_slugs(api):
    first = await create_event(api)
    second = await create_event(api)
    assert first["slug"] != second["slug"]


async def test_list_is_paginated_with_total(api):
    for n in range(5):
        await create_event(api, name=f"Event {n}")
    page = (await api.get("/api/v1/events", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 5
    assert (page["limit"], page["offset"]) == (2, 1)
    assert len(page["items"]) == 2
    default = (await api.get("/api/v1/events")).json()
    assert default["limit"] == 50 and len(default["items"]) == 5


@pytest.mark.parametrize(
    "params", [{"limit": 501}, {"limit": 0}, {"offset": -1}, {"limit": "x"}, {"offset": 2**70}]
)
async def test_out_of_range_pagination_is_refused(api, params):
    response = await api.get("/api/v1/events", params=params)
    assert response.status_code == 400
    assert problem_of(response)["errors"]


async def test_patch_changes_only_given_fields(api):
    event = await create_event(api)
    response = await api.patch(
        f"/api/v1/events/{event['id']}", json={"venue": None, "name": "Renamed"}
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["name"] == "Renamed" and changed["venue"] is None
    assert changed["starts_at"] == event["starts_at"]


async def test_patch_cannot_end_an_event_before_it_starts(api):
    event = await create_event(api)
    response = await api.patch(
        f"/api/v1/events/{event['id']}", json={"ends_at": "2027-03-14T19:00:00+01:00"}
    )
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "ends_at"
    assert (await api.get(f"/api/v1/events/{event['id']}")).json()["ends_at"] == event["ends_at"]


async def test_unknown_event_is_404_problem(api):
    response = await api.get("/api/v1/events/NOPE")
    assert response.status_code == 404
    assert problem_of(response)["code"] == "not_found"


INVALID_EVENTS = [
    pytest.param({"name": 5}, ["name"], id="wrong-type"),
    pytest.param({"starts_at": "2027-03-14T20:00:00"}, ["starts_at"], id="naive-time"),
    pytest.param({"starts_at": "tomorrow"}, ["starts_at"], id="not-a-time"),
    pytest.param({"timezone": "Mars/Olympus"}, ["timezone"], id="bad-zone"),
    pytest.param({"timezone": "../../etc/passwd"}, ["timezone"], id="path-zone"),
    pytest.param({"ends_at": "2027-03-14T19:00:00+01:00"}, ["ends_at"], id="ends-before-start"),
    pytest.param({"colour": "red"}, ["colour"], id="unknown-field"),
    pytest.param({"name": ""}, ["name"], id="empty-name"),
    pytest.param({"name": "x" * 10_000}, ["name"], id="long-name"),
    pytest.param({"languages": ["fr", "xx"]}, ["languages[1]"], id="bad-language"),
    pytest.param({"languages": "fr"}, ["languages"], id="language-not-list"),
    pytest.param({"venue": ["a"]}, ["venue"], id="venue-list"),
    pytest.param({"venue": "Le Quai\u0000"}, ["venue"], id="nul-character"),
]


@pytest.mark.parametrize(("change", "fields"), INVALID_EVENTS)
async def test_invalid_event_is_422_naming_the_field_and_writes_nothing(api, change, fields):
    response = await api.post("/api/v1/events", json=event_body(**change))
    assert response.status_code == 422, response.text
    problem = problem_of(response)
    assert [e["field"] for e in problem["errors"]] == fields
    assert await count_events(api) == 0


async def test_every_bad_field_is_reported_at_once(api):
    body = event_body(name=1, timezone=2, extra=True)
    del body["starts_at"]
    response = await api.post("/api/v1/events", json=body)
    fields = sorted(e["field"] for e in problem_of(response)["errors"])
    assert fields == ["extra", "name", "starts_at", "timezone"]


async def test_missing_fields_are_named(api):
    response = await api.post("/api/v1/events", json={})
    fields = sorted(e["field"] for e in problem_of(response)["errors"])
    assert fields == ["name", "starts_at", "timezone"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"name": "x",', 400),
        (b"\xff\xfe{}", 400),
        (b'{"name": "caf\xe9"}', 400),
        (b"[]", 422),
        (b"null", 422),
        (b"", 400),
        (b"[" * 200_000 + b"]" * 200_000, 400),
        (b'{"name": "x"} trailing', 400),
    ],
)
async def test_malformed_bodies_are_refused(api, content, status):
    response = await api.post(
        "/api/v1/events", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    problem_of(response)
    assert await count_events(api) == 0


async def test_a_body_over_one_mebibyte_is_413(api):
    body = event_body(name="x" * (MIB + 10))
    response = await api.post("/api/v1/events", json=body)
    assert response.status_code == 413
    problem_of(response)


async def test_a_non_json_content_type_is_415(api):
    response = await api.post(
        "/api/v1/events", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert problem_of(response)["code"] == "unsupported_media_type"


async def test_ticket_type_counts_capacity(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=10, persons=2)
    assert ticket_type["remaining"] == 10 and ticket_type["persons"] == 2
    listed = (await api.get(f"/api/v1/events/{event['id']}/ticket-types")).json()
    assert [t["id"] for t in listed] == [ticket_type["id"]]
    response = await api.get(f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}")
    assert response.json() == ticket_type


async def test_a_ticket_type_is_found_only_under_its_own_event(api):
    event, other = await create_event(api), await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    response = await api.get(f"/api/v1/events/{other['id']}/ticket-types/{ticket_type['id']}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "A", "persons": 0},
        {"name": "A", "persons": -1},
        {"name": "A", "persons": "2"},
        {"name": "A", "capacity": -1},
        {"name": "A", "capacity": 10**9},
        {"name": "A", "capacity": 1.5},
        {
            "name": "A",
            "valid_from": "2027-03-14T20:00:00+01:00",
            "valid_until": "2027-03-14T19:00:00+01:00",
        },
        {"persons": 1},
    ],
)
async def test_invalid_ticket_types_are_refused(api, body):
    event = await create_event(api)
    response = await api.post(f"/api/v1/events/{event['id']}/ticket-types", json=body)
    assert response.status_code == 422, response.text
    problem_of(response)
    assert (await api.get(f"/api/v1/events/{event['id']}/ticket-types")).json() == []


async def test_ticket_type_of_unknown_event_is_404(api):
    response = await api.post("/api/v1/events/NOPE/ticket-types", json={"name": "A"})
    assert response.status_code == 404


async def test_ticket_type_capacity_can_grow_but_not_drop_below_confirmed(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=3)
    path = f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}"
    booking = {
        "buyer": {"name": "A", "email": "a@example.org"},
        "items": [{"ticket_type_id": ticket_type["id"], "quantity": 2}],
        "confirm": True,
    }
    assert (await api.post(f"/api/v1/events/{event['id']}/bookings", json=booking)).is_success
    assert (await api.patch(path, json={"capacity": 10})).json()["remaining"] == 8
    refused = await api.patch(path, json={"capacity": 1})
    assert refused.status_code == 409
    assert problem_of(refused)["confirmed"] == 2
    assert (await api.patch(path, json={"capacity": None})).json()["remaining"] is None


@pytest.mark.parametrize(
    "body",
    [{"persons": 2}, {"capacity": "5"}, {"name": ""}, {"valid_until": "yesterday"}],
)
async def test_ticket_type_patch_refuses_garbage(api, body):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"], capacity=3)
    path = f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}"
    response = await api.patch(path, json=body)
    assert response.status_code == 422
    assert (await api.get(path)).json() == ticket_type
