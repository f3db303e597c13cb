"""Many bookings at once (an import): created, and optionally confirmed with their tickets issued.

The rules are those of server/bookings/service.py, applied to the whole batch in the caller's
transaction, so the batch is written entirely or not at all:

  - every ticket type belongs to the event;
  - capacity is taken by ONE conditional UPDATE per ticket type for the batch's total
    (`confirmed_count + total <= capacity`), before anything else is written: an oversell is
    refused whole (CapacityExceeded), never filled up to the last seat;
  - references and ticket codes are random and checked against the database by one IN query
    per chunk (and against each other), instead of one query each;
  - tickets, links and their `ticket.issued` changes are built by the same code as a single
    confirmation (server/tickets/service.py `ticket_rows`, `insert_tickets`);
  - an event with `auto_send_tickets` gets one e-ticket mail per booking queued in the ledger.

Rows go in by Core executemany in chunks of about `CHUNK_TICKETS` tickets: memory stays bounded
by a chunk (no ORM object per booking), and signing is what the time is spent on.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import booking_reference, new_id
from server.bookings.models import Booking, BookingItem, BookingStatus
from server.campaigns.recipients import Recipient
from server.campaigns.service import enqueue_ticket_mails
from server.config import Settings
from server.db import utcnow
from server.errors import BodyInvalid, CapacityExceeded, FieldError
from server.events.models import Event, TicketType
from server.events.service import get_event
from server.tickets.service import TicketIssuer, insert_tickets, ticket_rows, unused_codes

__all__ = ["CHUNK_TICKETS", "BulkResult", "NewBooking", "create_bookings"]

CHUNK_TICKETS = 1000
"""Tickets (and at most as many bookings) written per executemany; also the IN-query size."""
CACHE_KIB = 65536
"""SQLite's page cache during a batch (the default is 2 MB)."""

Progress = Callable[[int, int], None]
"""Called with (bookings written, bookings in all) after each chunk."""


@dataclass(frozen=True)
class NewBooking:
    """One booking of the batch: a buyer and `quantity` tickets of one ticket type."""

    buyer_email: str
    ticket_type_id: str
    quantity: int
    buyer_name: str | None = None
    buyer_language: str | None = None


@dataclass
class BulkResult:
    """What the batch wrote; `booking_ids` follow the input order."""

    booking_ids: list[str] = field(default_factory=list)
    tickets: int = 0
    mails: int = 0


