"""The door's local store on real SQLite files: folding, atomic pages, garbage, search, modes.

What is pinned here:
  - a snapshot folded with change items of every kind of docs/protocol.md section 4 holds
    exactly what a snapshot taken at the new head holds (the section's last promise);
  - a `changes` page is all or nothing: one bad item anywhere leaves every row and the cursor
    as they were, and is a `SyncError` (never another exception, which would kill the engine);
  - `decode_snapshot` turns any bytes into a `Snapshot` the store can hold, or a `SyncError`;
  - search ignores case and accents, treats `%` and `_` as the characters they are;
  - the files stay 0600 and every lookup the engine makes per scan uses an index.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from protocol.messages import EARLIEST, LATEST
from protocol.rules import Direction
from protocol.sync import (
    ListEntry,
    PresenceEntry,
    TicketEntry,
    TicketTypeEntry,
    to_wire,
)
from protocol.token import public_jwk
from scanner_client.store import JournalEntry, LocalStore, Snapshot, SyncError, decode_snapshot
from tests.scanner_client.helpers import DEVICE, OTHER_DEVICE, T0, World, make_world

SEQ = 100
NOW = T0.timestamp() + 600
TT2 = "TT00000000000002"
LS2 = "LS00000000000002"
LS9 = "LS00000000000009"
HUB_TABLES = ("meta", "ticket_types", "lists", "tickets", "checkins", "journal")


def presence(
    ticket_id: str,
    list_id: str,
    *,
    entries: int = 1,
    inside: bool = True,
    device: str = OTHER_DEVICE,
    scan_id: str = "other-1",
    at: datetime = T0 + timedelta(minutes=5),
) -> PresenceEntry:
    if entries == 0 and not inside:
        return PresenceEntry(ticket_id, list_id, 0, False, None, None, None, None)
    return PresenceEntry(ticket_id, list_id, entries, inside, scan_id, at, "North", device)


def scan_change(
    seq: int,
    entry: PresenceEntry,
    *,
    kind: str = "scan.accepted",
    device: str = OTHER_DEVICE,
    scan_id: str = "other-1",
) -> dict[str, Any]:
    scan = {
        "scan_id": scan_id,
        "device_id": device,
        "ticket_id": entry.ticket_id,
        "list_id": entry.list_id,
        "direction": "entry",
        "scanned_at": "2031-06-14T18:05:00Z",
        "gate": "North",
        "offline": False,
        "forced": False,
    }
    item = {"seq": seq, "kind": kind, "scan": scan, "presence": to_wire(entry)}
    if kind == "scan.annulled":
        item["annulled_by"] = device
    return item


def first_snapshot() -> World:
    """A world of two lists and eight tickets, two of them already checked in."""
    world = make_world(8)
    tickets = world.snapshot.tickets
    balcony = ListEntry(
        LS9, "Balcony", [tickets[0].ticket_type_id], 2, True, T0, T0 + timedelta(hours=5)
    )
    checkins = [presence(tickets[7].id, world.list_id), presence(tickets[6].id, LS9, scan_id="b-1")]
    snapshot = msgspec.structs.replace(
        world.snapshot, lists=[*world.snapshot.lists, balcony], checkins=checkins
    )
    return World(world.key, world.kid, snapshot)


def changes_and_final(world: World) -> tuple[list[dict[str, Any]], Snapshot]:
    """Change items of every kind after `world`'s snapshot, and the snapshot they lead to."""
    snap = world.snapshot
    t = list(snap.tickets)
    [main, balcony] = snap.lists
    [standard] = snap.ticket_types
    second_key = Ed25519PrivateKey.generate().public_key()
    keys = [*snap.keys, public_jwk("K2K2K2K2", second_key)]
    event = msgspec.structs.replace(snap.event, name="Jazz night, late show", venue="Cellar")
    standard_b = msgspec.structs.replace(
        standard, name="Standard+", valid_until=T0 + timedelta(hours=6)
    )
    duo = TicketTypeEntry(TT2, "Duo", 2, T0 - timedelta(hours=1), T0 + timedelta(hours=4))
    main_b = msgspec.structs.replace(main, name="Main entrance", max_entries=2)
    vip = ListEntry(LS2, "VIP", [TT2], None, True, T0, T0 + timedelta(hours=3))
    new = TicketEntry("TK00000000000008", "NEWC-0DE8", TT2, "Nina Duo", None, 1, "valid", False)
    renamed = msgspec.structs.replace(t[0], holder_name="Ann Other")
    reissued = msgspec.structs.replace(t[1], code="RE1S-SUED", version=2)
    revoked = msgspec.structs.replace(t[2], status="revoked")
    blocked = msgspec.structs.replace(t[3], blocked=True)
    unblocked = msgspec.structs.replace(t[4], blocked=False)
    in_at_main = presence(t[0].id, main.id)
    own_in = presence(t[5].id, main.id, device=DEVICE, scan_id="own-1")
    own_out = presence(t[5].id, main.id, entries=0, inside=False)
    vip_in = presence(new.id, LS2, scan_id="dup-1")
    annulled = presence(t[7].id, main.id, entries=0, inside=False)
    items: list[dict[str, Any]] = [
        {"kind": "event.updated", "event": to_wire(event)},
        {"kind": "ticket_type.created", "ticket_type": to_wire(duo)},
        {"kind": "ticket_type.updated", "ticket_type": to_wire(standard_b)},
        {"kind": "list.created", "list": to_wire(vip)},
        {"kind": "list.updated", "list": to_wire(main_b)},
        {"kind": "ticket.issued", "ticket": to_wire(new)},
        {"kind": "ticket.updated", "ticket": to_wire(renamed)},
        {"kind": "ticket.reissued", "ticket": to_wire(reissued)},
        {"kind": "ticket.revoked", "ticket": to_wire(revoked)},
        {"kind": "ticket.blocked", "ticket": to_wire(blocked)},
        {"kind": "ticket.blocked", "ticket": to_wire(msgspec.structs.replace(t[4], blocked=True))},
        {"kind": "ticket.unblocked", "ticket": to_wire(unblocked)},
        scan_change(0, in_at_main),
        scan_change(0, own_in, device=DEVICE, scan_id="own-1"),
        scan_change(0, own_out, kind="scan.annulled", device=DEVICE, scan_id="own-1"),
        scan_change(0, vip_in, scan_id="dup-1"),  # another door's scan under one of our ids
        scan_change(0, annulled, kind="scan.annulled"),
        {"kind": "keys.changed", "keys": keys},
        {"kind": "device.revoked", "device": {"id": OTHER_DEVICE, "name": "Side", "gate": None}},
        {"kind": "gate.renamed", "gate": {"whatever": [1, 2]}},  # a kind from a newer hub
    ]
    for n, item in enumerate(items):
        item["seq"] = SEQ + 1 + n
    final_tickets = [renamed, reissued, revoked, blocked, unblocked, *t[5:], new]
    final = Snapshot(
        event=event,
        seq=SEQ + len(items),
        keys=keys,
        ticket_types=[standard_b, duo],
        lists=[main_b, balcony, vip],
        tickets=final_tickets,
        revoked=[revoked.id],
        blocked=[blocked.id],
        checkins=[in_at_main, snap.checkins[1], vip_in],
    )
    return items, final


