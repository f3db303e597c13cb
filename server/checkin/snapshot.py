"""The scanner snapshot: everything a door needs to decide offline, as of one change-log `seq`.

Read in ONE transaction whose reads all see the same state (`snapshot_session`: REPEATABLE READ
on PostgreSQL; on SQLite a read transaction in WAL mode is a snapshot), with the event's head read
inside it, so the snapshot is exactly the state after change `seq` and the device follows the
change log from there without gap or overlap.

Format: a msgpack map `{event, seq, keys, lists, tickets, revoked, blocked, checkins}`; times are
ISO 8601 strings; compressed with zstd or gzip (`Content-Encoding`).
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
import zstandard
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.token import public_jwk
from server.changes.service import head
from server.checkin.models import CheckinList, Presence
from server.checkin.service import list_payload
from server.db import Database
from server.events.models import Event, TicketType
from server.keys.models import SigningKey
from server.keys.service import decode_public_key
from server.tickets.models import Ticket, TicketStatus

__all__ = ["build_snapshot", "compress", "snapshot_session"]

_encoder = msgspec.msgpack.Encoder()


@asynccontextmanager
async def snapshot_session(database: Database) -> AsyncIterator[AsyncSession]:
    """A read-only transaction in which every read sees one consistent state."""
    if database.is_sqlite:
        async with database.transaction(read_only=True) as session:
            yield session
        return
    engine = database.engine.execution_options(isolation_level="REPEATABLE READ")
    async with database.sessions(bind=engine) as session, session.begin():
        yield session


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def build_snapshot(session: AsyncSession, event_id: str) -> dict[str, Any]:
    """The snapshot of `event_id` as a plain map (see the module docstring)."""
    seq = await head(session, event_id)
    event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
    keys = await session.execute(
        select(SigningKey.kid, SigningKey.public_key).where(SigningKey.retired_at.is_(None))
    )
    lists = await session.scalars(
        select(CheckinList).where(CheckinList.event_id == event_id).order_by(CheckinList.id)
    )
    tickets = await _tickets(session, event_id)
    return {
        "event": {
            "id": event.id,
            "name": event.name,
            "starts_at": _iso(event.starts_at),
            "ends_at": _iso(event.ends_at),
            "timezone": event.timezone,
            "venue": event.venue,
        },
        "seq": seq,
        "keys": [public_jwk(kid, decode_public_key(public)) for kid, public in keys],
        "lists": [list_payload(row) for row in lists],
        "tickets": tickets,
        "revoked": [t["id"] for t in tickets if t["status"] != TicketStatus.VALID],
        "blocked": [t["id"] for t in tickets if t["blocked"]],
        "checkins": await _checkins(session, event_id),
    }


async def _tickets(session: AsyncSession, event_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(
            Ticket.id,
            Ticket.code,
            Ticket.ticket_type_id,
            TicketType.name,
            Ticket.holder_name,
            Ticket.seat,
            Ticket.version,
            Ticket.status,
            Ticket.blocked,
            TicketType.persons,
            TicketType.valid_from,
            TicketType.valid_until,
        )
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .where(Ticket.event_id == event_id)
        .order_by(Ticket.id)
    )
    return [
        {
            "id": r.id,
            "code": r.code,
            "ticket_type_id": r.ticket_type_id,
            "ticket_type": r.name,
            "holder_name": r.holder_name,
            "seat": r.seat,
            "version": r.version,
            "status": r.status,
            "blocked": r.blocked,
            "persons": r.persons,
            "valid_from": _iso(r.valid_from),
            "valid_until": _iso(r.valid_until),
        }
        for r in rows
    ]


async def _checkins(session: AsyncSession, event_id: str) -> list[dict[str, Any]]:
    """The folded presence of every ticket x list that has one."""
    rows = await session.execute(
        select(Presence)
        .join(CheckinList, CheckinList.id == Presence.list_id)
        .where(CheckinList.event_id == event_id)
        .order_by(Presence.ticket_id, Presence.list_id)
    )
    return [
        {
            "ticket_id": p.ticket_id,
            "list_id": p.list_id,
            "entries": p.entries,
            "inside": p.inside,
            "first_scan_id": p.first_scan_id,
            "first_at": _iso(p.first_at),
            "first_gate": p.first_gate,
            "first_device": p.first_device,
        }
        for p in rows.scalars()
    ]


def compress(snapshot: dict[str, Any], accept_encoding: str) -> tuple[bytes, str]:
    """The msgpack bytes compressed with zstd when the client accepts it, else gzip."""
    raw = _encoder.encode(snapshot)
    accepted = {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}
    if "zstd" in accepted:
        return zstandard.ZstdCompressor(level=3).compress(raw), "zstd"
    return gzip.compress(raw, compresslevel=5), "gzip"
