"""Organiser ticket API: read, change without reissue, reissue, block, unblock."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody

from server.http import Body, DbSession, Issuer, organiser_guard
from server.tickets import service
from server.tickets.schemas import TicketOut, TicketPatch, ticket_out

__all__ = ["TicketController"]


class TicketController(Controller):
    path = "/api/v1/tickets"
    tags = ["tickets"]
    guards = [organiser_guard]
    security = [{"organiser": []}]
    # Every answer carries the ticket's token and link: no cache may keep a copy.
    cache_control = CacheControlHeader(no_store=True)

    @get("/{ticket_id:str}", summary="Read a ticket")
    async def get_ticket(
        self, ticket_id: FromPath[str], db_session: DbSession, issuer: Issuer
    ) -> TicketOut:
        return ticket_out(await service.get_ticket(db_session, ticket_id), issuer)

    @patch(
        "/{ticket_id:str}",
        dto=Body[TicketPatch],
        return_dto=None,
        summary="Change holder or seat (no reissue: the token stays valid)",
    )
    async def update_ticket(
        self,
        ticket_id: FromPath[str],
        data: JSONBody[TicketPatch],
        db_session: DbSession,
        issuer: Issuer,
    ) -> TicketOut:
        return ticket_out(await service.update_ticket(db_session, ticket_id, data), issuer)

    @post(
        "/{ticket_id:str}/reissue",
        status_code=200,
        summary="Reissue: new token and link, the old ones stop working",
    )
    async def reissue_ticket(
        self, ticket_id: FromPath[str], db_session: DbSession, issuer: Issuer
    ) -> TicketOut:
        return ticket_out(await service.reissue_ticket(db_session, ticket_id, issuer), issuer)

    @post("/{ticket_id:str}/block", status_code=200, summary="Put a ticket on hold")
    async def block_ticket(
        self, ticket_id: FromPath[str], db_session: DbSession, issuer: Issuer
    ) -> TicketOut:
        return ticket_out(await service.block_ticket(db_session, ticket_id), issuer)

    @post("/{ticket_id:str}/unblock", status_code=200, summary="Lift a ticket's hold")
    async def unblock_ticket(
        self, ticket_id: FromPath[str], db_session: DbSession, issuer: Issuer
    ) -> TicketOut:
        return ticket_out(await service.unblock_ticket(db_session, ticket_id), issuer)
