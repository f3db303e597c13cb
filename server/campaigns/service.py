"""Campaigns: drafts, previews, test sends, confirmed sends and schedules, resends, the ledger.

Rules:
  - A draft can be edited until it is sent or scheduled; its templates are checked on every
    change (`problems`), and a campaign with problems cannot be sent or tested.
  - Send needs `expected_recipients` equal to the recipients counted now (the recap the
    organiser confirmed): otherwise 409 naming the current count, and nothing is written.
  - Sending now writes one ledger row per recipient in the same transaction that marks the
    campaign sending; a schedule (`send_at`, or a reminder `remind_before` the event's start)
    writes them when it fires, counting the audience then. A schedule that fires more than
    `grace_seconds` late is marked missed and sends nothing.
  - Test sends go to any address, carry `[TEST]`, are not counted and change no ticket.
  - Resends of one booking or ticket are rows of the same ledger (source `resend`), and so are
    the e-tickets of a booking mailed as it is confirmed (source `auto`, `enqueue_ticket_mail`,
    in the confirmation's transaction: the mail goes if and only if the booking is confirmed).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import new_id
from server.bookings.models import Booking, BookingStatus
from server.campaigns.compose import choose_language, compose
from server.campaigns.defaults import TICKET_MAIL
from server.campaigns.mail import MailError, check_address, new_message_id
from server.campaigns.models import (
    REPORTABLE,
    Campaign,
    CampaignStatus,
    Message,
    MessageSource,
    MessageStatus,
    after_report,
)
from server.campaigns.recipients import Audience, Recipient, resolve
from server.campaigns.reports import DeliveryReport, RecipientReport
from server.campaigns.schemas import (
    CampaignCreate,
    CampaignPatch,
    Counts,
    PreviewIn,
    PreviewOut,
    ProblemOut,
    SendIn,
    TestIn,
)
from server.campaigns.templates import MessageTemplate, TemplateError, check_templates
from server.config import Settings
from server.contacts.models import ContactList
from server.db import utcnow
from server.errors import BodyInvalid, Conflict, FieldError, InvalidState, NotFound
from server.events.models import Event
from server.tickets.models import Ticket, TicketStatus

__all__ = [
    "RecordedReport",
    "ReportUnmatched",
    "booking_messages",
    "cancel",
    "counts",
    "create_campaign",
    "enqueue",
    "enqueue_ticket_mail",
    "enqueue_ticket_mails",
    "fire_due",
    "get_campaign",
    "list_campaigns",
    "list_messages",
    "preview",
    "problems",
    "recipients_now",
    "record_bounce",
    "record_report",
    "resend_booking",
    "resend_ticket",
    "send",
    "send_test",
    "update_campaign",
]

_EDITABLE = (CampaignStatus.DRAFT,)


async def create_campaign(session: AsyncSession, event_id: str, data: CampaignCreate) -> Campaign:
    event = await _event(session, event_id)
    content = _content(data.content) if data.content else None
    if content is None:
        if data.kind == "message":
            raise BodyInvalid([FieldError("content", "a message campaign needs its words")])
        content = {lang: dict(TICKET_MAIL[lang]) for lang in (event.languages or ["en"])}
    campaign = Campaign(
        id=new_id(),
        event_id=event_id,
        name=data.name,
        kind=data.kind,
        per_ticket=data.per_ticket,
        audience=msgspec.to_builtins(data.audience),
        content=content,
        attach_pdf=data.attach_pdf,
        attach_ics=data.attach_ics,
        status=CampaignStatus.DRAFT,
    )
    await _check_audience(session, campaign)
    session.add(campaign)
    await session.flush()
    return campaign


async def _check_audience(session: AsyncSession, campaign: Campaign) -> None:
    """A contact list audience: only for news, without the booking filters, and a list that
    exists and was not merged away; raises BodyInvalid naming the field."""
    audience = Audience.of(campaign.audience)
    if audience.contact_list_id is None:
        return
    field = "audience.contact_list_id"
    problems = []
    if campaign.kind != "message":
        problems.append(
            FieldError(field, "a contact list holds addresses, not tickets: use kind message")
        )
    if audience.filters_bookings:
        problems.append(
            FieldError(field, "ticket types, checked-in and delivery filter bookings, not a list")
        )
    if campaign.per_ticket:
        problems.append(FieldError("per_ticket", "a contact list has no tickets to go per"))
    contact_list = await session.get(ContactList, audience.contact_list_id)
    if contact_list is None:
        problems.append(FieldError(field, "no contact list with that id"))
    elif contact_list.archived_at is not None:
        problems.append(FieldError(field, "that list is archived (merged into another)"))
    if problems:
        raise BodyInvalid(problems)


async def update_campaign(session: AsyncSession, campaign_id: str, data: CampaignPatch) -> Campaign:
    campaign = await get_campaign(session, campaign_id)
    if campaign.status not in _EDITABLE:
        raise InvalidState(f"a campaign that is {campaign.status} cannot be edited", id=campaign.id)
    for name in ("name", "per_ticket", "attach_pdf", "attach_ics"):
        value = getattr(data, name)
        if value is not msgspec.UNSET:
            setattr(campaign, name, value)
    if data.audience is not msgspec.UNSET:
        campaign.audience = msgspec.to_builtins(data.audience)
    if data.content is not msgspec.UNSET:
        if not data.content:
            raise BodyInvalid([FieldError("content", "at least one language")])
        campaign.content = _content(data.content)
    await _check_audience(session, campaign)
    await session.flush()
    return campaign


async def get_campaign(session: AsyncSession, campaign_id: str) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    return campaign


async def list_campaigns(
    session: AsyncSession, event_id: str, *, limit: int, offset: int
) -> tuple[list[Campaign], int]:
    await _event(session, event_id)
    return await _page(session, Campaign, [Campaign.event_id == event_id], limit, offset)


def problems(campaign: Campaign) -> list[ProblemOut]:
    """Every problem of the campaign's templates, with field and line."""
    templates = {
        lang: MessageTemplate(subject=words["subject"], body=words["body"])
        for lang, words in campaign.content.items()
    }
    found = check_templates(templates, kind=campaign.kind, per_ticket=campaign.per_ticket)  # type: ignore[arg-type]
    return [ProblemOut(p.field, p.line, p.message) for p in found]


