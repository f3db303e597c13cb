"""Event invitations from an import: each valid row becomes a booking of one ticket type.

Rules (docs/import.md; the shared design of issue 15):
  - A row books `quantity` tickets of the chosen ticket type for its address (buyer = the row's
    address, name and language). Repeated addresses within the file are NOT merged: three rows
    for one address are three bookings.
  - A duplicate is a row whose address (compared by `email_key`) already has a non-cancelled
    booking of that ticket type in the event. `skip` (the default) adds nothing for it, so
    importing the same file again adds nothing; `update` changes that booking's buyer name and
    language where the row gives them (never quantities, never tickets); `keep` books again.
  - `analyze` writes nothing. `commit` analyses again inside the caller's transaction and
    applies the result entirely or not at all, refusing (and writing nothing) when:
      the digest given is not this analysis's (the file or options changed) -> 409
      `analysis_mismatch`; `on_error=reject_all` and a row is invalid -> 422 `import_invalid`;
      `confirm=true` and the rows ask more tickets than remain -> 409 `capacity_exceeded`.
    Each refusal carries the report, so the organiser sees why.
  - Capacity counts confirmed tickets (server/bookings): only a confirming import can oversell;
    pending bookings hold nothing until they are confirmed one by one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.bulk import BulkResult, NewBooking, create_bookings
from server.bookings.models import Booking, BookingItem, BookingStatus
from server.config import Settings
from server.errors import BodyInvalid, CapacityExceeded, Conflict, DomainError, FieldError
from server.events.models import TicketType
from server.events.service import get_event
from server.imports.analyze import (
    Analysis,
    Decision,
    Duplicates,
    OnError,
    analyze_source,
    classify_duplicates,
    email_key,
)
from server.imports.schemas import ImportReport, build_report
from server.tickets.service import TicketIssuer

__all__ = [
    "AnalysisMismatch",
    "ImportInvalid",
    "ImportOversold",
    "ImportRefused",
    "InvitationImport",
    "InvitationOptions",
    "InvitationReport",
    "Source",
    "analyze_invitations",
    "commit_invitations",
    "invitation_report",
]

Progress = Callable[[int, int], None]
Mode = Literal["analyze", "commit"]


@dataclass(frozen=True)
class InvitationOptions:
    """What the organiser chose; every field shapes the result, so all enter the digest."""

    ticket_type_id: str
    confirm: bool = False
    duplicates: Duplicates = "skip"
    on_error: OnError = "reject_all"

    def digest_part(self, event_id: str) -> str:
        return (
            f"event={event_id};ticket_type_id={self.ticket_type_id};confirm={self.confirm};"
            f"duplicates={self.duplicates};on_error={self.on_error}"
        )


@dataclass(frozen=True)
class Source:
    """The bytes to import and what the client said they are."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Capacity:
    """The chosen ticket type's seats against what the import asks (confirmed imports only)."""

    ticket_type_id: str
    capacity: int | None
    confirmed: int
    asked: int  # tickets the import would confirm (0 when it does not confirm)

    @property
    def remaining(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.confirmed, 0)

    @property
    def exceeded(self) -> bool:
        return self.remaining is not None and self.asked > self.remaining


@dataclass
class InvitationImport:
    """An analysis of an event import, and after a commit what it wrote."""

    event_id: str
    options: InvitationOptions
    analysis: Analysis
    decisions: list[Decision]
    capacity: Capacity
    committed: bool = False
    written: BulkResult = field(default_factory=BulkResult)
    updated: int = 0

    def count(self, action: str) -> int:
        return sum(1 for d in self.decisions if d.action == action)

    @property
    def duplicates(self) -> list[Decision]:
        return [d for d in self.decisions if d.duplicate_of is not None]

    @property
    def tickets(self) -> int:
        """Tickets the rows to create hold (issued at once when confirming)."""
        return sum(d.entry.quantity for d in self.decisions if d.action == "create")

    @property
    def refusal(self) -> str | None:
        """Why a commit would be refused (`import_invalid`, `capacity_exceeded`), or None."""
        if self.options.on_error == "reject_all" and self.analysis.problems:
            return ImportInvalid.code
        if self.capacity.exceeded:
            return CapacityExceeded.code
        return None


class CapacityOut(msgspec.Struct, frozen=True, kw_only=True):
    ticket_type_id: str
    capacity: int | None  # None: unlimited
    confirmed: int  # tickets of confirmed bookings before the import
    remaining: int | None
    asked: int  # tickets the import confirms (0 when it does not confirm)
    exceeded: bool


