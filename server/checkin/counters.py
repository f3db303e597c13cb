"""Live counters of an event, derived from the folded presence (never from counting scans).

PresenceRow is rebuilt from the scans that stand, so retries (stored once) and annulments (refolded)
can never make these numbers drift. Head counts multiply ticket state by the ticket's persons:

  total       admissions of the event's valid tickets
  checked_in  admissions of tickets that entered on at least one list (per list: on that list)
  inside      admissions of tickets inside on at least one list (per list: on that list)
  remaining   total - checked_in (per list: the admissions the list admits - its checked_in)
  gates       per gate of the ticket's first entry on a list: checked_in and inside
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.messages import Counters, GateCounters, ListCounters
from server.checkin.models import CheckinList, PresenceRow
from server.events.models import TicketType
from server.tickets.models import Ticket, TicketStatus

__all__ = ["CounterTally", "event_counters", "persons_of", "tally_counters"]


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
    entered = func.sum(case((PresenceRow.entries > 0, persons), else_=0))
    inside = func.sum(case((PresenceRow.inside.is_(True), persons), else_=0))
    base = (
        select()
        .select_from(PresenceRow)
        .join(Ticket, Ticket.id == PresenceRow.ticket_id)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .join(CheckinList, CheckinList.id == PresenceRow.list_id)
        .where(CheckinList.event_id == event_id)
    )
    per_list = {
        list_id: (int(a or 0), int(b or 0))
        for list_id, a, b in await session.execute(
            base.add_columns(PresenceRow.list_id, entered, inside).group_by(PresenceRow.list_id)
        )
    }
    per_gate = [
        GateCounters(gate=gate, checked_in=int(a or 0), inside=int(b or 0))
        for gate, a, b in await session.execute(
            base.add_columns(PresenceRow.first_gate, entered, inside)
            .where(PresenceRow.entries > 0)
            .group_by(PresenceRow.first_gate)
            .order_by(PresenceRow.first_gate)
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
            PresenceRow.ticket_id.label("ticket_id"),
            func.max(case((PresenceRow.entries > 0, 1), else_=0)).label("entered"),
            func.max(case((PresenceRow.inside.is_(True), 1), else_=0)).label("inside"),
        )
        .join(CheckinList, CheckinList.id == PresenceRow.list_id)
        .where(CheckinList.event_id == event_id)
        .group_by(PresenceRow.ticket_id)
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


# --- incremental counters (issue 17 item 4) ---------------------------------------------------
#
# The hub pushes counters to every socket of an event after each burst of changes; recomputing
# them with the aggregate queries above reads the whole event each time. `CounterTally` keeps the
# same numbers folded from the change log instead:
#
#   - loaded once from presence (the state of every ticket x list of the event with its ticket's
#     persons), at a head read first;
#   - then each `scan.accepted` / `scan.annulled` after that head *assigns* its ticket x list the
#     presence the change carries (the presence after it), and the aggregates move by the
#     difference between that pair's old and new state. An assignment, not an increment: a
#     change already seen in the loaded rows (they may be newer than the head read before them)
#     or folded twice leaves the same state, and a retry is never a change at all, so the tally
#     cannot drift from `event_counters`;
#   - any other change that can move a count (tickets issued, revoked, retyped; lists and ticket
#     types created or changed; a kind it does not know) reloads the whole tally. Key and device
#     changes and conflicts move nothing.
#
# Cost per push: one read of the changes since the last push and, for tickets not seen before,
# one query of their persons; nothing proportional to the event's size.

# A `scan.conflict` changes no presence (decision 0012): a ticketless forced scan counts nowhere,
# and a forced scan of a ticket is counted by its own `scan.accepted`.
_IGNORED = {"keys.changed", "device.revoked", "event.updated", "scan.conflict"}
_FOLDED = {"scan.accepted", "scan.annulled"}
_PairState = tuple[bool, bool, str | None]  # entered, inside, gate of the first entry
_NOWHERE: _PairState = (False, False, None)


class CounterTally:
    """The counters of one event, folded change by change (see above)."""

    def __init__(self, event_id: str, nulls_first: bool) -> None:
        self.event_id = event_id
        self.seq = 0  # the last change folded in
        self._nulls_first = nulls_first  # ORDER BY first_gate puts NULL first (SQLite) or last
        self.total = 0
        self.lists: list[tuple[str, str, int]] = []  # id, name, admissions it admits (in order)
        self.persons: dict[str, int] = {}
        self.pairs: dict[tuple[str, str], _PairState] = {}
        self.per_list: dict[str, list[int]] = {}  # list -> [checked_in, inside]
        self.per_gate: dict[str | None, list[int]] = {}  # gate -> [rows, checked_in, inside]
        self.per_ticket: dict[str, list[int]] = {}  # ticket -> [lists entered, lists inside]
        self.checked_in = 0
        self.inside = 0

    @classmethod
    async def load(cls, session: AsyncSession, event_id: str) -> CounterTally:
        """The tally as of the head read first in `session` (rows read after it may be newer:
        folding the changes after that head converges, see above)."""
        from server.changes.service import head  # the change log's owner; no import cycle

        tally = cls(event_id, session.get_bind().dialect.name == "sqlite")
        tally.seq = await head(session, event_id)
        admissions = await _admissions_by_type(session, event_id)
        tally.total = sum(admissions.values())
        for row in await session.scalars(
            select(CheckinList)
            .where(CheckinList.event_id == event_id)
            .order_by(CheckinList.created_at, CheckinList.id)
        ):
            types = admissions if row.ticket_type_ids is None else set(row.ticket_type_ids)
            admitted = sum(admissions.get(type_id, 0) for type_id in types)
            tally.lists.append((row.id, row.name, admitted))
        rows = await session.execute(
            select(
                PresenceRow.ticket_id,
                PresenceRow.list_id,
                PresenceRow.entries,
                PresenceRow.inside,
                PresenceRow.first_gate,
                TicketType.persons,
            )
            .join(Ticket, Ticket.id == PresenceRow.ticket_id)
            .join(TicketType, TicketType.id == Ticket.ticket_type_id)
            .join(CheckinList, CheckinList.id == PresenceRow.list_id)
            .where(CheckinList.event_id == event_id)
        )
        for ticket_id, list_id, entries, inside, gate, persons in rows:
            tally.persons[ticket_id] = int(persons)
            tally.assign((ticket_id, list_id), (entries > 0, bool(inside), gate))
        return tally

    def assign(self, pair: tuple[str, str], state: _PairState) -> None:
        """Give `pair` its new state (its ticket's persons must be known)."""
        old = self.pairs.get(pair, _NOWHERE)
        if old == state:
            return
        persons = self.persons[pair[0]]
        self._count(pair, old, persons, -1)
        self._count(pair, state, persons, +1)
        if state == _NOWHERE:
            self.pairs.pop(pair, None)
        else:
            self.pairs[pair] = state

    def _count(self, pair: tuple[str, str], state: _PairState, persons: int, sign: int) -> None:
        entered, inside, gate = state
        if not entered and not inside:
            return
        ticket_id, list_id = pair
        on_list = self.per_list.setdefault(list_id, [0, 0])
        on_list[0] += sign * persons * entered
        on_list[1] += sign * persons * inside
        if entered:
            at_gate = self.per_gate.setdefault(gate, [0, 0, 0])
            at_gate[0] += sign
            at_gate[1] += sign * persons
            at_gate[2] += sign * persons * inside
            if at_gate[0] == 0:
                del self.per_gate[gate]
        ticket = self.per_ticket.setdefault(ticket_id, [0, 0])
        was_entered, was_inside = ticket[0] > 0, ticket[1] > 0
        ticket[0] += sign * entered
        ticket[1] += sign * inside
        self.checked_in += persons * ((ticket[0] > 0) - was_entered)
        self.inside += persons * ((ticket[1] > 0) - was_inside)
        if ticket == [0, 0]:
            del self.per_ticket[ticket_id]

    def fold(self, items: list[dict[str, Any]]) -> tuple[bool, set[str]]:
        """Fold change-log items (in seq order); returns (whether a reload is needed, tickets
        whose persons must be read before `fold` is called again with the same items)."""
        unknown = {
            item["presence"]["ticket_id"]
            for item in items
            if item["kind"] in _FOLDED and item["presence"]["ticket_id"] not in self.persons
        }
        if unknown:
            return False, unknown
        for item in items:
            seq = int(item["seq"])
            if seq <= self.seq:
                continue
            kind = item["kind"]
            if kind in _FOLDED:
                presence = item["presence"]
                entered = presence["entries"] > 0
                state = (entered, bool(presence["inside"]), presence["first_gate"])
                self.assign((presence["ticket_id"], presence["list_id"]), state)
            elif kind not in _IGNORED:
                return True, set()
            self.seq = seq
        return False, set()

    def counters(self) -> Counters:
        gates = sorted(self.per_gate, key=self._gate_order)
        return Counters(
            total=self.total,
            checked_in=self.checked_in,
            inside=self.inside,
            remaining=max(0, self.total - self.checked_in),
            lists=[
                ListCounters(
                    list_id=list_id,
                    name=name,
                    checked_in=self.per_list.get(list_id, [0, 0])[0],
                    inside=self.per_list.get(list_id, [0, 0])[1],
                    remaining=max(0, admitted - self.per_list.get(list_id, [0, 0])[0]),
                )
                for list_id, name, admitted in self.lists
            ],
            gates=[
                GateCounters(gate=g, checked_in=self.per_gate[g][1], inside=self.per_gate[g][2])
                for g in gates
            ],
        )

    def _gate_order(self, gate: str | None) -> tuple[int, str]:
        if gate is None:
            return (0 if self._nulls_first else 2, "")
        return (1, gate)


async def persons_of(session: AsyncSession, ticket_ids: Collection[str]) -> dict[str, int]:
    """The persons each of `ticket_ids` admits (its ticket type's)."""
    rows = await session.execute(
        select(Ticket.id, TicketType.persons)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .where(Ticket.id.in_(list(ticket_ids)))
    )
    return {ticket_id: int(persons) for ticket_id, persons in rows}


async def tally_counters(
    session: AsyncSession, tally: CounterTally | None, event_id: str, *, max_changes: int = 5000
) -> CounterTally:
    """`tally` brought up to the head of `session` (loaded afresh when None, when a change needs
    it, or when more than `max_changes` wait); its `counters()` are then `event_counters`."""
    from server.changes.feed import changes_after  # the change log's one reader

    if tally is None:
        return await CounterTally.load(session, event_id)
    page = await changes_after(session, event_id, tally.seq, max_changes)
    if page.has_more:
        return await CounterTally.load(session, event_id)
    reload, unknown = tally.fold(page.items)
    if unknown:
        tally.persons |= await persons_of(session, unknown)
        missing = unknown - tally.persons.keys()
        if missing:  # a ticket gone from the event: count afresh
            return await CounterTally.load(session, event_id)
        reload, _ = tally.fold(page.items)
    if reload:
        return await CounterTally.load(session, event_id)
    return tally
