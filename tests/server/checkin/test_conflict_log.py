"""Every forced offline scan is in the change log as `scan.conflict` (decision 0012).

A door that was offline when the forced scan was uploaded learns of its conflict on catch-up or
from a snapshot, ticket or no ticket behind the scan (a reissued ticket's old code, admitted by a
door that missed the reissue). The live `conflict` frame and `scan.accepted` are unchanged.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec

from server.db import utcnow
from tests.server.checkin.conftest import recv, send, socket
from tests.server.checkin.helpers import paired_door, redeem, venue

SNAPSHOT_KEYS = {
    "event",
    "seq",
    "keys",
    "ticket_types",
    "lists",
    "tickets",
    "revoked",
    "blocked",
    "checkins",
}


def _admitted_offline(code: str, list_id: str) -> dict[str, Any]:
    late = (utcnow() + timedelta(minutes=1)).isoformat()
    return {
        "scan_id": str(uuid.uuid4()),
        "code": code,
        "offline": True,
        "verdict": "accepted",
        "scanned_at": late,
        "list_id": list_id,
    }


async def _changes(api: Any, door: Any) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/checkin/changes?since=0", headers=door.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _snapshot(api: Any, door: Any, query: str = "") -> dict[str, Any]:
    response = await api.get(f"/api/v1/checkin/snapshot{query}", headers=door.headers)
    assert response.status_code == 200, response.text
    return dict(msgspec.msgpack.decode(response.content))


async def test_a_ticketless_forced_scan_is_logged_as_a_conflict_and_counted_nowhere(api, app):
    v = await venue(api)
    old = v.tickets[0]
    assert (await api.post(f"/api/v1/tickets/{old['id']}/reissue")).status_code == 200
    before = await _changes(api, v.door)
    scan = _admitted_offline(old["code"], v.list_id)
    async with app.state.fanout.subscribe(v.event_id) as notices:
        body = (await redeem(api, v.door, **scan.copy())).json()
        received = [notices.get_nowait() for _ in range(notices.qsize())]
    assert (body["verdict"], body["reason"], body["forced"], body["ticket"]) == (
        "accepted",
        "invalid",
        True,
        None,
    )
    frames = [n["frame"] for n in received if n["kind"] == "conflict"]
    assert [f["scan_id"] for f in frames] == [scan["scan_id"]]  # the live frame, as before
    new = (await _changes(api, v.door))[len(before) :]
    assert [item["kind"] for item in new] == ["scan.conflict"]  # no scan.accepted: no ticket
    live_fields = {k: val for k, val in frames[0].items() if k != "type"}
    assert new[0]["conflict"] == live_fields
    assert new[0]["conflict"]["device"] == v.door.device_id
    stats = (await api.get(f"/api/v1/events/{v.event_id}/checkin/stats")).json()
    assert (stats["checked_in"], stats["inside"]) == (0, 0)  # a check-in of no ticket
    # The snapshot older doors decode strictly is unchanged; asked for, it holds the conflict.
    assert set(await _snapshot(api, v.door)) == SNAPSHOT_KEYS
    with_conflicts = await _snapshot(api, v.door, "?conflicts=true")
    assert set(with_conflicts) == SNAPSHOT_KEYS | {"conflicts"}
    assert with_conflicts["conflicts"] == [live_fields]


async def test_a_forced_scan_of_a_ticket_logs_its_scan_then_its_conflict(api):
    v = await venue(api)
    code = v.tickets[0]["code"]
    assert (await redeem(api, v.door, code, v.list_id)).json()["verdict"] == "accepted"
    other = await paired_door(api, v.event_id, name="Door 2", gate="B")
    scan = _admitted_offline(code, v.list_id)
    body = (await redeem(api, other, **scan)).json()
    assert (body["forced"], body["reason"]) == (True, "already_redeemed")
    items = await _changes(api, v.door)
    accepted, conflict = items[-2:]
    assert (accepted["kind"], conflict["kind"]) == ("scan.accepted", "scan.conflict")
    assert conflict["seq"] == accepted["seq"] + 1
    assert accepted["scan"]["forced"] is True and set(accepted) == {
        "seq",
        "kind",
        "scan",
        "presence",
    }
    assert conflict["conflict"]["scan_id"] == scan["scan_id"]
    assert conflict["conflict"]["ticket"]["id"] == v.tickets[0]["id"]
    assert conflict["conflict"]["earlier"]["device"] == v.door.device_id
    stats = (await api.get(f"/api/v1/events/{v.event_id}/checkin/stats")).json()
    assert stats["checked_in"] == 1  # the forced second entry counts once
    # A door-refused scan raises none and logs nothing.
    head = len(await _changes(api, v.door))
    refused = scan | {"scan_id": str(uuid.uuid4()), "verdict": "rejected", "reason": "invalid"}
    assert (await redeem(api, other, **refused)).json()["verdict"] == "rejected"
    assert len(await _changes(api, v.door)) == head


async def test_a_door_offline_at_the_upload_gets_the_conflict_on_catch_up(live, http):
    v = await venue(http)
    old = v.tickets[0]
    assert (await http.post(f"/api/v1/tickets/{old['id']}/reissue")).status_code == 200
    late = await paired_door(http, v.event_id, name="Late door", gate="C")
    scan = _admitted_offline(old["code"], v.list_id)
    assert (await redeem(http, v.door, **scan)).json()["forced"] is True
    seen: list[dict[str, Any]] = []
    async with socket(live, late.token) as ws:  # connects only after the upload
        await send(ws, {"type": "hello", "cursor": 0})
        assert (await recv(ws))["type"] == "welcome"
        while (frame := await recv(ws))["type"] != "counters":
            seen.extend(frame["items"])
    conflict = next(item["conflict"] for item in seen if item["kind"] == "scan.conflict")
    assert (conflict["scan_id"], conflict["reason"], conflict["ticket"]) == (
        scan["scan_id"],
        "invalid",
        None,
    )


async def test_a_garbage_conflicts_parameter_is_a_400_problem(api):
    v = await venue(api)
    for value in ("maybe", "", "2" * 10_000, "-1", "1e309"):
        response = await api.get(
            f"/api/v1/checkin/snapshot?conflicts={value}", headers=v.door.headers
        )
        assert response.status_code == 400, (value, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
