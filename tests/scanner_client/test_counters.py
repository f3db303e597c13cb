"""The door's own counters: the hub's definitions, kept up to date incrementally."""

from __future__ import annotations

import random
from pathlib import Path

from protocol.messages import Counters
from protocol.rules import Direction
from protocol.sync import PresenceEntry
from scanner_client import counters
from scanner_client.counters import local_counters
from scanner_client.store import LocalStore
from tests.scanner_client.helpers import DEVICE, OTHER_DEVICE, T0, core_for, make_world

NOW = T0.timestamp() + 600


def recounted(store: LocalStore) -> Counters:
    """The counters computed from nothing, as a door that just started would."""
    counters._caches.pop(store, None)
    return local_counters(store, DEVICE)


def test_offline_admissions_count_at_once_and_persons_multiply(tmp_path: Path) -> None:
    at = T0
    world = make_world(
        6,
        persons=2,
        checkins=[],
    )
    ticket = world.ticket(0)
    world.snapshot.checkins.append(
        PresenceEntry(ticket.id, world.list_id, 1, True, "s-1", at, "North", OTHER_DEVICE)
    )
    store = LocalStore.open(tmp_path / "door.db")
    store.replace_snapshot(world.snapshot, now=NOW)
    core = core_for(store, debounce=0)
    before = local_counters(store, DEVICE)
    assert (before.total, before.checked_in, before.inside, before.remaining) == (12, 2, 2, 10)
    assert [(g.gate, g.checked_in) for g in before.gates] == [("North", 2)]
    core.scan(world.token(1), NOW)
    after = local_counters(store, DEVICE)
    assert (after.checked_in, after.inside, after.remaining) == (4, 4, 8)
    assert [(g.gate, g.checked_in) for g in after.gates] == [("North", 2), (None, 2)]
    store.close()


def test_incremental_counters_equal_a_recount_through_scans_exits_and_undos(
    tmp_path: Path,
) -> None:
    world = make_world(40, max_entries=None, allow_reentry=True)
    store = LocalStore.open(tmp_path / "door.db")
    store.replace_snapshot(world.snapshot, now=NOW)
    core = core_for(store, debounce=0)
    rng = random.Random(13)
    for step in range(300):
        action = rng.random()
        now = NOW + step
        if action < 0.1:
            core.undo_last(now)
        else:
            core.direction = Direction.EXIT if action < 0.35 else Direction.ENTRY
            n = rng.randrange(40)
            core.scan(world.token(n) if rng.random() < 0.5 else world.ticket(n).code, now)
        core.take_events()
        if step % 7 == 0:
            assert local_counters(store, DEVICE) == recounted(store), step
    assert local_counters(store, DEVICE) == recounted(store)
    store.close()