def open_store(path: Path, snapshot: Snapshot | None = None) -> LocalStore:
    store = LocalStore.open(path)
    if snapshot is not None:
        store.replace_snapshot(snapshot, now=NOW - 60)
    return store


@pytest.fixture
def world() -> World:
    return first_snapshot()


@pytest.fixture
def store(tmp_path: Path, world: World) -> Iterator[LocalStore]:
    opened = open_store(tmp_path / "door.db", world.snapshot)
    yield opened
    opened.close()


def journal_entry(scan_id: str, ticket_id: str | None, **fields: Any) -> JournalEntry:
    values: dict[str, Any] = {
        "scan_id": scan_id,
        "code": "K7QH-M2PX",
        "list_id": "LS00000000000001",
        "direction": Direction.ENTRY,
        "scanned_at": T0 + timedelta(minutes=1),
        "ticket_id": ticket_id,
        "state": "queued",
        "door_verdict": "accepted",
        "effect": True,
    }
    return JournalEntry(**(values | fields))


def view(store: LocalStore, snapshot: Snapshot, codes: list[str]) -> dict[str, Any]:
    """Everything the engine can read of the hub state, for the tickets and lists named."""
    ticket_ids = sorted({t.id for t in snapshot.tickets})
    list_ids = [entry.id for entry in store.lists()]
    return {
        "event": store.event(),
        "cursor": store.cursor(),
        "tickets": {tid: store.ticket(tid) for tid in ticket_ids},
        "by_code": {code: store.ticket_by_code(code) for code in codes},
        "types": {tid: store.ticket_type(tid) for tid in ("TT00000000000001", TT2, "TT-NONE")},
        "lists": store.lists(),
        "checkin_lists": {lid: store.checkin_list(lid) for lid in [*list_ids, "LS-NONE"]},
        "presence": {(t, lid): store.presence(t, lid) for t in ticket_ids for lid in list_ids},
        "keys": {kid: key.public_bytes_raw() for kid, key in store.keys().items()},
        "count": store.ticket_count(),
        "persons": store.ticket_persons(),
        "rows": sorted(store.presence_rows()),
    }


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every committed row of the store's tables, read through a second connection."""
    db = sqlite3.connect(path)
    try:
        return {
            t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in HUB_TABLES
        }
    finally:
        db.close()


