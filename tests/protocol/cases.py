"""THE table of verdict cases: one truth for `protocol.rules.decide`, tested once per consumer.

The pure test, the hub test (over a websocket) and the scanner test import `VERDICT_CASES`
unchanged, so this module depends on nothing but pytest and `protocol`. Each case is
`(scan, ticket, presence, rules, expected)`, the argument order of `decide` plus the verdict;
`VERDICT_ARGNAMES` names them for `pytest.mark.parametrize`.

Factories are plain functions with overrides. Every case happens at `NOW`, the event is `EVENT`,
the list is `LIST_ID` and the ticket's type is `TYPE_ID` unless a case says otherwise.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from protocol.reasons import Reason
from protocol.rules import (
    Direction,
    FirstEntry,
    ListRules,
    Presence,
    ScanFacts,
    TicketState,
    UnknownList,
    Verdict,
)

__all__ = [
    "EARLIER",
    "EVENT",
    "HOUR",
    "LIST_ID",
    "NOW",
    "OTHER_EVENT",
    "OTHER_TYPE_ID",
    "TICKET_ID",
    "TYPE_ID",
    "VERDICT_ARGNAMES",
    "VERDICT_CASES",
    "no",
    "ok",
    "presence",
    "rules",
    "scan",
    "ticket",
    "unknown_list",
]

NOW = datetime(2031, 6, 14, 20, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=1)
HOUR = timedelta(hours=1)
EVENT = "EVT0000001"
OTHER_EVENT = "EVT0000002"
LIST_ID = "LIST000000000001"
TICKET_ID = "TKT0000000000001"
TYPE_ID = "TYPE00000000ADLT"
OTHER_TYPE_ID = "TYPE00000000CHLD"

VERDICT_ARGNAMES = ("scan", "ticket", "presence", "rules", "expected")


def ticket(**overrides: Any) -> TicketState:
    """A valid single-person ticket of `TYPE_ID` for `EVENT`, with `overrides` applied."""
    fields: dict[str, Any] = {"id": TICKET_ID, "event_id": EVENT, "ticket_type_id": TYPE_ID}
    return TicketState(**(fields | overrides))


def rules(**overrides: Any) -> ListRules:
    """A single-entry list of `EVENT` admitting every type, no window, with `overrides` applied."""
    fields: dict[str, Any] = {"id": LIST_ID, "event_id": EVENT}
    return ListRules(**(fields | overrides))


def presence(entries: int = 0, inside: bool = False, **overrides: Any) -> Presence:
    """A folded state; any earlier entry is dated `EARLIER` at gate A by device D1 unless given."""
    if entries > 0 and "first_entry" not in overrides:
        overrides["first_entry"] = FirstEntry(at=EARLIER, gate="A", device_id="D1")
    return Presence(entries=entries, inside=inside, **overrides)


def scan(
    direction: str = "entry", at: datetime = NOW, *, token_version: int | None = None
) -> ScanFacts:
    """The facts of a scan in `direction` ("entry" or "exit") at `at`; `token_version` is the
    `ver` of the QR token presented (None: the readable code was typed)."""
    return ScanFacts(direction=Direction(direction), scanned_at=at, token_version=token_version)


def unknown_list(list_id: str = "LIST0000000NONE0") -> UnknownList:
    """A list id of `EVENT` that names no list."""
    return UnknownList(id=list_id, event_id=EVENT)


def ok() -> Verdict:
    """An accepted verdict."""
    return Verdict(accepted=True)


def no(reason: str) -> Verdict:
    """A rejected verdict naming `reason`."""
    return Verdict(accepted=False, reason=Reason(reason))


_FRESH_SCAN = scan()
_VALID_TICKET = ticket()
_NEVER_SCANNED = presence()
_SINGLE_ENTRY_LIST = rules()


def _case(
    case_id: str,
    expected: Verdict,
    *,
    s: ScanFacts = _FRESH_SCAN,
    t: TicketState | None = _VALID_TICKET,
    p: Presence = _NEVER_SCANNED,
    r: ListRules | UnknownList = _SINGLE_ENTRY_LIST,
) -> Any:
    """One row: defaults are a fresh entry of a valid ticket on a single-entry list at `NOW`."""
    return pytest.param(s, t, p, r, expected, id=case_id)


VERDICT_CASES = [
    # Identity: checks 1-5, in order.
    _case("fresh-entry", ok()),
    _case("unknown-ticket", no("invalid"), t=None),
    _case("unknown-ticket-on-exit", no("invalid"), t=None, s=scan("exit")),
    _case("wrong-event", no("wrong_event"), t=ticket(event_id=OTHER_EVENT)),
    _case(
        "wrong-event-beats-revoked",
        no("wrong_event"),
        t=ticket(event_id=OTHER_EVENT, revoked=True),
    ),
    _case("revoked", no("revoked"), t=ticket(revoked=True)),
    _case("blocked", no("blocked"), t=ticket(blocked=True)),
    _case("revoked-beats-blocked", no("revoked"), t=ticket(revoked=True, blocked=True)),
    _case(
        "blocked-beats-not-on-list",
        no("blocked"),
        t=ticket(blocked=True),
        r=rules(ticket_type_ids=frozenset({OTHER_TYPE_ID})),
    ),
    _case("not-on-list", no("not_on_list"), r=rules(ticket_type_ids=frozenset({OTHER_TYPE_ID}))),
    _case(
        "list-with-empty-type-set-admits-none",
        no("not_on_list"),
        r=rules(ticket_type_ids=frozenset()),
    ),
    _case(
        "on-list-by-type",
        ok(),
        r=rules(ticket_type_ids=frozenset({TYPE_ID, OTHER_TYPE_ID})),
    ),
    _case(
        "list-admits-all-types",
        ok(),
        t=ticket(ticket_type_id="TYPE0000000OTHER"),
        r=rules(ticket_type_ids=None),
    ),
    _case(
        "not-on-list-beats-not-yet-valid",
        no("not_on_list"),
        t=ticket(valid_from=NOW + HOUR),
        r=rules(ticket_type_ids=frozenset({OTHER_TYPE_ID})),
    ),
    # Time windows: checks 6-7, entries only; valid_from inclusive, valid_until exclusive.
    _case("before-type-window", no("not_yet_valid"), t=ticket(valid_from=NOW + HOUR)),
    _case("at-type-valid-from", ok(), t=ticket(valid_from=NOW)),
    _case("at-type-valid-until", no("expired"), t=ticket(valid_until=NOW)),
    _case("after-type-window", no("expired"), t=ticket(valid_until=NOW - HOUR)),
    _case("inside-type-window", ok(), t=ticket(valid_from=NOW - HOUR, valid_until=NOW + HOUR)),
    _case("before-list-window", no("not_yet_valid"), r=rules(valid_from=NOW + HOUR)),
    _case("after-list-window", no("expired"), r=rules(valid_until=NOW - HOUR)),
    _case(
        "type-window-open-but-list-window-closed",
        no("expired"),
        t=ticket(valid_from=NOW - HOUR, valid_until=NOW + HOUR),
        r=rules(valid_until=NOW),
    ),
    _case(
        "not-yet-valid-beats-expired",
        no("not_yet_valid"),
        t=ticket(valid_from=NOW + HOUR),
        r=rules(valid_until=NOW - HOUR),
    ),
    _case(
        "already-redeemed-comes-after-window",
        no("expired"),
        t=ticket(valid_until=NOW),
        p=presence(entries=1),
    ),
    # Exits: accepted once checks 1-5 pass, inside or not, windows ignored.
    _case("exit-of-guest-inside", ok(), s=scan("exit"), p=presence(entries=1, inside=True)),
    _case("exit-of-guest-outside", ok(), s=scan("exit"), p=presence(entries=1, inside=False)),
    _case("exit-of-guest-never-entered", ok(), s=scan("exit")),
    _case(
        "exit-after-window-closed",
        ok(),
        s=scan("exit"),
        p=presence(entries=1, inside=True),
        r=rules(valid_until=NOW - HOUR),
    ),
    _case("exit-before-window-opens", ok(), s=scan("exit"), t=ticket(valid_from=NOW + HOUR)),
    _case("exit-of-revoked-ticket", no("revoked"), s=scan("exit"), t=ticket(revoked=True)),
    _case("exit-of-blocked-ticket", no("blocked"), s=scan("exit"), t=ticket(blocked=True)),
    _case("exit-of-wrong-event", no("wrong_event"), s=scan("exit"), t=ticket(event_id=OTHER_EVENT)),
    _case(
        "exit-not-on-list",
        no("not_on_list"),
        s=scan("exit"),
        r=rules(ticket_type_ids=frozenset({OTHER_TYPE_ID})),
    ),
    # Entry counting: check 8.
    _case(
        "second-entry-single-entry-list", no("already_redeemed"), p=presence(entries=1, inside=True)
    ),
    _case(
        "entry-after-exit-without-allow-reentry",
        no("already_redeemed"),
        p=presence(entries=1, inside=False),
    ),
    _case("max-3-third-entry", ok(), p=presence(entries=2), r=rules(max_entries=3)),
    _case(
        "max-3-fourth-entry", no("already_redeemed"), p=presence(entries=3), r=rules(max_entries=3)
    ),
    _case(
        "max-3-counts-entries-while-inside",
        ok(),
        p=presence(entries=1, inside=True),
        r=rules(max_entries=3),
    ),
    _case(
        "unlimited-entries", ok(), p=presence(entries=1000, inside=True), r=rules(max_entries=None)
    ),
    _case("forced-history-over-max", no("already_redeemed"), p=presence(entries=2)),
    _case("zero-max-entries-admits-none", no("already_redeemed"), r=rules(max_entries=0)),
    # Re-entry: outside after an entry gets in again, inside is refused.
    _case("first-entry-with-reentry-list", ok(), r=rules(allow_reentry=True)),
    _case(
        "reentry-after-exit",
        ok(),
        p=presence(entries=1, inside=False),
        r=rules(allow_reentry=True),
    ),
    _case(
        "reentry-while-inside",
        no("already_redeemed"),
        p=presence(entries=1, inside=True),
        r=rules(allow_reentry=True),
    ),
    _case(
        "reentry-while-inside-unlimited-list",
        no("already_redeemed"),
        p=presence(entries=1, inside=True),
        r=rules(allow_reentry=True, max_entries=None),
    ),
    _case(
        "reentry-ignores-max-entries",
        ok(),
        p=presence(entries=3, inside=False),
        r=rules(allow_reentry=True, max_entries=3),
    ),
    _case(
        "reentry-still-checks-revoked",
        no("revoked"),
        t=ticket(revoked=True),
        p=presence(entries=1, inside=False),
        r=rules(allow_reentry=True),
    ),
    # Persons: the verdict is per ticket.
    _case("persons-4-first-entry", ok(), t=ticket(persons=4)),
    _case(
        "persons-4-second-entry",
        no("already_redeemed"),
        t=ticket(persons=4),
        p=presence(entries=1, inside=True),
    ),
    # The token's version against the ticket's (check 1b): a reissue supersedes the old token.
    _case("current-token-of-a-reissued-ticket", ok(), s=scan(token_version=2), t=ticket(version=2)),
    _case("superseded-token", no("revoked"), s=scan(token_version=1), t=ticket(version=2)),
    _case(
        "superseded-token-beats-blocked",
        no("revoked"),
        s=scan(token_version=1),
        t=ticket(version=2, blocked=True),
    ),
    _case(
        "superseded-token-on-exit",
        no("revoked"),
        s=scan("exit", token_version=1),
        t=ticket(version=2),
    ),
    _case("token-from-the-future", no("invalid"), s=scan(token_version=2), t=ticket()),
    # A list id that names no list of the event admits nothing, after the ticket's own checks.
    _case("unknown-list", no("not_on_list"), r=unknown_list()),
    _case("unknown-list-on-exit", no("not_on_list"), s=scan("exit"), r=unknown_list()),
    _case("unknown-list-after-revoked", no("revoked"), t=ticket(revoked=True), r=unknown_list()),
    _case("unknown-list-after-invalid", no("invalid"), t=None, r=unknown_list()),
]
