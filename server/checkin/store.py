"""The check-in queries the decision needs, each one round trip for a whole batch of scans.

List rules and verifying keys change rarely and are read on every scan, so each process keeps
them for `CACHE_TTL` seconds per database (a key retirement or list change reaches every instance
within that time, as with `KeyRing`). Ticket state and presence are never cached: they are what
the decision locks.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, Table, and_, bindparam, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.messages import TicketInfo
from protocol.rules import FirstEntry, ListRules, Presence, TicketState
from server.checkin.models import CheckinList, PresenceRow, ScanRow
from server.db.fast_insert import FastInsert
from server.events.models import TicketType
from server.keys.models import SigningKey
from server.keys.service import decode_public_key
from server.tickets.models import Ticket, TicketStatus

__all__ = [
    "CACHE_TTL",
    "DeviceContext",
    "TicketRow",
    "insert_new_scans",
    "insert_scans",
    "insert_scans_on_driver",
    "list_rules",
    "list_rules_of",
    "load_tickets_and_presence",
    "lock_presence",
    "presence_row",
    "public_keys",
    "save_presence",
    "save_presence_on_driver",
    "stored_scans",
    "verifying_keys",
]

CACHE_TTL = 1.0

# The hot path runs Core statements on the tables: ORM loading and bulk-insert bookkeeping cost
# more Python time than the queries themselves (see docs/performance.md "Check-in").
_SCAN = cast(Table, ScanRow.__table__)
_PRESENCE = cast(Table, PresenceRow.__table__)


@dataclass(frozen=True)
class DeviceContext:
    device_id: str
    event_id: str
    name: str
    gate: str | None


@dataclass(frozen=True)
class TicketRow:
    state: TicketState
    info: TicketInfo
    token: str  # the ticket's current token, as issued (protocol.token: `issued`)


@dataclass
class _Cache:
    keys: dict[str, Ed25519PublicKey] | None = None
    keys_at: float = 0.0
    lists: dict[str, tuple[ListRules, float]] = field(default_factory=dict)


# Keyed by the engine's pool: one cache per database, gone with its engine.
_caches: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()


def _cache(session: AsyncSession) -> _Cache:
    pool = session.get_bind().pool  # type: ignore[union-attr]
    cache = _caches.get(pool)
    if cache is None:
        cache = _caches[pool] = _Cache()
    return cache


async def verifying_keys(session: AsyncSession) -> dict[str, Ed25519PublicKey]:
    """The non-retired public keys by kid, at most `CACHE_TTL` seconds old."""
    cache, now = _cache(session), time.monotonic()
    if cache.keys is None or now - cache.keys_at > CACHE_TTL:
        cache.keys = await public_keys(session)
        cache.keys_at = now
    return cache.keys


async def public_keys(session: AsyncSession) -> dict[str, Ed25519PublicKey]:
    """The non-retired public keys by kid, read now in the caller's transaction (the snapshot
    needs them as of its own `seq`); the one query of them."""
    rows = await session.execute(
        select(SigningKey.kid, SigningKey.public_key)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.kid)
    )
    return {kid: decode_public_key(public) for kid, public in rows}


def list_rules_of(row: CheckinList) -> ListRules:
    types = None if row.ticket_type_ids is None else frozenset(row.ticket_type_ids)
    return ListRules(
        id=row.id,
        event_id=row.event_id,
        ticket_type_ids=types,
        max_entries=row.max_entries,
        allow_reentry=row.allow_reentry,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


async def list_rules(session: AsyncSession, list_ids: Collection[str]) -> dict[str, ListRules]:
    """The rules of the lists that exist among `list_ids`, at most `CACHE_TTL` seconds old."""
    cache, now = _cache(session), time.monotonic()
    found = {i: cache.lists[i][0] for i in list_ids if i in cache.lists}
    found = {i: r for i, r in found.items() if now - cache.lists[i][1] <= CACHE_TTL}
    missing = [i for i in list_ids if i not in found]
    if missing:
        for row in await session.scalars(select(CheckinList).where(CheckinList.id.in_(missing))):
            rules = list_rules_of(row)
            cache.lists[row.id] = (rules, now)
            found[row.id] = rules
    return found


async def stored_scans(
    session: AsyncSession, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """The stored scans among `keys` (device_id, scan_id), as rows (Core: no ORM objects on the
    hot path). A scan_id names a scan only together with its device."""
    if not keys:
        return {}
    connection = await session.connection()
    key = tuple_(_SCAN.c.device_id, _SCAN.c.scan_id)
    rows = await connection.execute(select(_SCAN).where(key.in_(sorted(set(keys)))))
    return {(row.device_id, row.scan_id): row for row in rows}


async def load_tickets_and_presence(
    session: AsyncSession,
    ticket_ids: Collection[str],
    codes: Collection[str],
    list_ids: Collection[str],
) -> tuple[dict[str, TicketRow], dict[tuple[str, str], Presence]]:
    """Tickets with their type (by id and by code) and their stored presence on `list_ids`, in
    one query. The presence is read without a row lock: only for SQLite, whose IMMEDIATE
    transaction already holds the database's write lock (one statement fewer per batch)."""
    if not ticket_ids and not codes:
        return {}, {}
    query, values = _TICKETS, {"ticket_ids": list(ticket_ids), "codes": list(codes)}
    if list_ids:
        query, values["list_ids"] = _TICKETS_WITH_PRESENCE, list(list_ids)
    found: dict[str, TicketRow] = {}
    seen: dict[tuple[str, str], Presence] = {}
    connection = await session.connection()
    for row in await connection.execute(query, values):
        if list_ids and row.presence_list is not None:
            seen[(row.id, row.presence_list)] = presence_row(row)
        if row.id not in found:
            found[row.id] = found[row.code] = _ticket_row(row)
    return found, seen