# --- folding ------------------------------------------------------------------------------------


def test_a_snapshot_folded_with_every_kind_of_change_equals_the_snapshot_at_the_new_head(
    tmp_path: Path, store: LocalStore, world: World
) -> None:
    items, final = changes_and_final(world)
    store.journal(journal_entry("own-1", world.ticket(5).id), now=NOW)
    store.journal(journal_entry("dup-1", world.ticket(6).id), now=NOW)
    # Read everything once so that stale caches would show.
    codes = [t.code for t in world.snapshot.tickets] + [t.code for t in final.tickets]
    view(store, final, codes)
    revoked = store.apply_changes(items, own_device=DEVICE, now=NOW)
    assert revoked is False
    fresh = open_store(tmp_path / "fresh.db", final)
    reopened = LocalStore.open(store.path)
    expected = view(fresh, final, codes)
    assert view(store, final, codes) == expected
    assert view(reopened, final, codes) == expected
    assert [e.id for e in store.lists()] == ["LS00000000000001", LS9, LS2]
    assert store.ticket_by_code(world.ticket(1).code) is None  # a reissue retires the old code
    assert store.presence(world.ticket(7).id, world.list_id) is None  # empty presence: removed
    assert store.journal_entry("own-1").reflected  # its own scan.* change arrived
    assert not store.journal_entry("dup-1").reflected  # another device's scan of the same id
    assert store.synced_at() == NOW
    fresh.close()
    reopened.close()


def test_the_revocation_of_this_device_is_reported_and_of_another_is_not(store: LocalStore) -> None:
    other = {
        "seq": SEQ + 1,
        "kind": "device.revoked",
        "device": {"id": OTHER_DEVICE, "name": "S", "gate": None},
    }
    own = {
        "seq": SEQ + 2,
        "kind": "device.revoked",
        "device": {"id": DEVICE, "name": "D", "gate": "N"},
    }
    assert store.apply_changes([other], own_device=DEVICE, now=NOW) is False
    assert store.apply_changes([own], own_device=DEVICE, now=NOW) is True
    assert store.cursor() == SEQ + 2


def test_items_at_or_below_the_cursor_are_skipped_whatever_they_hold(
    store: LocalStore, world: World
) -> None:
    renamed = to_wire(msgspec.structs.replace(world.ticket(0), holder_name="New name"))
    items = [
        {"seq": SEQ - 1, "kind": "ticket.updated", "ticket": {"garbage": True}},
        {"seq": SEQ, "kind": "ticket.updated", "ticket": renamed},
        {"seq": SEQ + 1, "kind": "ticket.updated", "ticket": renamed | {"seat": "Z9"}},
    ]
    store.apply_changes(items, own_device=DEVICE, now=NOW)
    ticket = store.ticket(world.ticket(0).id)
    assert (ticket.holder_name, ticket.seat, store.cursor()) == ("New name", "Z9", SEQ + 1)
    store.apply_changes(items, own_device=DEVICE, now=NOW)  # a replay changes nothing
    assert store.cursor() == SEQ + 1


