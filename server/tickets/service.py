"""Issue signed e-tickets for a confirmed booking, inside the confirm transaction."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import ticket_code
from protocol.sync import TicketEntry, to_wire
from server.changes.service import ChangeKind, append_changes
from server.db import utcnow
from server.db.fast_insert import FastInsert
from server.errors import InvalidState, NotFound
from server.tickets.issuer import TicketIssuer
from server.tickets.models import Ticket, TicketLink, TicketStatus

__all__ = [
    "TicketIssuer",
    "TicketSpec",
    "block_ticket",
    "change_payload",
    "get_ticket",
    "insert_tickets",
    "issue_tickets",
    "new_link",
    "new_links",
    "reissue_ticket",
    "revoke_booking_tickets",
    "ticket_entry",
    "ticket_rows",
    "tickets_by_booking",
    "tickets_of",
    "unblock_ticket",
    "unused_codes",
    "update_ticket",
]


TicketSpec = tuple[str, dict[str, Any]]
"""What one ticket is issued from: its ticket type id and its holder (`{name?, email?, seat?}`)."""


def new_link() -> str:
    """A guest link: 192 random bits, so guessing one is hopeless (and rate limited anyway)."""
    return secrets.token_urlsafe(_LINK_BYTES)


def new_links(count: int) -> list[str]:
    """`count` guest links as `new_link` makes them, from one draw of random bytes."""
    drawn = secrets.token_bytes(_LINK_BYTES * count)
    return [
        base64.urlsafe_b64encode(drawn[i : i + _LINK_BYTES]).rstrip(b"=").decode("ascii")
        for i in range(0, len(drawn), _LINK_BYTES)
    ]


_LINK_BYTES = 24


def ticket_entry(ticket: Ticket | dict[str, Any]) -> TicketEntry:
    """A ticket as doors see it, in the snapshot and the change log: no e-mail, link or token."""
    get = ticket.get if isinstance(ticket, dict) else lambda name: getattr(ticket, name)
    return TicketEntry(
        id=get("id"),
        code=get("code"),
        ticket_type_id=get("ticket_type_id"),
        holder_name=get("holder_name"),
        seat=get("seat"),
        version=get("version"),
        status=get("status"),
        blocked=get("blocked"),
    )


def change_payload(ticket: Ticket | dict[str, Any]) -> dict[str, Any]:
    """The payload of every `ticket.*` change: the whole ticket, as in the snapshot."""
    return {"ticket": to_wire(ticket_entry(ticket))}


async def issue_tickets(
    session: AsyncSession,
    event_id: str,
    booking_id: str,
    specs: Sequence[TicketSpec],
    default_holder: str | None,
    issuer: TicketIssuer,
    *,
    signed: Sequence[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """One signed ticket per spec, with its link and change-log entry, in the caller's
    transaction; returns the rows written (`ticket_rows`), in position order, so the caller
    can answer with them (`schemas.ticket_out`) instead of reading them back. `signed`: ids
    and tokens signed ahead (`TicketIssuer.sign_new`), else signed here."""
    codes = await unused_codes(session, len(specs))
    rows = ticket_rows(event_id, booking_id, specs, codes, default_holder, issuer, signed=signed)
    await insert_tickets(session, event_id, rows)
    return rows


def ticket_rows(
    event_id: str,
    booking_id: str,
    specs: Sequence[TicketSpec],
    codes: Sequence[str],
    default_holder: str | None,
    issuer: TicketIssuer | None = None,
    *,
    signed: Sequence[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """The rows of a booking's new tickets, signed, in position order (one code each).

    Shared by the confirmation of one booking and the bulk path (server/bookings/bulk.py), so
    both issue exactly the same tickets. Either `issuer` signs here, or `signed` gives each
    ticket's id and version-1 token, signed ahead (server/tickets/signing.py).
    """
    if signed is None:
        if issuer is None:
            raise ValueError("ticket_rows needs an issuer or the signed ids and tokens")
        signed = issuer.sign_new(event_id, len(specs))
    rows = []
    links = new_links(len(specs))
    for position, ((ticket_type_id, holder), code, (ticket_id, token), link) in enumerate(
        zip(specs, codes, signed, links, strict=True)
    ):
        rows.append(
            {
                "id": ticket_id,
                "event_id": event_id,
                "booking_id": booking_id,
                "ticket_type_id": ticket_type_id,
                "position": position,
                "code": code,
                "holder_name": holder.get("name") or default_holder,
                "holder_email": holder.get("email"),
                "seat": holder.get("seat"),
                "version": 1,
                "token": token,
                "link": link,
                "status": TicketStatus.VALID,
                "blocked": False,
            }
        )
    return rows


async def insert_tickets(
    session: AsyncSession, event_id: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Write `ticket_rows` output: tickets, their links and one `ticket.issued` change each."""
    # The driver's own executemany (server/db/fast_insert.py): Core's builds and processes a
    # parameter dictionary per row, which cost more than the signing in a booking of 50.
    now = utcnow()
    tickets, links = _inserts(session.get_bind().dialect)
    await tickets.run(session, rows, {"created_at": now, "updated_at": now, "revoked_at": None})
    await links.run(
        session,
        [{"link": r["link"], "ticket_id": r["id"]} for r in rows],
        {"version": 1, "created_at": now},
    )
    await append_changes(
        session, event_id, [(ChangeKind.TICKET_ISSUED, change_payload(r)) for r in rows]
    )