def _tickets_query(*, with_presence: bool) -> Select[Any]:
    """The SELECT of `load_tickets_and_presence`, built once with expanding IN parameters: a
    statement built per batch cost its construction and its cache key every time (SQLAlchemy
    memoizes the key on the statement object)."""
    ticket, kind, presence = Ticket.__table__.c, TicketType.__table__.c, _PRESENCE.c
    query = (
        select(
            ticket.id,
            ticket.event_id,
            ticket.ticket_type_id,
            ticket.version,
            ticket.status,
            ticket.blocked,
            ticket.code,
            ticket.token,
            ticket.holder_name,
            ticket.seat,
            kind.name.label("type_name"),
            kind.persons,
            kind.valid_from,
            kind.valid_until,
        )
        .join_from(Ticket.__table__, TicketType.__table__, kind.id == ticket.ticket_type_id)
        .where(
            or_(
                ticket.id.in_(bindparam("ticket_ids", expanding=True)),
                ticket.code.in_(bindparam("codes", expanding=True)),
            )
        )
    )
    if not with_presence:
        return query
    return query.add_columns(
        presence.list_id.label("presence_list"),
        presence.entries,
        presence.inside,
        presence.first_scan_id,
        presence.first_at,
        presence.first_gate,
        presence.first_device,
    ).outerjoin(
        _PRESENCE,
        and_(
            presence.ticket_id == ticket.id,
            presence.list_id.in_(bindparam("list_ids", expanding=True)),
        ),
    )


_TICKETS = _tickets_query(with_presence=False)
_TICKETS_WITH_PRESENCE = _tickets_query(with_presence=True)


def _ticket_row(row: Any) -> TicketRow:
    state = TicketState(
        id=row.id,
        event_id=row.event_id,
        ticket_type_id=row.ticket_type_id,
        version=row.version,
        revoked=row.status != TicketStatus.VALID,
        blocked=row.blocked,
        persons=row.persons,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )
    info = TicketInfo(
        id=row.id,
        code=row.code,
        holder_name=row.holder_name,
        ticket_type=row.type_name,
        seat=row.seat,
        persons=row.persons,
    )
    return TicketRow(state, info, row.token)


def presence_row(row: Any) -> Presence:
    """The rules' presence from a stored presence row (ORM or Core)."""
    first = None
    if row.first_at is not None:
        first = FirstEntry(row.first_at, row.first_gate, row.first_device, row.first_scan_id)
    return Presence(row.entries, row.inside, first)


async def lock_presence(
    session: AsyncSession, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], Presence]:
    """The presence of each ticket x list in `pairs`, locked until the transaction ends.

    PostgreSQL: create missing rows, then SELECT ... FOR UPDATE in `pairs` order (sorted by the
    caller, so two transactions never wait on each other in a cycle). SQLite: the IMMEDIATE
    transaction already holds the database's write lock, so a plain read is enough.
    """
    if not pairs:
        return {}
    connection = await session.connection()
    query = select(_PRESENCE).where(tuple_(_PRESENCE.c.ticket_id, _PRESENCE.c.list_id).in_(pairs))
    if connection.dialect.name != "sqlite":
        await connection.execute(
            pg_insert(_PRESENCE).on_conflict_do_nothing(),
            [{"ticket_id": t, "list_id": x, "entries": 0, "inside": False} for t, x in pairs],
        )
        query = query.order_by(_PRESENCE.c.ticket_id, _PRESENCE.c.list_id).with_for_update()
    found = {(t, x): Presence() for t, x in pairs}
    for row in await connection.execute(query):
        found[(row.ticket_id, row.list_id)] = presence_row(row)
    return found