class CreatedOut(msgspec.Struct, frozen=True, kw_only=True):
    bookings: int
    tickets: int
    mails: int  # e-ticket mails queued (events with auto_send_tickets)
    updated: int  # existing bookings whose buyer name or language changed


class InvitationReport(ImportReport, kw_only=True):
    """The import report of an event (server/imports/schemas.py) with the event's part."""

    event_id: str
    tickets: int  # tickets the rows to create hold
    capacity: CapacityOut
    refusal: str | None  # why a commit is (or was) refused: import_invalid, capacity_exceeded
    created: CreatedOut | None = None  # after a commit


def invitation_report(result: InvitationImport, mode: Mode) -> InvitationReport:
    """The report of an analysis or a commit, as the API and the CLI show it."""
    capacity = result.capacity
    written = result.written
    return build_report(
        result.analysis,
        result.decisions,
        mode=mode,
        options=dataclasses.asdict(result.options),
        committed=result.committed,
        report_type=InvitationReport,
        event_id=result.event_id,
        tickets=result.tickets,
        capacity=CapacityOut(
            ticket_type_id=capacity.ticket_type_id,
            capacity=capacity.capacity,
            confirmed=capacity.confirmed,
            remaining=capacity.remaining,
            asked=capacity.asked,
            exceeded=capacity.exceeded,
        ),
        refusal=result.refusal,
        created=CreatedOut(
            bookings=len(written.booking_ids),
            tickets=written.tickets,
            mails=written.mails,
            updated=result.updated,
        )
        if result.committed
        else None,
    )


class ImportRefused(DomainError):
    """A commit refused with its report: `result` (the HTTP edge puts it in the problem)."""

    def __init__(self, detail: str, result: InvitationImport, **extra: Any) -> None:
        report = msgspec.to_builtins(invitation_report(result, "commit"))
        # not super(): the siblings' constructors differ
        DomainError.__init__(self, detail, **extra, report=report)
        self.result = result


class AnalysisMismatch(ImportRefused, Conflict):
    """409: the file or the options are not those of the analysis the client names."""

    code = "analysis_mismatch"
    title = "Not the analysed import"


class ImportInvalid(ImportRefused, BodyInvalid):
    """422: rows are invalid and `on_error=reject_all`; `errors` names the first of them."""

    code = "import_invalid"
    title = "Import has invalid rows"

    def __init__(self, detail: str, result: InvitationImport) -> None:
        ImportRefused.__init__(self, detail, result)
        self.errors = [
            FieldError(f"line {p.line}" + (f", column {p.column}" if p.column else ""), p.reason)
            for p in result.analysis.problems[:_ERRORS_LISTED]
        ]


class ImportOversold(ImportRefused, CapacityExceeded):
    """409 `capacity_exceeded`: the import asks more tickets than remain."""


_ERRORS_LISTED = 20


async def analyze_invitations(
    session: AsyncSession, event_id: str, source: Source, options: InvitationOptions
) -> InvitationImport:
    """The report of importing `source` into the event with `options`; writes nothing.

    Raises NotFound (event), BodyInvalid (a ticket type not of this event) or SourceError
    (the file cannot be read at all).
    """
    await get_event(session, event_id)
    ticket_type = await _ticket_type(session, event_id, options.ticket_type_id)
    analysis = analyze_source(
        source.data,
        filename=source.filename,
        content_type=source.content_type,
        options_digest_part=options.digest_part(event_id),
    )
    existing = await _existing_keys(session, event_id, ticket_type.id)
    decisions = classify_duplicates(
        analysis.entries, existing, options.duplicates, within_file_are_duplicates=False
    )
    asked = sum(d.entry.quantity for d in decisions if d.action == "create")
    capacity = Capacity(
        ticket_type.id,
        ticket_type.capacity,
        ticket_type.confirmed_count,
        asked if options.confirm else 0,
    )
    return InvitationImport(event_id, options, analysis, decisions, capacity)


