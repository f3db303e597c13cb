"""Conflicts reach door staff once, from a live frame, the change log or a snapshot (decision 0012).

A forced offline scan (any door's, with or without a ticket behind it) is in the change log as
`scan.conflict` and in a snapshot asked with `?conflicts=true`; the door shows each conflict
once, whichever way it comes first, and not again after a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol.messages import Changes, Conflict, EarlierScan, Welcome, encode_frame
from protocol.reasons import Reason
from scanner_client.core import SyncCore
from scanner_client.events import ConflictNotice
from scanner_client.store import LocalStore, SyncError, decode_snapshot
from tests.scanner_client.helpers import (
    DEVICE,
    EVENT,
    OTHER_DEVICE,
    T0,
    World,
    core_for,
    make_world,
)

NOW = T0.timestamp() + 600
TICKETLESS = Conflict(
    scan_id="forced-1",
    ticket=None,
    reason=Reason.INVALID,
    device=OTHER_DEVICE,
    gate="South",
    scanned_at=datetime(2031, 6, 14, 19, 42, 10, tzinfo=UTC),
)


@pytest.fixture
def world() -> World:
    return make_world(3)


@pytest.fixture
def path(tmp_path: Path, world: World) -> Iterator[Path]:
    store = LocalStore.open(tmp_path / "door.db")
    store.replace_snapshot(world.snapshot, now=NOW - 60)
    store.close()
    yield tmp_path / "door.db"


def _fields(conflict: Conflict) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(conflict)
    del built["type"]
    return built


def _changes(seq: int, *items: dict[str, Any]) -> bytes:
    return encode_frame(Changes(items=list(items), head=seq, has_more=False))


def _item(seq: int, conflict: Conflict) -> dict[str, Any]:
    return {"seq": seq, "kind": "scan.conflict", "conflict": _fields(conflict)}


def _connected(store: LocalStore) -> SyncCore:
    core = core_for(store)
    core.connected(NOW)
    head = store.cursor() or 0
    welcome = Welcome(device_id=DEVICE, event_id=EVENT, head=head, snapshot_required=False)
    core.receive_frame(encode_frame(welcome), NOW)
    core.take_events()
    return core


def _shown(core: SyncCore) -> list[ConflictNotice]:
    return [e for e in core.take_events() if isinstance(e, ConflictNotice)]


def test_a_conflict_in_the_changes_is_shown_once_and_the_live_frame_after_it_not_again(
    path: Path, world: World
) -> None:
    store = LocalStore.open(path)
    core = _connected(store)
    seq = store.cursor() + 1
    core.receive_frame(_changes(seq, _item(seq, TICKETLESS)), NOW + 1)
    [notice] = _shown(core)
    assert (notice.conflict, notice.own) == (TICKETLESS, False)
    assert store.cursor() == seq
    core.receive_frame(encode_frame(TICKETLESS), NOW + 2)  # the live frame, arriving late
    core.receive_frame(_changes(seq, _item(seq, TICKETLESS)), NOW + 3)  # a replayed page
    assert _shown(core) == []
    store.close()
    # A restart keeps what was shown: the same conflict from a snapshot is not shown again.
    store = LocalStore.open(path)
    core = _connected(store)
    snapshot = msgspec.structs.replace(world.snapshot, seq=seq, conflicts=[_fields(TICKETLESS)])
    core.snapshot_loaded(snapshot, NOW + 4)
    assert _shown(core) == []
    store.close()


def test_a_live_conflict_is_shown_once_and_its_change_after_it_not_again(path: Path) -> None:
    store = LocalStore.open(path)
    core = _connected(store)
    own = msgspec.structs.replace(TICKETLESS, device=DEVICE, scan_id="mine")
    core.receive_frame(encode_frame(own), NOW + 1)
    [notice] = _shown(core)
    assert notice.own is True
    seq = store.cursor() + 1
    core.receive_frame(_changes(seq, _item(seq, own)), NOW + 2)
    assert _shown(core) == [] and store.cursor() == seq
    # The same scan_id from another device is another scan, and another conflict.
    other = msgspec.structs.replace(own, device=OTHER_DEVICE)
    core.receive_frame(_changes(seq + 1, _item(seq + 1, other)), NOW + 3)
    assert [n.conflict for n in _shown(core)] == [other]
    store.close()


def test_a_snapshot_shows_the_conflicts_the_door_never_saw(path: Path, world: World) -> None:
    store = LocalStore.open(path)
    core = _connected(store)
    earlier = EarlierScan(
        scan_id="first", device=DEVICE, gate="North", at=datetime(2031, 6, 14, 19, tzinfo=UTC)
    )
    second = msgspec.structs.replace(TICKETLESS, scan_id="forced-2", earlier=earlier)
    raw = msgspec.msgpack.encode(
        msgspec.to_builtins(world.snapshot) | {"conflicts": [_fields(TICKETLESS), _fields(second)]}
    )
    core.snapshot_loaded(decode_snapshot(raw), NOW + 1)
    assert [n.conflict for n in _shown(core)] == [TICKETLESS, second]
    store.close()


def test_a_snapshot_without_conflicts_still_decodes() -> None:
    world = make_world(1)
    raw = msgspec.msgpack.encode(msgspec.to_builtins(world.snapshot))
    snapshot = decode_snapshot(raw)
    assert snapshot.conflicts == []


_GOOD = _fields(TICKETLESS)
GARBAGE = [
    pytest.param(None, id="null"),
    pytest.param([], id="a-list"),
    pytest.param("conflict", id="a-string"),
    pytest.param({}, id="empty"),
    pytest.param(_GOOD | {"type": "conflict"}, id="with-type"),
    pytest.param(_GOOD | {"extra": 1}, id="unknown-field"),
    pytest.param(_GOOD | {"reason": "maybe"}, id="unknown-reason"),
    pytest.param(_GOOD | {"scan_id": ""}, id="empty-scan-id"),
    pytest.param(_GOOD | {"scan_id": "x" * 10_000_000}, id="10MB-scan-id"),
    pytest.param(_GOOD | {"gate": "g" * 10_000_000}, id="10MB-gate"),
    pytest.param(_GOOD | {"scanned_at": "0001-01-01T00:00:00+14:00"}, id="year-1-east"),
    pytest.param(_GOOD | {"scanned_at": "9999-12-31T23:59:59-14:00"}, id="year-9999-west"),
    pytest.param(_GOOD | {"scanned_at": "2031-06-14T19:42:10"}, id="naive-time"),
    pytest.param(_GOOD | {"scanned_at": 2**64 - 1}, id="huge-integer-time"),
    pytest.param(_GOOD | {"ticket": {"id": "T"}}, id="half-a-ticket"),
    pytest.param(_GOOD | {"earlier": {"scan_id": "s", "at": "x"}}, id="bad-earlier"),
]


@pytest.mark.parametrize("fields", GARBAGE)
def test_a_garbage_conflict_change_is_refused_whole_and_shows_nothing(
    path: Path, fields: Any
) -> None:
    store = LocalStore.open(path)
    core = _connected(store)
    cursor = store.cursor()
    good = _item(cursor + 1, TICKETLESS)
    bad = {"seq": cursor + 2, "kind": "scan.conflict", "conflict": fields}
    core.receive_frame(_changes(cursor + 2, good, bad), NOW + 1)
    assert _shown(core) == []  # the page is applied whole or not at all
    assert store.cursor() == cursor and core.wants_snapshot
    # What was refused is not noted as seen: the good conflict still shows, once.
    core.receive_frame(encode_frame(TICKETLESS), NOW + 2)
    assert [n.conflict for n in _shown(core)] == [TICKETLESS]
    store.close()


@pytest.mark.parametrize("fields", GARBAGE)
def test_a_snapshot_with_a_garbage_conflict_is_no_snapshot(world: World, fields: Any) -> None:
    raw = msgspec.msgpack.encode(msgspec.to_builtins(world.snapshot) | {"conflicts": [fields]})
    with pytest.raises(SyncError):
        decode_snapshot(raw)
