"""THE verdict table (tests/protocol/cases.py) through `POST /api/v1/checkin/redeem`.

Each case's state is built in the database the way it would arise: ticket types with the case's
window and persons, a list with the case's rules, a revoked ticket (booking cancelled), a blocked
one (ticket blocked), a ticket of another event, and the case's presence folded from earlier scans.

How each case's state is represented is said in `verdict_cases.py`, shared with the websocket test.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol.rules import ListRules, Presence, ScanFacts, TicketState, Verdict
from tests.protocol.cases import VERDICT_ARGNAMES, VERDICT_CASES
from tests.server.checkin.helpers import redeem
from tests.server.checkin.verdict_cases import arrange_case


@pytest.mark.parametrize(VERDICT_ARGNAMES, VERDICT_CASES)
async def test_rest_redeem_gives_the_verdict_of_the_table(
    api: Any,
    settings: Any,
    scan: ScanFacts,
    ticket: TicketState | None,
    presence: Presence,
    rules: ListRules,
    expected: Verdict,
) -> None:
    case = await arrange_case(api, settings, ticket, presence, rules, scan)

    response = await redeem(
        api,
        case.door,
        case.code,
        case.list_id,
        direction=str(scan.direction),
        scanned_at=scan.scanned_at.isoformat(),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == ("accepted" if expected.accepted else "rejected"), body
    assert body["reason"] == (None if expected.reason is None else str(expected.reason))
    assert body["forced"] is False
    if expected.reason == "already_redeemed" and presence.entries:
        assert body["first_scan"]["gate"] == "A"
        assert body["first_scan"]["device"] == case.door.device_id
