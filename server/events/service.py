"""Events and ticket types: create, read, list, change."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from msgspec import UNSET
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import EVENT_ID_LENGTH, new_id
from protocol.sync import EventEntry, TicketTypeEntry, to_wire, utc
from server.changes.service import ChangeKind, append_changes
from server.errors import BodyInvalid, FieldError, InvalidState, NotFound
from server.events.models import Event, TicketType
from server.events.schemas import (
    Branding,
    BrandingOut,
    EventCreate,
    EventOut,
    EventPatch,
    TicketTypeCreate,
    TicketTypeOut,
    TicketTypePatch,
)
from server.schemas import check_patched_window

__all__ = [
    "create_event",
    "create_ticket_type",
    "event_entry",
    "event_out",
    "get_event",
    "get_ticket_type",
    "list_events",
    "list_ticket_types",
    "ticket_type_entry",
    "ticket_type_out",
    "ticket_type_payload",
    "update_event",
    "update_ticket_type",
]


async def create_event(session: AsyncSession, data: EventCreate) -> Event:
    event_id = new_id(EVENT_ID_LENGTH)
    event = Event(
        id=event_id,
        slug=await _free_slug(session, _slugify(data.name), event_id),
        name=data.name,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        timezone=data.timezone,
        venue=data.venue,
        languages=list(data.languages),
        branding=msgspec.to_builtins(data.branding),
        auto_send_tickets=data.auto_send_tickets,
        change_seq=0,
    )
    session.add(event)
    await session.flush()
    return event


async def get_event(session: AsyncSession, event_id: str, *, for_update: bool = False) -> Event:
    query = select(Event).where(Event.id == event_id)
    if for_update:
        query = query.with_for_update()
    event = await session.scalar(query)
    if event is None:
        raise NotFound("event", event_id)
    return event


async def list_events(session: AsyncSession, limit: int, offset: int) -> tuple[list[Event], int]:
    total = await session.scalar(select(func.count()).select_from(Event))
    rows = await session.scalars(
        select(Event).order_by(Event.starts_at, Event.id).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)


async def update_event(session: AsyncSession, event_id: str, patch: EventPatch) -> Event:
    event = await get_event(session, event_id, for_update=True)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    starts_at = changes.get("starts_at", event.starts_at)
    ends_at = changes.get("ends_at", event.ends_at)
    if ends_at is not None and ends_at <= starts_at:
        raise BodyInvalid([FieldError("ends_at", "ends_at must be after starts_at")])
    before = event_entry(event)
    if "languages" in changes:
        changes["languages"] = list(changes["languages"])
    if "branding" in changes:  # a JSON column: plain values
        changes["branding"] = msgspec.to_builtins(changes["branding"])
    for name, value in changes.items():
        setattr(event, name, value)
    await session.flush()
    after = event_entry(event)
    if after != before:  # doors show the event's name, times and venue
        payload = {"event": to_wire(after)}
        await append_changes(session, event_id, [(ChangeKind.EVENT_UPDATED, payload)])
    return event


def event_entry(event: Event) -> EventEntry:
    """The event as doors see it, in the snapshot and the change log."""
    return EventEntry(
        id=event.id,
        name=event.name,
        starts_at=utc(event.starts_at),
        ends_at=None if event.ends_at is None else utc(event.ends_at),
        timezone=event.timezone,
        venue=event.venue,
    )


async def create_ticket_type(
    session: AsyncSession, event_id: str, data: TicketTypeCreate
) -> TicketType:
    await get_event(session, event_id)
    ticket_type = TicketType(
        id=new_id(),
        event_id=event_id,
        name=data.name,
        persons=data.persons,
        capacity=data.capacity,
        confirmed_count=0,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
    )
    session.add(ticket_type)
    await session.flush()
    # Doors must know a type before its first ticket reaches them, or they could not decide on
    # it offline (its persons and window are the type's).
    await append_changes(
        session, event_id, [(ChangeKind.TICKET_TYPE_CREATED, ticket_type_payload(ticket_type))]
    )
    return ticket_type


async def get_ticket_type(session: AsyncSession, event_id: str, ticket_type_id: str) -> TicketType:
    ticket_type = await session.scalar(
        select(TicketType).where(TicketType.id == ticket_type_id, TicketType.event_id == event_id)
    )
    if ticket_type is None:
        raise NotFound("ticket type", ticket_type_id)
    return ticket_type


async def update_ticket_type(
    session: AsyncSession, event_id: str, ticket_type_id: str, patch: TicketTypePatch
) -> TicketType:
    """Change a ticket type; capacity may not drop below the tickets already confirmed.

    Persons are fixed once tickets exist (they are printed on them), so they are not patchable.
    """
    ticket_type = await get_ticket_type(session, event_id, ticket_type_id)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    capacity = changes.get("capacity", ticket_type.capacity)
    if capacity is not None and capacity < ticket_type.confirmed_count:
        raise InvalidState(
            f"capacity {capacity} is below the {ticket_type.confirmed_count} tickets confirmed",
            id=ticket_type.id,
            confirmed=ticket_type.confirmed_count,
        )
    check_patched_window(changes, ticket_type)
    before = ticket_type_entry(ticket_type)
    for name, value in changes.items():
        setattr(ticket_type, name, value)
    await session.flush()
    if ticket_type_entry(ticket_type) != before:  # a capacity change is nothing to the doors
        await append_changes(
            session, event_id, [(ChangeKind.TICKET_TYPE_UPDATED, ticket_type_payload(ticket_type))]
        )
    return ticket_type


def ticket_type_entry(ticket_type: TicketType) -> TicketTypeEntry:
    """What doors need of a ticket type, in the snapshot and the change log."""
    return TicketTypeEntry(
        id=ticket_type.id,
        name=ticket_type.name,
        persons=ticket_type.persons,
        valid_from=None if ticket_type.valid_from is None else utc(ticket_type.valid_from),
        valid_until=None if ticket_type.valid_until is None else utc(ticket_type.valid_until),
    )


def ticket_type_payload(ticket_type: TicketType) -> dict[str, object]:
    """The payload of `ticket_type.created` and `ticket_type.updated`: the whole type."""
    return {"ticket_type": to_wire(ticket_type_entry(ticket_type))}


async def list_ticket_types(session: AsyncSession, event_id: str) -> list[TicketType]:
    await get_event(session, event_id)
    rows = await session.scalars(
        select(TicketType)
        .where(TicketType.event_id == event_id)
        .order_by(TicketType.created_at, TicketType.id)
    )
    return list(rows)


def in_zone(moment: datetime | None, zone: str) -> datetime | None:
    """`moment` shown in the event's zone: the offset tells the wall-clock time at the venue."""
    return None if moment is None else moment.astimezone(ZoneInfo(zone))