def test_a_gap_is_a_sync_error_that_says_so_and_changes_nothing(
    store: LocalStore, world: World
) -> None:
    before = rows(store.path)
    event = to_wire(msgspec.structs.replace(world.snapshot.event, name="Changed"))
    items = [
        {"seq": SEQ + 1, "kind": "event.updated", "event": event},
        {"seq": SEQ + 3, "kind": "event.updated", "event": event},
    ]
    with pytest.raises(SyncError) as raised:
        store.apply_changes(items, own_device=DEVICE, now=NOW)
    assert raised.value.gap
    assert rows(store.path) == before
    assert (store.cursor(), store.event()) == (SEQ, world.snapshot.event)


def test_changes_before_any_snapshot_are_a_sync_error(tmp_path: Path) -> None:
    empty = LocalStore.open(tmp_path / "empty.db")
    with pytest.raises(SyncError):
        empty.apply_changes([{"seq": 1, "kind": "x"}], own_device=DEVICE, now=NOW)
    empty.close()


def _ticket(world: World, **fields: Any) -> dict[str, Any]:
    return {"kind": "ticket.updated", "ticket": to_wire(world.ticket(0)) | fields}


def _type(world: World, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "ticket_type.updated",
        "ticket_type": to_wire(world.snapshot.ticket_types[0]) | fields,
    }


def _presence(world: World, **fields: Any) -> dict[str, Any]:
    item = scan_change(0, presence(world.ticket(1).id, world.list_id))
    item["presence"] |= fields
    del item["seq"]
    return item


MB10 = "x" * 10_000_000
BAD_ITEMS: list[Any] = [
    pytest.param(lambda w: _ticket(w, version="2"), id="wrong-type"),
    pytest.param(lambda w: _ticket(w, blocked=1), id="int-for-bool"),
    pytest.param(
        lambda w: {
            "kind": "ticket.updated",
            "ticket": {k: v for k, v in to_wire(w.ticket(0)).items() if k != "seat"},
        },
        id="missing-field",
    ),
    pytest.param(lambda w: _ticket(w, email="a@b.c"), id="unknown-field"),
    pytest.param(lambda w: {"kind": "ticket.issued"}, id="no-entity"),
    pytest.param(lambda w: {"kind": "ticket.issued", "ticket": None}, id="null-entity"),
    pytest.param(lambda w: _ticket(w, holder_name=MB10), id="10MB-string"),
    pytest.param(lambda w: _ticket(w, version=2**63), id="int-over-64-bits"),
    pytest.param(lambda w: _type(w, persons=-(2**64)), id="int-under-64-bits"),
    pytest.param(lambda w: _type(w, valid_from="10000-01-01T00:00:00Z"), id="year-10000"),
    pytest.param(lambda w: _type(w, valid_from="2031-06-14T20:00:00"), id="naive-time"),
    pytest.param(
        lambda w: _type(w, valid_until="9999-12-31T23:00:00-14:00"),
        id="past-9999-in-utc",
    ),
    pytest.param(
        lambda w: _type(w, valid_from="0001-01-01T00:00:00+01:00"),
        id="before-0001-in-utc",
    ),
    pytest.param(lambda w: _presence(w, first_at="2031-06-14T20:00:00"), id="naive-presence-time"),
    pytest.param(lambda w: _presence(w, entries="1"), id="presence-wrong-type"),
    pytest.param(lambda w: {**_presence(w), "presence": None}, id="presence-null"),
    pytest.param(lambda w: {**_presence(w), "scan": {"scan_id": "x"}}, id="scan-incomplete"),
    pytest.param(
        lambda w: {
            "kind": "event.updated",
            "event": to_wire(w.snapshot.event) | {"starts_at": "2031-06-14T20:00:00"},
        },
        id="naive-event-time",
    ),
    pytest.param(
        lambda w: {
            "kind": "list.updated",
            "list": to_wire(w.snapshot.lists[0]) | {"ticket_type_ids": "TT1"},
        },
        id="list-wrong-type",
    ),
    pytest.param(lambda w: {"kind": "keys.changed", "keys": "not a list"}, id="keys-not-a-list"),
    pytest.param(lambda w: {"kind": "device.revoked", "device": "DEV"}, id="device-not-a-map"),
    pytest.param(lambda w: {"kind": "device.revoked"}, id="device-missing"),
    pytest.param(lambda w: {"seq": True, "kind": "x"}, id="seq-bool"),
    pytest.param(lambda w: {"seq": str(SEQ + 2), "kind": "x"}, id="seq-string"),
    pytest.param(lambda w: {"seq": None, "kind": "x"}, id="seq-null"),
    pytest.param(lambda w: {"seq": 2**64, "kind": "x"}, id="seq-2**64"),
    pytest.param(lambda w: {"seq": float(SEQ + 2), "kind": "x"}, id="seq-float"),
]


