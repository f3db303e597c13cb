"""Live counters of an event, derived from the folded presence (never from counting scans).

Presence is rebuilt from the scans that stand, so retries (stored once) and annulments (refolded)
can never make these numbers drift. Head counts multiply ticket state by the ticket's persons:

  total       admissions of the event's valid tickets
  checked_in  admissions of tickets that entered on at least one list (per list: on that list)
  inside      admissions of tickets inside on at least one list (per list: on that list)
  remaining   total - checked_in (per list: the admissions the list admits - its checked_in)
  gates       per gate of the ticket's first entry on a list: checked_in and inside
"""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.messages import Counters, GateCounters, ListCounters
from server.checkin.models import CheckinList, Presence
from server.events.models import TicketType
from server.tickets.models import Ticket, TicketStatus

__all__ = ["event_counters"]


async def event_counters(session: AsyncSession, event_id: str) -> Counters:
    """The counters of `event_id` (ARCHITECTURE §5 "Stats"), in four aggregate queries."""
    admissions = await _admissions_by_type(session, event_id)
    total = sum(admissions.values())
    lists = list(
        await session.scalars(
            select(CheckinList)
            .where(CheckinList.event_id == event_id)
            .order_by(CheckinList.created_at, CheckinList.id)
        )
    )
    persons = TicketType.persons
    entered = func.sum(case((Presence.entries > 0, persons), else_=0))
    inside = func.sum(case((Presence.inside.is_(True), persons), else_=0))
    base = (
        select()
        .select_from(Presence)
        .join(Ticket, Ticket.id == Presence.ticket_id)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .join(CheckinList, CheckinList.id == Presence.list_id)
        .where(CheckinList.event_id == event_id)
    )
    per_list = {
        list_id: (int(a or 0), int(b or 0))
        for list_id, a, b in await session.execute(
            base.add_columns(Presence.list_id, entered, inside).group_by(Presence.list_id)
        )
    }
    per_gate = [
        GateCounters(gate=gate, checked_in=int(a or 0), inside=int(b or 0))
        for gate, a, b in await session.execute(
            base.add_columns(Presence.first_gate, entered, inside)
            .where(Presence.entries > 0)
            .group_by(Presence.first_gate)
            .order_by(Presence.first_gate)
        )
    ]
    checked_in, inside_now = await _event_heads(session, event_id)
    return Counters(
        total=total,
        checked_in=checked_in,
        inside=inside_now,
        remaining=max(0, total - checked_in),
        lists=[_list_counters(row, admissions, per_list) for row in lists],
        gates=per_gate,
    )


def _list_counters(
    row: CheckinList, admissions: dict[str, int], per_list: dict[str, tuple[int, int]]
) -> ListCounters:
    types = admissions if row.ticket_type_ids is None else set(row.ticket_type_ids)
    admitted = sum(admissions.get(type_id, 0) for type_id in types)
    checked_in, inside = per_list.get(row.id, (0, 0))
    return ListCounters(
        list_id=row.id,
        name=row.name,
        checked_in=checked_in,
        inside=inside,
        remaining=max(0, admitted - checked_in),
    )


async def _admissions_by_type(session: AsyncSession, event_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(Ticket.ticket_type_id, func.sum(TicketType.persons))
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .where(Ticket.event_id == event_id, Ticket.status == TicketStatus.VALID)
        .group_by(Ticket.ticket_type_id)
    )
    return {type_id: int(count or 0) for type_id, count in rows}


async def _event_heads(session: AsyncSession, event_id: str) -> tuple[int, int]:
    """Admissions of tickets that entered / are inside on any list: each ticket counted once."""
    per_ticket = (
        select(
            Presence.ticket_id.label("ticket_id"),
            func.max(case((Presence.entries > 0, 1), else_=0)).label("entered"),
            func.max(case((Presence.inside.is_(True), 1), else_=0)).label("inside"),
        )
        .join(CheckinList, CheckinList.id == Presence.list_id)
        .where(CheckinList.event_id == event_id)
        .group_by(Presence.ticket_id)
        .subquery()
    )
    row = (
        await session.execute(
            select(
                func.sum(per_ticket.c.entered * TicketType.persons),
                func.sum(per_ticket.c.inside * TicketType.persons),
            )
            .select_from(per_ticket)
            .join(Ticket, Ticket.id == per_ticket.c.ticket_id)
            .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)
