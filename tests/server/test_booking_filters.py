"""The bookings list filtered by ticket type and by checked in or not, in the service's query:
the total and the pages count only the bookings that match (SQLite and PostgreSQL)."""

from __future__ import annotations

from server.bookings import service
from server.db import Database
from tests.factories import create_booking, create_event, create_ticket_type
from tests.server.checkin.helpers import create_list, paired_door, redeem


async def _listed(settings, event_id: str, *, limit: int = 50, **filters) -> tuple[list[str], int]:
    database = Database(settings.database_url)
    try:
        async with database.transaction(read_only=True) as session:
            rows, total = await service.list_bookings(
                session, event_id, status=None, q=None, limit=limit, offset=0, **filters
            )
            return [b.id for b in rows], total
    finally:
        await database.dispose()


async def test_bookings_filtered_by_ticket_type_and_by_checked_in(api, settings):
    event = await create_event(api)
    stalls = await create_ticket_type(api, event["id"], name="Stalls")
    balcony = await create_ticket_type(api, event["id"], name="Balcony")
    entered = await create_booking(api, event["id"], stalls["id"], 2, confirm=True)
    away = await create_booking(api, event["id"], balcony["id"], 1, confirm=True)
    pending = await create_booking(api, event["id"], stalls["id"], 1)
    checkin_list = await create_list(api, event["id"])
    door = await paired_door(api, event["id"])
    scanned = await redeem(api, door, entered["tickets"][0]["code"], checkin_list["id"])
    assert scanned.json()["verdict"] == "accepted"

    assert await _listed(settings, event["id"], ticket_type_id=stalls["id"]) == (
        [entered["id"], pending["id"]],
        2,
    )
    assert await _listed(settings, event["id"], ticket_type_id=balcony["id"]) == ([away["id"]], 1)
    assert await _listed(settings, event["id"], checked_in=True) == ([entered["id"]], 1)
    assert await _listed(settings, event["id"], checked_in=False) == (
        [away["id"], pending["id"]],
        2,
    )
    both = await _listed(settings, event["id"], ticket_type_id=stalls["id"], checked_in=False)
    assert both == ([pending["id"]], 1)
    assert await _listed(settings, event["id"], limit=1, checked_in=False) == ([away["id"]], 2)
    assert await _listed(settings, event["id"], ticket_type_id="NOPE") == ([], 0)