@lru_cache(maxsize=4)
def _inserts(dialect: Dialect) -> tuple[FastInsert, FastInsert]:
    def every(table: Table) -> FastInsert:
        return FastInsert(table, [c.name for c in table.columns], dialect)

    return every(Ticket.__table__), every(TicketLink.__table__)  # type: ignore[arg-type]


async def unused_codes(session: AsyncSession, count: int) -> list[str]:
    """`count` distinct readable codes not yet used by any ticket (40 bits: collisions are rare,
    but at 100,000 tickets not negligible, so they are checked rather than left to the index).

    One query per round: callers with many tickets ask in chunks (of ~1,000: bound parameters).
    The query is the driver's own `IN (?, ...)`, compiled once per size: Core renders and
    processes an expanding IN again at every execution.
    """
    codes: set[str] = set()
    while len(codes) < count:
        fresh = list({ticket_code() for _ in range(count - len(codes))} - codes)
        connection = await session.connection()
        sql = _codes_query(connection.dialect, len(fresh))
        taken = {row[0] for row in await connection.exec_driver_sql(sql, tuple(fresh))}
        codes.update(code for code in fresh if code not in taken)
    return list(codes)


@lru_cache(maxsize=64)
def _codes_query(dialect: Dialect, size: int) -> str:
    names = [f"c{i}" for i in range(size)]
    code = Ticket.__table__.c.code
    compiled = select(code).where(code.in_([bindparam(n) for n in names])).compile(dialect=dialect)
    if list(compiled.positiontup or ()) != names:  # positional drivers (sqlite, asyncpg)
        raise ValueError("unexpected parameter order in the codes query")
    return compiled.string


async def tickets_of(session: AsyncSession, booking_ids: Iterable[str]) -> list[Ticket]:
    rows = await session.scalars(
        select(Ticket)
        .where(Ticket.booking_id.in_(list(booking_ids)))
        .order_by(Ticket.booking_id, Ticket.position)
    )
    return list(rows)


async def tickets_by_booking(
    session: AsyncSession, booking_ids: Iterable[str]
) -> dict[str, list[Ticket]]:
    """The tickets of each booking, in one query, grouped by booking id (in position order)."""
    grouped: dict[str, list[Ticket]] = {booking_id: [] for booking_id in booking_ids}
    for ticket in await tickets_of(session, grouped):
        grouped[ticket.booking_id].append(ticket)
    return grouped


async def revoke_booking_tickets(
    session: AsyncSession, event_id: str, booking_id: str
) -> Sequence[Ticket]:
    """Revoke every valid ticket of the booking, logging each revocation."""
    tickets = [t for t in await tickets_of(session, [booking_id]) if t.status == TicketStatus.VALID]
    if not tickets:
        return []
    now = utcnow()
    await session.execute(
        update(Ticket)
        .where(Ticket.id.in_([t.id for t in tickets]))
        .values(status=TicketStatus.REVOKED, revoked_at=now, updated_at=now)
    )
    await append_changes(
        session, event_id, [(ChangeKind.TICKET_REVOKED, change_payload(t)) for t in tickets]
    )
    return tickets


