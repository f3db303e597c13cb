"""Bookings: create (pending), confirm (capacity + tickets, atomically), cancel (revokes tickets).

Capacity counts confirmed tickets. Confirm raises each ticket type's `confirmed_count` with one
conditional UPDATE (`... WHERE confirmed_count + n <= capacity`): on PostgreSQL concurrent confirms
queue on the row and re-check the condition, on SQLite writers are serialised, so the last seats
are never sold twice. A pending booking holds nothing.

An event with `auto_send_tickets` gets each booking's e-ticket mail queued in the outbox ledger by
the confirmation itself, in its transaction: the mail goes if and only if the confirmation
commits, and only on the move to confirmed, so confirming again sends nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import booking_reference, new_id
from server.bookings.models import Booking, BookingItem, BookingStatus
from server.bookings.schemas import BookingCreate
from server.campaigns.service import enqueue_ticket_mail
from server.checkin.models import PresenceRow
from server.config import Settings
from server.db import utcnow
from server.errors import (
    BodyInvalid,
    CapacityExceeded,
    Conflict,
    FieldError,
    InvalidState,
    NotFound,
)
from server.events.models import Event, TicketType
from server.events.service import get_event
from server.tickets.models import Ticket
from server.tickets.service import TicketIssuer, issue_tickets, revoke_booking_tickets

__all__ = [
    "cancel_booking",
    "confirm_booking",
    "create_booking",
    "get_booking",
    "issued_tickets",
    "list_bookings",
    "queued_mail",
]


async def create_booking(
    session: AsyncSession,
    event_id: str,
    data: BookingCreate,
    issuer: TicketIssuer,
    *,
    settings: Settings | None = None,
) -> Booking:
    """A pending booking, or with `confirm: true` one confirmed at once (`settings` as for
    confirm); read its issued tickets with `issued_tickets` (no query).

    Raises Conflict naming the existing booking when `external_ref` is already used in the event.
    A booking confirmed on creation is written confirmed (one INSERT, where creating it pending
    and confirming it cost an UPDATE and a reload), capacity taken first, in the same
    transaction: what is stored is the same. Its tokens are signed before the first statement:
    on SQLite that begins the transaction and takes the write lock, which concurrent
    confirmations wait for, and signing is a third of a confirmation's CPU.
    """
    tickets = sum(item.quantity for item in data.items) if data.confirm else 0
    signed = issuer.sign_new(event_id, tickets) if tickets else None
    event = await _event_with_types(session, event_id, data)
    if data.external_ref is not None:
        await _refuse_taken_ref(session, event_id, data.external_ref)
    now = utcnow()
    booking = Booking(
        id=new_id(),
        event_id=event_id,
        reference=await _free_reference(session),
        status=BookingStatus.CONFIRMED if data.confirm else BookingStatus.PENDING,
        buyer_name=data.buyer.name,
        buyer_email=data.buyer.email,
        buyer_language=data.buyer.language,
        external_ref=data.external_ref,
        created_at=now,
        confirmed_at=now if data.confirm else None,
        items=[
            BookingItem(
                id=new_id(),
                position=position,
                ticket_type_id=item.ticket_type_id,
                quantity=item.quantity,
                holders=[_holder_dict(h) for h in item.holders or []],
            )
            for position, item in enumerate(data.items)
        ],
    )
    if data.confirm:
        for item in booking.items:
            await _take_capacity(session, item.ticket_type_id, item.quantity)
    if data.external_ref is None:  # nothing another writer could take first
        session.add(booking)
        await session.flush()
    else:
        try:
            async with session.begin_nested():
                session.add(booking)
        except IntegrityError:
            # Lost a race for the same external_ref: report the winner.
            await _refuse_taken_ref(session, event_id, data.external_ref)
            raise
    if data.confirm:
        await _issue(session, booking, event, issuer, settings, signed=signed)
    return booking


async def confirm_booking(
    session: AsyncSession,
    booking_id: str,
    issuer: TicketIssuer,
    *,
    settings: Settings | None = None,
) -> Booking:
    """Confirm and issue tickets; confirming a confirmed booking changes nothing.

    `settings` name the mail's Message-ID domain for `auto_send_tickets`; without them it is the
    host of the issuer's base URL (the default of `TESSERA_MAIL_FROM`).
    """
    won = await session.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == BookingStatus.PENDING)
        .values(status=BookingStatus.CONFIRMED, confirmed_at=utcnow())
    )
    booking = await get_booking(session, booking_id, fresh=True)
    if won.rowcount == 0:
        if booking.status == BookingStatus.CONFIRMED:
            return booking
        raise InvalidState(
            f"booking is {booking.status}", id=booking.id, booking_status=booking.status
        )
    for item in booking.items:
        await _take_capacity(session, item.ticket_type_id, item.quantity)
    await _issue(session, booking, await session.get(Event, booking.event_id), issuer, settings)
    return booking


def issued_tickets(session: AsyncSession, booking_id: str) -> list[dict[str, Any]] | None:
    """The ticket rows this session's confirmation of `booking_id` wrote, in position order;
    None if it confirmed nothing (then read them: `tickets.service.tickets_of`)."""
    issued: dict[str, list[dict[str, Any]]] = session.info.get(_ISSUED, {})
    return issued.get(booking_id)


def queued_mail(session: AsyncSession) -> bool:
    """Whether a confirmation in this session queued e-ticket mail (the event's
    `auto_send_tickets`): only then is the outbox worth waking, since each wake costs it a look
    at the database."""
    return bool(session.info.get(_MAILED))


_ISSUED = "tessera.issued_tickets"
_MAILED = "tessera.queued_ticket_mail"


async def _issue(
    session: AsyncSession,
    booking: Booking,
    event: Event | None,
    issuer: TicketIssuer,
    settings: Settings | None,
    *,
    signed: list[tuple[str, str]] | None = None,
) -> None:
    """The confirmation's writes once capacity is taken: the tickets (`signed` ahead, or here),
    and the e-ticket mail when the event sends it on its own."""
    specs = [
        (item.ticket_type_id, holders[i] if i < len(holders) else {})
        for item in booking.items
        for holders in [item.holders or []]
        for i in range(item.quantity)
    ]
    rows = await issue_tickets(
        session, booking.event_id, booking.id, specs, booking.buyer_name, issuer, signed=signed
    )
    session.info.setdefault(_ISSUED, {})[booking.id] = rows
    if event is not None and event.auto_send_tickets:
        # The routes hand over the issuer, not the settings: its base URL is theirs.
        mail_settings = settings or Settings(base_url=issuer.base_url)
        await enqueue_ticket_mail(session, booking, mail_settings)
        session.info[_MAILED] = True


async def cancel_booking(session: AsyncSession, booking_id: str) -> Booking:
    """Cancel; a confirmed booking gives its seats back and its tickets are revoked."""
    booking = await get_booking(session, booking_id, for_update=True)
    if booking.status == BookingStatus.CANCELLED:
        return booking
    was_confirmed = booking.status == BookingStatus.CONFIRMED
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = utcnow()
    await session.flush()
    if was_confirmed:
        for item in booking.items:
            await session.execute(
                update(TicketType)
                .where(TicketType.id == item.ticket_type_id)
                .values(confirmed_count=TicketType.confirmed_count - item.quantity)
            )
        await revoke_booking_tickets(session, booking.event_id, booking.id)
    return booking


async def get_booking(
    session: AsyncSession, booking_id: str, *, for_update: bool = False, fresh: bool = False
) -> Booking:
    """The booking with its items; `fresh` reloads it even if this session already holds it."""
    query = select(Booking).where(Booking.id == booking_id)
    if for_update:
        query = query.with_for_update()
    if fresh:
        query = query.execution_options(populate_existing=True)
    booking = await session.scalar(query)
    if booking is None:
        raise NotFound("booking", booking_id)
    return booking


async def list_bookings(
    session: AsyncSession,
    event_id: str,
    *,
    status: str | None,
    q: str | None,
    limit: int,
    offset: int,
    ticket_type_id: str | None = None,
    checked_in: bool | None = None,
) -> tuple[list[Booking], int]:
    """One page of the event's bookings, oldest first, and how many match in all.

    `ticket_type_id`: bookings holding that type (pending ones by their items);
    `checked_in`: True, bookings a ticket of which entered on some list; False, none of whose
    tickets did (the campaigns' audience rule). Both are conditions of the query itself."""
    await get_event(session, event_id)
    if q and "\x00" in q:
        # No reference, name or address holds NUL (they refuse control characters), and
        # PostgreSQL cannot even compare text with it; SQLite's LIKE would stop at it.
        return [], 0
    where = [Booking.event_id == event_id]
    if status is not None:
        where.append(Booking.status == status)
    if q:
        pattern = f"%{_escape_like(q.strip().lower())}%"
        where.append(
            or_(
                func.lower(Booking.reference).like(pattern, escape="\\"),
                func.lower(Booking.buyer_name).like(pattern, escape="\\"),
                func.lower(Booking.buyer_email).like(pattern, escape="\\"),
                func.lower(Booking.external_ref).like(pattern, escape="\\"),
            )
        )
    if ticket_type_id is not None:
        where.append(
            exists().where(
                BookingItem.booking_id == Booking.id, BookingItem.ticket_type_id == ticket_type_id
            )
        )
    if checked_in is not None:
        entered = exists().where(
            Ticket.booking_id == Booking.id,
            PresenceRow.ticket_id == Ticket.id,
            PresenceRow.entries > 0,
        )
        where.append(entered if checked_in else ~entered)
    total = await session.scalar(select(func.count()).select_from(Booking).where(*where))
    rows = await session.scalars(
        select(Booking)
        .where(*where)
        .order_by(Booking.created_at, Booking.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def _take_capacity(session: AsyncSession, ticket_type_id: str, quantity: int) -> None:
    taken = await session.execute(
        update(TicketType)
        .where(
            TicketType.id == ticket_type_id,
            or_(
                TicketType.capacity.is_(None),
                TicketType.confirmed_count + quantity <= TicketType.capacity,
            ),
        )
        .values(confirmed_count=TicketType.confirmed_count + quantity)
    )
    if taken.rowcount == 0:
        ticket_type = await session.get(TicketType, ticket_type_id)
        remaining = None
        if ticket_type is not None and ticket_type.capacity is not None:
            remaining = max(ticket_type.capacity - ticket_type.confirmed_count, 0)
        raise CapacityExceeded(
            f"not enough places left in ticket type {ticket_type_id}: "
            f"{quantity} asked, {remaining} remaining",
            ticket_type_id=ticket_type_id,
            remaining=remaining,
        )


async def _event_with_types(session: AsyncSession, event_id: str, data: BookingCreate) -> Event:
    """The event (NotFound), its ticket types among the booking's checked in the same query
    (BodyInvalid naming each bad item): one statement, where a booking spent two."""
    wanted = {item.ticket_type_id for item in data.items}
    rows = (
        await session.execute(
            select(Event, TicketType.id)
            .outerjoin(TicketType, and_(TicketType.event_id == Event.id, TicketType.id.in_(wanted)))
            .where(Event.id == event_id)
        )
    ).all()
    if not rows:
        raise NotFound("event", event_id)
    known = {type_id for _, type_id in rows if type_id is not None}
    errors = [
        FieldError(f"items[{i}].ticket_type_id", "no such ticket type in this event")
        for i, item in enumerate(data.items)
        if item.ticket_type_id not in known
    ]
    if errors:
        raise BodyInvalid(errors)
    return rows[0][0]


async def _refuse_taken_ref(session: AsyncSession, event_id: str, external_ref: str) -> None:
    existing = await session.scalar(
        select(Booking.id).where(Booking.event_id == event_id, Booking.external_ref == external_ref)
    )
    if existing is not None:
        raise Conflict(
            f"external_ref {external_ref!r} is already used by booking {existing}",
            id=existing,
            resource="booking",
        )


async def _free_reference(session: AsyncSession) -> str:
    while True:
        reference = booking_reference()
        if await session.scalar(select(Booking.id).where(Booking.reference == reference)) is None:
            return reference


def _holder_dict(holder: object) -> dict[str, str]:
    return {k: v for k in ("name", "email", "seat") if (v := getattr(holder, k)) is not None}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
