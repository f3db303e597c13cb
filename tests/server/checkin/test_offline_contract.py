"""The hub contract a door deciding offline relies on (issue 12 items 1-5, 10, 13): the door's own
verdict on upload, a change log sufficient for offline decisions, presence after every change,
the REST "start again" signal, one time format, device-scoped scan ids, and no code oracle."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from server.db import utcnow
from server.ratelimit import TokenBuckets
from tests.factories import create_booking, create_ticket_type
from tests.server.checkin.helpers import paired_door, redeem, venue

UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def _item(code: str, list_id: str, **fields: Any) -> dict[str, Any]:
    return {"scan_id": str(uuid.uuid4()), "code": code, "list_id": list_id, **fields}


async def _changes(api: Any, door: Any, since: int = 0) -> list[dict[str, Any]]:
    response = await api.get(f"/api/v1/checkin/changes?since={since}", headers=door.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _snapshot(api: Any, door: Any) -> dict[str, Any]:
    response = await api.get("/api/v1/checkin/snapshot", headers=door.headers)
    assert response.status_code == 200
    return dict(msgspec.msgpack.decode(response.content))


async def _stats(api: Any, event_id: str) -> dict[str, Any]:
    return dict((await api.get(f"/api/v1/events/{event_id}/checkin/stats")).json())


def _times(value: Any) -> list[str]:
    """Every string of `value` that looks like a time."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT", value):
        return [value]
    return []


# --- 1. the door's own verdict -----------------------------------------------------------------


async def test_a_scan_the_door_refused_offline_is_stored_refused_and_never_counted(api, app):
    v = await venue(api)
    code = v.tickets[0]["code"]
    head = (await api.get("/api/v1/checkin/changes?since=0", headers=v.door.headers)).json()
    refused = _item(code, v.list_id, offline=True, verdict="rejected", reason="blocked")
    async with app.state.fanout.subscribe(v.event_id) as notices:
        response = await redeem(api, v.door, **refused)
        received = [notices.get_nowait() for _ in range(notices.qsize())]
    body = response.json()
    assert (body["verdict"], body["reason"], body["forced"], body["offline"]) == (
        "rejected",
        "blocked",
        False,
        True,
    )
    assert body["entries"] == 0
    assert not [n for n in received if n["kind"] == "conflict"]
    assert await _changes(api, v.door) == head["items"]  # nothing logged
    assert (await _stats(api, v.event_id))["checked_in"] == 0
    # The guest was not let in, so the ticket still admits them online.
    assert (await redeem(api, v.door, code, v.list_id)).json()["verdict"] == "accepted"


async def test_an_offline_batch_only_the_door_admitted_scan_can_conflict(api, app):
    v = await venue(api, 2)
    first, second = v.tickets[0]["code"], v.tickets[1]["code"]
    await redeem(api, v.door, first, v.list_id)  # online, before the doors went offline
    await redeem(api, v.door, second, v.list_id)
    late = (utcnow() + timedelta(minutes=1)).isoformat()
    admitted = _item(first, v.list_id, offline=True, verdict="accepted", scanned_at=late)
    refused = _item(
        second,
        v.list_id,
        offline=True,
        verdict="rejected",
        reason="already_redeemed",
        scanned_at=late,
    )
    other = await paired_door(api, v.event_id, name="Door 2", gate="B")
    async with app.state.fanout.subscribe(v.event_id) as notices:
        answers = [(await redeem(api, other, **scan)).json() for scan in (admitted, refused)]
        received = [notices.get_nowait() for _ in range(notices.qsize())]
    assert [(a["verdict"], a["forced"], a["reason"]) for a in answers] == [
        ("accepted", True, "already_redeemed"),
        ("rejected", False, "already_redeemed"),
    ]
    conflicts = [n["frame"] for n in received if n["kind"] == "conflict"]
    assert [c["scan_id"] for c in conflicts] == [admitted["scan_id"]]
    assert UTC_TIME.match(conflicts[0]["scanned_at"]) and UTC_TIME.match(
        conflicts[0]["earlier"]["at"]
    )
    stats = await _stats(api, v.event_id)
    assert stats["checked_in"] == 2  # the forced entry counts once, the refusal not at all


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"offline": True}, id="offline-without-verdict"),
        pytest.param({"verdict": "accepted"}, id="online-with-verdict"),
        pytest.param({"offline": True, "verdict": "rejected"}, id="refused-without-reason"),
    ],
)
async def test_a_scan_with_an_inconsistent_verdict_is_422_and_records_nothing(api, fields):
    v = await venue(api)
    scan = _item(v.tickets[0]["code"], v.list_id, **fields)
    response = await api.post("/api/v1/checkin/redeem", json=scan, headers=v.door.headers)
    assert response.status_code == 422, response.text
    assert (await _stats(api, v.event_id))["checked_in"] == 0


