"""Ticket request bodies; the answer is `TicketOut`, shared with bookings."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from server.bookings.schemas import TicketOut
from server.schemas import Email, Name, ShortText

__all__ = ["TicketOut", "TicketPatch"]


class TicketPatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What an organiser may change without a reissue; `null` clears, an absent field is kept."""

    holder_name: Name | UnsetType | None = UNSET
    holder_email: Email | UnsetType | None = UNSET
    seat: ShortText | UnsetType | None = UNSET
