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

Rows go in by the driver's executemany in chunks of about `CHUNK_TICKETS` tickets: memory stays
bounded by a chunk (no ORM object per booking). Each chunk's ids, references and codes are drawn
and its tokens sent to be signed before the previous chunk is written, so that a large batch
signs in a child process while this one writes (server/tickets/signing.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Table, bindparam, or_, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import TICKET_ID_LENGTH, booking_reference, new_id, ticket_code
from server.bookings.models import Booking, BookingItem, BookingStatus
from server.campaigns.recipients import Recipient
from server.campaigns.service import enqueue_ticket_mails
from server.changes.service import ChangeKind, append_changes
from server.config import Settings
from server.db import utcnow
from server.db.fast_insert import FastInsert
from server.errors import BodyInvalid, CapacityExceeded, FieldError
from server.events.models import Event, TicketType
from server.events.service import get_event
from server.tickets.models import Ticket, TicketLink, TicketStatus
from server.tickets.service import TicketIssuer, change_payload, ticket_rows
from server.tickets.signing import TokenSigner, token_signer

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
    tickets = sum(b.quantity for b in bookings) if confirm else 0
    async with (
        _large_cache(session),
        token_signer(issuer.keys.signing_key, issuer.keys.signing_kid, tickets) as signer,
    ):
        writer = _Writer(
            session, event, issuer, signer, confirm, settings or Settings(base_url=issuer.base_url)
        )
        # Chunk n + 1 is drawn and sent to be signed before chunk n is written, so that with a
        # signing process the two overlap (server/tickets/signing.py).
        prepared: _Prepared | None = None
        for chunk in _chunks(bookings):
            following = await writer.prepare(chunk)
            if prepared is not None:
                await writer.write(prepared)
                if progress is not None:
                    progress(len(writer.result.booking_ids), len(bookings))
            prepared = following
        if prepared is not None:
            await writer.write(prepared)
            if progress is not None:
                progress(len(writer.result.booking_ids), len(bookings))
    return writer.result


@dataclass(frozen=True)
class _Rows:
    bookings: list[dict[str, Any]]
    items: list[dict[str, Any]]
    tickets: list[dict[str, Any]]


@dataclass
class _Prepared:
    """A chunk with its ids, references and codes drawn, and its tokens being signed."""

    chunk: Sequence[NewBooking]
    ids: list[str]
    references: list[str]
    codes: list[str]
    ticket_ids: list[str]
    tokens: Awaitable[list[str]] | None


@dataclass
class _Writer:
    """Writes the batch chunk by chunk, in order, in the caller's transaction.

    Signing is not moved to a thread: it would overlap SQLite's inserts on the second core, but
    the two threads then convoy on the GIL and the batch took ~30 % longer (measured); large
    batches sign in a child process instead (`signer`).
    """

    session: AsyncSession
    event: Event
    issuer: TicketIssuer
    signer: TokenSigner
    confirm: bool
    mail_settings: Settings
    result: BulkResult = field(default_factory=BulkResult)
    inserts: _Inserts | None = None
    # Drawn for the batch so far: a chunk is drawn before the one before it is written, so the
    # database does not know them all yet.
    drawn_references: set[str] = field(default_factory=set)
    drawn_codes: set[str] = field(default_factory=set)

    async def prepare(self, chunk: Sequence[NewBooking]) -> _Prepared:
        ids = [new_id() for _ in chunk]
        references = await _unused(
            self.session,
            Booking.__table__.c.reference,
            booking_reference,
            len(chunk),
            self.drawn_references,
        )
        tickets = sum(b.quantity for b in chunk) if self.confirm else 0
        codes = await _unused(
            self.session, Ticket.__table__.c.code, ticket_code, tickets, self.drawn_codes
        )
        ticket_ids = [new_id(TICKET_ID_LENGTH) for _ in range(tickets)]
        tokens = self.signer.sign(self.event.id, ticket_ids) if tickets else None
        return _Prepared(chunk, ids, references, codes, ticket_ids, tokens)

    async def write(self, prepared: _Prepared) -> None:
        chunk, ids, references, codes = (
            prepared.chunk,
            prepared.ids,
            prepared.references,
            prepared.codes,
        )
        signed = (
            list(zip(prepared.ticket_ids, await prepared.tokens, strict=True))
            if (prepared.tokens is not None)
            else []
        )
        rows = _rows(self.event.id, chunk, ids, references, codes, signed, self.confirm)
        inserts = self._inserts()
        now = utcnow()
        status = BookingStatus.CONFIRMED if self.confirm else BookingStatus.PENDING
        await inserts.bookings.run(
            self.session,
            rows.bookings,
            {
                "event_id": self.event.id,
                "status": status,
                "external_ref": None,
                "created_at": now,
                "confirmed_at": now if self.confirm else None,
                "cancelled_at": None,
            },
        )
        await inserts.items.run(self.session, rows.items, {"position": 0, "holders": []})
        self.result.booking_ids += ids
        if not self.confirm:
            return
        await self._issue(rows.tickets, now)
        if self.event.auto_send_tickets:
            recipients = [_recipient(i, b) for i, b in zip(ids, chunk, strict=True)]
            self.result.mails += await enqueue_ticket_mails(
                self.session, self.event, recipients, self.mail_settings
            )

    async def _issue(self, tickets: list[dict[str, Any]], now: datetime) -> None:
        """What `insert_tickets` writes for a confirmation (tickets, links, `ticket.issued`),
        by the fast inserts; bulk tickets have no holder e-mail or seat."""
        inserts = self._inserts()
        constant = {"event_id": self.event.id, "holder_email": None, "seat": None, "version": 1}
        constant |= {"status": TicketStatus.VALID, "blocked": False, "revoked_at": None}
        constant |= {"created_at": now, "updated_at": now}
        await inserts.tickets.run(self.session, tickets, constant)
        await inserts.links.run(
            self.session,
            [{"link": t["link"], "ticket_id": t["id"]} for t in tickets],
            {"version": 1, "created_at": now},
        )
        changes = [(ChangeKind.TICKET_ISSUED, change_payload(t)) for t in tickets]
        await append_changes(self.session, self.event.id, changes)
        self.result.tickets += len(tickets)

    def _inserts(self) -> _Inserts:
        if self.inserts is None:
            self.inserts = _Inserts.of(self.session.get_bind().dialect)
        return self.inserts


@dataclass(frozen=True)
class _Inserts:
    bookings: FastInsert
    items: FastInsert
    tickets: FastInsert
    links: FastInsert

    @classmethod
    def of(cls, dialect: Dialect) -> _Inserts:
        def every(table: Table, *leave_out: str) -> FastInsert:
            columns = [c.name for c in table.columns if c.name not in leave_out]
            return FastInsert(table, columns, dialect)

        return cls(
            bookings=every(Booking.__table__),
            items=every(BookingItem.__table__),
            tickets=every(Ticket.__table__),
            links=every(TicketLink.__table__),
        )


def _rows(
    event_id: str,
    chunk: Sequence[NewBooking],
    ids: Sequence[str],
    references: Sequence[str],
    codes: Sequence[str],
    signed: Sequence[tuple[str, str]],
    confirm: bool,
) -> _Rows:
    """The chunk's booking, item and (when confirmed) signed ticket rows, without the values
    every row shares (`_Writer.write` gives those)."""
    bookings = [
        {
            "id": booking_id,
            "reference": reference,
            "buyer_name": b.buyer_name or "",
            "buyer_email": b.buyer_email,
            "buyer_language": b.buyer_language,
        }
        for booking_id, reference, b in zip(ids, references, chunk, strict=True)
    ]
    items = [
        {
            "id": new_id(),
            "booking_id": booking_id,
            "ticket_type_id": b.ticket_type_id,
            "quantity": b.quantity,
        }
        for booking_id, b in zip(ids, chunk, strict=True)
    ]
    tickets: list[dict[str, Any]] = []
    if confirm:
        start = 0
        for booking_id, b in zip(ids, chunk, strict=True):
            specs = [(b.ticket_type_id, {})] * b.quantity
            mine = codes[start : start + b.quantity]
            ids_and_tokens = signed[start : start + b.quantity]
            start += b.quantity
            tickets += ticket_rows(
                event_id, booking_id, specs, mine, b.buyer_name, signed=ids_and_tokens
            )
    return _Rows(bookings, items, tickets)


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


async def _unused(
    session: AsyncSession,
    column: Column[str],
    draw: Callable[[], str],
    count: int,
    drawn: set[str],
) -> list[str]:
    """`count` distinct values of `draw()` not yet in the unique `column`, one query per round
    (references have 30 random bits, codes 40: at 100,000 rows a few collide, so they are
    checked rather than left to the unique index, which would abort the whole batch).

    The query is the driver's own `IN (?, ?, ...)`, compiled once per size: Core re-renders an
    expanding IN of 1,000 values at every execution, which cost more than the lookup itself.
    Values already `drawn` for the batch are not drawn again; the new ones are added to it.
    """
    values: set[str] = set()
    while len(values) < count:
        fresh = list({draw() for _ in range(count - len(values))} - values - drawn)
        if not fresh:
            continue
        sql = _in_query(session.get_bind().dialect, column, len(fresh))
        connection = await session.connection()
        taken = {row[0] for row in await connection.exec_driver_sql(sql, tuple(fresh))}
        values.update(v for v in fresh if v not in taken)
    drawn |= values
    return list(values)


@lru_cache(maxsize=64)
def _in_query(dialect: Dialect, column: Column[str], size: int) -> str:
    wanted = [f"v{i}" for i in range(size)]
    statement = select(column).where(column.in_([bindparam(name) for name in wanted]))
    compiled = statement.compile(dialect=dialect)
    if list(compiled.positiontup or ()) != wanted:
        raise ValueError(f"unexpected parameter order for {column}")
    return compiled.string


def _recipient(booking_id: str, booking: NewBooking) -> Recipient:
    return Recipient(
        booking_id, None, booking.buyer_name, booking.buyer_email, booking.buyer_language
    )
