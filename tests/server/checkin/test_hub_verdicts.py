"""A representative subset of THE verdict table (tests/protocol/cases.py) over the websocket.

The REST test (test_verdicts.py) runs every case; this one runs one case of each reason and rule
family through `/ws/scanner` on a real server, building each case's state the same way (its
builders are shared in verdict_cases.py, so both edges are checked against identical states).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from protocol.rules import ListRules, Presence, ScanFacts, TicketState, Verdict
from tests.protocol.cases import VERDICT_ARGNAMES, VERDICT_CASES
from tests.server.checkin.conftest import recv_type, socket
from tests.server.checkin.verdict_cases import arrange_case

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
    "superseded-token",
    "token-from-the-future",
    "unknown-list",
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
    case = await arrange_case(http, settings, ticket, presence, rules, scan)

    async with socket(live, case.door.token) as ws:
        frame = {
            "type": "scan",
            "scan_id": str(uuid.uuid4()),
            "code": case.code,
            "list_id": case.list_id,
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
        assert result["first_scan"]["device"] == case.door.device_id