# --- 2. the change log carries every fact the rules read ---------------------------------------


async def test_a_type_created_after_the_snapshot_reaches_the_door_before_its_tickets(api):
    v = await venue(api)
    seq = (await _snapshot(api, v.door))["seq"]
    late_type = await create_ticket_type(
        api,
        v.event_id,
        name="Late",
        persons=3,
        valid_from="2031-06-14T22:00:00+02:00",
    )
    await create_booking(api, v.event_id, late_type["id"], 1, confirm=True)
    items = await _changes(api, v.door, seq)
    assert [i["kind"] for i in items] == ["ticket_type.created", "ticket.issued"]
    assert items[0]["ticket_type"] == {
        "id": late_type["id"],
        "name": "Late",
        "persons": 3,
        "valid_from": "2031-06-14T20:00:00Z",
        "valid_until": None,
    }
    snapshot = await _snapshot(api, v.door)
    # One wire shape: the log's ticket and type are exactly the snapshot's.
    by_id = {t["id"]: t for t in snapshot["tickets"]}
    assert items[1]["ticket"] == by_id[items[1]["ticket"]["id"]]
    types = {t["id"]: t for t in snapshot["ticket_types"]}
    assert items[0]["ticket_type"] == types[late_type["id"]]


async def test_patching_a_list_logs_the_whole_list_as_the_snapshot_shows_it(api):
    v = await venue(api)
    seq = (await _snapshot(api, v.door))["seq"]
    url = f"/api/v1/events/{v.event_id}/checkin-lists/{v.list_id}"
    changed = await api.patch(url, json={"max_entries": 3, "allow_reentry": True})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["max_entries"], changed.json()["allow_reentry"]) == (3, True)
    unchanged = await api.patch(url, json={"max_entries": 3})
    assert unchanged.status_code == 200
    items = await _changes(api, v.door, seq)
    assert [i["kind"] for i in items] == ["list.updated"]  # the no-op logged nothing
    snapshot = await _snapshot(api, v.door)
    assert items[0]["list"] == snapshot["lists"][0]
    assert items[0]["list"]["max_entries"] == 3


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({"max_entries": -1}, ["max_entries"], id="negative"),
        pytest.param({"max_entries": 2**70}, ["max_entries"], id="huge"),
        pytest.param({"name": ""}, ["name"], id="empty-name"),
        pytest.param({"ticket_type_ids": ["NOPE"]}, ["ticket_type_ids[0]"], id="unknown-type"),
        pytest.param({"colour": "red"}, ["colour"], id="unknown-field"),
        pytest.param({"valid_from": "9999-12-31T23:59:59-14:00"}, ["valid_from"], id="year-10000"),
        pytest.param(
            {"valid_from": "2031-06-14T22:00:00Z", "valid_until": "2031-06-14T21:00:00Z"},
            ["valid_until"],
            id="window-ends-before-it-starts",
        ),
    ],
)
async def test_a_bad_list_patch_is_422_naming_the_field_and_changes_nothing(api, body, fields):
    v = await venue(api)
    seq = (await _snapshot(api, v.door))["seq"]
    url = f"/api/v1/events/{v.event_id}/checkin-lists/{v.list_id}"
    response = await api.patch(url, json=body)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == fields
    assert await _changes(api, v.door, seq) == []


async def test_patching_another_events_list_is_404(api):
    v = await venue(api)
    other = await venue(api)
    url = f"/api/v1/events/{other.event_id}/checkin-lists/{v.list_id}"
    assert (await api.patch(url, json={"name": "Hijack"})).status_code == 404


# --- 3. presence after every change --------------------------------------------------------------