async def counts(session: AsyncSession, campaign_id: str) -> Counts:
    """Per-status counts of a campaign's real messages (test sends left out). Opens by image
    proxies and scanners (`opened_by_machine`) are counted apart, not as opens."""
    status = Message.status
    human_open = Message.opened_at.is_not(None) & Message.opened_by_machine.is_(False)
    row = (
        await session.execute(
            select(
                func.count(),
                *(func.sum(case((status == s, 1), else_=0)) for s in _STATUSES),
                func.sum(case((human_open, 1), else_=0)),
                func.sum(case((Message.clicked_at.is_not(None), 1), else_=0)),
                func.sum(case((human_open & Message.clicked_at.is_not(None), 1), else_=0)),
                func.sum(case((Message.opened_by_machine.is_(True), 1), else_=0)),
            ).where(Message.campaign_id == campaign_id, Message.source == MessageSource.CAMPAIGN)
        )
    ).one()
    total, queued, sending, sent, delivered, failed, bounced, opened, clicked, both, machine = (
        int(v or 0) for v in row
    )
    return Counts(
        total=total,
        queued=queued,
        sending=sending,
        sent=sent,
        delivered=delivered,
        failed=failed,
        bounced=bounced,
        opened=opened,
        clicked=clicked,
        opened_and_clicked=both,
        opened_by_machine=machine,
        remaining=queued + sending,
    )


_STATUSES = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.FAILED,
    MessageStatus.BOUNCED,
)