async def commit_invitations(
    session: AsyncSession,
    event_id: str,
    source: Source,
    options: InvitationOptions,
    issuer: TicketIssuer,
    *,
    digest: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> InvitationImport:
    """Analyse again and apply, all or nothing, in the caller's transaction (see the rules).

    Raises what `analyze_invitations` raises, and AnalysisMismatch, ImportInvalid or
    ImportOversold carrying the report; the caller must then roll back (nothing was written
    for the first two; a seat race lost after the analysis can leave rows to roll back).
    """
    result = await analyze_invitations(session, event_id, source, options)
    if digest is not None and digest != result.analysis.digest:
        raise AnalysisMismatch(
            "the file or the options differ from the analysis: analyse again",
            result,
            expected=digest,
            digest=result.analysis.digest,
        )
    if result.refusal == ImportInvalid.code:
        invalid = result.analysis.invalid_rows or len(result.analysis.problems)
        raise ImportInvalid(
            f"{invalid} invalid row(s) and on_error=reject_all: nothing was imported", result
        )
    if result.refusal == CapacityExceeded.code:
        raise _oversold(result)
    to_create = [
        NewBooking(
            buyer_email=d.entry.email,
            ticket_type_id=options.ticket_type_id,
            quantity=d.entry.quantity,
            buyer_name=d.entry.name,
            buyer_language=d.entry.language,
        )
        for d in result.decisions
        if d.action == "create"
    ]
    try:
        result.written = await create_bookings(
            session,
            event_id,
            to_create,
            issuer,
            confirm=options.confirm,
            settings=settings,
            progress=progress,
        )
    except CapacityExceeded as exc:  # seats taken by others since the analysis
        raise _oversold(result, exc.extra.get("remaining")) from None
    result.updated = await _update_buyers(session, event_id, options.ticket_type_id, result)
    result.committed = True
    return result


def _oversold(result: InvitationImport, remaining: int | None = None) -> ImportOversold:
    capacity = result.capacity
    left = capacity.remaining if remaining is None else remaining
    return ImportOversold(
        f"the import asks {capacity.asked} tickets of ticket type {capacity.ticket_type_id}, "
        f"{left} remain: nothing was imported",
        result,
        ticket_type_id=capacity.ticket_type_id,
        asked=capacity.asked,
        remaining=left,
    )


async def _ticket_type(session: AsyncSession, event_id: str, ticket_type_id: str) -> TicketType:
    ticket_type = await session.scalar(
        select(TicketType).where(TicketType.id == ticket_type_id, TicketType.event_id == event_id)
    )
    if ticket_type is None:
        raise BodyInvalid([FieldError("ticket_type_id", "no such ticket type in this event")])
    return ticket_type


def _holding(event_id: str, ticket_type_id: str) -> Any:
    """Non-cancelled bookings of the event holding the ticket type: what a row duplicates."""
    return (
        select(Booking.id, Booking.buyer_email)
        .join(BookingItem, BookingItem.booking_id == Booking.id)
        .where(
            Booking.event_id == event_id,
            Booking.status != BookingStatus.CANCELLED,
            BookingItem.ticket_type_id == ticket_type_id,
        )
        .distinct()
    )


async def _existing_keys(session: AsyncSession, event_id: str, ticket_type_id: str) -> set[str]:
    rows = await session.execute(_holding(event_id, ticket_type_id))
    return {email_key(email) for _, email in rows}


async def _update_buyers(
    session: AsyncSession, event_id: str, ticket_type_id: str, result: InvitationImport
) -> int:
    """Apply `update` decisions: the row's name and language (where given) to every booking
    it duplicates. Returns how many bookings were changed."""
    wanted: dict[str, Decision] = {}
    for decision in result.decisions:
        if decision.action == "update":
            wanted[email_key(decision.entry.email)] = decision  # a later row wins
    if not wanted:
        return 0
    changes = [
        {"b_id": booking_id, "b_name": d.entry.name, "b_language": d.entry.language}
        for booking_id, email in await session.execute(_holding(event_id, ticket_type_id))
        if (d := wanted.get(email_key(email))) is not None
        and (d.entry.name is not None or d.entry.language is not None)
    ]
    # Core, not ORM: an executemany UPDATE with its own WHERE (the ORM's bulk mode keys on the
    # primary key by attribute name and refuses one).
    table = Booking.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            buyer_name=func.coalesce(bindparam("b_name"), table.c.buyer_name),
            buyer_language=func.coalesce(bindparam("b_language"), table.c.buyer_language),
        )
    )
    connection = await session.connection()
    for start in range(0, len(changes), 1000):
        await connection.execute(statement, changes[start : start + 1000])
    return len(changes)
