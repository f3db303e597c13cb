"""The verdict on one scan: the one pure function shared by the hub (online) and the scanner.

No I/O and no clock: the time of a scan is `ScanFacts.scanned_at`, everything else is passed in.
The token's own refusals (signature, its event, its nbf/exp) come first, from
`protocol.token.verify_ticket_token`; what needs the ticket (its version, its state) is decided
here, so a hub and a door that know the same facts reach the same verdict.

Order of checks (this order IS the specification; the first failing check names the reason):

  1. no ticket behind the code (unknown, unreadable or forged)   -> invalid
     1b. a QR token's `ver` above the ticket's version            -> invalid (names no ticket
         we know); below it: superseded by a reissue             -> revoked
  2. the ticket belongs to another event than the list           -> wrong_event
  3. the ticket is revoked (permanent)                           -> revoked
  4. the ticket is blocked (reversible hold)                     -> blocked
  5. the list does not admit the ticket's type, or the list id
     names no list of the event (`UnknownList`)                   -> not_on_list
  6. ENTRY only: before the ticket type's or the list's valid_from -> not_yet_valid
  7. ENTRY only: at or after either valid_until                  -> expired
  8. direction rules:
     ENTRY  - with `allow_reentry`:
                guest inside                                     -> already_redeemed
                guest outside who has entered before             -> accepted, a re-entry that
                                                                    consumes no entry
              then, for every other entry: `max_entries` set and
                `entries >= max_entries`                          -> already_redeemed
              otherwise                                          -> accepted, consumes one entry
     EXIT   - always accepted once checks 1-5 pass, whether the guest is inside or not; it marks
              the guest outside and never consumes an entry.

Why exits skip the time windows (6-7): a window closing while guests are inside must not trap
them in the `inside` counter, and refusing a guest who is leaving protects nothing. Why an exit of
a guest already outside is accepted (as pretix does): the door cannot hold people in, and a missed
exit scan elsewhere is far likelier than fraud; the state simply stays "outside".

State (`Presence`) is the fold of the scans that took effect on one ticket ON ONE LIST, in the
order the hub recorded them: accepted scans and forced ones (an offline door let the guest in
although the online rules would have refused). Rejected and annulled scans are never folded, so
`fold_all` over the stored history rebuilds the state exactly; retries (same scan_id) and undo
(annul) cannot make counters drift.

Invariants:
  - `entries` counts only entries that consumed one; re-entries and exits never change it.
  - without forced scans, `entries <= max_entries` whenever `max_entries` is set.
  - `first_entry` is set by the first entry folded and never changes afterwards.
  - `inside` is True exactly when the last scan folded was an entry.

Persons: a ticket with `persons = k` admits k people at once. The verdict is per ticket and
`entries` counts ticket entries (one scan lets the whole party in); head counts (checked in,
inside, remaining) multiply the ticket-level state by `persons`.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import msgspec

from protocol.reasons import Reason

__all__ = [
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


class Direction(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class ListRules(msgspec.Struct, frozen=True):
    """A check-in list: which ticket types it admits, how often, and during which window."""

    id: str
    event_id: str
    ticket_type_ids: frozenset[str] | None = None  # None admits every type of the event
    max_entries: int | None = 1  # None is unlimited
    allow_reentry: bool = False
    valid_from: datetime | None = None  # the list's own window, checked beside the type's
    valid_until: datetime | None = None


class UnknownList(msgspec.Struct, frozen=True):
    """A list id that names no list of the event `event_id` (mistyped, deleted, another
    event's): it admits nothing, in either direction, once the ticket's own checks pass."""

    id: str
    event_id: str


class TicketState(msgspec.Struct, frozen=True):
    """What the rules need to know about one ticket, from the database or the scanner snapshot."""

    id: str
    event_id: str
    ticket_type_id: str
    version: int = 1
    revoked: bool = False
    blocked: bool = False
    persons: int = 1
    valid_from: datetime | None = None  # the ticket type's window
    valid_until: datetime | None = None


class FirstEntry(msgspec.Struct, frozen=True):
    """When and where a ticket first got in on a list (shown with `already_redeemed`), and by
    which scan (named in a conflict's `earlier`; None where the door does not know it)."""

    at: datetime
    gate: str | None
    device_id: str | None
    scan_id: str | None = None


class Presence(msgspec.Struct, frozen=True):
    """The folded check-in state of one ticket on one list."""

    entries: int = 0  # entries counted against max_entries
    inside: bool = False
    first_entry: FirstEntry | None = None


class ScanFacts(msgspec.Struct, frozen=True, kw_only=True):
    """The facts of one scan the rules look at; `scanned_at` is the door's clock, and
    `token_version` the `ver` of the QR token presented (None for a typed readable code)."""

    direction: Direction = Direction.ENTRY
    scanned_at: datetime
    token_version: int | None = None


class RecordedScan(ScanFacts, frozen=True, kw_only=True):
    """A scan that took effect (accepted or forced), as stored: its facts and where it happened."""

    gate: str | None = None
    device_id: str | None = None
    scan_id: str | None = None


class Verdict(msgspec.Struct, frozen=True):
    accepted: bool
    reason: Reason | None = None


_ACCEPTED = Verdict(True)
_REJECTED = {reason: Verdict(False, reason) for reason in Reason}


def decide(
    scan: ScanFacts,
    ticket: TicketState | None,
    presence: Presence,
    rules: ListRules | UnknownList,
) -> Verdict:
    """The verdict on `scan` of `ticket` on the list `rules`, given its folded `presence`.

    Checks run in the order of the module comment; the first that fails gives the reason. An
    `invalid` verdict means no ticket is behind the code: show and record none.
    """
    if ticket is None:
        return _REJECTED[Reason.INVALID]
    reason = version_refusal(scan.token_version, ticket.version)
    reason = reason or _ticket_refusal(ticket, rules)
    # An unknown list refused every ticket at check 5, so `rules` is a ListRules past it.
    if reason is None and scan.direction == Direction.ENTRY and isinstance(rules, ListRules):
        reason = _window_refusal(scan.scanned_at, ticket, rules) or _entry_refusal(presence, rules)
    return _ACCEPTED if reason is None else _REJECTED[reason]


def version_refusal(token_version: int | None, ticket_version: int) -> Reason | None:
    """Check 1b: a token of an older version was superseded by a reissue (`revoked`); one of a
    newer version names no ticket we know (`invalid`); None for the current one or no token."""
    if token_version is None or token_version == ticket_version:
        return None
    return Reason.REVOKED if token_version < ticket_version else Reason.INVALID


def is_reentry(presence: Presence, rules: ListRules) -> bool:
    """Whether an entry now would be a re-entry: allowed by the list, guest outside, entered before.

    A re-entry is admitted whatever `max_entries` says and does not consume an entry.
    """
    return rules.allow_reentry and not presence.inside and presence.entries > 0


def apply(
    presence: Presence,
    scan: ScanFacts,
    rules: ListRules,
    *,
    gate: str | None,
    device_id: str | None,
    scan_id: str | None = None,
) -> Presence:
    """The state after one scan that took effect (accepted, or forced by an offline door).

    An entry marks the guest inside, counts one entry unless it is a re-entry (`is_reentry`), and
    records `first_entry` (with the scan's id) if none is set. An exit marks the guest outside
    and counts nothing. Never call it for a rejected scan: a refusal changes no state.
    """
    if scan.direction == Direction.EXIT:
        return Presence(presence.entries, False, presence.first_entry)
    entries = presence.entries if is_reentry(presence, rules) else presence.entries + 1
    first_entry = presence.first_entry or FirstEntry(scan.scanned_at, gate, device_id, scan_id)
    return Presence(entries, True, first_entry)


def fold_all(scans: Iterable[RecordedScan], rules: ListRules) -> Presence:
    """The state of one ticket on one list rebuilt from the scans that took effect on it.

    Pass them in the order the hub recorded them (change-log `seq`), rejected and annulled scans
    left out; the result equals applying them one by one as they arrived.
    """
    presence = Presence()
    for scan in scans:
        presence = apply(
            presence, scan, rules, gate=scan.gate, device_id=scan.device_id, scan_id=scan.scan_id
        )
    return presence


def _ticket_refusal(ticket: TicketState, rules: ListRules | UnknownList) -> Reason | None:
    """Checks 2-5: whether this ticket may be scanned on this list at all, in either direction."""
    if ticket.event_id != rules.event_id:
        return Reason.WRONG_EVENT
    if ticket.revoked:
        return Reason.REVOKED
    if ticket.blocked:
        return Reason.BLOCKED
    if isinstance(rules, UnknownList):
        return Reason.NOT_ON_LIST
    if rules.ticket_type_ids is not None and ticket.ticket_type_id not in rules.ticket_type_ids:
        return Reason.NOT_ON_LIST
    return None


def _window_refusal(at: datetime, ticket: TicketState, rules: ListRules) -> Reason | None:
    """Checks 6-7: `valid_from` is inclusive, `valid_until` exclusive, for the type and the list."""
    for starts in (ticket.valid_from, rules.valid_from):
        if starts is not None and at < starts:
            return Reason.NOT_YET_VALID
    for ends in (ticket.valid_until, rules.valid_until):
        if ends is not None and at >= ends:
            return Reason.EXPIRED
    return None


def _entry_refusal(presence: Presence, rules: ListRules) -> Reason | None:
    """Check 8 for an entry: re-entry first, then the count of entries against `max_entries`."""
    if rules.allow_reentry:
        if presence.inside:
            return Reason.ALREADY_REDEEMED
        if is_reentry(presence, rules):
            return None
    if rules.max_entries is not None and presence.entries >= rules.max_entries:
        return Reason.ALREADY_REDEEMED
    return None
