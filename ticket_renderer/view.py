"""The ticket as the renderers see it: one frozen value, built by the server from its records."""

from datetime import datetime

import msgspec

__all__ = ["TicketView"]


class TicketView(msgspec.Struct, frozen=True):
    """Everything printed on a ticket, in one language.

    `starts_at` and `ends_at` are aware datetimes; they are shown in `timezone` (an IANA name,
    e.g. ``Europe/Paris``). `code` is the readable fallback (``K7QH-M2PX``), `token` the QR
    content, `language` one of ``fr``, ``en``, ``de``, and `event_url` the guest's own link.
    """

    ticket_id: str
    code: str
    token: str
    version: int
    event_name: str
    starts_at: datetime
    ends_at: datetime | None
    timezone: str
    venue: str | None
    holder_name: str | None
    ticket_type: str
    seat: str | None
    persons: int
    language: str = "en"
    event_url: str | None = None
