from __future__ import annotations

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody

from server.branding.service import event_images, images_of_events
from server.events import service
from server.events.schemas import (
    EventCreate,
    EventOut,
    EventPatch,
    TicketTypeCreate,
    TicketTypeOut,
    TicketTypePatch,
)
from server.http import Body, DbSession, Limit, Offset, Page, created, organiser_guard, page

__all__ = ["EventController"]


class EventController(Controller):
    path = "/api/v1/events"
    tags = ["events"]
    guards = [organiser_guard]
    security = [{"organiser": []}]

    @post("/", dto=Body[EventCreate], return_dto=None, summary="Create an event")
    async def create_event(
        self, request: Request, data: JSONBody[EventCreate], db_session: DbSession
    ) -> Response[EventOut]:
        event = await service.create_event(db_session, data)
        return created(service.event_out(event, {}), request, f"/api/v1/events/{event.id}")

    @get("/", summary="List events")
    async def list_events(
        self, db_session: DbSession, limit: Limit = 50, offset: Offset = 0
    ) -> Page[EventOut]:
        events, total = await service.list_events(db_session, limit, offset)
        images = await images_of_events(db_session, [e.id for e in events])
        return page([service.event_out(e, images.get(e.id)) for e in events], total, limit, offset)

    @get("/{event_id:str}", summary="Read an event")
    async def get_event(self, event_id: FromPath[str], db_session: DbSession) -> EventOut:
        event = await service.get_event(db_session, event_id)
        return service.event_out(event, await event_images(db_session, event_id))

    @patch("/{event_id:str}", dto=Body[EventPatch], return_dto=None, summary="Change an event")
    async def update_event(
        self, event_id: FromPath[str], data: JSONBody[EventPatch], db_session: DbSession
    ) -> EventOut:
        event = await service.update_event(db_session, event_id, data)
        return service.event_out(event, await event_images(db_session, event_id))

    @post(
        "/{event_id:str}/ticket-types",
        dto=Body[TicketTypeCreate],
        return_dto=None,
        summary="Create a ticket type",
    )
    async def create_ticket_type(
        self,
        request: Request,
        event_id: FromPath[str],
        data: JSONBody[TicketTypeCreate],
        db_session: DbSession,
    ) -> Response[TicketTypeOut]:
        ticket_type = await service.create_ticket_type(db_session, event_id, data)
        location = f"/api/v1/events/{event_id}/ticket-types/{ticket_type.id}"
        return created(service.ticket_type_out(ticket_type), request, location)

    @get("/{event_id:str}/ticket-types", summary="List an event's ticket types")
    async def list_ticket_types(
        self, event_id: FromPath[str], db_session: DbSession
    ) -> list[TicketTypeOut]:
        types = await service.list_ticket_types(db_session, event_id)
        return [service.ticket_type_out(t) for t in types]

    @get("/{event_id:str}/ticket-types/{ticket_type_id:str}", summary="Read a ticket type")
    async def get_ticket_type(
        self, event_id: FromPath[str], ticket_type_id: FromPath[str], db_session: DbSession
    ) -> TicketTypeOut:
        ticket_type = await service.get_ticket_type(db_session, event_id, ticket_type_id)
        return service.ticket_type_out(ticket_type)

    @patch(
        "/{event_id:str}/ticket-types/{ticket_type_id:str}",
        dto=Body[TicketTypePatch],
        return_dto=None,
        summary="Change a ticket type (name, capacity, validity)",
    )
    async def update_ticket_type(
        self,
        event_id: FromPath[str],
        ticket_type_id: FromPath[str],
        data: JSONBody[TicketTypePatch],
        db_session: DbSession,
    ) -> TicketTypeOut:
        ticket_type = await service.update_ticket_type(db_session, event_id, ticket_type_id, data)
        return service.ticket_type_out(ticket_type)
