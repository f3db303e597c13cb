"""Event exports: bookings, tickets and check-in scans as rows of cells, read as they stream.

`prepare_export` runs in the request's session: it raises `NotFound` for an unknown event and
fixes the header (one column per ticket type for bookings). The rows are read afterwards by
`EventExport.rows` in a session of their own, because a streamed answer outlives the request's
session; one read transaction gives the whole file one snapshot on SQLite (WAL), and one
statement per file gives it one on PostgreSQL.

Times are shown in the event's time zone as ISO 8601 with their offset
(`2027-03-14T20:00:00+01:00`), so the wall-clock time at the venue and the instant are both there.

Left out on purpose: ticket tokens and guest links. They are bearer secrets (whoever holds one
enters, or manages the ticket), and an export is a file that gets mailed around and kept; the
organiser API hands them out one booking at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.models import Booking, BookingItem
from server.checkin.models import CheckinList, Device, PresenceRow, ScanRow
from server.events.models import Event, TicketType
from server.events.service import get_event, list_ticket_types
from server.exports.writers import Cell
from server.tickets.models import Ticket

__all__ = ["EventExport", "ExportKind", "prepare_export"]

_BATCH = 2_000  # rows fetched from the database at a time

Row = tuple[Cell, ...]


class ExportKind(StrEnum):
    BOOKINGS = "bookings"
    TICKETS = "tickets"
    CHECKINS = "checkins"


@dataclass(frozen=True)
class EventExport:
    """What one export holds: its header, and how to read its rows in a given session."""

    kind: ExportKind
    event_id: str
    event_slug: str
    header: tuple[str, ...]
    rows: Callable[[AsyncSession], AsyncIterator[Row]]

    @property
    def filename_stem(self) -> str:
        """`<event slug>-<kind>`: the slug is ASCII letters, digits and dashes."""
        return f"{self.event_slug}-{self.kind}"


async def prepare_export(session: AsyncSession, event_id: str, kind: ExportKind) -> EventExport:
    """The export of `kind` for the event; raises NotFound when there is no such event."""
    event = await get_event(session, event_id)
    zone = _zone(event.timezone)
    if kind is ExportKind.BOOKINGS:
        types = await list_ticket_types(session, event_id)
        header = (*_BOOKING_HEAD, *_type_columns(types), *_BOOKING_TAIL)
        return _export(kind, event, header, lambda s: _booking_rows(s, event.id, types, zone))
    if kind is ExportKind.TICKETS:
        return _export(kind, event, TICKET_HEADER, lambda s: _ticket_rows(s, event.id, zone))
    return _export(kind, event, CHECKIN_HEADER, lambda s: _checkin_rows(s, event.id, zone))


def _export(
    kind: ExportKind,
    event: Event,
    header: Sequence[str],
    rows: Callable[[AsyncSession], AsyncIterator[Row]],
) -> EventExport:
    return EventExport(kind, event.id, event.slug, tuple(header), rows)


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # validated when the event was created or changed


def _when(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


async def _stream(session: AsyncSession, query: Select[Any]) -> AsyncIterator[Any]:
    """The query's rows as they come, fetched a batch at a time (one await per batch, not per
    row: per-row awaits cost more than the query itself)."""
    result = await session.stream(query.execution_options(yield_per=_BATCH))
    async for batch in result.partitions():
        for row in batch:
            yield row


# --- bookings --------------------------------------------------------------------------------

_BOOKING_HEAD = ("reference", "status", "buyer_name", "buyer_email", "language")
_BOOKING_TAIL = ("tickets_total", "created_at", "confirmed_at", "cancelled_at", "external_ref")


def _type_columns(types: Sequence[TicketType]) -> list[str]:
    """`tickets: <type name>` per type, the id added where two types share a name."""
    names = [t.name for t in types]
    return [
        f"tickets: {t.name}" if names.count(t.name) == 1 else f"tickets: {t.name} ({t.id})"
        for t in types
    ]


_BOOKING_FIELDS = (
    Booking.id,
    Booking.reference,
    Booking.status,
    Booking.buyer_name,
    Booking.buyer_email,
    Booking.buyer_language,
    Booking.created_at,
    Booking.confirmed_at,
    Booking.cancelled_at,
    Booking.external_ref,
)


async def _booking_rows(
    session: AsyncSession, event_id: str, types: Sequence[TicketType], zone: ZoneInfo
) -> AsyncIterator[Row]:
    """One row per booking, oldest first, with the tickets it holds (or asks for) per type.

    One statement, a row per booking item, folded here: consecutive rows of one booking.
    """
    query = (
        select(*_BOOKING_FIELDS, BookingItem.ticket_type_id, BookingItem.quantity)
        .outerjoin(BookingItem, BookingItem.booking_id == Booking.id)
        .where(Booking.event_id == event_id)
        .order_by(Booking.created_at, Booking.id, BookingItem.position)
    )
    column_of = {t.id: i for i, t in enumerate(types)}
    current: Any = None
    counts = [0] * len(types)
    async for row in _stream(session, query):
        if current is not None and row.id != current.id:
            yield _booking_row(current, counts, zone)
            counts = [0] * len(types)
        current = row
        if row.ticket_type_id in column_of:
            counts[column_of[row.ticket_type_id]] += row.quantity
    if current is not None:
        yield _booking_row(current, counts, zone)


def _booking_row(booking: Any, counts: list[int], zone: ZoneInfo) -> Row:
    return (
        booking.reference,
        booking.status,
        booking.buyer_name,
        booking.buyer_email,
        booking.buyer_language,
        *counts,
        sum(counts),
        _when(booking.created_at, zone),
        _when(booking.confirmed_at, zone),
        _when(booking.cancelled_at, zone),
        booking.external_ref,
    )


# --- tickets ---------------------------------------------------------------------------------

TICKET_HEADER = (
    "code",
    "ticket_type",
    "holder_name",
    "holder_email",
    "seat",
    "status",
    "blocked",
    "booking_reference",
    "buyer_email",
    "version",
    "entries",
    "inside",
    "first_entry_at",
)


def _presence_by_ticket(event_id: str) -> Any:
    """Per ticket, over all lists: entries, whether inside anywhere, the first entry."""
    return (
        select(
            PresenceRow.ticket_id,
            func.sum(PresenceRow.entries).label("entries"),
            func.sum(case((PresenceRow.inside, 1), else_=0)).label("inside"),
            func.min(PresenceRow.first_at).label("first_at"),
        )
        .join(Ticket, Ticket.id == PresenceRow.ticket_id)
        .where(Ticket.event_id == event_id)
        .group_by(PresenceRow.ticket_id)
        .subquery()
    )


async def _ticket_rows(session: AsyncSession, event_id: str, zone: ZoneInfo) -> AsyncIterator[Row]:
    presence = _presence_by_ticket(event_id)
    query = (
        select(
            Ticket.code,
            TicketType.name,
            Ticket.holder_name,
            Ticket.holder_email,
            Ticket.seat,
            Ticket.status,
            Ticket.blocked,
            Booking.reference,
            Booking.buyer_email,
            Ticket.version,
            presence.c.entries,
            presence.c.inside,
            presence.c.first_at,
        )
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .join(Booking, Booking.id == Ticket.booking_id)
        .outerjoin(presence, presence.c.ticket_id == Ticket.id)
        .where(Ticket.event_id == event_id)
        .order_by(Booking.created_at, Booking.id, Ticket.position)
    )
    async for row in _stream(session, query):
        *fields, entries, inside, first_at = row
        yield (*fields, int(entries or 0), bool(inside), _when(first_at, zone))


# --- check-ins -------------------------------------------------------------------------------

CHECKIN_HEADER = (
    "received_at",
    "scanned_at",
    "list",
    "list_id",
    "gate",
    "device",
    "direction",
    "ticket_code",
    "holder_name",
    "ticket_type",
    "verdict",
    "reason",
    "offline",
    "forced",
    "entries",
    "annulled",
    "annulled_at",
    "annulled_by",
    "unknown_code",
    "scan_id",
)


async def _checkin_rows(session: AsyncSession, event_id: str, zone: ZoneInfo) -> AsyncIterator[Row]:
    """Every scan recorded for the event, in the order the hub received them.

    `unknown_code` is what the door read when it matched no ticket (the first 64 characters);
    for a known ticket its short `ticket_code` is given instead of the token the QR holds.
    """
    query = (
        select(
            ScanRow.received_at,
            ScanRow.scanned_at,
            CheckinList.name.label("list_name"),
            ScanRow.list_id,
            ScanRow.gate,
            Device.name.label("device_name"),
            ScanRow.direction,
            Ticket.code.label("ticket_code"),
            Ticket.holder_name,
            TicketType.name.label("type_name"),
            ScanRow.accepted,
            ScanRow.reason,
            ScanRow.offline,
            ScanRow.forced,
            ScanRow.entries,
            ScanRow.annulled,
            ScanRow.annulled_at,
            ScanRow.annulled_by,
            ScanRow.code,
            ScanRow.scan_id,
        )
        .outerjoin(CheckinList, CheckinList.id == ScanRow.list_id)
        .outerjoin(Device, Device.id == ScanRow.device_id)
        .outerjoin(Ticket, Ticket.id == ScanRow.ticket_id)
        .outerjoin(TicketType, TicketType.id == Ticket.ticket_type_id)
        .where(ScanRow.event_id == event_id)
        .order_by(ScanRow.received_at, ScanRow.device_id, ScanRow.scan_id)
    )
    async for scan in _stream(session, query):
        yield (
            _when(scan.received_at, zone),
            _when(scan.scanned_at, zone),
            scan.list_name,
            scan.list_id,
            scan.gate,
            scan.device_name,
            scan.direction,
            scan.ticket_code,
            scan.holder_name,
            scan.type_name,
            "accepted" if scan.accepted else "rejected",
            scan.reason,
            scan.offline,
            scan.forced,
            scan.entries,
            scan.annulled,
            _when(scan.annulled_at, zone),
            scan.annulled_by,
            None if scan.ticket_code is not None else scan.code,
            scan.scan_id,
        )