def event_out(event: Event, images: Mapping[str, str] | None = None) -> EventOut:
    """The event's answer; `images` the public path of each image it has, by kind
    (`branding.service.event_images`)."""
    stored = msgspec.convert(event.branding or {}, Branding)
    images = images or {}
    return EventOut(
        id=event.id,
        slug=event.slug,
        name=event.name,
        starts_at=in_zone(event.starts_at, event.timezone),  # type: ignore[arg-type]
        ends_at=in_zone(event.ends_at, event.timezone),
        timezone=event.timezone,
        venue=event.venue,
        languages=list(event.languages),
        branding=BrandingOut(
            sender=stored.sender,
            colour=stored.colour,
            logo=images.get("logo", UNSET),
            banner=images.get("banner", UNSET),
        ),
        auto_send_tickets=event.auto_send_tickets,
        created_at=event.created_at,
        updated_at=event.updated_at,
    )


def ticket_type_out(ticket_type: TicketType) -> TicketTypeOut:
    capacity = ticket_type.capacity
    return TicketTypeOut(
        id=ticket_type.id,
        event_id=ticket_type.event_id,
        name=ticket_type.name,
        persons=ticket_type.persons,
        capacity=capacity,
        confirmed=ticket_type.confirmed_count,
        remaining=None if capacity is None else max(capacity - ticket_type.confirmed_count, 0),
        valid_from=None if ticket_type.valid_from is None else utc(ticket_type.valid_from),
        valid_until=None if ticket_type.valid_until is None else utc(ticket_type.valid_until),
    )


def _slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return slug or "event"


async def _free_slug(session: AsyncSession, base: str, event_id: str) -> str:
    taken = await session.scalar(select(func.count()).where(Event.slug == base))
    return base if not taken else f"{base}-{event_id.lower()[:6]}"
