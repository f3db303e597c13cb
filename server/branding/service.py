"""Storing, removing and finding an event's logo and banner."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.branding.images import KINDS, CleanImage
from server.branding.models import EventImage
from server.errors import NotFound
from server.events.service import get_event

__all__ = [
    "event_images",
    "find_image",
    "find_image_head",
    "image_path",
    "images_of_events",
    "put_image",
    "remove_image",
]


def image_path(image: EventImage) -> str:
    """The image's public path: its content hash in the name, so it may be cached forever."""
    return f"/brand/{image.event_id}/{image.kind}-{image.sha256[:20]}.{image.extension}"


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFound("branding image", kind)
    return kind


async def put_image(
    session: AsyncSession, event_id: str, kind: str, clean: CleanImage
) -> EventImage:
    """Replace the event's `kind` image by `clean`."""
    await get_event(session, event_id, for_update=True)
    kind = _kind(kind)
    await session.execute(
        delete(EventImage).where(EventImage.event_id == event_id, EventImage.kind == kind)
    )
    image = EventImage(
        event_id=event_id,
        kind=kind,
        sha256=clean.sha256,
        content_type=clean.content_type,
        extension=clean.extension,
        width=clean.width,
        height=clean.height,
        data=clean.data,
    )
    session.add(image)
    await session.flush()
    return image


async def remove_image(session: AsyncSession, event_id: str, kind: str) -> None:
    """Remove the event's `kind` image; 404 when it has none."""
    await get_event(session, event_id, for_update=True)
    result = await session.execute(
        delete(EventImage).where(EventImage.event_id == event_id, EventImage.kind == _kind(kind))
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("branding image", kind)


async def event_images(session: AsyncSession, event_id: str) -> dict[str, str]:
    """The public path of each image the event has, by kind (without their bytes)."""
    return (await images_of_events(session, [event_id])).get(event_id, {})


async def images_of_events(
    session: AsyncSession, event_ids: Sequence[str]
) -> dict[str, dict[str, str]]:
    """`event_images` of several events in one query, by event id (absent: no image)."""
    if not event_ids:
        return {}
    rows = await session.execute(
        select(EventImage.kind, EventImage.event_id, EventImage.sha256, EventImage.extension).where(
            EventImage.event_id.in_(list(event_ids))
        )
    )
    found: dict[str, dict[str, str]] = {}
    for kind, eid, sha, ext in rows.all():
        found.setdefault(eid, {})[kind] = f"/brand/{eid}/{kind}-{sha[:20]}.{ext}"
    return found


async def find_image(session: AsyncSession, event_id: str, name: str) -> EventImage:
    """The image named `name` (as image_path writes it) of this event, else 404."""
    kind = name.partition("-")[0]
    image = await session.get(EventImage, (event_id, kind)) if kind in KINDS else None
    if image is None or name != image_path(image).rsplit("/", 1)[1]:
        raise NotFound("branding image", name)
    return image


async def find_image_head(session: AsyncSession, event_id: str, name: str) -> tuple[str, int]:
    """The content type and byte length of the image `find_image` would answer, read without
    its bytes (a HEAD request); NotFound likewise."""
    kind = name.partition("-")[0]
    row = None
    if kind in KINDS:
        found = await session.execute(
            select(
                EventImage.sha256,
                EventImage.extension,
                EventImage.content_type,
                func.length(EventImage.data),
            ).where(EventImage.event_id == event_id, EventImage.kind == kind)
        )
        row = found.first()
    if row is None or name != f"{kind}-{row[0][:20]}.{row[1]}":
        raise NotFound("branding image", name)
    return row[2], int(row[3])