# Lifecycle. Each function runs inside the caller's transaction, takes the ticket's row lock
# first (so two organisers reissuing at once give versions n+1 and n+2, never n+1 twice), and
# appends its change-log entry in that same transaction. Revoked is permanent: a revoked ticket
# can no longer be reissued, blocked or unblocked.


async def get_ticket(session: AsyncSession, ticket_id: str, *, for_update: bool = False) -> Ticket:
    """The ticket `ticket_id`; raises NotFound."""
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    ticket = await session.scalar(query)
    if ticket is None:
        raise NotFound("ticket", ticket_id)
    return ticket


async def update_ticket(session: AsyncSession, ticket_id: str, changes: msgspec.Struct) -> Ticket:
    """Change holder name, e-mail or seat; no reissue: the token and version stay as they are.

    `changes` is a struct whose UNSET fields are left alone. Logs `ticket.updated` only when a
    value actually changed.
    """
    ticket = await get_ticket(session, ticket_id, for_update=True)
    wanted = {k: v for k, v in msgspec.structs.asdict(changes).items() if v is not msgspec.UNSET}
    changed = {k: v for k, v in wanted.items() if getattr(ticket, k) != v}
    if not changed:
        return ticket
    for name, value in changed.items():
        setattr(ticket, name, value)
    ticket.updated_at = utcnow()
    await session.flush()
    await append_changes(
        session, ticket.event_id, [(ChangeKind.TICKET_UPDATED, change_payload(ticket))]
    )
    return ticket


async def reissue_ticket(session: AsyncSession, ticket_id: str, issuer: TicketIssuer) -> Ticket:
    """Supersede the ticket's token, link and readable code: version + 1, all at once.

    The old token verifies as `revoked` (superseded `ver`), the old code matches no ticket
    (`invalid`), and the old link shows "replaced". Raises InvalidState for a revoked ticket.
    """
    ticket = await get_ticket(session, ticket_id, for_update=True)
    _refuse_revoked(ticket, "reissued")
    # The code is printed under the QR: whoever holds the old QR holds the old code, so a
    # reissue that kept it would still let the previous holder in by typing it.
    (ticket.code,) = await unused_codes(session, 1)
    ticket.version += 1
    ticket.token = issuer.sign(ticket.id, ticket.event_id, ticket.version)
    ticket.link = new_link()
    ticket.updated_at = utcnow()
    await session.flush()
    await session.execute(
        insert(TicketLink).values(link=ticket.link, ticket_id=ticket.id, version=ticket.version)
    )
    await append_changes(
        session, ticket.event_id, [(ChangeKind.TICKET_REISSUED, change_payload(ticket))]
    )
    return ticket


async def block_ticket(session: AsyncSession, ticket_id: str) -> Ticket:
    """Put the ticket on hold (reversible); blocking a blocked ticket changes nothing."""
    return await _set_blocked(session, ticket_id, blocked=True)


async def unblock_ticket(session: AsyncSession, ticket_id: str) -> Ticket:
    """Lift a hold; unblocking a ticket that is not blocked changes nothing."""
    return await _set_blocked(session, ticket_id, blocked=False)


async def _set_blocked(session: AsyncSession, ticket_id: str, *, blocked: bool) -> Ticket:
    ticket = await get_ticket(session, ticket_id, for_update=True)
    _refuse_revoked(ticket, "blocked" if blocked else "unblocked")
    if ticket.blocked == blocked:
        return ticket
    ticket.blocked = blocked
    ticket.updated_at = utcnow()
    await session.flush()
    kind = ChangeKind.TICKET_BLOCKED if blocked else ChangeKind.TICKET_UNBLOCKED
    await append_changes(session, ticket.event_id, [(kind, change_payload(ticket))])
    return ticket


def _refuse_revoked(ticket: Ticket, action: str) -> None:
    if ticket.status == TicketStatus.REVOKED:
        raise InvalidState(
            f"ticket {ticket.id} is revoked and cannot be {action}",
            id=ticket.id,
            ticket_status=ticket.status,  # not `status`: that key is the problem's HTTP status
        )
