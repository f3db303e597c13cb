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

Cost: the tally is built from the hub state once per change of it (`store.hub_version`, which
does not move offline) and kept; each later call only counts again the tickets whose journal
scans changed since (`store.take_touched`), so an offline door with thousands of scans queued
does not rescan 100,000 tickets, nor its whole queue, for every figure it shows.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass, field

from protocol.messages import Counters, GateCounters, ListCounters
from protocol.sync import ListEntry, list_rules
from scanner_client.decide import presence_seen
from scanner_client.store import Store

__all__ = ["local_counters"]

_Rows = dict[str, tuple[int, bool, str | None]]  # list_id -> (entries, inside, first gate)


@dataclass
class _Tally:
    """Head counts: the event's, and per list and per first-entry gate."""

    checked_in: int = 0
    inside: int = 0
    lists: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    gates: dict[str | None, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, rows: _Rows, persons: int, sign: int) -> None:
        """Count (sign 1) or uncount (sign -1) one ticket's presence on every list."""
        weight = sign * persons
        for list_id, (entries, inside, gate) in rows.items():
            if entries > 0:
                self.lists[list_id][0] += weight
                self.gates[gate][0] += weight
                self.gates[gate][1] += weight if inside else 0
            if inside:
                self.lists[list_id][1] += weight
        if any(entries > 0 for entries, _, _ in rows.values()):
            self.checked_in += weight
        if any(inside for _, inside, _ in rows.values()):
            self.inside += weight


@dataclass
class _Cache:
    """The tally of the hub state at `version`, with this door's unconfirmed scans folded in:
    `seen` holds the rows counted for each ticket they touch (instead of the hub's rows)."""

    version: int
    tally: _Tally
    admitted_by_type: dict[str, int]
    seen: dict[str, _Rows]


# Each store's tally (dropped with the store).
_caches: weakref.WeakKeyDictionary[Store, _Cache] = weakref.WeakKeyDictionary()


def local_counters(store: Store, own_device: str) -> Counters:
    lists = store.lists()
    cache = _cache(store)
    weights = store.ticket_persons()
    by_id = {entry.id: entry for entry in lists}
    event = store.event()
    event_id = event.id if event else ""
    for ticket_id in store.take_touched():
        persons = weights.get(ticket_id, (1, True, ""))[0]
        hub = _rows_of(store, ticket_id, list(by_id))
        cache.tally.add(cache.seen.pop(ticket_id, hub), persons, -1)
        seen = dict(hub)
        for list_id in store.overlay_lists(ticket_id):
            if list_id in by_id:
                rules = list_rules(by_id[list_id], event_id)
                presence = presence_seen(store, ticket_id, rules, own_device)
                first = presence.first_entry
                seen[list_id] = (presence.entries, presence.inside, first.gate if first else None)
        if seen != hub:
            cache.seen[ticket_id] = seen
        cache.tally.add(seen, persons, 1)
    return _counters(cache, lists)


def _counters(cache: _Cache, lists: list[ListEntry]) -> Counters:
    tally, admitted_by_type = cache.tally, cache.admitted_by_type
    total = sum(admitted_by_type.values())
    list_counters = []
    for entry in lists:
        types = admitted_by_type if entry.ticket_type_ids is None else entry.ticket_type_ids
        admitted = sum(admitted_by_type.get(type_id, 0) for type_id in types)
        checked, heads_inside = tally.lists.get(entry.id, [0, 0])
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
        for gate, figures in sorted(
            tally.gates.items(), key=lambda kv: (kv[0] is None, kv[0] or "")
        )
        if figures[0] or figures[1]
    ]
    return Counters(
        total=total,
        checked_in=tally.checked_in,
        inside=tally.inside,
        remaining=max(0, total - tally.checked_in),
        lists=list_counters,
        gates=gates,
    )


def _cache(store: Store) -> _Cache:
    """The store's tally, rebuilt from the hub state when that changed (then every ticket the
    door's own unconfirmed scans touch is counted again by the caller)."""
    version = store.hub_version
    cached = _caches.get(store)
    if cached is not None and cached.version == version:
        return cached
    store.take_touched()  # all of them are looked at again below
    weights = store.ticket_persons()
    per_ticket: dict[str, _Rows] = defaultdict(dict)
    for ticket_id, list_id, entries, inside, gate in store.presence_rows():
        per_ticket[ticket_id][list_id] = (entries, inside, gate)
    tally = _Tally()
    for ticket_id, rows in per_ticket.items():
        tally.add(rows, weights.get(ticket_id, (1, True, ""))[0], 1)
    admitted: dict[str, int] = defaultdict(int)
    for persons, valid, type_id in weights.values():
        if valid:
            admitted[type_id] += persons
    cache = _Cache(version, tally, dict(admitted), {})
    _caches[store] = cache
    store.touch({ticket_id for ticket_id, _ in store.overlay_pairs()})
    return cache


def _rows_of(store: Store, ticket_id: str, list_ids: list[str]) -> _Rows:
    rows: _Rows = {}
    for list_id in list_ids:
        entry = store.presence(ticket_id, list_id)
        if entry is not None:
            rows[list_id] = (entry.entries, entry.inside, entry.first_gate)
    return rows
