from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings import service
from server.bookings.models import Booking
from server.bookings.schemas import (
    BookingCreate,
    BookingItemOut,
    BookingOut,
    Buyer,
    Holder,
)
from server.http import (
    Body,
    DbSession,
    Issuer,
    Limit,
    Offset,
    Page,
    created,
    organiser_guard,
    page,
    wake_outbox,
)
from server.tickets.models import Ticket
from server.tickets.schemas import ticket_out
from server.tickets.service import tickets_by_booking, tickets_of

__all__ = ["BookingController", "booking_out"]

StatusFilter = Literal["pending", "confirmed", "cancelled"]


class BookingController(Controller):
    path = "/api/v1"
    tags = ["bookings"]
    guards = [organiser_guard]
    security = [{"organiser": []}]
    # Every answer carries its tickets' tokens and links: no cache may keep a copy.
    cache_control = CacheControlHeader(no_store=True)

    @post(
        "/events/{event_id:str}/bookings",
        dto=Body[BookingCreate],
        return_dto=None,
        summary="Create a booking (pending, or confirmed with `confirm: true`)",
    )
    async def create_booking(
        self,
        request: Request,
        event_id: FromPath[str],
        data: JSONBody[BookingCreate],
        db_session: DbSession,
        issuer: Issuer,
        state: State,
    ) -> Response[BookingOut]:
        # The settings name the automatic ticket mail's Message-ID domain (TESSERA_MAIL_FROM).
        booking = await service.create_booking(
            db_session, event_id, data, issuer, settings=state.settings
        )
        body = await _out(db_session, booking, issuer)
        # A confirmation may have queued the e-ticket mail (the event's auto_send_tickets).
        wake = wake_outbox(state) if service.queued_mail(db_session) else None
        return created(body, request, f"/api/v1/bookings/{booking.id}", background=wake)

    @get("/events/{event_id:str}/bookings", summary="List an event's bookings")
    async def list_bookings(
        self,
        event_id: FromPath[str],
        db_session: DbSession,
        issuer: Issuer,
        status: FromQuery[StatusFilter | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[BookingOut]:
        bookings, total = await service.list_bookings(
            db_session, event_id, status=status, q=q, limit=limit, offset=offset
        )
        tickets = await tickets_by_booking(db_session, [b.id for b in bookings])
        items = [booking_out(b, tickets[b.id], issuer) for b in bookings]
        return page(items, total, limit, offset)

    @get("/bookings/{booking_id:str}", summary="Read a booking with its tickets")
    async def get_booking(
        self, booking_id: FromPath[str], db_session: DbSession, issuer: Issuer
    ) -> BookingOut:
        booking = await service.get_booking(db_session, booking_id)
        return await _out(db_session, booking, issuer)

    @post("/bookings/{booking_id:str}/confirm", status_code=200, summary="Confirm a booking")
    async def confirm_booking(
        self, booking_id: FromPath[str], db_session: DbSession, issuer: Issuer, state: State
    ) -> Response[BookingOut]:
        booking = await service.confirm_booking(
            db_session, booking_id, issuer, settings=state.settings
        )
        body = await _out(db_session, booking, issuer)
        if not service.queued_mail(db_session):
            return Response(body)
        return Response(body, background=wake_outbox(state))  # the auto-sent e-tickets

    @post("/bookings/{booking_id:str}/cancel", status_code=200, summary="Cancel a booking")
    async def cancel_booking(
        self, booking_id: FromPath[str], db_session: DbSession, issuer: Issuer
    ) -> BookingOut:
        booking = await service.cancel_booking(db_session, booking_id)
        return await _out(db_session, booking, issuer)


async def _out(session: AsyncSession, booking: Booking, issuer: Issuer) -> BookingOut:
    """The booking's answer; tickets this request just issued are not read back."""
    issued = service.issued_tickets(session, booking.id)
    tickets = issued if issued is not None else await tickets_of(session, [booking.id])
    return booking_out(booking, tickets, issuer)


def booking_out(
    booking: Booking, tickets: Sequence[Ticket] | Sequence[Mapping[str, Any]], issuer: Issuer
) -> BookingOut:
    return BookingOut(
        id=booking.id,
        event_id=booking.event_id,
        reference=booking.reference,
        status=booking.status,  # type: ignore[arg-type]
        buyer=Buyer(
            name=booking.buyer_name, email=booking.buyer_email, language=booking.buyer_language
        ),  # type: ignore[arg-type]
        items=[
            BookingItemOut(
                ticket_type_id=item.ticket_type_id,
                quantity=item.quantity,
                holders=[Holder(**h) for h in item.holders],
            )
            for item in booking.items
        ],
        external_ref=booking.external_ref,
        tickets=[ticket_out(t, issuer) for t in tickets],
        created_at=booking.created_at,
        confirmed_at=booking.confirmed_at,
        cancelled_at=booking.cancelled_at,
    )
