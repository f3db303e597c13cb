"""The console's bookings pages: an event's bookings (search, filter, page, add one by hand) and
one booking's page (its tickets, links, QR codes, mails, and every action on them).

The list is the API's list (`bookings.service.list_bookings`, with the API's own query rules);
each form goes through the API's request struct and the service call of its API route
(booking_actions.py), inside a savepoint: a refusal leaves nothing behind and comes back on the
page, its field errors next to their fields (422) or the service's reason above its form (409).
Read-only users see every page without its forms; a change they send anyway gets the 403 page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings import service as bookings
from server.bookings.models import Booking, BookingStatus
from server.campaigns import service as campaigns
from server.console import booking_actions as actions
from server.console.forms import Refused, attempt, shown
from server.console.pages import BookingDep, EventPage, EventPageDep, dependencies
from server.console.web import ConsolePageError, html_page, redirect
from server.errors import NotFound
from server.events import service as events
from server.http import DbSession, Offset, wake_outbox
from server.tickets.service import TicketIssuer, tickets_by_booking, tickets_of

__all__ = ["BookingPages"]

PAGE = 50
TICKETS = 50  # a page of the booking's tickets (a booking holds up to 500)
OPEN_PANELS = 10  # up to this many tickets, each one's forms are on the page; past it, one's
MESSAGES = 200  # a booking's mails shown (its resends and campaigns; far fewer in practice)
STATUSES = ("pending", "confirmed", "cancelled")
CHECKED_IN = {None: None, "yes": True, "no": False}  # the filter form's choice → the service's
Search = Annotated[str | None, QueryParameter(max_length=200)]  # the API's limit
Short = Annotated[str | None, QueryParameter(max_length=20)]


def _local(zone: str) -> Callable[[datetime | None], str]:
    def show(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")

    return show


async def _list(
    session: AsyncSession,
    page: EventPage,
    query: dict[str, Any],
    *,
    refused: Refused | None = None,
) -> Response[str]:
    """The event's bookings by `query`, and the new-booking form (sent back when refused)."""
    status, errors, problem = shown(refused)
    event, viewer, event_id = page.event, page.viewer, page.event.id
    types = await events.list_ticket_types(session, event_id)
    if query["ticket_type"] is not None and query["ticket_type"] not in {t.id for t in types}:
        raise ConsolePageError(400, "bad_request", "bad_request")
    rows, total = await bookings.list_bookings(
        session,
        event_id,
        status=query["status"],
        q=query["q"],
        limit=PAGE,
        offset=query["offset"],
        ticket_type_id=query["ticket_type"],
        checked_in=CHECKED_IN[query["checked_in"]],
    )
    if query["q"] and not query["offset"]:
        by_code = await actions.booking_by_code(session, event_id, query["q"])
        if by_code is not None and by_code.id not in {b.id for b in rows}:
            rows, total = [by_code, *rows], total + 1
    counts = {
        k: len(v) for k, v in (await tickets_by_booking(session, [b.id for b in rows])).items()
    }
    return html_page(
        "bookings_list.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event_id}/bookings",
        event=event,
        bookings=rows,
        counts=counts,
        total=total,
        query=query,
        page=PAGE,
        statuses=STATUSES,
        ticket_types=types,
        local=_local(event.timezone),
        sent=page.form if refused else None,
        errors=actions.form_errors(errors),
        problem=problem,
    )


async def _detail(
    session: AsyncSession,
    page: EventPage,
    issuer: TicketIssuer,
    booking: Booking,
    *,
    done: str | None = None,
    chosen: str | None = None,
    tickets_offset: int = 0,
    failed: str | None = None,
    refused: Refused | None = None,
) -> Response[str]:
    """The booking's page; `failed` names the form sent back ("cancel", "<ticket id>:edit")."""
    status, errors, problem = shown(refused)
    event, viewer = page.event, page.viewer
    every = await tickets_of(session, [booking.id])
    rows = every[tickets_offset : tickets_offset + TICKETS]
    if failed and ":" in failed:
        chosen = failed.split(":", 1)[0]
    states = await actions.ticket_states(session, rows)
    panels = [
        t
        for t in (rows if len(every) <= OPEN_PANELS else [t for t in rows if t.id == chosen])
        if states[t.id] != "revoked"
    ]
    messages, message_total = await campaigns.booking_messages(
        session, booking.id, limit=MESSAGES, offset=0
    )
    types = {t.id: t.name for t in await events.list_ticket_types(session, event.id)}
    return html_page(
        "booking_detail.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"/console/events/{event.id}/bookings/{booking.id}",
        event=event,
        booking=booking,
        tickets=rows,
        ticket_total=len(every),
        tickets_offset=tickets_offset,
        ticket_page=TICKETS,
        panels=panels,
        one_panel=len(every) > OPEN_PANELS,
        states=states,
        link_url=issuer.link_url,
        type_names=types,
        messages=messages,
        message_total=message_total,
        local=_local(event.timezone),
        done=done if done in actions.BOOKING_ACTIONS + actions.TICKET_ACTIONS else None,
        failed=failed,
        sent=page.form if refused else None,
        errors=actions.form_errors(errors),
        problem=problem,
    )


