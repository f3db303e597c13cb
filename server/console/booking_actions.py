"""What the booking pages do, without the pages: lookups scoped to the event in the path, forms
turned into the API's own request structs, and each action's call of the API's service.

A booking or ticket is found by its id and then checked to belong to the event (and booking)
named by the path: another event's id answers NotFound, exactly as an unknown id does, so a
path never reaches into an event it does not name.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import normalize_code
from server.bookings import service as bookings
from server.bookings.models import Booking
from server.bookings.schemas import BookingCreate
from server.campaigns import service as campaigns
from server.campaigns.schemas import ResendIn
from server.checkin.models import PresenceRow
from server.config import Settings
from server.console.forms import FormValues, to_struct
from server.console.web import Form
from server.errors import BodyInvalid, FieldError, NotFound
from server.tickets import service as tickets
from server.tickets.models import Ticket, TicketStatus
from server.tickets.schemas import TicketPatch
from server.tickets.service import TicketIssuer

__all__ = [
    "BOOKING_ACTIONS",
    "CONFIRM_FIRST",
    "TICKET_ACTIONS",
    "booking_by_code",
    "booking_create",
    "booking_of_event",
    "form_errors",
    "run_booking_action",
    "run_ticket_action",
    "ticket_of_booking",
    "ticket_states",
]

BOOKING_ACTIONS = ("confirm", "cancel", "resend")
TICKET_ACTIONS = ("edit", "reissue", "block", "unblock", "resend")
# Actions that cannot be undone ask for a ticked "I am sure" box (no script needed).
CONFIRM_FIRST = frozenset({"cancel", "reissue"})
_CODE = re.compile(r"[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}")


async def booking_of_event(session: AsyncSession, event_id: str, booking_id: str) -> Booking:
    """The booking `booking_id` if it is one of the event's; NotFound otherwise."""
    booking = await bookings.get_booking(session, booking_id)
    if booking.event_id != event_id:
        raise NotFound("booking", booking_id)
    return booking


async def ticket_of_booking(session: AsyncSession, booking: Booking, ticket_id: str) -> Ticket:
    """The ticket `ticket_id` if it is one of the booking's; NotFound otherwise."""
    ticket = await tickets.get_ticket(session, ticket_id)
    if ticket.booking_id != booking.id or ticket.event_id != booking.event_id:
        raise NotFound("ticket", ticket_id)
    return ticket


async def booking_by_code(session: AsyncSession, event_id: str, q: str) -> Booking | None:
    """The booking holding the ticket whose readable code was typed in `q` (any case, with or
    without its dash), if it is one of the event's. The bookings service searches references,
    names and addresses; a code is on a ticket, so it is looked up here."""
    if not _CODE.fullmatch(q.strip()):
        return None
    code = normalize_code(q)
    booking_id = await session.scalar(
        select(Ticket.booking_id).where(Ticket.code == code, Ticket.event_id == event_id)
    )
    return None if booking_id is None else await bookings.get_booking(session, booking_id)


async def ticket_states(session: AsyncSession, rows: list[Ticket]) -> dict[str, str]:
    """Each ticket's state as the console shows it: revoked, blocked, checked_in or valid (in
    that order, as the guest page decides: a revoked ticket's hold no longer matters)."""
    ids = [t.id for t in rows]
    entered = set(
        await session.scalars(
            select(PresenceRow.ticket_id).where(
                PresenceRow.ticket_id.in_(ids), PresenceRow.entries > 0
            )
        )
    )
    states = {}
    for ticket in rows:
        if ticket.status == TicketStatus.REVOKED:
            states[ticket.id] = "revoked"
        elif ticket.blocked:
            states[ticket.id] = "blocked"
        elif ticket.id in entered:
            states[ticket.id] = "checked_in"
        else:
            states[ticket.id] = "valid"
    return states


def form_errors(errors: list[FieldError]) -> dict[str, str]:
    """The first message of each form field; a struct path ("buyer.email", "items[0].quantity")
    names the form field of its last part, and a rule on "items" the quantity."""
    shown: dict[str, str] = {}
    for error in errors:
        path = error["field"]
        name = re.sub(r"\[[0-9]+\]", "", path).rsplit(".", 1)[-1]
        shown.setdefault({"items": "quantity", "buyer": "name"}.get(name, name), error["message"])
    return shown


def booking_create(form: Form) -> BookingCreate:
    """The new-booking form as the API's BookingCreate (one ticket type, a quantity)."""
    flat = FormValues(form)
    flat.text("name")
    flat.text("email")
    flat.text("language", optional=True)
    flat.text("ticket_type_id")
    flat.whole("quantity")
    flat.flag("confirm")
    v = flat.values
    nested = FormValues(form)
    nested.errors = flat.errors
    item: dict[str, Any] = {"ticket_type_id": v["ticket_type_id"]}
    if "quantity" in v:
        item["quantity"] = v["quantity"]
    nested.values = {
        "buyer": {"name": v["name"], "email": v["email"], "language": v["language"]},
        "items": [item],
        "confirm": v["confirm"],
    }
    return to_struct(nested, BookingCreate)


def _sure(form: Form, action: str) -> None:
    if action in CONFIRM_FIRST and form.get("sure") != "1":
        raise BodyInvalid([FieldError("sure", "tick the box to confirm")])


def _resend_to(form: Form) -> ResendIn:
    values = FormValues(form)
    values.text("to", optional=True)
    return to_struct(values, ResendIn)


def _ticket_patch(form: Form) -> TicketPatch:
    values = FormValues(form)
    values.text("holder_name", optional=True)
    values.text("seat", optional=True)
    return to_struct(values, TicketPatch)


def run_booking_action(
    session: AsyncSession,
    booking: Booking,
    action: str,
    form: Form,
    issuer: TicketIssuer,
    settings: Settings,
) -> Callable[[], Awaitable[Any]]:
    """The service call of `action` on the booking, as the API route makes it; raises
    BodyInvalid before any call for a form the API's struct refuses."""
    _sure(form, action)
    if action == "confirm":
        return lambda: bookings.confirm_booking(session, booking.id, issuer, settings=settings)
    if action == "cancel":
        return lambda: bookings.cancel_booking(session, booking.id)
    to = _resend_to(form).to
    return lambda: campaigns.resend_booking(session, booking.id, to, settings)


def run_ticket_action(
    session: AsyncSession,
    ticket: Ticket,
    action: str,
    form: Form,
    issuer: TicketIssuer,
    settings: Settings,
) -> Callable[[], Awaitable[Any]]:
    """The service call of `action` on the ticket, as the API route makes it."""
    _sure(form, action)
    if action == "edit":
        patch = _ticket_patch(form)
        return lambda: tickets.update_ticket(session, ticket.id, patch)
    if action == "reissue":
        return lambda: tickets.reissue_ticket(session, ticket.id, issuer)
    if action == "block":
        return lambda: tickets.block_ticket(session, ticket.id)
    if action == "unblock":
        return lambda: tickets.unblock_ticket(session, ticket.id)
    to = _resend_to(form).to
    return lambda: campaigns.resend_ticket(session, ticket.id, to, settings)
