"""Counters computed at the door from its local store, with the hub's definitions.

The same figures as the hub's `counters` frame (docs/protocol.md section 4), from the hub state
the door holds with its own unconfirmed scans folded in (`decide.presence_seen`), so an offline
door's counters move with its own admissions:

  total       admissions (persons) of the event's valid tickets
  checked_in  admissions of tickets that entered on at least one list (per list: on that list)
  inside      admissions of tickets inside on at least one list (per list: on that list)
  remaining   total - checked_in (per list: the admissions the list admits - its checked_in)
  gates       per gate of the ticket's first entry on a list (this door's own unconfirmed first
              entries count under no gate: the door does not know its gate)
"""

from __future__ import annotations

from collections import defaultdict

from protocol.messages import Counters, GateCounters, ListCounters
from protocol.sync import list_rules
from scanner_client.decide import presence_seen
from scanner_client.store import Store

__all__ = ["local_counters"]


def local_counters(store: Store, own_device: str) -> Counters:
    event = store.event()
    event_id = event.id if event else ""
    weights = store.ticket_persons()  # ticket -> (persons, valid, type)
    state: dict[tuple[str, str], tuple[int, bool, str | None]] = {
        (ticket_id, list_id): (entries, inside, gate)
        for ticket_id, list_id, entries, inside, gate in store.presence_rows()
    }
    lists = store.lists()
    by_id = {entry.id: entry for entry in lists}
    for ticket_id, list_id in store.overlay_pairs():
        entry = by_id.get(list_id)
        if entry is None:
            continue
        seen = presence_seen(store, ticket_id, list_rules(entry, event_id), own_device)
        first = seen.first_entry
        state[(ticket_id, list_id)] = (seen.entries, seen.inside, first.gate if first else None)

    admitted_by_type: dict[str, int] = defaultdict(int)
    for persons, valid, type_id in weights.values():
        if valid:
            admitted_by_type[type_id] += persons
    total = sum(admitted_by_type.values())
    per_list: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_gate: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    entered: dict[str, bool] = {}
    inside_any: dict[str, bool] = {}
    for (ticket_id, list_id), (entries, inside, gate) in state.items():
        persons = weights.get(ticket_id, (1, True, ""))[0]
        figures = per_list[list_id]
        if entries > 0:
            figures[0] += persons
            per_gate[gate][0] += persons
            per_gate[gate][1] += persons if inside else 0
            entered[ticket_id] = True
        if inside:
            figures[1] += persons
            inside_any[ticket_id] = True
    checked_in = sum(weights.get(t, (1, True, ""))[0] for t in entered)
    inside_now = sum(weights.get(t, (1, True, ""))[0] for t in inside_any)
    list_counters = []
    for entry in lists:
        types = admitted_by_type.keys() if entry.ticket_type_ids is None else entry.ticket_type_ids
        admitted = sum(admitted_by_type.get(type_id, 0) for type_id in types)
        checked, heads_inside = per_list.get(entry.id, [0, 0])
        list_counters.append(
            ListCounters(
                list_id=entry.id,
                name=entry.name,
                checked_in=checked,
                inside=heads_inside,
                remaining=max(0, admitted - checked),
            )
        )
    gates = [
        GateCounters(gate=gate, checked_in=figures[0], inside=figures[1])
        for gate, figures in sorted(per_gate.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]
    return Counters(
        total=total,
        checked_in=checked_in,
        inside=inside_now,
        remaining=max(0, total - checked_in),
        lists=list_counters,
        gates=gates,
    )
