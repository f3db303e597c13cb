"""The verdict table against `decide`, and the folding of scans into `Presence`."""

from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol.rules
from protocol.reasons import Reason
from protocol.rules import (
    Direction,
    FirstEntry,
    ListRules,
    Presence,
    RecordedScan,
    ScanFacts,
    TicketState,
    Verdict,
    apply,
    decide,
    fold_all,
    is_reentry,
)
from tests.protocol.cases import (
    EARLIER,
    NOW,
    VERDICT_ARGNAMES,
    VERDICT_CASES,
    presence,
    rules,
    scan,
    ticket,
)


@pytest.mark.parametrize(VERDICT_ARGNAMES, VERDICT_CASES)
def test_decide_gives_the_verdict_of_the_table(
    scan: ScanFacts,
    ticket: TicketState | None,
    presence: Presence,
    rules: ListRules,
    expected: Verdict,
) -> None:
    assert decide(scan, ticket, presence, rules) == expected


@pytest.mark.parametrize(VERDICT_ARGNAMES, VERDICT_CASES)
def test_a_verdict_carries_a_reason_exactly_when_rejected(
    scan: ScanFacts,
    ticket: TicketState | None,
    presence: Presence,
    rules: ListRules,
    expected: Verdict,
) -> None:
    verdict = decide(scan, ticket, presence, rules)
    assert (verdict.reason is None) == verdict.accepted
    assert verdict.reason is None or isinstance(verdict.reason, Reason)


def test_the_table_names_every_reason_and_both_outcomes() -> None:
    expected = [case.values[-1] for case in VERDICT_CASES]
    assert {verdict.reason for verdict in expected} == {*Reason, None}
    assert len({case.id for case in VERDICT_CASES}) == len(VERDICT_CASES)


def test_public_names_are_pinned() -> None:
    assert sorted(protocol.rules.__all__) == [
        "Direction",
        "FirstEntry",
        "ListRules",
        "Presence",
        "RecordedScan",
        "ScanFacts",
        "TicketState",
        "UnknownList",
        "Verdict",
        "apply",
        "decide",
        "fold_all",
        "is_reentry",
        "version_refusal",
    ]


def test_directions_are_the_wire_words() -> None:
    assert [str(direction) for direction in Direction] == ["entry", "exit"]


# --- apply: one scan that took effect ---------------------------------------------------------


def test_first_entry_counts_marks_inside_and_records_where() -> None:
    after = apply(presence(), scan(), rules(), gate="B", device_id="D7")
    assert after == Presence(entries=1, inside=True, first_entry=FirstEntry(NOW, "B", "D7"))


def test_later_entry_counts_but_keeps_the_first_entry() -> None:
    before = presence(entries=1, inside=True)
    after = apply(before, scan(), rules(max_entries=3), gate="B", device_id="D7")
    assert after == Presence(entries=2, inside=True, first_entry=before.first_entry)


def test_exit_marks_outside_and_counts_nothing() -> None:
    before = presence(entries=2, inside=True)
    after = apply(before, scan("exit"), rules(), gate="B", device_id="D7")
    assert after == Presence(entries=2, inside=False, first_entry=before.first_entry)


def test_exit_of_a_guest_outside_changes_nothing() -> None:
    before = presence(entries=1, inside=False)
    assert apply(before, scan("exit"), rules(), gate=None, device_id=None) == before


def test_exit_before_any_entry_records_no_first_entry() -> None:
    assert apply(presence(), scan("exit"), rules(), gate="A", device_id="D1") == Presence()


def test_reentry_after_exit_does_not_count() -> None:
    reentry_list = rules(allow_reentry=True)
    before = presence(entries=1, inside=False)
    assert is_reentry(before, reentry_list)
    after = apply(before, scan(), reentry_list, gate="B", device_id="D7")
    assert after == Presence(entries=1, inside=True, first_entry=before.first_entry)


@pytest.mark.parametrize(
    ("state", "list_rules"),
    [
        pytest.param(presence(), rules(allow_reentry=True), id="never-entered"),
        pytest.param(presence(entries=1, inside=True), rules(allow_reentry=True), id="inside"),
        pytest.param(presence(entries=1), rules(allow_reentry=False), id="list-forbids"),
    ],
)
def test_an_entry_is_not_a_reentry(state: Presence, list_rules: ListRules) -> None:
    assert not is_reentry(state, list_rules)


def test_forced_entry_beyond_the_limit_is_still_counted() -> None:
    before = presence(entries=1, inside=True)
    assert not decide(scan(), ticket(), before, rules()).accepted
    after = apply(before, scan(), rules(), gate="C", device_id="D9")
    assert after.entries == 2


# --- fold_all: rebuilding from the history ----------------------------------------------------


def _recorded(direction: str, minutes: int, gate: str = "A") -> RecordedScan:
    return RecordedScan(
        direction=Direction(direction),
        scanned_at=EARLIER + timedelta(minutes=minutes),
        gate=gate,
        device_id=f"D-{gate}",
    )


