"""Reading the database behind the API, to check what a request wrote (and did not write)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.changes.models import Change
from server.config import Settings
from server.db import Database
from server.events.models import Event
from server.tickets.models import TicketLink


async def changes_of(settings: Settings, event_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    """The event's change log as (seq, kind, payload), in seq order."""
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            rows = await session.scalars(
                select(Change).where(Change.event_id == event_id).order_by(Change.seq)
            )
            return [(c.seq, c.kind, c.payload) for c in rows]
    finally:
        await database.dispose()


async def change_head(settings: Settings, event_id: str) -> int:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            return int(await session.scalar(select(Event.change_seq).where(Event.id == event_id)))
    finally:
        await database.dispose()


async def links_of(settings: Settings, ticket_id: str) -> list[tuple[str, int]]:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            rows = await session.execute(
                select(TicketLink.link, TicketLink.version)
                .where(TicketLink.ticket_id == ticket_id)
                .order_by(TicketLink.version)
            )
            return [(link, version) for link, version in rows]
    finally:
        await database.dispose()
