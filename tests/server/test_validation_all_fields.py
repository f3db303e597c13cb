"""A 422 names every bad field of a body at once, structural and semantic together, and no
garbage (edge-of-calendar times, huge integers, empty or huge strings) ever gets a 5xx.

Each test runs on SQLite and PostgreSQL (the `backend` fixture behind `api`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import problem_of
from tests.factories import create_event, create_ticket_type, event_body
from tests.server.checkin.helpers import create_list

MIB = 1024 * 1024

# Neither has a UTC equivalent inside the calendar: year 10000 and year 0.
LATE = "9999-12-31T23:59:59-14:00"
EARLY = "0001-01-01T00:00:00+14:00"
# Both exist in UTC, but shown at a venue (or moved by a default duration) they leave the
# calendar: every accepted time keeps a day's margin from either end.
LATE_IN_UTC = "9999-12-31T23:59:59+14:00"
EARLY_IN_UTC = "0001-01-01T00:00:00-14:00"
EDGE_TIMES = [LATE, EARLY, LATE_IN_UTC, EARLY_IN_UTC]


def bad_fields(response: Any) -> dict[str, str]:
    """The 422's `errors` as {field: message}, checked to be a validation problem."""
    assert response.status_code == 422, response.text
    problem = problem_of(response)
    assert problem["code"] == "validation_failed"
    return {e["field"]: e["message"] for e in problem["errors"]}


# --- every bad field at once ----------------------------------------------------------------


async def test_an_event_missing_its_name_with_an_unknown_zone_names_both(api):
    body = event_body(timezone="Mars/Olympus")
    del body["name"]
    fields = bad_fields(await api.post("/api/v1/events", json=body))
    assert set(fields) == {"name", "timezone"}
    assert "Mars/Olympus" in fields["timezone"]


async def test_an_event_reports_structural_per_field_and_cross_field_errors_together(api):
    body = event_body(
        name="",
        timezone="Mars/Olympus",
        languages=["en", "en"],
        starts_at="2027-03-14T20:00:00+01:00",
        ends_at="2027-03-14T19:00:00+01:00",
    )
    fields = bad_fields(await api.post("/api/v1/events", json=body))
    assert set(fields) == {"name", "timezone", "languages", "ends_at"}


async def test_a_rule_across_fields_is_not_run_when_a_field_it_reads_is_bad(api):
    body = event_body(starts_at="next tuesday", timezone="Mars/Olympus")
    fields = bad_fields(await api.post("/api/v1/events", json=body))
    assert set(fields) == {"starts_at", "timezone"}


async def test_an_event_patch_names_every_bad_field(api):
    event = await create_event(api)
    body = {
        "name": "",
        "timezone": "Mars/Olympus",
        "starts_at": "2027-03-14T20:00:00+01:00",
        "ends_at": "2027-03-14T19:00:00+01:00",
    }
    fields = bad_fields(await api.patch(f"/api/v1/events/{event['id']}", json=body))
    assert set(fields) == {"name", "timezone", "ends_at"}
    assert (await api.get(f"/api/v1/events/{event['id']}")).json() == event


async def test_a_ticket_type_names_its_bad_fields_and_its_reversed_window(api):
    event = await create_event(api)
    body = {
        "persons": 0,
        "valid_from": "2027-03-14T20:00:00+01:00",
        "valid_until": "2027-03-14T18:00:00+01:00",
    }
    response = await api.post(f"/api/v1/events/{event['id']}/ticket-types", json=body)
    assert set(bad_fields(response)) == {"name", "persons", "valid_until"}


async def test_a_ticket_type_patch_names_its_bad_capacity_and_its_reversed_window(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    body = {
        "capacity": -1,
        "valid_from": "2027-03-14T20:00:00+01:00",
        "valid_until": "2027-03-14T18:00:00+01:00",
    }
    path = f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}"
    assert set(bad_fields(await api.patch(path, json=body))) == {"capacity", "valid_until"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"valid_from": "2027-03-14T20:00:00Z", "valid_until": "2027-03-14T20:00:00Z"},
            {"name", "valid_until"},
            id="no-name-empty-window",
        ),
        pytest.param(
            {
                "name": "Main",
                "max_entries": -1,
                "valid_from": "2027-03-15T00:00:00Z",
                "valid_until": "2027-03-14T00:00:00Z",
            },
            {"max_entries", "valid_until"},
            id="negative-entries-reversed-window",
        ),
    ],
)
async def test_a_checkin_list_names_every_bad_field(api, body, expected):
    event = await create_event(api)
    response = await api.post(f"/api/v1/events/{event['id']}/checkin-lists", json=body)
    assert set(bad_fields(response)) == expected


async def test_a_booking_item_with_an_unknown_field_still_has_its_holders_checked(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    body = {
        "buyer": {"name": "Camille", "email": "not-an-address"},
        "items": [
            {
                "ticket_type_id": ticket_type["id"],
                "quantity": 1,
                "price": 10,
                "holders": [{"name": "A"}, {"name": "B"}],
            }
        ],
    }
    response = await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)
    fields = bad_fields(response)
    assert set(fields) == {"buyer.email", "items[0].price", "items[0].holders"}


