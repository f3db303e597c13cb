"""Who a campaign goes to: its audience resolved against the event's bookings and tickets.

One recipient per confirmed booking (the buyer, with all the booking's valid tickets), or, in a
per-ticket campaign, one per valid ticket (its holder when the holder has an address, else the
buyer). Filters, all optional and combined:

  ticket_type_ids  only tickets of these types (a booking qualifies with at least one)
  checked_in       true: only tickets that entered on some list; false: only those that did not
  delivery         all (default) | never_sent: no ticket mail was ever recorded for the booking
                   / ticket | failed: the latest ticket mail for it failed or bounced |
                   not_received: either of the two ("resend to those who did not get it")

Test sends and other campaigns' messages count for `delivery` only when they were real ticket
mail (source campaign, resend or auto; kind tickets), so "resend to those who failed or never
got it" means exactly that.

A `message` campaign may go to a contact list instead (`contact_list_id`): one recipient per
contact (a list holds each address once), in address order, none of the filters above. The
service refuses the other combinations before they get here.

News (`message` campaigns) never goes to an address that unsubscribed from the event's mail.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.models import Booking, BookingStatus
from server.campaigns.models import Message, MessageSource, MessageStatus, Unsubscribe
from server.checkin.models import PresenceRow
from server.contacts.service import iter_contacts
from server.errors import NotFound
from server.tickets.models import Ticket, TicketStatus

__all__ = ["Audience", "Recipient", "resolve"]


@dataclass(frozen=True)
class Audience:
    ticket_type_ids: frozenset[str] | None = None
    checked_in: bool | None = None
    delivery: str = "all"  # all | never_sent | failed | not_received
    contact_list_id: str | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Audience:
        types = raw.get("ticket_type_ids")
        return cls(
            ticket_type_ids=None if types is None else frozenset(types),
            checked_in=raw.get("checked_in"),
            delivery=raw.get("delivery") or "all",
            contact_list_id=raw.get("contact_list_id"),
        )

    @property
    def filters_bookings(self) -> bool:
        return (
            self.ticket_type_ids is not None
            or self.checked_in is not None
            or (self.delivery != "all")
        )


@dataclass(frozen=True)
class Recipient:
    booking_id: str | None  # None for a contact of a list
    ticket_id: str | None  # per-ticket messages
    to_name: str | None
    to_email: str
    language: str | None
    ticket_ids: tuple[str, ...] = field(default=())  # the tickets the message carries


async def resolve(
    session: AsyncSession,
    event_id: str,
    audience: Audience,
    *,
    per_ticket: bool,
    news: bool = False,
) -> list[Recipient]:
    """The recipients of a campaign now, in booking order (stable for previews and counts).

    `news` (a `message` campaign) leaves out the addresses that unsubscribed from the event.
    """
    if audience.contact_list_id is not None:
        recipients = await _contacts(session, audience.contact_list_id)
        return await _subscribed(session, event_id, recipients) if news else recipients
    rows = (
        await session.execute(
            select(Booking, Ticket)
            .join(Ticket, Ticket.booking_id == Booking.id)
            .where(
                Booking.event_id == event_id,
                Booking.status == BookingStatus.CONFIRMED,
                Ticket.status == TicketStatus.VALID,
            )
            .order_by(Booking.created_at, Booking.id, Ticket.position)
        )
    ).all()
    if audience.ticket_type_ids is not None:
        rows = [r for r in rows if r.Ticket.ticket_type_id in audience.ticket_type_ids]
    if audience.checked_in is not None:
        entered = await _entered(session, [r.Ticket.id for r in rows])
        rows = [r for r in rows if (r.Ticket.id in entered) == audience.checked_in]
    if per_ticket:
        recipients = [
            Recipient(
                booking_id=r.Booking.id,
                ticket_id=r.Ticket.id,
                to_name=r.Ticket.holder_name if r.Ticket.holder_email else r.Booking.buyer_name,
                to_email=r.Ticket.holder_email or r.Booking.buyer_email,
                language=r.Booking.buyer_language,
                ticket_ids=(r.Ticket.id,),
            )
            for r in rows
        ]
    else:
        by_booking: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            by_booking[r.Booking.id].append(r)
        recipients = [
            Recipient(
                booking_id=booking_id,
                ticket_id=None,
                to_name=group[0].Booking.buyer_name,
                to_email=group[0].Booking.buyer_email,
                language=group[0].Booking.buyer_language,
                ticket_ids=tuple(r.Ticket.id for r in group),
            )
            for booking_id, group in by_booking.items()
        ]
    if audience.delivery != "all":
        recipients = await _by_delivery(session, recipients, audience.delivery, per_ticket)
    if news:
        recipients = await _subscribed(session, event_id, recipients)
    return recipients


async def _subscribed(
    session: AsyncSession, event_id: str, recipients: list[Recipient]
) -> list[Recipient]:
    gone = set(
        await session.scalars(select(Unsubscribe.email).where(Unsubscribe.event_id == event_id))
    )
    return [r for r in recipients if r.to_email.lower() not in gone]


async def _contacts(session: AsyncSession, list_id: str) -> list[Recipient]:
    """One recipient per contact of the list, in address order. A list deleted since the
    campaign named it has no one left to write to (a schedule then sends nothing)."""
    try:
        return [
            Recipient(
                booking_id=None,
                ticket_id=None,
                to_name=contact.name,
                to_email=contact.email,
                language=contact.language,
            )
            async for batch in iter_contacts(session, list_id)
            for contact in batch
        ]
    except NotFound:
        return []


async def _entered(session: AsyncSession, ticket_ids: list[str]) -> set[str]:
    entered: set[str] = set()
    for chunk in _chunks(ticket_ids):
        entered |= set(
            await session.scalars(
                select(PresenceRow.ticket_id).where(
                    PresenceRow.ticket_id.in_(chunk), PresenceRow.entries > 0
                )
            )
        )
    return entered


async def _by_delivery(
    session: AsyncSession, recipients: list[Recipient], delivery: str, per_ticket: bool
) -> list[Recipient]:
    """Keep those never sent ticket mail, or whose latest ticket mail failed or bounced."""
    key = Message.ticket_id if per_ticket else Message.booking_id
    ids = [(r.ticket_id if per_ticket else r.booking_id) or "" for r in recipients]
    latest: dict[str, str] = {}
    for chunk in _chunks(ids):
        rows = await session.execute(
            select(key, Message.status)
            .where(
                key.in_(chunk),
                Message.kind == "tickets",
                Message.source.in_(
                    [MessageSource.CAMPAIGN, MessageSource.RESEND, MessageSource.AUTO]
                ),
            )
            .order_by(Message.created_at)
        )
        for owner, status in rows:
            latest[owner] = status  # ordered by time: the last one wins
    failed = {MessageStatus.FAILED, MessageStatus.BOUNCED}
    kept = []
    for recipient, owner in zip(recipients, ids, strict=True):
        status = latest.get(owner)
        never, lost = status is None, status in failed
        wanted = {"never_sent": never, "failed": lost, "not_received": never or lost}
        if wanted[delivery]:
            kept.append(recipient)
    return kept


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[n : n + size] for n in range(0, len(items), size)]