async def preview(
    session: AsyncSession, campaign_id: str, data: PreviewIn, settings: Settings
) -> PreviewOut:
    """The mail as the chosen recipient (or the first one, or sample data) would get it."""
    campaign = await get_campaign(session, campaign_id)
    recipient = await _chosen_recipient(session, campaign, data.booking_id, data.ticket_id)
    message = _draft_message(
        campaign, recipient, to=None, language=data.language, settings=settings
    )
    try:
        composed = await compose(session, message, settings, campaign)
    except TemplateError as exc:
        raise _invalid(exc) from None
    return PreviewOut(
        subject=composed.subject,
        html=composed.html,
        text=composed.text,
        language=message.language,
        to=recipient.to_email if recipient else None,
    )


async def send_test(
    session: AsyncSession, campaign_id: str, data: TestIn, settings: Settings
) -> Message:
    """A test send to any address: queued at once, marked [TEST], counted nowhere."""
    campaign = await get_campaign(session, campaign_id)
    _refuse_problems(campaign)
    to = _address(data.to, "to")
    recipient = await _chosen_recipient(session, campaign, data.booking_id, None)
    message = _draft_message(campaign, recipient, to=to, language=data.language, settings=settings)
    message.source = MessageSource.TEST
    session.add(message)
    await session.flush()
    return message


async def send(
    session: AsyncSession, campaign_id: str, data: SendIn, *, now: datetime, settings: Settings
) -> Campaign:
    """Confirm a send (now or scheduled) against the recap the organiser saw."""
    campaign = await get_campaign(session, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise InvalidState(f"the campaign is already {campaign.status}", id=campaign.id)
    _refuse_problems(campaign)
    event = await _event(session, campaign.event_id)
    send_at = data.send_at
    if data.remind_before is not None:
        send_at = event.starts_at - timedelta(seconds=data.remind_before)
    recipients = await recipients_now(session, campaign)
    if len(recipients) != data.expected_recipients:
        raise Conflict(
            f"the campaign has {len(recipients)} recipients now, not {data.expected_recipients}",
            recipients=len(recipients),
        )
    campaign.confirmed_at = now
    campaign.grace_seconds = data.grace_seconds
    campaign.remind_before = data.remind_before
    if send_at is not None and send_at > now:
        campaign.status = CampaignStatus.SCHEDULED
        campaign.send_at = send_at
        campaign.recipients = len(recipients)
    else:
        campaign.send_at = now
        await enqueue(session, campaign, recipients, now=now, settings=settings)
    await session.flush()
    return campaign


async def cancel(session: AsyncSession, campaign_id: str, *, now: datetime) -> Campaign:
    """Stop a campaign: a draft or a schedule never sends; a send in progress stops at the
    messages not claimed yet (those are marked failed "cancelled")."""
    campaign = await get_campaign(session, campaign_id)
    if campaign.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED, CampaignStatus.MISSED):
        raise InvalidState(f"the campaign is already {campaign.status}", id=campaign.id)
    await session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.FAILED, last_reply="cancelled by the organiser")
    )
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = now
    await session.flush()
    return campaign


async def list_messages(
    session: AsyncSession, campaign_id: str, *, status: str | None, limit: int, offset: int
) -> tuple[list[Message], int]:
    await get_campaign(session, campaign_id)
    where = [Message.campaign_id == campaign_id]
    if status is not None:
        where.append(Message.status == status)
    return await _page(session, Message, where, limit, offset)


async def booking_messages(
    session: AsyncSession, booking_id: str, *, limit: int, offset: int
) -> tuple[list[Message], int]:
    """The ledger rows of a booking (campaigns, resends and tests), oldest first."""
    if await session.get(Booking, booking_id) is None:
        raise NotFound("booking", booking_id)
    return await _page(session, Message, [Message.booking_id == booking_id], limit, offset)


