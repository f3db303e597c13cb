"""The door's own verdict on a scan: what the hub would decide, from the door's local state.

The same checks as the hub, in the same order (docs/protocol.md section 6):

  1. the code: a QR token (it has dots) is verified with `protocol.token` against the synced
     keys, for the door's event, at the scan's time; its refusal (`invalid`, `wrong_event`,
     `not_yet_valid`, `expired`) stands. A readable code is looked up among the door's tickets,
     which are only its own event's, so a code of another event is `invalid` (never
     `wrong_event`: a door is no oracle for other events' codes).
  2. the token's `ver` against the ticket's `version`: below is `revoked` (superseded by a
     reissue), above names no ticket the door knows (`invalid`).
  3. `protocol.rules.decide` on the ticket joined with its type, the list's rules, and the
     ticket's presence on the list as the door sees it: the hub's presence (other doors'
     check-ins received before the cut) with this door's own unconfirmed scans folded on top.

An unknown list is `protocol.rules.UnknownList`, decided by the shared `decide` as at the hub: it
admits nothing (`not_on_list` after the ticket's own checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from protocol.ids import normalize_code
from protocol.reasons import Reason
from protocol.rules import (
    Direction,
    ListRules,
    Presence,
    ScanFacts,
    UnknownList,
    Verdict,
    apply,
    decide,
)
from protocol.sync import TicketEntry, TicketTypeEntry, list_rules, presence_of, ticket_state
from protocol.token import verify_ticket_token
from scanner_client.store import Store

__all__ = ["LocalDecision", "decide_locally", "find_ticket", "presence_seen"]


@dataclass(frozen=True)
class LocalDecision:
    verdict: Verdict
    ticket: TicketEntry | None  # None when the code names no ticket of the event
    ticket_type: TicketTypeEntry | None
    rules: ListRules | UnknownList
    before: Presence  # the presence the rules read
    after: Presence  # the presence once this scan took effect (`before` if refused)


def find_ticket(
    store: Store, code: str, *, event_id: str, now: float
) -> tuple[TicketEntry | None, Reason | None]:
    """The ticket a code names and the code's own refusal (checks 1-2 of the module comment)."""
    if "." not in code:
        return store.ticket_by_code(normalize_code(code)), None
    claims = verify_ticket_token(code, store.keys(), event_id=event_id, now=now)
    if isinstance(claims, Reason):
        return None, claims
    ticket = store.ticket(claims.jti)
    if ticket is None or claims.ver > ticket.version:
        return None, Reason.INVALID
    if claims.ver < ticket.version:
        return ticket, Reason.REVOKED
    return ticket, None


def presence_seen(store: Store, ticket_id: str, rules: ListRules, own_device: str) -> Presence:
    """The hub's presence of a ticket on a list with this door's unconfirmed scans on top."""
    entry = store.presence(ticket_id, rules.id)
    presence = presence_of(entry) if entry is not None else Presence()
    for scan in store.overlay(ticket_id, rules.id):
        facts = ScanFacts(direction=scan.direction, scanned_at=scan.scanned_at)
        presence = apply(presence, facts, rules, gate=None, device_id=own_device)
    return presence


def decide_locally(
    store: Store,
    code: str,
    *,
    list_id: str,
    direction: Direction,
    scanned_at: datetime,
    event_id: str,
    own_device: str,
) -> LocalDecision:
    """What the hub would decide on this scan, from the store alone."""
    entry = store.checkin_list(list_id)
    rules = UnknownList(list_id, event_id) if entry is None else list_rules(entry, event_id)
    ticket, refusal = find_ticket(store, code, event_id=event_id, now=scanned_at.timestamp())
    ticket_type = store.ticket_type(ticket.ticket_type_id) if ticket else None
    if ticket is None or ticket_type is None:
        verdict = Verdict(False, refusal or Reason.INVALID)
        return LocalDecision(verdict, None, None, rules, Presence(), Presence())
    before = Presence()  # an unknown list holds no presence
    if isinstance(rules, ListRules):
        before = presence_seen(store, ticket.id, rules, own_device)
    facts = ScanFacts(direction=direction, scanned_at=scanned_at)
    if refusal is not None:
        verdict = Verdict(False, refusal)
    else:
        verdict = decide(facts, ticket_state(ticket, ticket_type, event_id), before, rules)
    after = before
    if verdict.accepted and isinstance(rules, ListRules):
        after = apply(before, facts, rules, gate=None, device_id=own_device)
    return LocalDecision(verdict, ticket, ticket_type, rules, before, after)