async def insert_scans(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store new scans; a (device, scan_id) already stored is left as it is (exactly once)."""
    if not rows:
        return
    connection = await session.connection()
    dialect_insert = sqlite_insert if connection.dialect.name == "sqlite" else pg_insert
    await connection.execute(
        dialect_insert(_SCAN).on_conflict_do_nothing(index_elements=["device_id", "scan_id"]), rows
    )


async def insert_new_scans(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Store new scans like `insert_scans`; returns how many rows were inserted (fewer than
    `rows` when some (device, scan_id) was already stored)."""
    if not rows:
        return 0
    connection = await session.connection()
    dialect_insert = sqlite_insert if connection.dialect.name == "sqlite" else pg_insert
    statement = (
        dialect_insert(_SCAN)
        .on_conflict_do_nothing(index_elements=["device_id", "scan_id"])
        .returning(_SCAN.c.scan_id)
    )
    return len((await connection.execute(statement, rows)).all())


async def save_presence(session: AsyncSession, rows: Mapping[tuple[str, str], Presence]) -> None:
    """Write the folded state of each ticket x list (insert or replace)."""
    if not rows:
        return
    values = [_presence_values(key, row) for key, row in rows.items()]
    connection = await session.connection()
    dialect_insert = sqlite_insert if connection.dialect.name == "sqlite" else pg_insert
    statement = dialect_insert(_PRESENCE)
    columns = ("entries", "inside", "first_scan_id", "first_at", "first_gate", "first_device")
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["ticket_id", "list_id"],
            set_={name: statement.excluded[name] for name in columns},
        ),
        values,
    )


# SQLite's write of a redeem batch in one driver hop (server.db.fast_insert.on_driver_thread):
# the statements above, compiled once, their values converted by the columns' bind processors.
_SCAN_COLUMNS = (
    "scan_id", "event_id", "device_id", "list_id", "ticket_id", "code", "direction",
    "scanned_at", "received_at", "accepted", "reason", "offline", "forced", "gate", "entries",
    "seq", "annulled",
)  # fmt: skip
_PRESENCE_COLUMNS = (
    "ticket_id", "list_id", "entries", "inside", "first_scan_id", "first_at", "first_gate",
    "first_device",
)  # fmt: skip


@lru_cache(maxsize=2)
def _sqlite_writes(dialect: Dialect) -> tuple[FastInsert, FastInsert]:
    scans = sqlite_insert(_SCAN).on_conflict_do_nothing(index_elements=["device_id", "scan_id"])
    presence = sqlite_insert(_PRESENCE)
    presence = presence.on_conflict_do_update(
        index_elements=["ticket_id", "list_id"],
        set_={name: presence.excluded[name] for name in _PRESENCE_COLUMNS[2:]},
    )
    return (
        FastInsert(_SCAN, _SCAN_COLUMNS, dialect, scans),
        FastInsert(_PRESENCE, _PRESENCE_COLUMNS, dialect, presence),
    )


def insert_scans_on_driver(driver: Any, dialect: Dialect, rows: list[dict[str, Any]]) -> int:
    """`insert_new_scans` on SQLite's driver connection (its thread): how many were new."""
    if not rows:
        return 0
    scans, _ = _sqlite_writes(dialect)
    cursor = driver.executemany(scans.sql, scans.values(rows))
    inserted = int(cursor.rowcount)  # ignored conflicts change no row
    cursor.close()
    return inserted


def save_presence_on_driver(
    driver: Any, dialect: Dialect, rows: Mapping[tuple[str, str], Presence]
) -> None:
    """`save_presence` on SQLite's driver connection (its thread)."""
    if not rows:
        return
    _, presence = _sqlite_writes(dialect)
    values = [_presence_values(key, row) for key, row in rows.items()]
    driver.executemany(presence.sql, presence.values(values)).close()


def _presence_values(key: tuple[str, str], presence: Presence) -> dict[str, Any]:
    first = presence.first_entry
    return {
        "ticket_id": key[0],
        "list_id": key[1],
        "entries": presence.entries,
        "inside": presence.inside,
        "first_scan_id": first.scan_id if first else None,
        "first_at": first.at if first else None,
        "first_gate": first.gate if first else None,
        "first_device": first.device_id if first else None,
    }