async def test_after_an_annulment_the_log_the_result_and_a_snapshot_all_say_no_entry(api):
    v = await venue(api)
    scan = _item(v.tickets[0]["code"], v.list_id)
    assert (await redeem(api, v.door, **scan)).json()["entries"] == 1
    seq = (await _snapshot(api, v.door))["seq"]
    undo = await api.post(
        "/api/v1/checkin/annul", json={"scan_id": scan["scan_id"]}, headers=v.door.headers
    )
    assert (undo.json()["annulled"], undo.json()["entries"]) == (True, 0)
    (item,) = await _changes(api, v.door, seq)
    assert item["kind"] == "scan.annulled"
    assert item["scan"]["scan_id"] == scan["scan_id"]
    assert (item["presence"]["entries"], item["presence"]["inside"]) == (0, False)
    assert item["presence"]["first_at"] is None
    # An empty presence is the same as none: a fresh snapshot leaves it out.
    assert (await _snapshot(api, v.door))["checkins"] == []


async def test_a_refused_scan_leaves_no_presence_in_the_snapshot(api):
    """PostgreSQL creates the presence row a decision locks: a refusal must not show in it."""
    v = await venue(api)
    await redeem(api, v.door, v.tickets[0]["code"], "NOSUCHLIST")
    door_refused = {"offline": True, "verdict": "rejected", "reason": "blocked"}
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, **door_refused)
    assert (await _snapshot(api, v.door))["checkins"] == []


async def test_an_event_patch_reaches_the_door_in_the_snapshots_shape(api):
    v = await venue(api)
    seq = (await _snapshot(api, v.door))["seq"]
    patched = await api.patch(f"/api/v1/events/{v.event_id}", json={"venue": "Hangar 32"})
    assert patched.status_code == 200
    (item,) = await _changes(api, v.door, seq)
    assert item["kind"] == "event.updated"
    assert item["event"] == (await _snapshot(api, v.door))["event"]
    assert item["event"]["venue"] == "Hangar 32"


# --- 4. REST sync says when to start again ----------------------------------------------------


@pytest.mark.parametrize("ahead", [1, 2**40])
async def test_a_rest_cursor_past_the_head_is_409_snapshot_required(api, ahead):
    v = await venue(api)
    head = (await _snapshot(api, v.door))["seq"]
    response = await api.get(
        f"/api/v1/checkin/changes?since={head + ahead}", headers=v.door.headers
    )
    assert response.status_code == 409
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (problem["code"], problem["head"]) == ("snapshot_required", head)


# --- 5. one time format ------------------------------------------------------------------------


async def test_every_time_the_scanner_reads_is_rfc3339_utc(api):
    v = await venue(api, 2, valid_from="2031-06-14T18:00:00+02:00")
    code = v.tickets[0]["code"]
    paris = "2031-06-14T22:00:00+02:00"
    first = await redeem(api, v.door, code, v.list_id, scanned_at=paris)
    again = await redeem(api, v.door, code, v.list_id, scanned_at=paris)
    assert again.json()["first_scan"]["at"] == "2031-06-14T20:00:00Z"
    times = _times(first.json()) + _times(again.json())
    times += _times(await _changes(api, v.door)) + _times(await _snapshot(api, v.door))
    assert times and all(UTC_TIME.match(t) for t in times), times


# --- 10. scan ids are scoped to their device ---------------------------------------------------


async def test_another_devices_scan_id_is_a_new_scan_and_shows_nothing_of_the_first(api):
    mine = await venue(api)
    theirs = await venue(api)  # another event, another device
    scan = _item(mine.tickets[0]["code"], mine.list_id, scan_id="shared-id")
    assert (await redeem(api, mine.door, **scan)).json()["verdict"] == "accepted"
    reuse = await redeem(api, theirs.door, "ZZZZ-ZZZZ", theirs.list_id, scan_id="shared-id")
    body = reuse.json()
    assert (body["verdict"], body["reason"], body["ticket"]) == ("rejected", "invalid", None)
    assert body["scan_id"] == "shared-id"


async def test_squatting_a_scan_id_cannot_hide_another_devices_real_scan(api):
    v = await venue(api)
    squatter = await venue(api)
    await redeem(api, squatter.door, "ZZZZ-ZZZZ", squatter.list_id, scan_id="future-id")
    real = await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="future-id")
    assert real.json()["verdict"] == "accepted"
    assert (await _stats(api, v.event_id))["checked_in"] == 1
    # The same device retrying its own id gets its stored result and changes nothing.
    retry = await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="future-id")
    assert retry.json() == real.json()
    assert (await _stats(api, v.event_id))["checked_in"] == 1