@pytest.mark.parametrize("bad", BAD_ITEMS)
def test_a_page_with_one_bad_item_is_refused_whole(
    store: LocalStore, world: World, bad: Callable[[World], dict[str, Any]]
) -> None:
    store.journal(journal_entry("own-1", world.ticket(1).id), now=NOW)
    event = to_wire(msgspec.structs.replace(world.snapshot.event, name="Changed"))
    main = to_wire(msgspec.structs.replace(world.snapshot.lists[0], name="Changed"))
    page = [
        {"seq": SEQ + 1, "kind": "event.updated", "event": event},
        {"seq": SEQ + 2, "kind": "list.updated", "list": main},
        {"seq": SEQ + 3} | bad(world),  # an item that sets its own seq keeps it
        scan_change(
            SEQ + 4, presence(world.ticket(1).id, world.list_id), device=DEVICE, scan_id="own-1"
        ),
    ]
    codes = [t.code for t in world.snapshot.tickets]
    before, files = view(store, world.snapshot, codes), rows(store.path)
    with pytest.raises(SyncError):
        store.apply_changes(page, own_device=DEVICE, now=NOW + 5)
    assert rows(store.path) == files
    assert view(store, world.snapshot, codes) == before
    assert store.synced_at() == NOW - 60
    assert not store.journal_entry("own-1").reflected


# --- snapshots ----------------------------------------------------------------------------------


def _snapshot_map(world: World) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.msgpack.decode(msgspec.msgpack.encode(world.snapshot))
    return built


