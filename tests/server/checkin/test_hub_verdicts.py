"""A representative subset of THE verdict table (tests/protocol/cases.py) over the websocket.

The REST test (test_verdicts.py) runs every case; this one runs one case of each reason and rule
family through `/ws/scanner` on a real server, building each case's state the same way (its
builders are reused, so both edges are checked against identical states).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from protocol.rules import ListRules, Presence, ScanFacts, TicketState, Verdict
from server.checkin.store import DeviceContext
from tests.factories import create_event, create_ticket_type
from tests.protocol.cases import TYPE_ID, VERDICT_ARGNAMES, VERDICT_CASES
from tests.server.checkin.conftest import recv_type, socket
from tests.server.checkin.helpers import create_list, paired_door
from tests.server.checkin.test_verdicts import _build_presence, _list_body, _ticket_in, _type

OVER_THE_WEBSOCKET = {
    "fresh-entry",
    "unknown-ticket",
    "wrong-event",
    "revoked",
    "blocked",
    "not-on-list",
    "before-type-window",
    "after-list-window",
    "exit-of-guest-inside",
    "exit-of-revoked-ticket",
    "second-entry-single-entry-list",
    "max-3-third-entry",
    "max-3-fourth-entry",
    "reentry-after-exit",
    "reentry-while-inside",
    "persons-4-first-entry",
}
SUBSET = [case for case in VERDICT_CASES if case.id in OVER_THE_WEBSOCKET]


def test_the_subset_names_only_cases_of_the_table():
    assert len(SUBSET) == len(OVER_THE_WEBSOCKET)


@pytest.mark.parametrize(VERDICT_ARGNAMES, SUBSET)
async def test_websocket_scan_gives_the_verdict_of_the_table(
    live: Any,
    http: Any,
    settings: Any,
    scan: ScanFacts,
    ticket: TicketState | None,
    presence: Presence,
    rules: ListRules,
    expected: Verdict,
) -> None:
    event = await create_event(http)
    own_type = await _type(http, event["id"], ticket)
    body = await _list_body(http, event["id"], rules, own_type["id"])
    checkin_list = await create_list(http, event["id"], **body)
    door = await paired_door(http, event["id"], gate="A")
    code = "ZZZZ-ZZZZ"  # a code no ticket has
    if ticket is not None:
        type_id = own_type["id"]
        if ticket.ticket_type_id != TYPE_ID:
            type_id = (await create_ticket_type(http, event["id"], name="Other"))["id"]
        ticket_event = event["id"]
        if ticket.event_id != rules.event_id:
            ticket_event = (await create_event(http, name="Another night"))["id"]
            type_id = (await _type(http, ticket_event, ticket))["id"]
        booking_id, issued = await _ticket_in(http, ticket_event, type_id)
        code = issued["code"]
        device = DeviceContext(door.device_id, event["id"], "Door 1", "A")
        await _build_presence(settings, device, code, checkin_list["id"], presence)
        if ticket.blocked:
            assert (await http.post(f"/api/v1/tickets/{issued['id']}/block")).status_code == 200
        if ticket.revoked:
            assert (await http.post(f"/api/v1/bookings/{booking_id}/cancel")).status_code == 200

    async with socket(live, door.token) as ws:
        frame = {
            "type": "scan",
            "scan_id": str(uuid.uuid4()),
            "code": code,
            "list_id": checkin_list["id"],
            "direction": str(scan.direction),
            "scanned_at": scan.scanned_at.isoformat(),
        }
        await ws.send(json.dumps(frame))
        result = await recv_type(ws, "result")

    assert result["verdict"] == ("accepted" if expected.accepted else "rejected"), result
    assert result["reason"] == (None if expected.reason is None else str(expected.reason))
    assert result["forced"] is False and result["offline"] is False
    if expected.reason == "already_redeemed" and presence.entries:
        assert result["first_scan"]["gate"] == "A"
        assert result["first_scan"]["device"] == door.device_id