def _query(
    q: str | None,
    status: str | None,
    offset: int,
    ticket_type: str | None = None,
    checked_in: str | None = None,
) -> dict[str, Any]:
    """The list's query, by the API's rules; an empty field of the filter form is no filter
    (the ticket type is checked against the event's in `_list`)."""
    status, checked_in = status or None, checked_in or None
    if (status is not None and status not in STATUSES) or checked_in not in CHECKED_IN:
        raise ConsolePageError(400, "bad_request", "bad_request")
    return {
        "q": (q or "").strip() or None,
        "status": status,
        "offset": offset,
        "ticket_type": ticket_type or None,
        "checked_in": checked_in,
    }


async def _issuer(state: State, db_session: AsyncSession) -> TicketIssuer:
    """The app's issuer (`app.provide_issuer`), made in the handler, after the page's
    dependencies: Litestar resolves independent ones concurrently, and they all read the one
    database session."""
    keys = await state.keyring.keys(db_session)
    return TicketIssuer(keys=keys, base_url=state.settings.public_base_url)


class BookingPages(Controller):
    path = "/console/events/{event_id:str}/bookings"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = dependencies("page", "booking")

    @get("/")
    async def list_page(
        self,
        page: EventPageDep,
        db_session: DbSession,
        q: Search = None,
        status: Short = None,
        offset: Offset = 0,
        ticket_type: Short = None,
        checked_in: Short = None,
    ) -> Response[str]:
        """Search (`q`) and filters: `status`, `ticket_type` (an id), `checked_in` (yes / no)."""
        query = _query(q, status, offset, ticket_type, checked_in)
        return await _list(db_session, page, query)

    @post("/", status_code=303)
    async def create(
        self, page: EventPageDep, db_session: DbSession, state: State
    ) -> Response[str]:
        issuer = await _issuer(state, db_session)
        try:
            booking = await attempt(
                db_session,
                lambda: bookings.create_booking(
                    db_session,
                    page.event.id,
                    actions.booking_create(page.form),
                    issuer,
                    settings=state.settings,
                ),
            )
        except Refused as no:
            return await _list(db_session, page, _query(None, None, 0), refused=no)
        response = redirect(f"/console/events/{page.event.id}/bookings/{booking.id}")
        if booking.status == BookingStatus.CONFIRMED:
            response.background = wake_outbox(state)  # the auto-sent e-tickets, if any
        return response

    @get("/{booking_id:str}")
    async def detail_page(
        self,
        page: EventPageDep,
        booking: BookingDep,
        db_session: DbSession,
        state: State,
        done: Short = None,
        ticket: Short = None,
        tickets: Offset = 0,
    ) -> Response[str]:
        """`?ticket=` shows that ticket's forms (a large booking's page shows one at a time);
        `?tickets=` pages the tickets."""
        issuer = await _issuer(state, db_session)
        return await _detail(
            db_session, page, issuer, booking, done=done, chosen=ticket, tickets_offset=tickets
        )

    @post("/{booking_id:str}/{action:str}", status_code=303)
    async def booking_action(
        self,
        action: FromPath[str],
        page: EventPageDep,
        booking: BookingDep,
        db_session: DbSession,
        state: State,
    ) -> Response[str]:
        """Confirm, cancel (with its box ticked) or resend the booking's e-tickets."""
        if action not in actions.BOOKING_ACTIONS:
            raise NotFound("page", action)
        issuer = await _issuer(state, db_session)

        def change() -> Callable[[], Awaitable[Any]]:
            return actions.run_booking_action(
                db_session, booking, action, page.form, issuer, state.settings
            )

        return await _act(db_session, page, issuer, state, booking, action, change)

    @post("/{booking_id:str}/tickets/{ticket_id:str}/{action:str}", status_code=303)
    async def ticket_action(
        self,
        ticket_id: FromPath[str],
        action: FromPath[str],
        page: EventPageDep,
        booking: BookingDep,
        db_session: DbSession,
        state: State,
    ) -> Response[str]:
        """Edit holder and seat, reissue (with its box ticked), block, unblock or resend."""
        if action not in actions.TICKET_ACTIONS:
            raise NotFound("page", action)
        ticket = await actions.ticket_of_booking(db_session, booking, ticket_id)
        issuer = await _issuer(state, db_session)

        def change() -> Callable[[], Awaitable[Any]]:
            return actions.run_ticket_action(
                db_session, ticket, action, page.form, issuer, state.settings
            )

        name = f"{ticket.id}:{action}"
        return await _act(db_session, page, issuer, state, booking, name, change)


async def _act(
    session: AsyncSession,
    page: EventPage,
    issuer: TicketIssuer,
    state: State,
    booking: Booking,
    name: str,
    change: Callable[[], Callable[[], Awaitable[Any]]],
) -> Response[str]:
    """Read the form (`change`), make the service call, and answer: back to the booking's page
    (303), or that page with the form `name` sent back and its errors (422) or reason (409)."""

    async def run() -> Any:
        return await change()()  # the form is read inside the savepoint too

    try:
        await attempt(session, run)
    except Refused as no:
        # The savepoint rolled the refused change back; read the booking as it stands.
        fresh = await bookings.get_booking(session, booking.id, fresh=True)
        return await _detail(session, page, issuer, fresh, failed=name, refused=no)
    action = name.rsplit(":", 1)[-1]
    where = ""
    if ":" in name:
        ticket_id = name.split(":", 1)[0]
        where = f"&ticket={ticket_id}#t-{ticket_id}"
    back = f"/console/events/{page.event.id}/bookings/{booking.id}"
    response = redirect(f"{back}?done={action}{where}")
    if action in ("confirm", "resend"):
        response.background = wake_outbox(state)  # the queued mail goes now
    return response