def _mutated(change: Callable[[dict[str, Any]], None]) -> Callable[[World], bytes]:
    def build(world: World) -> bytes:
        built = _snapshot_map(world)
        change(built)
        return msgspec.msgpack.encode(built)

    return build


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(built: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = built
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


def _bad_utf8(world: World) -> bytes:
    raw = msgspec.msgpack.encode(world.snapshot)
    name = world.snapshot.event.name.encode()
    assert raw.count(name) == 1
    return raw.replace(name, name[:-2] + b"\xed\xa0")  # a lone surrogate's first bytes


GARBAGE_SNAPSHOTS: list[Any] = [
    pytest.param(lambda w: b"", id="empty"),
    pytest.param(lambda w: random.Random(13).randbytes(4096), id="random-bytes"),
    pytest.param(lambda w: b"\x00" * 10_000_000, id="10MB-of-zeros"),
    pytest.param(lambda w: msgspec.msgpack.encode(w.snapshot)[:-3], id="truncated"),
    pytest.param(lambda w: msgspec.msgpack.encode(w.snapshot)[:40], id="truncated-early"),
    pytest.param(lambda w: msgspec.msgpack.encode(w.snapshot) + b"\x00", id="trailing-byte"),
    pytest.param(lambda w: msgspec.msgpack.encode([1, 2, 3]), id="a-list"),
    pytest.param(lambda w: msgspec.msgpack.encode("snapshot"), id="a-string"),
    pytest.param(lambda w: msgspec.json.encode(to_wire(w.snapshot)), id="json-not-msgpack"),
    pytest.param(_mutated(lambda m: m.pop("tickets")), id="missing-key"),
    pytest.param(_mutated(lambda m: m.update(extra=1)), id="extra-key"),
    pytest.param(_mutated(_set("tickets.0.email", "a@b.c")), id="extra-ticket-field"),
    pytest.param(_mutated(_set("seq", "100")), id="seq-string"),
    pytest.param(_mutated(_set("seq", True)), id="seq-bool"),
    pytest.param(_mutated(_set("seq", 2**64 - 1)), id="seq-uint64"),
    pytest.param(_mutated(_set("tickets.0.version", 2**64 - 1)), id="version-uint64"),
    pytest.param(_mutated(_set("ticket_types.0.persons", 2**63)), id="persons-2**63"),
    pytest.param(_mutated(_set("ticket_types.0.persons", "1")), id="persons-string"),
    pytest.param(_mutated(_set("tickets.0.holder_name", MB10)), id="10MB-name"),
    pytest.param(_mutated(_set("tickets", {"a": 1})), id="tickets-a-map"),
    pytest.param(_mutated(_set("keys", [{"x": msgspec.msgpack.Ext(1, b"zz")}])), id="key-ext-type"),
    pytest.param(_mutated(_set("event.starts_at", "0001-01-01T00:00:00Z")), id="0001-01-01"),
    pytest.param(
        _mutated(_set("event.starts_at", "0001-01-01T12:00:00+13:00")),
        id="0001-01-01+13",
    ),
    pytest.param(_mutated(_set("event.ends_at", "9999-12-31T00:00:00Z")), id="9999-12-31"),
    pytest.param(_mutated(_set("event.ends_at", "9999-12-31T23:00:00-14:00")), id="9999-12-31-14"),
    pytest.param(_mutated(_set("event.starts_at", "2031-06-14T18:00:00")), id="naive-time"),
    pytest.param(_mutated(_set("lists.0.valid_from", "2031-13-01T00:00:00Z")), id="month-13"),
    pytest.param(_bad_utf8, id="bad-utf8"),
]


@pytest.mark.parametrize("garbage", GARBAGE_SNAPSHOTS)
def test_garbage_is_never_a_snapshot(world: World, garbage: Callable[[World], bytes]) -> None:
    with pytest.raises(SyncError):
        decode_snapshot(garbage(world))


def test_times_a_day_inside_the_calendar_are_a_snapshot_the_store_holds(tmp_path: Path) -> None:
    world = make_world(2)
    built = _snapshot_map(world)
    built["ticket_types"][0] |= {
        "valid_from": "0001-01-02T00:00:00Z",
        "valid_until": "9999-12-30T23:59:59.999999Z",
    }
    built["lists"][0] |= {
        "valid_from": "0001-01-02T09:00:00+09:00",
        "valid_until": "9999-12-30T20:00:00-03:00",
    }
    snapshot = decode_snapshot(msgspec.msgpack.encode(built))
    store = open_store(tmp_path / "door.db", snapshot)
    ticket_type = store.ticket_type(world.snapshot.ticket_types[0].id)
    assert (ticket_type.valid_from, ticket_type.valid_until) == (EARLIEST, LATEST)
    assert store.lists()[0].valid_from == EARLIEST
    assert store.lists()[0].valid_until == datetime(9999, 12, 30, 23, tzinfo=UTC)
    store.close()


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mutation_of_a_snapshot_decodes_to_what_the_store_holds_or_a_sync_error(
    tmp_path: Path, data: st.DataObject
) -> None:
    raw = bytearray(msgspec.msgpack.encode(_WORLD.snapshot))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) - 8, len(raw)))
    try:
        snapshot = decode_snapshot(bytes(raw[:cut]))
    except SyncError:
        return
    store = LocalStore.open(tmp_path / "fuzz.db")
    try:
        store.replace_snapshot(snapshot, now=NOW)
        view(store, snapshot, [t.code for t in snapshot.tickets])
    finally:
        store.close()


