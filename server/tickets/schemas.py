"""Ticket request bodies and the ticket's answer, `TicketOut` (bookings list theirs with it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from server.schemas import Email, Name, ShortText
from server.tickets.issuer import TicketIssuer
from server.tickets.models import Ticket

__all__ = ["TicketOut", "TicketPatch", "ticket_out"]


class TicketPatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What an organiser may change without a reissue; `null` clears, an absent field is kept."""

    holder_name: Name | UnsetType | None = UNSET
    holder_email: Email | UnsetType | None = UNSET
    seat: ShortText | UnsetType | None = UNSET


class TicketOut(msgspec.Struct, frozen=True):
    id: str
    code: str
    status: Literal["valid", "revoked"]
    blocked: bool
    ticket_type_id: str
    holder_name: str | None
    holder_email: str | None
    seat: str | None
    version: int
    token: str
    link: str


def ticket_out(ticket: Ticket | Mapping[str, Any], issuer: TicketIssuer) -> TicketOut:
    """The answer for a stored ticket, or for a row just written (`ticket_rows` output)."""
    if isinstance(ticket, Mapping):
        return TicketOut(
            id=ticket["id"],
            code=ticket["code"],
            status=ticket["status"],
            blocked=ticket["blocked"],
            ticket_type_id=ticket["ticket_type_id"],
            holder_name=ticket["holder_name"],
            holder_email=ticket["holder_email"],
            seat=ticket["seat"],
            version=ticket["version"],
            token=ticket["token"],
            link=issuer.link_url(ticket["link"]),
        )
    return TicketOut(
        id=ticket.id,
        code=ticket.code,
        status=ticket.status,  # type: ignore[arg-type]
        blocked=ticket.blocked,
        ticket_type_id=ticket.ticket_type_id,
        holder_name=ticket.holder_name,
        holder_email=ticket.holder_email,
        seat=ticket.seat,
        version=ticket.version,
        token=ticket.token,
        link=issuer.link_url(ticket.link),
    )