async def test_a_booking_over_the_ticket_limit_and_without_buyer_names_both(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    items = [{"ticket_type_id": ticket_type["id"], "quantity": 300} for _ in range(2)]
    response = await api.post(f"/api/v1/events/{event['id']}/bookings", json={"items": items})
    assert set(bad_fields(response)) == {"buyer", "items"}


# --- edge-of-calendar times -------------------------------------------------------------------


def _assert_time_refused(response: Any, field: str) -> None:
    fields = bad_fields(response)
    assert set(fields) == {field}
    assert "UTC" in fields[field]


@pytest.mark.parametrize("moment", EDGE_TIMES)
@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
async def test_an_event_time_off_the_calendar_is_422_naming_it(api, field, moment):
    body = event_body(starts_at="2027-03-14T20:00:00+01:00", ends_at=None)
    body[field] = moment
    if field == "starts_at":
        body["ends_at"] = None  # one bad time, and no rule across fields to trip over
    _assert_time_refused(await api.post("/api/v1/events", json=body), field)


@pytest.mark.parametrize("moment", EDGE_TIMES)
@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
async def test_an_event_patch_time_off_the_calendar_is_422_and_changes_nothing(api, field, moment):
    event = await create_event(api)
    response = await api.patch(f"/api/v1/events/{event['id']}", json={field: moment})
    _assert_time_refused(response, field)
    assert (await api.get(f"/api/v1/events/{event['id']}")).json() == event


@pytest.mark.parametrize("moment", EDGE_TIMES)
@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
async def test_a_ticket_type_window_off_the_calendar_is_422(api, field, moment):
    event = await create_event(api)
    response = await api.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard", field: moment}
    )
    _assert_time_refused(response, field)


@pytest.mark.parametrize("moment", EDGE_TIMES)
@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
async def test_a_ticket_type_patch_window_off_the_calendar_is_422(api, field, moment):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    path = f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}"
    _assert_time_refused(await api.patch(path, json={field: moment}), field)


@pytest.mark.parametrize("moment", EDGE_TIMES)
@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
async def test_a_checkin_list_window_off_the_calendar_is_422(api, field, moment):
    event = await create_event(api)
    response = await api.post(
        f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main", field: moment}
    )
    _assert_time_refused(response, field)


async def test_two_times_off_the_calendar_are_both_named(api):
    body = event_body(starts_at=LATE, ends_at=EARLY, name="")
    fields = bad_fields(await api.post("/api/v1/events", json=body))
    assert set(fields) == {"name", "starts_at", "ends_at"}


async def test_times_a_day_inside_the_calendar_are_accepted_and_shown_at_the_venue(api):
    event = await create_event(
        api,
        starts_at="0001-01-02T00:00:00Z",
        ends_at="9999-12-30T23:59:59Z",
        timezone="Pacific/Kiritimati",
    )
    assert event["ends_at"] == "9999-12-31T13:59:59+14:00"
    west = await create_event(
        api, starts_at="0001-01-02T00:00:00Z", ends_at=None, timezone="Etc/GMT+12"
    )
    assert west["starts_at"] == "0001-01-01T12:00:00-12:00"
    ticket_type = await create_ticket_type(
        api, event["id"], valid_from="0001-01-02T00:00:00Z", valid_until="9999-12-30T23:59:59Z"
    )
    assert ticket_type["valid_until"].startswith("9999-12-30T23:59:59")
    checkin_list = await create_list(
        api, event["id"], valid_from="0001-01-02T00:00:00Z", valid_until="9999-12-30T23:59:59Z"
    )
    assert checkin_list["valid_from"].startswith("0001-01-02T00:00:00")


# --- garbage never gets a 5xx -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("persons", 2**70),
        ("persons", -(2**70)),
        ("capacity", 2**70),
        ("persons", 2**63),
        ("capacity", 1e308),
    ],
)
async def test_a_huge_number_in_a_ticket_type_is_422(api, field, value):
    event = await create_event(api)
    response = await api.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard", field: value}
    )
    assert set(bad_fields(response)) == {field}


@pytest.mark.parametrize("value", [2**70, 2**64, -(2**63) - 1])
async def test_a_huge_max_entries_in_a_checkin_list_is_422(api, value):
    event = await create_event(api)
    response = await api.post(
        f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main", "max_entries": value}
    )
    assert set(bad_fields(response)) == {"max_entries"}


async def test_a_huge_quantity_in_a_booking_is_422(api):
    event = await create_event(api)
    ticket_type = await create_ticket_type(api, event["id"])
    body = {
        "buyer": {"name": "Camille", "email": "camille@example.org"},
        "items": [{"ticket_type_id": ticket_type["id"], "quantity": 2**70}],
    }
    response = await api.post(f"/api/v1/events/{event['id']}/bookings", json=body)
    assert set(bad_fields(response)) == {"items[0].quantity"}


@pytest.mark.parametrize(
    ("name", "status"),
    [("", 422), ("x" * 201, 422), ("x" * 200, 201), ("x" * (10 * MIB), 413)],
    ids=["empty", "201-chars", "200-chars", "10-MiB"],
)
async def test_an_event_name_is_bounded_without_a_5xx(api, name, status):
    response = await api.post("/api/v1/events", json=event_body(name=name))
    assert response.status_code == status, response.text[:500]
    if status == 422:
        assert set(bad_fields(response)) == {"name"}
    if status == 413:
        problem_of(response)


@pytest.mark.parametrize("moment", EDGE_TIMES)
async def test_edge_times_with_other_garbage_in_one_body_never_give_a_5xx(api, moment):
    event = await create_event(api)
    body = {
        "name": "x" * 201,
        "persons": 2**70,
        "capacity": -(2**70),
        "valid_from": moment,
        "valid_until": moment,
    }
    response = await api.post(f"/api/v1/events/{event['id']}/ticket-types", json=body)
    assert set(bad_fields(response)) == {"name", "persons", "capacity", "valid_from", "valid_until"}