# --- 13. a device is no oracle for other events' codes ------------------------------------------


async def test_a_readable_code_of_another_event_is_invalid_and_reveals_nothing(api):
    v = await venue(api)
    other = await venue(api)
    by_code = await redeem(api, v.door, other.tickets[0]["code"], v.list_id)
    unknown = await redeem(api, v.door, "ZZZZ-ZZZZ", v.list_id)
    assert (by_code.json()["reason"], by_code.json()["ticket"]) == ("invalid", None)
    assert {k: w for k, w in by_code.json().items() if k != "scan_id"} == {
        k: w for k, w in unknown.json().items() if k != "scan_id"
    }
    # A signed token is proof of a genuine ticket: it alone may say wrong_event.
    by_token = await redeem(api, v.door, other.tickets[0]["token"], v.list_id)
    assert by_token.json()["reason"] == "wrong_event"


async def test_scan_items_per_device_are_bounded_with_a_clear_error(api, app):
    writer = app.state.redeem_writer
    assert (writer.items.rate, writer.items.burst) == (50, 5000)  # ARCHITECTURE §5
    v = await venue(api)
    # The same budget, smaller and refilling too slowly to matter during the test.
    writer.items = TokenBuckets(rate=0.001, burst=20)
    for _ in range(20):  # a burst is never throttled
        assert (await redeem(api, v.door, "ZZZZ-ZZZZ", v.list_id)).status_code == 200
    refused = await redeem(api, v.door, "ZZZZ-ZZZZ", v.list_id, scan_id="over")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    other = await paired_door(api, v.event_id, name="Door 2")
    assert (await redeem(api, other, "ZZZZ-ZZZZ", v.list_id)).status_code == 200
    # Nothing of the refused scan was recorded: its id is still free for the device.
    writer.items = TokenBuckets(rate=0.001, burst=20)
    again = await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="over")
    assert again.json()["verdict"] == "accepted"


async def test_what_create_answers_is_what_a_read_answers_times_in_utc(api):
    v = await venue(api)
    body = {"name": "Late door", "valid_from": "2031-06-14T22:00:00+02:00"}
    created = await api.post(f"/api/v1/events/{v.event_id}/checkin-lists", json=body)
    assert created.status_code == 201
    read = await api.get(created.headers["location"])
    assert read.status_code == 200
    assert created.json() == read.json()
    assert read.json()["valid_from"] == "2031-06-14T20:00:00Z"
    device = await api.post(f"/api/v1/events/{v.event_id}/devices", json={"name": "D"})
    shown = await api.get(device.headers["location"])
    assert shown.status_code == 200
    assert (shown.json()["id"], shown.json()["paired"]) == (device.json()["id"], False)
    assert "pairing_code" not in shown.json()  # shown once, at creation


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/{event}/checkin-lists/NOSUCHLIST",
        "/api/v1/events/{event}/checkin-lists/{other_list}",
        "/api/v1/events/NOSUCHEVENT/checkin-lists/{list}",
        "/api/v1/events/{event}/checkin-lists/%C3%A9%00%FF",
        "/api/v1/events/{event}/checkin-lists/" + "L" * 5000,
        "/api/v1/devices/NOSUCHDEVICE",
        "/api/v1/devices/%00",
    ],
)
async def test_reading_a_list_or_device_that_is_not_there_is_404_problem_json(api, path):
    v = await venue(api)
    other = await venue(api)
    url = path.format(event=v.event_id, list=v.list_id, other_list=other.list_id)
    response = await api.get(url)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("query", "status"),
    [
        pytest.param("?device_id=", 400, id="empty"),
        pytest.param("?device_id=" + "D" * 65, 400, id="too-long"),
        pytest.param("?device_id=NOSUCHDEVICE", 404, id="unknown-device"),
    ],
)
async def test_a_bad_device_id_on_the_organiser_annul_is_refused_and_annuls_nothing(
    api, query, status
):
    v = await venue(api)
    await redeem(api, v.door, v.tickets[0]["code"], v.list_id, scan_id="keep")
    response = await api.post(f"/api/v1/scans/keep/annul{query}")
    assert response.status_code == status, response.text
    assert (await _stats(api, v.event_id))["checked_in"] == 1