def test_fold_of_no_scans_is_the_empty_state() -> None:
    assert fold_all([], rules()) == Presence()


def test_fold_of_an_evening_with_reentries() -> None:
    history = [
        _recorded("entry", 0, "A"),
        _recorded("exit", 10, "B"),
        _recorded("entry", 20, "B"),
        _recorded("exit", 30, "A"),
    ]
    rebuilt = fold_all(history, rules(allow_reentry=True))
    assert rebuilt == Presence(entries=1, inside=False, first_entry=FirstEntry(EARLIER, "A", "D-A"))


def test_undo_is_leaving_the_annulled_scan_out_of_the_fold() -> None:
    entry, exit_ = _recorded("entry", 0), _recorded("exit", 5)
    assert fold_all([entry, exit_], rules()) == Presence(1, False, FirstEntry(EARLIER, "A", "D-A"))
    assert fold_all([], rules()) == Presence()
    assert fold_all([entry], rules()) == Presence(1, True, FirstEntry(EARLIER, "A", "D-A"))


_list_rules = st.builds(
    rules,
    max_entries=st.none() | st.integers(min_value=0, max_value=4),
    allow_reentry=st.booleans(),
)
_attempts = st.lists(
    st.tuples(st.sampled_from(["entry", "exit"]), st.booleans(), st.sampled_from(["A", "B"])),
    max_size=30,
)


def _play(
    list_rules: ListRules, attempts: list[tuple[str, bool, str]]
) -> tuple[Presence, list[RecordedScan], list[tuple[Presence, Verdict, RecordedScan]]]:
    """Scan attempts one by one, applying the accepted ones and the forced ones (door's choice)."""
    state, history, steps = Presence(), [], []
    for minute, (direction, forced, gate) in enumerate(attempts):
        recorded = _recorded(direction, minute, gate)
        verdict = decide(recorded, ticket(), state, list_rules)
        steps.append((state, verdict, recorded))
        if verdict.accepted or forced:
            history.append(recorded)
            state = apply(state, recorded, list_rules, gate=gate, device_id=f"D-{gate}")
    return state, history, steps


@given(_list_rules, _attempts)
def test_rebuilding_from_history_equals_folding_as_scans_arrive(
    list_rules: ListRules, attempts: list[tuple[str, bool, str]]
) -> None:
    state, history, _ = _play(list_rules, attempts)
    assert fold_all(history, list_rules) == state


@given(_list_rules, _attempts)
def test_entries_never_exceed_max_entries_without_forced_scans(
    list_rules: ListRules, attempts: list[tuple[str, bool, str]]
) -> None:
    unforced = [(direction, False, gate) for direction, _, gate in attempts]
    state, _, steps = _play(list_rules, unforced)
    if list_rules.max_entries is not None:
        assert state.entries <= list_rules.max_entries
    for before, verdict, _ in steps:
        assert verdict.accepted or verdict.reason == Reason.ALREADY_REDEEMED
        if list_rules.max_entries is not None:
            assert before.entries <= list_rules.max_entries


@given(_list_rules, _attempts)
def test_folded_state_keeps_its_invariants(
    list_rules: ListRules, attempts: list[tuple[str, bool, str]]
) -> None:
    state, history, steps = _play(list_rules, attempts)
    entries = [scan for scan in history if scan.direction == Direction.ENTRY]
    assert state.inside == bool(history and history[-1].direction == Direction.ENTRY)
    assert (state.first_entry is None) == (not entries)
    if entries:
        first = entries[0]
        assert state.first_entry == FirstEntry(first.scanned_at, first.gate, first.device_id)
    assert state.entries <= len(entries)
    for _, verdict, recorded in steps:
        if recorded.direction == Direction.EXIT:
            assert verdict.accepted


@given(_list_rules, _attempts)
def test_exits_never_change_the_count_of_entries(
    list_rules: ListRules, attempts: list[tuple[str, bool, str]]
) -> None:
    state, history, _ = _play(list_rules, attempts)
    without_exits = [scan for scan in history if scan.direction == Direction.ENTRY]
    assert fold_all(without_exits, list_rules).entries >= state.entries
    if not list_rules.allow_reentry:
        assert state.entries == len(without_exits)


def test_the_fold_names_the_scan_that_first_let_the_ticket_in_and_keeps_it() -> None:
    """The hub shows the first entry's scan_id in a conflict's `earlier`: the fold carries it."""
    first = msgspec.structs.replace(_recorded("entry", 0, "A"), scan_id="s-1")
    out = msgspec.structs.replace(_recorded("exit", 5, "A"), scan_id="s-2")
    again = msgspec.structs.replace(_recorded("entry", 9, "B"), scan_id="s-3")
    rebuilt = fold_all([first, out, again], rules(allow_reentry=True))
    assert rebuilt.first_entry == FirstEntry(EARLIER, "A", "D-A", scan_id="s-1")
    step = apply(Presence(), first, rules(), gate="A", device_id="D-A", scan_id="s-1")
    assert step.first_entry == rebuilt.first_entry