async def create_bookings(
    session: AsyncSession,
    event_id: str,
    bookings: Sequence[NewBooking],
    issuer: TicketIssuer,
    *,
    confirm: bool,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> BulkResult:
    """Create `bookings` in the event (pending, or confirmed with tickets issued), in order.

    Raises NotFound (event), BodyInvalid (a ticket type not of the event, a quantity below 1)
    or CapacityExceeded (naming the ticket type and what remains); the caller's transaction
    then holds nothing of the batch, as long as it rolls back. `settings` as for
    `service.confirm_booking`.
    """
    event = await get_event(session, event_id)
    await _check_batch(session, event_id, bookings)
    if confirm:
        await _take_capacity(session, _totals(bookings))
    writer = _Writer(
        session, event, issuer, confirm, settings or Settings(base_url=issuer.base_url)
    )
    async with _large_cache(session):
        # A pipeline of two chunks: while one is written, the next is signed in a thread (the
        # signature and SQLite's inserts both run without the GIL, so two cores share them).
        pending: _Prepared | None = None
        for chunk in _chunks(bookings):
            prepared = await writer.prepare(chunk, previous=pending)
            if pending is not None:
                await writer.write(pending)
                _report(progress, writer.result, len(bookings))
            pending = prepared
        if pending is not None:
            await writer.write(pending)
            _report(progress, writer.result, len(bookings))
    return writer.result


@dataclass
class _Prepared:
    """A chunk whose ids, references and codes are drawn; its rows are being built."""

    chunk: Sequence[NewBooking]
    ids: list[str]
    references: set[str]
    codes: set[str]
    rows: asyncio.Future[_Rows]


@dataclass(frozen=True)
class _Rows:
    bookings: list[dict[str, Any]]
    items: list[dict[str, Any]]
    tickets: list[dict[str, Any]]


@dataclass
class _Writer:
    session: AsyncSession
    event: Event
    issuer: TicketIssuer
    confirm: bool
    mail_settings: Settings
    result: BulkResult = field(default_factory=BulkResult)

    async def prepare(self, chunk: Sequence[NewBooking], previous: _Prepared | None) -> _Prepared:
        """Draw the chunk's unique values (checked against the database and the chunk still
        in flight), then build and sign its rows in a worker thread."""
        ids = [new_id() for _ in chunk]
        references = await _free_references(
            self.session, len(chunk), exclude=previous.references if previous else ()
        )
        codes: list[str] = []
        if self.confirm:
            codes = await unused_codes(
                self.session,
                sum(b.quantity for b in chunk),
                exclude=previous.codes if previous else (),
            )
        build = partial(
            _rows, self.event.id, chunk, ids, references, codes, self.issuer, self.confirm
        )
        rows = asyncio.get_running_loop().run_in_executor(None, build)
        return _Prepared(chunk, ids, set(references), set(codes), rows)

    async def write(self, prepared: _Prepared) -> None:
        rows = await prepared.rows
        await self.session.execute(insert(Booking.__table__), rows.bookings)
        await self.session.execute(insert(BookingItem.__table__), rows.items)
        self.result.booking_ids += prepared.ids
        if not self.confirm:
            return
        await insert_tickets(self.session, self.event.id, rows.tickets)
        self.result.tickets += len(rows.tickets)
        if self.event.auto_send_tickets:
            recipients = [
                _recipient(i, b) for i, b in zip(prepared.ids, prepared.chunk, strict=True)
            ]
            self.result.mails += await enqueue_ticket_mails(
                self.session, self.event, recipients, self.mail_settings
            )


def _rows(
    event_id: str,
    chunk: Sequence[NewBooking],
    ids: Sequence[str],
    references: Sequence[str],
    codes: Sequence[str],
    issuer: TicketIssuer,
    confirm: bool,
) -> _Rows:
    """The chunk's booking, item and (when confirmed) signed ticket rows: pure, thread-safe."""
    now = utcnow()
    status = BookingStatus.CONFIRMED if confirm else BookingStatus.PENDING
    bookings = [
        {
            "id": booking_id,
            "event_id": event_id,
            "reference": reference,
            "status": status,
            "buyer_name": b.buyer_name or "",
            "buyer_email": b.buyer_email,
            "buyer_language": b.buyer_language,
            "external_ref": None,
            "created_at": now,
            "confirmed_at": now if confirm else None,
            "cancelled_at": None,
        }
        for booking_id, reference, b in zip(ids, references, chunk, strict=True)
    ]
    items = [
        {
            "id": new_id(),
            "booking_id": booking_id,
            "position": 0,
            "ticket_type_id": b.ticket_type_id,
            "quantity": b.quantity,
            "holders": [],
        }
        for booking_id, b in zip(ids, chunk, strict=True)
    ]
    tickets: list[dict[str, Any]] = []
    if confirm:
        start = 0
        for booking_id, b in zip(ids, chunk, strict=True):
            specs = [(b.ticket_type_id, {})] * b.quantity
            mine = codes[start : start + b.quantity]
            start += b.quantity
            tickets += ticket_rows(event_id, booking_id, specs, mine, b.buyer_name, issuer)
    return _Rows(bookings, items, tickets)


def _report(progress: Progress | None, result: BulkResult, total: int) -> None:
    if progress is not None:
        progress(len(result.booking_ids), total)


@asynccontextmanager
async def _large_cache(session: AsyncSession) -> AsyncIterator[None]:
    """On SQLite, a page cache of `CACHE_KIB` for the batch, then the connection's own again.

    The default 2 MB cache makes every random key of the batch's indexes (ids, codes, links,
    references) a page read and a spilled page; with the cache the inserts take ~30 % less.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before = (await session.execute(text("PRAGMA cache_size"))).scalar_one()
    await session.execute(text(f"PRAGMA cache_size = -{CACHE_KIB}"))
    try:
        yield
    finally:
        await session.execute(text(f"PRAGMA cache_size = {int(before)}"))


def _chunks(bookings: Sequence[NewBooking]) -> Iterator[Sequence[NewBooking]]:
    """Consecutive runs of bookings holding about CHUNK_TICKETS tickets (at least one booking)."""
    start, tickets = 0, 0
    for index, booking in enumerate(bookings):
        tickets += booking.quantity
        if tickets >= CHUNK_TICKETS:
            yield bookings[start : index + 1]
            start, tickets = index + 1, 0
    if start < len(bookings):
        yield bookings[start:]


def _totals(bookings: Iterable[NewBooking]) -> Counter[str]:
    """Tickets asked per ticket type."""
    totals: Counter[str] = Counter()
    for b in bookings:
        totals[b.ticket_type_id] += b.quantity
    return totals


async def _check_batch(
    session: AsyncSession, event_id: str, bookings: Sequence[NewBooking]
) -> None:
    wanted = {b.ticket_type_id for b in bookings}
    known = set(
        await session.scalars(
            select(TicketType.id).where(TicketType.event_id == event_id, TicketType.id.in_(wanted))
        )
    )
    errors = [
        FieldError("ticket_type_id", f"no such ticket type in this event: {type_id!r}")
        for type_id in sorted(wanted - known)
    ]
    errors += [
        FieldError(f"bookings[{i}].quantity", "at least 1")
        for i, b in enumerate(bookings)
        if b.quantity < 1
    ][:20]
    if errors:
        raise BodyInvalid(errors)


async def _take_capacity(session: AsyncSession, totals: Counter[str]) -> None:
    """Take each ticket type's total at once, or raise CapacityExceeded for the first short one.

    The caller's rollback gives back what earlier types took.
    """
    for ticket_type_id, quantity in sorted(totals.items()):
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
            remaining = await _remaining(session, ticket_type_id)
            raise CapacityExceeded(
                f"not enough places left in ticket type {ticket_type_id}: "
                f"{quantity} asked, {remaining} remaining",
                ticket_type_id=ticket_type_id,
                asked=quantity,
                remaining=remaining,
            )


async def _remaining(session: AsyncSession, ticket_type_id: str) -> int | None:
    row = (
        await session.execute(
            select(TicketType.capacity, TicketType.confirmed_count).where(
                TicketType.id == ticket_type_id
            )
        )
    ).one()
    return None if row.capacity is None else max(row.capacity - row.confirmed_count, 0)


async def _free_references(
    session: AsyncSession, count: int, *, exclude: Collection[str] = ()
) -> list[str]:
    """`count` distinct booking references unused in the database and not in `exclude` (drawn
    but not inserted yet), one query per round."""
    references: set[str] = set()
    while len(references) < count:
        fresh = {booking_reference() for _ in range(count - len(references))}
        fresh -= references | set(exclude)
        taken = set(
            await session.scalars(select(Booking.reference).where(Booking.reference.in_(fresh)))
        )
        references |= fresh - taken
    return list(references)


def _recipient(booking_id: str, booking: NewBooking) -> Recipient:
    return Recipient(
        booking_id, None, booking.buyer_name, booking.buyer_email, booking.buyer_language
    )