_WORLD = first_snapshot()


# --- search -------------------------------------------------------------------------------------


@pytest.fixture
def named(tmp_path: Path) -> Iterator[LocalStore]:
    world = make_world(6)
    names = ["Élodie Müller", "ELODIE Martin", "Jean 10%_off", "Bob  Smith", None, "Zoë Östlund"]
    codes = ["K7QH-M2PX", "K7QH-R2D2", "ABCD-EFGH", "WXYZ-1234", "K7ZZ-0000", "MNPQ-RSTV"]
    tickets = [
        msgspec.structs.replace(t, holder_name=name, code=code)
        for t, name, code in zip(world.snapshot.tickets, names, codes, strict=True)
    ]
    opened = open_store(
        tmp_path / "door.db", msgspec.structs.replace(world.snapshot, tickets=tickets)
    )
    yield opened
    opened.close()


def names(found: list[TicketEntry]) -> list[str | None]:
    return [t.holder_name for t in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("élodie", ["Élodie Müller", "ELODIE Martin"], id="accent-and-case"),
        pytest.param("ELODIE MULLER", ["Élodie Müller"], id="upper-no-accents"),
        pytest.param("  élodie   müller ", ["Élodie Müller"], id="extra-blanks"),
        pytest.param("ostl", ["Zoë Östlund"], id="inside-a-word"),
        pytest.param("bob smith", ["Bob  Smith"], id="double-blank-in-the-name"),
        pytest.param("10%", ["Jean 10%_off"], id="percent-literal"),
        pytest.param("%_o", ["Jean 10%_off"], id="percent-underscore-literal"),
        pytest.param("%%%", [], id="only-percents"),
        pytest.param("___", [], id="only-underscores"),
        pytest.param("K7Q_", [], id="underscore-in-a-code"),
        pytest.param("\\\\\\", [], id="backslashes"),
        pytest.param("k7qh", ["Élodie Müller", "ELODIE Martin"], id="code-prefix-lower-case"),
        pytest.param("K7QH-R", ["ELODIE Martin"], id="code-prefix-with-dash"),
        pytest.param("K7Z", [None], id="code-of-a-ticket-without-name"),
        pytest.param("el", [], id="two-characters"),
        pytest.param("é ", [], id="one-character-and-a-blank"),
        pytest.param("", [], id="empty"),
        pytest.param("nobody", [], id="no-match"),
        pytest.param("x" * 10_000, [], id="10k-characters"),
        pytest.param("\x00\x00\x00", [], id="nul"),
    ],
)
def test_search_by_name_or_code(named: LocalStore, text: str, expected: list[str | None]) -> None:
    assert sorted(names(named.search(text)), key=str) == sorted(expected, key=str)


def test_search_stops_at_its_limit_in_name_order(named: LocalStore) -> None:
    assert names(named.search("elodie", limit=1)) == ["ELODIE Martin"]
    assert names(named.search("elodie", limit=5)) == ["ELODIE Martin", "Élodie Müller"]


# --- files --------------------------------------------------------------------------------------


def _modes(path: Path) -> dict[str, int]:
    return {
        suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(f"{path}{suffix}")
    }


