"""What every page under an event (or a contact list) starts with, as Litestar dependencies, so
a handler states only what differs.

`page` (EventPage) is the event of the path and, on a POST, its form, after the checks every
change makes, in this order: the form (same site, CSRF: web.read_form), an editor's role (403),
then the event (404). `campaign`, `booking` and `device` are the object of the path under that
event, found only under its own event (another event's is not found), after `page`: so a
forged form or a read-only user is refused before anything is looked up. Under a contact
list, `page` is a ListPage: the same for the list of the path (`list_dependencies`).

Each provider depends on the one before it, and `viewer` on the session: Litestar resolves
independent dependencies concurrently, and they share the request's one database session.
A GET page that only editors may see (an edit form) still says `page.viewer.require_edit()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.models import Booking
from server.campaigns.models import Campaign
from server.checkin import service as checkin
from server.checkin.models import Device
from server.console import booking_actions as actions
from server.console.signin import Viewer, ViewerDep, provide_viewer
from server.console.web import ConsolePageError, Form, read_form
from server.contacts import service as contacts
from server.errors import NotFound
from server.events import service as events
from server.events.models import Event
from server.http import DbSession

__all__ = [
    "BookingDep",
    "CampaignDep",
    "DeviceDep",
    "EventPage",
    "EventPageDep",
    "ListPage",
    "ListPageDep",
    "campaign_of",
    "dependencies",
    "list_dependencies",
]

_SAFE = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class EventPage:
    """The viewer, the path's event and, on a POST, the checked form (empty on a GET)."""

    viewer: Viewer
    event: Event
    form: Form


@dataclass(frozen=True)
class ListPage:
    """The viewer, the path's contact list and, on a POST, the checked form."""

    viewer: Viewer
    contact_list: Any
    form: Form


async def _change_form(request: Request[Any, Any, Any], viewer: Viewer) -> Form:
    """A POST's form after the same-site and CSRF checks and the editor's role; a GET's none."""
    if request.method in _SAFE:
        return Form([])
    form = await read_form(request, viewer.csrf)
    viewer.require_edit()
    return form


async def provide_event_page(
    request: Request[Any, Any, Any],
    viewer: ViewerDep,
    db_session: DbSession,
    event_id: FromPath[str],
) -> EventPage:
    form = await _change_form(request, viewer)
    return EventPage(viewer, await events.get_event(db_session, event_id), form)


async def provide_list_page(
    request: Request[Any, Any, Any],
    viewer: ViewerDep,
    db_session: DbSession,
    list_id: FromPath[str],
) -> ListPage:
    form = await _change_form(request, viewer)
    return ListPage(viewer, await contacts.get_list(db_session, list_id), form)


async def campaign_of(session: AsyncSession, event_id: str, campaign_id: str) -> Campaign:
    """The campaign, only under its own event's path (another event's is not found)."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None or campaign.event_id != event_id:
        raise ConsolePageError(404, "not_found", "not_found")
    return campaign


async def provide_campaign(
    page: EventPageDep, db_session: DbSession, campaign_id: FromPath[str]
) -> Campaign:
    return await campaign_of(db_session, page.event.id, campaign_id)


async def provide_booking(
    page: EventPageDep, db_session: DbSession, booking_id: FromPath[str]
) -> Booking:
    return await actions.booking_of_event(db_session, page.event.id, booking_id)


async def provide_device(
    page: EventPageDep, db_session: DbSession, device_id: FromPath[str]
) -> Device:
    device = await checkin.get_device(db_session, device_id)
    if device.event_id != page.event.id:
        raise NotFound("device", device_id)
    return device


EventPageDep = NamedDependency[EventPage]
ListPageDep = NamedDependency[ListPage]
CampaignDep = NamedDependency[Campaign]
BookingDep = NamedDependency[Booking]
DeviceDep = NamedDependency[Device]

_PROVIDERS = {
    "viewer": provide_viewer,
    "page": provide_event_page,
    "campaign": provide_campaign,
    "booking": provide_booking,
    "device": provide_device,
}


def dependencies(*names: str) -> dict[str, Provide]:
    """An event's controller's `dependencies`: `viewer` and the named ones of this module."""
    return {name: Provide(_PROVIDERS[name]) for name in ("viewer", *names)}


def list_dependencies() -> dict[str, Provide]:
    """A contact list's controller's `dependencies`: `viewer`, and `page` as a ListPage."""
    return {"viewer": Provide(provide_viewer), "page": Provide(provide_list_page)}
