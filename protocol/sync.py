"""What a door knows of its event: the snapshot's and the change log's entities, one shape each.

A door decides offline with `protocol.rules.decide`, which reads a `TicketState`, a `ListRules` and
a `Presence`. Every fact in them reaches the door through the snapshot and then the change log, in
exactly the shapes below, so that a door that loaded a snapshot and applied the changes after it
holds what a fresh snapshot would hold (docs/protocol.md section 8):

  snapshot key     entity           change kinds that carry it (the item's field)
  event            EventEntry       event.updated                              (event)
  ticket_types     TicketTypeEntry  ticket_type.created, ticket_type.updated   (ticket_type)
  lists            ListEntry        list.created, list.updated                 (list)
  tickets          TicketEntry      ticket.issued, .updated, .reissued, .revoked,
                                    .blocked, .unblocked                       (ticket)
  checkins         PresenceEntry    scan.accepted, scan.annulled               (presence)
  keys             JWK maps         keys.changed                               (keys)

An item replaces the entity it carries as a whole (an upsert by id): nothing is a delta, so a door
never has to know what an item changed. A scan item carries the ticket's presence on that list
AFTER the scan (or its annulment), so a door applies it without re-running the rules. An empty
presence (no entry counted, not inside, no first entry) is the same as none: the snapshot leaves
it out, and a door drops the ticket x list entry it would replace.

Times are RFC 3339 in UTC with `Z` (`2031-06-14T20:00:00Z`, a fraction of a second only when
there is one), on every frame and body of the scanner protocol: msgspec encodes them so.
"""

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from protocol.rules import Direction, FirstEntry, ListRules, Presence, TicketState

__all__ = [
    "DeviceEntry",
    "EventEntry",
    "ListEntry",
    "PresenceEntry",
    "ScanEntry",
    "TicketEntry",
    "TicketTypeEntry",
    "is_empty",
    "list_rules",
    "presence_of",
    "ticket_state",
    "to_wire",
    "utc",
]

TicketStatus = Literal["valid", "revoked"]


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A synced entity: strict, so a door notices a shape it does not know."""


class EventEntry(_Entry, frozen=True):
    id: str
    name: str
    starts_at: datetime
    ends_at: datetime | None
    timezone: str  # the IANA zone the venue shows its times in
    venue: str | None


class TicketTypeEntry(_Entry, frozen=True):
    id: str
    name: str
    persons: int  # people admitted per ticket
    valid_from: datetime | None  # the type's window for entries: from inclusive,
    valid_until: datetime | None  # until exclusive


class ListEntry(_Entry, frozen=True):
    id: str
    name: str
    ticket_type_ids: list[str] | None  # None admits every type of the event
    max_entries: int | None  # None is unlimited
    allow_reentry: bool
    valid_from: datetime | None
    valid_until: datetime | None


class TicketEntry(_Entry, frozen=True):
    """A ticket as doors see it: no e-mail, no link, no token."""

    id: str
    code: str  # the readable code; a reissue gives a new one
    ticket_type_id: str
    holder_name: str | None
    seat: str | None
    version: int  # tokens of a lower `ver` are superseded (revoked)
    status: TicketStatus
    blocked: bool


class PresenceEntry(_Entry, frozen=True):
    """The folded check-in state of one ticket on one list (`protocol.rules.Presence`)."""

    ticket_id: str
    list_id: str
    entries: int
    inside: bool
    first_scan_id: str | None  # the scan that first let the ticket in, on the device below
    first_at: datetime | None
    first_gate: str | None
    first_device: str | None


class ScanEntry(_Entry, frozen=True):
    """A scan that took effect (accepted, or admitted offline by the door)."""

    scan_id: str  # unique per device: (device_id, scan_id) names a scan
    device_id: str
    ticket_id: str
    list_id: str
    direction: Direction
    scanned_at: datetime  # the door's clock
    gate: str | None
    offline: bool
    forced: bool  # the door let the guest in and the online rules would not have


class DeviceEntry(_Entry, frozen=True):
    id: str
    name: str
    gate: str | None


def utc(moment: datetime) -> datetime:
    """`moment` in UTC, which is how every time goes on the wire."""
    return moment.astimezone(UTC)


def to_wire(entity: msgspec.Struct) -> dict[str, Any]:
    """The JSON-ready map of an entity, times as RFC 3339 UTC strings."""
    built: dict[str, Any] = msgspec.to_builtins(entity)
    return built


def ticket_state(ticket: TicketEntry, ticket_type: TicketTypeEntry, event_id: str) -> TicketState:
    """What the rules read of a ticket: the ticket itself joined with its type."""
    return TicketState(
        id=ticket.id,
        event_id=event_id,
        ticket_type_id=ticket.ticket_type_id,
        version=ticket.version,
        revoked=ticket.status != "valid",
        blocked=ticket.blocked,
        persons=ticket_type.persons,
        valid_from=ticket_type.valid_from,
        valid_until=ticket_type.valid_until,
    )


def list_rules(entry: ListEntry, event_id: str) -> ListRules:
    types = None if entry.ticket_type_ids is None else frozenset(entry.ticket_type_ids)
    return ListRules(
        id=entry.id,
        event_id=event_id,
        ticket_type_ids=types,
        max_entries=entry.max_entries,
        allow_reentry=entry.allow_reentry,
        valid_from=entry.valid_from,
        valid_until=entry.valid_until,
    )


def is_empty(entry: PresenceEntry) -> bool:
    """Whether `entry` holds nothing: the same as no presence at all (see the module comment)."""
    return entry.entries == 0 and not entry.inside and entry.first_at is None


def presence_of(entry: PresenceEntry) -> Presence:
    first = None
    if entry.first_at is not None:
        first = FirstEntry(at=entry.first_at, gate=entry.first_gate, device_id=entry.first_device)
    return Presence(entries=entry.entries, inside=entry.inside, first_entry=first)
