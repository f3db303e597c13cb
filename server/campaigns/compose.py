"""One ledger row turned into the mail it is, at send time, from the rows as they are now.

Rendering at send time (not when the send was confirmed) means a seat or holder edited in
between is what the guest reads, and a ticket revoked in between is left out. What the mail
links to is recorded on the row (`Message.links`): click URLs name a position in that list,
never a target, so the tracking redirect can only lead where the mail did.

Which words: the campaign's content in the recipient's language if written, else in the
event's first language, else the first language written. Resends use the built-in e-ticket
mail (`defaults.TICKET_MAIL`).

Who it is from: `mail.sender_identity`, with the event's `branding.sender` as the organiser (none
when unset), the operator's verified domains (`TESSERA_MAIL_DOMAINS`) and the platform address
(`TESSERA_MAIL_FROM`) under the event's name. With `TESSERA_DKIM_*` set the mail is signed
last (`dkim.sign_message`), so every header the mail carries is under the signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.models import Booking
from server.branding.service import event_images
from server.campaigns.defaults import TICKET_MAIL
from server.campaigns.dkim import key_for, sign_bytes
from server.campaigns.mail import (
    Address,
    Attachment,
    Identity,
    build_message,
    sender_identity,
    wire_bytes,
)
from server.campaigns.models import Campaign, Message
from server.campaigns.recipients import Audience
from server.campaigns.templates import (
    MergeFields,
    MessageTemplate,
    TicketFields,
    render_message,
)
from server.config import Settings
from server.events.models import Event, TicketType
from server.events.schemas import brand_colour
from server.guests.service import GuestTicket, ticket_view
from server.tickets.models import Ticket, TicketStatus
from ticket_renderer import render_ics, render_ticket_pdf

__all__ = ["Composed", "Prefetched", "choose_language", "compose"]


@dataclass(frozen=True)
class Composed:
    data: bytes  # the mail on the wire (CRLF line ends), DKIM-signed when configured
    subject: str  # as rendered, before any "[TEST] " (what a preview shows)
    text: str
    html: str
    links: list[str]  # what the mail links to, by position (see the module comment)
    tickets: int  # how many tickets it carries (0: nothing left to send)


@dataclass(frozen=True)
class Prefetched:
    """What a batch of messages needs, read once for the batch instead of once per message:
    the valid tickets of the batch's bookings (in position order) and each event's ticket types.
    """

    tickets_by_booking: Mapping[str, Sequence[Ticket]]
    tickets_by_id: Mapping[str, Ticket]
    types_by_event: Mapping[str, Mapping[str, TicketType]]


def choose_language(wanted: str | None, written: list[str], event_languages: list[str]) -> str:
    for candidate in (wanted, *event_languages):
        if candidate in written:
            return candidate
    return written[0]


async def compose(
    session: AsyncSession,
    message: Message,
    settings: Settings,
    campaign: Campaign | None,
    prefetched: Prefetched | None = None,
) -> Composed:
    """The mail of `message` (see the module comment); raises TemplateError for bad content.

    With `prefetched` (the outbox's batch) the tickets and ticket types are taken from it.
    """
    event = await session.get(Event, message.event_id)
    assert event is not None  # the ledger row cascades with its event
    if prefetched is None:
        tickets = _of_campaign(await _tickets(session, message), campaign)
        types = {
            t.id: t
            for t in await session.scalars(
                select(TicketType).where(TicketType.event_id == event.id)
            )
        }
    else:
        tickets = _of_campaign(_prefetched_tickets(prefetched, message), campaign)
        types = dict(prefetched.types_by_event.get(event.id, {}))
    booking = await session.get(Booking, message.booking_id) if message.booking_id else None
    content = campaign.content if campaign is not None else TICKET_MAIL
    kind = campaign.kind if campaign is not None else "tickets"
    language = choose_language(message.language, list(content), list(event.languages))
    base = settings.public_base_url
    images = {
        kind: f"{base}{path}" for kind, path in (await event_images(session, event.id)).items()
    }
    links: list[str] = []

    def track(url: str) -> str:
        links.append(url)
        return f"{base}/m/{message.token}/c/{len(links) - 1}"

    ticket_fields = [
        TicketFields(
            link=f"{base}/t/{ticket.link}",
            code=ticket.code,
            seat=ticket.seat,
            holder_name=ticket.holder_name,
            ticket_type=types[ticket.ticket_type_id].name,
        )
        for ticket in tickets
    ]
    fields = MergeFields(
        lang=language,  # type: ignore[arg-type]
        guest_name=message.to_name,
        guest_email=message.to_email,
        event_name=event.name,
        event_starts_at=event.starts_at,
        event_timezone=event.timezone,
        event_venue=event.venue,
        booking_reference=booking.reference if booking else None,
        tickets=ticket_fields,
        ticket=ticket_fields[0] if message.ticket_id and ticket_fields else None,
        unsubscribe_url=f"{base}/m/{message.token}/unsubscribe" if kind == "message" else None,
        tracking_pixel_url=f"{base}/m/{message.token}/o.gif",
        brand_colour=brand_colour(event.branding),
        logo_url=images.get("logo"),
        banner_url=images.get("banner"),
    )
    words = content[language]
    template = MessageTemplate(subject=words["subject"], body=words["body"])
    rendered = render_message(template, fields, kind=kind, link_wrapper=track)  # type: ignore[arg-type]
    attachments = []
    if campaign is not None and (campaign.attach_pdf or campaign.attach_ics):
        for ticket in tickets:
            guest = GuestTicket(
                ticket.link, ticket.version, ticket, event, types[ticket.ticket_type_id]
            )
            view = ticket_view(guest, language, f"{base}/t/{ticket.link}")
            if campaign.attach_pdf:
                attachments.append(
                    Attachment(
                        f"ticket-{ticket.code}.pdf", "application/pdf", render_ticket_pdf(view)
                    )
                )
            if campaign.attach_ics:
                attachments.append(
                    Attachment(f"event-{ticket.code}.ics", "text/calendar", render_ics(view))
                )
    mail = build_message(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        identity=_identity(event, settings),
        # A test goes to the organiser's address with a guest's data: not under the guest's name.
        to=Address(None if message.source == "test" else message.to_name, message.to_email),
        message_id=message.message_id,
        kind=kind,  # type: ignore[arg-type]
        test=message.source == "test",
        unsubscribe_url=fields.unsubscribe_url,
        attachments=attachments,
        headers={"X-Tessera-Message": message.id},
    )
    data = wire_bytes(mail)
    key = key_for(settings)
    if key is not None:
        data = sign_bytes(data, key)
    return Composed(data, rendered.subject, rendered.text, rendered.html, links, len(tickets))


def _identity(event: Event, settings: Settings) -> Identity:
    """From and Reply-To (rules in mail.py); raises MailError."""
    # The event's name is the platform's display name; encoded words are no part of a name.
    display = " ".join(event.name.replace("=?", "= ?").split())
    sender = (event.branding or {}).get("sender")
    organiser = Address(sender.get("name"), sender["email"]) if sender else None
    return sender_identity(
        organiser,
        verified_domains=settings.verified_mail_domains,
        platform=Address(display, settings.platform_sender),
    )


async def _tickets(session: AsyncSession, message: Message) -> list[Ticket]:
    """The valid tickets the message carries now: its ticket, or its booking's."""
    query = select(Ticket).where(Ticket.status == TicketStatus.VALID)
    if message.ticket_id is not None:
        query = query.where(Ticket.id == message.ticket_id)
    elif message.booking_id is not None:
        query = query.where(Ticket.booking_id == message.booking_id)
    else:
        return []
    return list(await session.scalars(query.order_by(Ticket.position)))


def _prefetched_tickets(prefetched: Prefetched, message: Message) -> list[Ticket]:
    """As `_tickets`, from the batch's tickets (a ticket's booking is never changed)."""
    if message.booking_id is None:
        return []
    if message.ticket_id is not None:
        ticket = prefetched.tickets_by_id.get(message.ticket_id)
        return [ticket] if ticket is not None and ticket.booking_id == message.booking_id else []
    return list(prefetched.tickets_by_booking.get(message.booking_id, ()))


def _of_campaign(tickets: list[Ticket], campaign: Campaign | None) -> list[Ticket]:
    """Only the campaign's ticket types, when it names some."""
    if campaign is not None:
        types = Audience.of(campaign.audience).ticket_type_ids
        if types is not None:
            return [t for t in tickets if t.ticket_type_id in types]
    return tickets