async def record_bounce(session: AsyncSession, message_id: str, reply: str) -> Message:
    """A sent mail came back (a delivery status notification): its status becomes bounced."""
    wanted = message_id.strip()
    if not wanted.startswith("<"):
        wanted = f"<{wanted}>"
    message = await session.scalar(select(Message).where(Message.message_id == wanted))
    if message is None:
        raise NotFound("message", message_id)
    if message.status not in REPORTABLE:
        raise InvalidState(f"a {message.status} message cannot bounce", id=message.id)
    message.status = MessageStatus.BOUNCED
    message.last_reply = reply[:1000] or "bounced"
    await session.flush()
    return message


class ReportUnmatched(BodyInvalid):
    """A delivery report about no message of the ledger (another sender's mail, or one pruned)."""

    code = "unknown_message"
    title = "Report about no message of ours"


@dataclass(frozen=True)
class RecordedReport:
    message: Message
    was: str  # its status before the report
    changed: bool
    found_by: str  # envelope_id | message_id


async def record_report(session: AsyncSession, report: DeliveryReport) -> RecordedReport:
    """Apply a delivery report to the message it names, by the state rules of models.py.

    Looked up by its ids in order (the envelope id first). Raises ReportUnmatched when none is
    a message of ours, InvalidState when the message is not sent yet (queued or sending: the
    reporter should try again later). A report already applied changes nothing."""
    rows = await session.scalars(select(Message).where(Message.message_id.in_(report.message_ids)))
    by_id = {m.message_id: m for m in rows}
    wanted = next((i for i in report.message_ids if i in by_id), None)
    if wanted is None:
        shown = ", ".join(report.message_ids)[:600]
        raise ReportUnmatched([FieldError("report", f"names no message Tessera sent: {shown}")])
    message = by_id[wanted]
    if message.status in (MessageStatus.QUEUED, MessageStatus.SENDING):
        raise InvalidState(
            f"a {message.status} message is not sent yet: report it again later", id=message.id
        )
    was, reply = message.status, message.last_reply
    if was in REPORTABLE:
        for recipient in report.recipients:
            status, record = after_report(message.status, recipient.action)
            if status != message.status or record:
                message.status = status
                message.last_reply = _report_reply(recipient)
    changed = (message.status, message.last_reply) != (was, reply)
    await session.flush()
    found_by = "envelope_id" if wanted == report.envelope_id else "message_id"
    return RecordedReport(message=message, was=was, changed=changed, found_by=found_by)


def _report_reply(recipient: RecipientReport) -> str:
    """The report's words for `last_reply`: the enhanced status (unless the diagnostic
    already says it) and the diagnostic, else the action."""
    diagnostic, status = recipient.diagnostic, recipient.status
    words = [status] if status and status not in diagnostic else []
    words += [diagnostic] if diagnostic else []
    return " ".join(words)[:1000] or recipient.action


async def resend_booking(
    session: AsyncSession, booking_id: str, to: str | None, settings: Settings
) -> Message:
    """The booking's e-tickets mailed again, to the buyer or a corrected address."""
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("booking", booking_id)
    if booking.status != BookingStatus.CONFIRMED:
        raise InvalidState(f"a {booking.status} booking has no tickets to send", id=booking.id)
    return await _resend(session, booking.event_id, _buyer(booking), to, settings)


async def enqueue_ticket_mail(
    session: AsyncSession, booking: Booking, settings: Settings
) -> Message:
    """The booking's e-tickets queued for its buyer (source `auto`), in the caller's transaction.

    The confirmation calls it once, on the booking's move to confirmed: a second confirm
    changes nothing, so it sends nothing either.
    """
    return await _resend(
        session, booking.event_id, _buyer(booking), None, settings, source=MessageSource.AUTO
    )


async def enqueue_ticket_mails(
    session: AsyncSession, event: Event, recipients: Sequence[Recipient], settings: Settings
) -> int:
    """Many bookings' e-ticket mails queued at once (source `auto`), in the caller's transaction.

    The bulk sibling of `enqueue_ticket_mail`, for bookings confirmed together (an import): the
    same ledger rows, written by one executemany instead of one flush each. Returns how many.
    """
    domain = _domain(settings)
    now = utcnow()
    rows = [
        {
            **_ticket_mail_values(event, r, r.to_email, MessageSource.AUTO, domain),
            "next_attempt_at": now,
            "created_at": now,
        }
        for r in recipients
    ]
    if rows:
        await session.execute(Message.__table__.insert(), rows)
    return len(rows)


