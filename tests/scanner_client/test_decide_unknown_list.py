"""The door's verdict on a scan for a list it does not know is the shared one:
`protocol.rules.decide` with `UnknownList`, as at the hub (the ticket's own checks first, then
`not_on_list`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from protocol.reasons import Reason
from protocol.rules import Direction, ScanFacts, UnknownList, decide
from protocol.sync import ticket_state
from scanner_client.decide import decide_locally
from scanner_client.store import LocalStore
from tests.scanner_client.helpers import DEVICE, EVENT, T0, make_world


@pytest.mark.parametrize("direction", [Direction.ENTRY, Direction.EXIT])
@pytest.mark.parametrize("how", ["code", "token", "newer-token", "garbage"])
def test_an_unknown_list_is_decided_by_the_shared_rules(
    tmp_path: Path, direction: Direction, how: str
) -> None:
    world = make_world(2)
    store = LocalStore.open(tmp_path / "door.db")
    store.replace_snapshot(world.snapshot, now=T0.timestamp())
    ticket = world.ticket(1)
    code = {
        "code": ticket.code,
        "token": world.token(1),
        "newer-token": world.token(1, ver=ticket.version + 1),
        "garbage": "NOPE-NOPE",
    }[how]
    at = T0 + timedelta(minutes=10)
    decision = decide_locally(
        store,
        code,
        list_id="NO-SUCH-LIST",
        direction=direction,
        scanned_at=at,
        event_id=EVENT,
        own_device=DEVICE,
    )
    rules = UnknownList("NO-SUCH-LIST", EVENT)
    assert decision.rules == rules
    if how in ("garbage", "newer-token"):  # no ticket the door knows: the shared `invalid`
        assert decision.verdict == decide(
            ScanFacts(direction=direction, scanned_at=at), None, decision.before, rules
        )
        assert decision.verdict.reason is Reason.INVALID
    else:
        version = None
        facts = ScanFacts(direction=direction, scanned_at=at, token_version=version)
        ticket_type = store.ticket_type(ticket.ticket_type_id)
        assert ticket_type is not None
        state = ticket_state(ticket, ticket_type, EVENT)
        expected = decide(facts, state, decision.before, rules)
        assert decision.verdict == expected
        assert expected.reason is Reason.NOT_ON_LIST
    assert not decision.verdict.accepted and decision.after == decision.before
    store.close()
