"""What the sync engine tells the screens (TUI, headless): plain frozen values, no behaviour.

The engine (`scanner_client.core.SyncCore`) appends these to `SyncCore.events`; the asyncio shell
(`scanner_client.door.Door`) hands them to whoever shows them. They carry everything a screen
needs, so a screen never reads the store or the wire itself.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

import msgspec

from protocol.messages import Conflict, Counters
from protocol.reasons import Reason
from protocol.rules import Direction

__all__ = [
    "Colour",
    "ConflictNotice",
    "Connection",
    "CountersChanged",
    "DoorEvent",
    "Notice",
    "StatusChanged",
    "TicketMatch",
    "TicketView",
    "Undone",
    "VerdictShown",
    "colour_of",
]


class Connection(StrEnum):
    """How the door stands with the hub (the status bar's first word)."""

    LIVE = "live"  # socket up, caught up, the hub answers in time
    DEGRADED = "degraded"  # socket up but the hub is slow (a scan timed out) or catching up
    OFFLINE = "offline"  # no socket: the door decides every scan itself
    SYNCING = "syncing"  # loading a snapshot
    UNPAIRED = "unpaired"  # token refused or device revoked: re-pair


class Colour(StrEnum):
    GREEN = "green"  # accepted
    AMBER = "amber"  # already used, or needs attention (admitted against the hub's rules)
    RED = "red"  # rejected


class TicketView(msgspec.Struct, frozen=True):
    """The ticket as door staff see it."""

    id: str
    code: str
    holder_name: str | None
    ticket_type: str | None
    seat: str | None
    persons: int


class VerdictShown(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one scan, as shown at the door.

    `source` says who decided: `hub` (online answer in time) or `door` (offline, or the hub did
    not answer within the timeout). `repeat` is a code read again within the debounce window: the
    earlier verdict shown again, nothing recorded. `late` is the hub's answer to a scan the door
    already decided itself, when it differs from the door's verdict.
    """

    scan_id: str
    code: str
    list_id: str
    direction: Direction
    scanned_at: datetime
    accepted: bool
    reason: Reason | None
    source: Literal["hub", "door"]
    ticket: TicketView | None = None
    entries: int = 0  # entries counted on the list after this scan
    max_entries: int | None = None  # the list's limit (None: unlimited)
    first_at: datetime | None = None  # with already_redeemed: the first entry's time and gate
    first_gate: str | None = None
    first_here: bool = False  # the first entry was at this door (whose gate it may not know)
    forced: bool = False  # admitted although the hub's rules would have refused
    repeat: bool = False
    late: bool = False

    @property
    def colour(self) -> Colour:
        return colour_of(self.accepted, self.reason, self.forced)


def colour_of(accepted: bool, reason: Reason | None, forced: bool = False) -> Colour:
    if accepted:
        return Colour.AMBER if forced else Colour.GREEN
    return Colour.AMBER if reason == Reason.ALREADY_REDEEMED else Colour.RED


class StatusChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The status bar: connection, age of the data, what waits for upload, what the door holds."""

    connection: Connection
    synced_at: float | None  # wall-clock seconds of the last word from the hub's change log
    queued: int  # own scans not yet confirmed by the hub
    tickets: int  # tickets on the device
    cursor: int | None
    list_id: str | None
    list_name: str | None
    direction: Direction


class CountersChanged(msgspec.Struct, frozen=True):
    """Live counters: the hub's while connected; computed from the local store offline."""

    counters: Counters
    source: Literal["hub", "door"]


class ConflictNotice(msgspec.Struct, frozen=True):
    """An offline entry the hub's rules would have refused (a guest may have got in twice)."""

    conflict: Conflict
    own: bool  # the forced scan is this door's


class Undone(msgspec.Struct, frozen=True, kw_only=True):
    """A scan of this door annulled (undo), or the hub's refusal to annul it."""

    scan_id: str
    ok: bool
    entries: int | None = None  # the ticket's entries on the list after the annulment
    error: str | None = None  # the hub's error code when refused (not_found, forbidden, ...)
    pending: bool = False  # undone locally; the hub will be told once the scan is uploaded


class Notice(msgspec.Struct, frozen=True):
    """Something door staff should read: re-pair needed, snapshot loaded, upload done..."""

    code: str  # stable: unpaired, revoked, snapshot_loaded, uploaded, hub_error, ...
    detail: str


DoorEvent = VerdictShown | StatusChanged | CountersChanged | ConflictNotice | Undone | Notice


class TicketMatch(msgspec.Struct, frozen=True):
    """A ticket found by name search, with its state on the door's list."""

    ticket: TicketView
    status: str  # valid | revoked
    blocked: bool
    entries: int
    inside: bool
