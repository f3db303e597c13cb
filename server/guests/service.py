"""What a guest link shows: the ticket behind it and the state the page presents.

Pure reads: nothing here writes, so a GET of a guest link never changes anything. States, in the
order they are decided (the first that holds wins):

- `cancelled`: the ticket is revoked (its booking was cancelled); permanent.
- `replaced`: the link belongs to an older version; a reissue gave the guest a newer link.
- `blocked`: the organiser put the ticket on hold; reversible.
- `used`: the ticket was already scanned in on some check-in list (its folded presence has an
  entry); the QR still shows, since a list may allow re-entry.
- `valid`: show the QR.

Only the current link shows the ticket (code, holder, seat); an older one, in whatever state,
shows the event alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.branding.service import event_images
from server.checkin.models import PresenceRow
from server.events.models import Event, TicketType
from server.tickets.models import Ticket, TicketLink, TicketStatus
from ticket_renderer import TicketView

__all__ = ["LINK_PATTERN", "GuestState", "GuestTicket", "find_by_link", "ticket_view"]

# What `tickets.service.new_link` produces (32 base64url characters), with some slack; anything
# else is answered 404 without touching the database.
LINK_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class GuestState(StrEnum):
    VALID = "valid"
    USED = "used"
    REPLACED = "replaced"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"

    @property
    def shows_qr(self) -> bool:
        """Whether the QR and its files may be shown (a used ticket may still re-enter)."""
        return self in (GuestState.VALID, GuestState.USED)


@dataclass(frozen=True)
class GuestTicket:
    link: str
    link_version: int
    ticket: Ticket
    event: Event
    ticket_type: TicketType
    is_used: bool = False  # an entry was recorded on some check-in list
    images: Mapping[str, str] = field(default_factory=dict)  # the event's, by kind: its path

    @property
    def is_current_link(self) -> bool:
        """Whether the link is the ticket's current one. An older link may be in other hands
        (the previous holder's after a transfer, or leaked), so it shows nothing of the ticket:
        not its code, holder or seat, which may all belong to someone else by now."""
        return self.link_version == self.ticket.version

    @property
    def state(self) -> GuestState:
        if self.ticket.status == TicketStatus.REVOKED:
            return GuestState.CANCELLED
        if not self.is_current_link:
            return GuestState.REPLACED
        if self.ticket.blocked:
            return GuestState.BLOCKED
        if self.is_used:
            return GuestState.USED
        return GuestState.VALID


async def find_by_link(session: AsyncSession, link: str) -> GuestTicket | None:
    """The ticket behind `link` (current or former) with its event, type and images."""
    if not LINK_PATTERN.fullmatch(link):
        return None
    used = exists().where(PresenceRow.ticket_id == Ticket.id, PresenceRow.entries > 0)
    row = (
        await session.execute(
            select(TicketLink.version, Ticket, Event, TicketType, used.label("used"))
            .join(Ticket, Ticket.id == TicketLink.ticket_id)
            .join(Event, Event.id == Ticket.event_id)
            .join(TicketType, TicketType.id == Ticket.ticket_type_id)
            .where(TicketLink.link == link)
        )
    ).first()
    if row is None:
        return None
    version, ticket, event, ticket_type, is_used = row
    images = await event_images(session, event.id)
    return GuestTicket(link, version, ticket, event, ticket_type, bool(is_used), images)


def ticket_view(guest: GuestTicket, language: str, link_url: str) -> TicketView:
    """The renderers' view of the ticket, in `language`."""
    ticket, event = guest.ticket, guest.event
    return TicketView(
        ticket_id=ticket.id,
        code=ticket.code,
        token=ticket.token,
        version=ticket.version,
        event_name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        timezone=event.timezone,
        venue=event.venue,
        holder_name=ticket.holder_name,
        ticket_type=guest.ticket_type.name,
        seat=ticket.seat,
        persons=guest.ticket_type.persons,
        language=language,
        event_url=link_url,
    )