def test_the_store_files_are_0600_after_open_writes_and_reopen(
    tmp_path: Path, world: World
) -> None:
    path = tmp_path / "door.db"
    previous = os.umask(0)  # a careless umask: the store must not rely on it
    try:
        store = LocalStore.open(path)
        assert _modes(path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        store.replace_snapshot(world.snapshot, now=NOW)
        store.journal(journal_entry("own-1", world.ticket(0).id), now=NOW)
        store.apply_changes(
            [scan_change(SEQ + 1, presence(world.ticket(0).id, world.list_id))],
            own_device=DEVICE,
            now=NOW,
        )
        assert _modes(path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        store.close()
        os.chmod(path, 0o644)  # a copy restored by hand
        store = LocalStore.open(path)
        store.journal(journal_entry("own-2", world.ticket(1).id), now=NOW)
        assert _modes(path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        store.close()
    finally:
        os.umask(previous)


def test_a_second_open_of_a_store_of_another_schema_is_refused(tmp_path: Path) -> None:
    store = LocalStore.open(tmp_path / "door.db")
    store._db.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    store.close()
    with pytest.raises(RuntimeError):
        LocalStore.open(tmp_path / "door.db")


# --- indexes ------------------------------------------------------------------------------------


def _plans(store: LocalStore, call: Callable[[], object]) -> list[tuple[str, list[str]]]:
    """The query plan of every SELECT or UPDATE `call` makes, as SQLite would run it."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        store._db.set_trace_callback(None)
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            plan = [row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql)]
            plans.append((sql, plan))
    return plans


def _assert_indexed(store: LocalStore, call: Callable[[], object]) -> None:
    plans = _plans(store, call)
    assert plans, "the call ran no query"
    for sql, plan in plans:
        full = [step for step in plan if step.startswith("SCAN") and " USING " not in step]
        assert not full, f"{sql}: {plan}"


def _fill_journal(path: Path, world: World, count: int) -> None:
    """A journal as a long evening leaves it: `count` scans, the last five still open, written
    in one transaction through a second connection (thousands of FULL commits would be slow)."""
    rows = []
    for n in range(count):
        ticket = world.ticket(n % len(world.snapshot.tickets))
        state = "queued" if n >= count - 5 else "done"
        annul = "requested" if n == count - 2 else None
        rows.append((f"s-{n:06d}", ticket.code, world.list_id, ticket.id, state, n % 3 == 0, annul))
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO journal (scan_id, code, list_id, direction, scanned_at, ticket_id, state, "
            "door_verdict, effect, annul, created_at) "
            "VALUES (?, ?, ?, 'entry', '2031-06-14T18:01:00Z', ?, ?, 'accepted', ?, ?, 0)",
            rows,
        )
    db.close()


@pytest.mark.parametrize(
    ("journal", "analyzed"),
    [
        pytest.param(0, False, id="fresh-empty-journal"),
        pytest.param(5_000, False, id="fresh-long-journal"),
        pytest.param(0, True, id="second-snapshot-empty-journal"),
        pytest.param(5_000, True, id="second-snapshot-long-journal"),
    ],
)
def test_every_lookup_of_a_scan_uses_an_index(
    tmp_path: Path, world: World, journal: int, analyzed: bool
) -> None:
    big = make_world(2_000)
    store = open_store(tmp_path / "door.db", big.snapshot)
    _fill_journal(store.path, big, journal)
    if analyzed:
        store.replace_snapshot(big.snapshot, now=NOW)  # drops and rebuilds the indexes, ANALYZE
    ticket = big.ticket(7)
    calls: dict[str, Callable[[], object]] = {
        "ticket_by_code": lambda: store.ticket_by_code(ticket.code),
        "ticket": lambda: store.ticket(ticket.id),
        "presence": lambda: store.presence(ticket.id, big.list_id),
        "overlay": lambda: store.overlay(ticket.id, big.list_id),
        "open_scans": lambda: store.open_scans(500),
        "journal_entry": lambda: store.journal_entry("s-000003"),
        "annul_requests": lambda: store.annul_requests(),
        "overlay_pairs": lambda: store.overlay_pairs(),
        "queued_count": lambda: store.queued_count(),
        "record_hub_result": lambda: store.record_hub_result(
            "s-000003", "accepted", None, forced=False, entries=1, ticket_id=ticket.id
        ),
        "record_door_verdict": lambda: store.record_door_verdict(
            "s-000004", "accepted", None, effect=True, ticket_id=ticket.id
        ),
        "set_annul": lambda: store.set_annul("s-000005", None),
        "scan-change": lambda: store.apply_changes(
            [
                scan_change(
                    (store.cursor() or 0) + 1,
                    presence(ticket.id, big.list_id),
                    device=DEVICE,
                    scan_id="s-000006",
                )
            ],
            own_device=DEVICE,
            now=NOW,
        ),
    }
    for name, call in calls.items():
        try:
            _assert_indexed(store, call)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    store.close()