def _buyer(booking: Booking) -> Recipient:
    return Recipient(
        booking.id, None, booking.buyer_name, booking.buyer_email, booking.buyer_language
    )


async def resend_ticket(
    session: AsyncSession, ticket_id: str, to: str | None, settings: Settings
) -> Message:
    """One ticket mailed again, to its holder (else the buyer) or a corrected address."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket", ticket_id)
    if ticket.status != TicketStatus.VALID:
        raise InvalidState("a revoked ticket cannot be sent", id=ticket.id)
    booking = await session.get(Booking, ticket.booking_id)
    assert booking is not None
    recipient = Recipient(
        booking.id,
        ticket.id,
        ticket.holder_name if ticket.holder_email else booking.buyer_name,
        ticket.holder_email or booking.buyer_email,
        booking.buyer_language,
    )
    return await _resend(session, ticket.event_id, recipient, to, settings)


async def enqueue(
    session: AsyncSession,
    campaign: Campaign,
    recipients: Sequence[Recipient],
    *,
    now: datetime,
    settings: Settings,
) -> int:
    """Write the campaign's ledger rows and mark it sending (in the caller's transaction)."""
    event = await _event(session, campaign.event_id)
    written = list(campaign.content)
    domain = _domain(settings)
    rows = [
        {
            "id": new_id(),
            "event_id": campaign.event_id,
            "campaign_id": campaign.id,
            "source": MessageSource.CAMPAIGN,
            "kind": campaign.kind,
            "booking_id": r.booking_id,
            "ticket_id": r.ticket_id,
            "to_name": r.to_name,
            "to_email": r.to_email,
            "language": choose_language(r.language, written, list(event.languages)),
            "message_id": new_message_id(domain),
            "token": secrets.token_urlsafe(16),
            "status": MessageStatus.QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "links": [],
            "created_at": now,
            "opened_by_machine": False,
        }
        for r in recipients
    ]
    if rows:
        await session.execute(Message.__table__.insert(), rows)
    campaign.status = CampaignStatus.SENDING if rows else CampaignStatus.SENT
    campaign.recipients = len(rows)
    if not rows:
        campaign.finished_at = now
    return len(rows)


async def fire_due(session: AsyncSession, *, now: datetime, settings: Settings) -> list[str]:
    """Start the schedules that are due (or mark them missed); the campaigns started."""
    query = select(Campaign).where(
        Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    started = []
    for campaign in await session.scalars(query):
        assert campaign.send_at is not None
        if now - campaign.send_at > timedelta(seconds=campaign.grace_seconds):
            campaign.status = CampaignStatus.MISSED
            campaign.finished_at = now
            continue
        await enqueue(
            session, campaign, await recipients_now(session, campaign), now=now, settings=settings
        )
        started.append(campaign.id)
    return started


# --- inside ---------------------------------------------------------------------------------


async def _page(
    session: AsyncSession,
    model: type[Campaign] | type[Message],
    where: list[ColumnElement[bool]],
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """One page of rows, oldest first, and how many there are in all."""
    total = await session.scalar(select(func.count()).select_from(model).where(*where))
    query = select(model).where(*where).order_by(model.created_at, model.id)
    rows = await session.scalars(query.limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def _event(session: AsyncSession, event_id: str) -> Event:
    event = await session.get(Event, event_id)
    if event is None:
        raise NotFound("event", event_id)
    return event


def _content(content: dict[Any, Any]) -> dict[str, dict[str, str]]:
    return {str(lang): {"subject": w.subject, "body": w.body} for lang, w in content.items()}


def _refuse_problems(campaign: Campaign) -> None:
    found = problems(campaign)
    if found:
        raise BodyInvalid(
            [
                FieldError(
                    f"content.{p.field}", f"line {p.line}: {p.message}" if p.line else p.message
                )
                for p in found
            ]
        )


def _invalid(error: TemplateError) -> BodyInvalid:
    return BodyInvalid([FieldError(f"content.{p.field}", p.message) for p in error.problems])


def _address(value: str, field: str) -> str:
    try:
        return check_address(value)
    except MailError as exc:
        raise BodyInvalid([FieldError(field, str(exc))]) from None


def _domain(settings: Settings) -> str:
    return settings.platform_sender.rpartition("@")[2] or "localhost"


async def recipients_now(session: AsyncSession, campaign: Campaign) -> list[Recipient]:
    """Whom `campaign` would go to if it were sent now: its audience resolved against the
    bookings, tickets and contacts as they stand (one per booking, or per ticket for a
    per-ticket campaign; unsubscribed contacts left out of news). Its length is the count
    `send` compares with `expected_recipients`, so a recap showing it shows what send does;
    a schedule resolves the audience again when it fires. Reads only."""
    return await resolve(
        session,
        campaign.event_id,
        Audience.of(campaign.audience),
        per_ticket=campaign.per_ticket,
        news=campaign.kind == "message",
    )


async def _chosen_recipient(
    session: AsyncSession, campaign: Campaign, booking_id: str | None, ticket_id: str | None
) -> Recipient | None:
    recipients = await recipients_now(session, campaign)
    for recipient in recipients:
        if (booking_id is None or recipient.booking_id == booking_id) and (
            ticket_id is None or ticket_id in recipient.ticket_ids
        ):
            return recipient
    if booking_id is not None or ticket_id is not None:
        raise NotFound("recipient of the campaign", ticket_id or booking_id or "")
    return None


def _draft_message(
    campaign: Campaign,
    recipient: Recipient | None,
    *,
    to: str | None,
    language: str | None,
    settings: Settings,
) -> Message:
    """A ledger row for a preview or a test send (not added to the session here)."""
    written = list(campaign.content)
    wanted = language or (recipient.language if recipient else None)
    return Message(
        id=new_id(),
        event_id=campaign.event_id,
        campaign_id=campaign.id,
        source=MessageSource.CAMPAIGN,
        kind=campaign.kind,
        booking_id=recipient.booking_id if recipient else None,
        ticket_id=recipient.ticket_id if recipient and campaign.per_ticket else None,
        to_name=recipient.to_name if recipient else None,
        to_email=to or (recipient.to_email if recipient else "guest@example.org"),
        language=wanted if wanted in written else written[0],
        message_id=new_message_id(_domain(settings)),
        token=secrets.token_urlsafe(16),
        status=MessageStatus.QUEUED,
        attempts=0,
        links=[],
        opened_by_machine=False,
    )


async def _resend(
    session: AsyncSession,
    event_id: str,
    recipient: Recipient,
    to: str | None,
    settings: Settings,
    *,
    source: str = MessageSource.RESEND,
) -> Message:
    event = await _event(session, event_id)
    address = _address(to, "to") if to else recipient.to_email
    message = Message(**_ticket_mail_values(event, recipient, address, source, _domain(settings)))
    session.add(message)
    await session.flush()
    return message


def _ticket_mail_values(
    event: Event, recipient: Recipient, address: str, source: str, domain: str
) -> dict[str, Any]:
    """The ledger row of one e-ticket mail: a resend, or an automatic one (one or many)."""
    return {
        "id": new_id(),
        "event_id": event.id,
        "campaign_id": None,
        "source": source,
        "kind": "tickets",
        "booking_id": recipient.booking_id,
        "ticket_id": recipient.ticket_id,
        "to_name": recipient.to_name,
        "to_email": address,
        "language": choose_language(recipient.language, list(TICKET_MAIL), list(event.languages)),
        "message_id": new_message_id(domain),
        "token": secrets.token_urlsafe(16),
        "status": MessageStatus.QUEUED,
        "attempts": 0,
        "links": [],
        "opened_by_machine": False,
    }
