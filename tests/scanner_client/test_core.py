"""The sans-I/O sync engine, driven by hand: frames and times in, frames, events and deadlines out.

No network and no clock: every test feeds `now` itself, and hub frames are built with
`protocol.messages`, exactly as the hub encodes them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import (
    Changes,
    Error,
    FirstScan,
    Result,
    ResultItem,
    Results,
    TicketInfo,
    Welcome,
    encode_frame,
)
from protocol.reasons import Reason
from protocol.rules import Direction
from protocol.sync import to_wire
from scanner_client.core import SyncCore
from scanner_client.events import (
    Colour,
    Connection,
    Notice,
    StatusChanged,
    Undone,
    VerdictShown,
)
from scanner_client.store import LocalStore
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


@pytest.fixture
def world() -> World:
    return make_world(5)


@pytest.fixture
def store(tmp_path: Path, world: World) -> LocalStore:
    opened = LocalStore.open(tmp_path / "door.db")
    opened.replace_snapshot(world.snapshot, now=NOW - 60)
    yield opened
    opened.close()


def verdicts(core: SyncCore) -> list[VerdictShown]:
    return [e for e in core.take_events() if isinstance(e, VerdictShown)]


def sent(core: SyncCore) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in core.frames_to_send()]


def welcome(
    core: SyncCore, now: float, *, head: int = 100, snapshot_required: bool = False
) -> None:
    core.receive_frame(
        encode_frame(
            Welcome(
                device_id=DEVICE, event_id=EVENT, head=head, snapshot_required=snapshot_required
            )
        ),
        now,
    )
    core.receive_frame(encode_frame(Changes(items=[], head=head, has_more=False)), now)


def result_for(
    world: World,
    scan_id: str,
    n: int,
    *,
    verdict: str = "accepted",
    reason: Reason | None = None,
    entries: int = 1,
    **extra: Any,
) -> ResultItem:
    ticket = world.ticket(n)
    info = TicketInfo(ticket.id, ticket.code, ticket.holder_name, "Standard", ticket.seat, 1)
    return ResultItem(
        scan_id=scan_id,
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason,
        forced=extra.get("forced", False),
        offline=extra.get("offline", False),
        annulled=extra.get("annulled", False),
        ticket=info,
        entries=entries,
        first_scan=extra.get("first_scan"),
    )


def scan_item(
    world: World, n: int, *, seq: int, device: str = OTHER_DEVICE, scan_id: str = "other-1"
) -> dict[str, Any]:
    ticket = world.ticket(n)
    at = "2031-06-14T18:05:00Z"
    return {
        "seq": seq,
        "kind": "scan.accepted",
        "scan": {
            "scan_id": scan_id,
            "device_id": device,
            "ticket_id": ticket.id,
            "list_id": world.list_id,
            "direction": "entry",
            "scanned_at": at,
            "gate": "North",
            "offline": False,
            "forced": False,
        },
        "presence": {
            "ticket_id": ticket.id,
            "list_id": world.list_id,
            "entries": 1,
            "inside": True,
            "first_scan_id": scan_id,
            "first_at": at,
            "first_gate": "North",
            "first_device": device,
        },
    }


# --- offline verdicts ---------------------------------------------------------------------------


def test_offline_scan_is_decided_by_the_door_and_journaled_before_it_is_shown(store, world):
    core = core_for(store)
    scan_id = core.scan(world.token(0), NOW)
    [shown] = verdicts(core)
    assert (shown.accepted, shown.source, shown.colour) == (True, "door", Colour.GREEN)
    assert shown.ticket is not None and shown.ticket.holder_name == "Guest 0"
    assert (shown.entries, shown.max_entries) == (1, 1)
    entry = store.journal_entry(scan_id)
    assert (entry.state, entry.door_verdict, entry.effect) == ("queued", "accepted", True)


def test_a_second_offline_entry_is_already_redeemed_with_the_first_entry_here(store, world):
    core = core_for(store, debounce=0)
    core.scan(world.token(0), NOW)
    core.scan(world.ticket(0).code.lower(), NOW + 1)
    first, second = verdicts(core)
    assert first.accepted and not second.accepted
    assert (second.reason, second.colour) == (Reason.ALREADY_REDEEMED, Colour.AMBER)
    assert second.first_here and second.first_at == datetime.fromtimestamp(NOW, UTC)
    assert store.journal_entry("scan-000002").door_reason == "already_redeemed"


def test_the_same_code_read_twice_within_the_debounce_window_counts_once(store, world):
    core = core_for(store)
    core.scan(world.token(1), NOW)
    core.scan(world.token(1), NOW + 1.0)
    first, again = verdicts(core)
    assert again.repeat and again.accepted and again.scan_id == first.scan_id
    assert store.queued_count() == 1
    core.scan(world.token(1), NOW + 3.0)  # past the window (measured from the last read)
    [later] = verdicts(core)
    assert not later.repeat and later.reason == Reason.ALREADY_REDEEMED


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param("ZZZZ-ZZZZ", Reason.INVALID, id="unknown-readable-code"),
        pytest.param("eyJ.bad.token", Reason.INVALID, id="garbage-token"),
        pytest.param("wrong-event", Reason.WRONG_EVENT, id="signed-for-another-event"),
        pytest.param("superseded", Reason.REVOKED, id="superseded-version"),
        pytest.param("future", Reason.INVALID, id="version-from-the-future"),
    ],
)
def test_offline_refusals_follow_the_hubs_order(store, world, code, reason):
    world.snapshot.tickets[2] = world.ticket(2).__class__(
        **{**to_wire(world.ticket(2)), "version": 2}
    )
    store.replace_snapshot(world.snapshot, now=NOW)
    codes = {
        "wrong-event": world.token(0, event="EVT0000009"),
        "superseded": world.token(2, ver=1),
        "future": world.token(0, ver=5),
    }
    core = core_for(store)
    core.scan(codes.get(code, code), NOW)
    [shown] = verdicts(core)
    assert (shown.accepted, shown.reason, shown.colour) == (False, reason, Colour.RED)


def test_codes_the_wire_cannot_carry_are_refused_and_not_journaled(store):
    core = core_for(store)
    assert core.scan("x" * 1025, NOW) is None
    assert core.scan("AB\x00CD", NOW) is None
    assert [v.reason for v in verdicts(core)] == [Reason.INVALID, Reason.INVALID]
    assert store.queued_count() == 0


def test_no_scan_before_the_first_snapshot(tmp_path):
    empty = LocalStore.open(tmp_path / "empty.db")
    core = core_for(empty)
    assert core.scan("K7QH-M2PX", NOW) is None
    assert any(isinstance(e, Notice) and e.code == "no_data" for e in core.take_events())
    assert core.wants_snapshot


def test_a_snapshot_taken_before_the_welcome_is_not_downloaded_again(tmp_path, world):
    """The shell may fetch the first snapshot while the socket is still opening: its `hello`
    went out with no cursor, so its `welcome` says snapshot_required. That answer is stale once
    the snapshot is loaded and a `hello` with its seq has followed: only the last one counts."""
    empty = LocalStore.open(tmp_path / "empty.db")
    core = core_for(empty)
    core.connected(NOW)
    assert sent(core) == [{"type": "hello", "cursor": None}]
    core.snapshot_loaded(world.snapshot, NOW)
    assert sent(core) == [{"type": "hello", "cursor": world.snapshot.seq}]
    welcome(core, NOW, snapshot_required=True)  # the answer to the first hello
    assert not core.wants_snapshot
    welcome(core, NOW, head=world.snapshot.seq)  # the answer to the second
    assert core.is_caught_up and not core.wants_snapshot
    welcome(core, NOW, snapshot_required=True)  # a hub that really wants one is still heard
    assert core.wants_snapshot
    empty.close()


# --- online -------------------------------------------------------------------------------------


def test_online_the_hub_decides_and_its_result_is_shown(store, world):
    core = core_for(store)
    core.connected(NOW)
    assert sent(core) == [{"type": "hello", "cursor": 100}]
    welcome(core, NOW)
    scan_id = core.scan(world.token(0), NOW)
    [frame] = sent(core)
    assert frame["type"] == "scan" and frame["scan_id"] == scan_id and frame["offline"] is False
    assert store.journal_entry(scan_id).state == "pending"
    assert verdicts(core) == []
    core.receive_frame(encode_frame(Result(**to_wire(result_for(world, scan_id, 0)))), NOW + 0.01)
    [shown] = verdicts(core)
    assert (shown.source, shown.accepted) == ("hub", True)
    assert store.journal_entry(scan_id).state == "done"
    assert core.status(NOW).connection == Connection.LIVE


def test_a_hub_that_does_not_answer_in_time_leaves_the_verdict_to_the_door(store, world):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    scan_id = core.scan(world.token(0), NOW)
    assert core.next_deadline() == pytest.approx(NOW + 1.5)
    core.tick(NOW + 1.49)
    assert verdicts(core) == []
    core.tick(NOW + 1.5)
    [shown] = verdicts(core)
    assert (shown.source, shown.accepted) == ("door", True)
    assert core.status(NOW + 2).connection == Connection.DEGRADED
    # The hub's late answer disagrees (another door was first): it is stored and shown.
    late = result_for(
        world,
        scan_id,
        0,
        verdict="rejected",
        reason=Reason.ALREADY_REDEEMED,
        entries=1,
        first_scan=FirstScan(at=T0, gate="North", device=OTHER_DEVICE),
    )
    core.receive_frame(encode_frame(Result(**to_wire(late))), NOW + 3)
    [corrected] = verdicts(core)
    assert corrected.late and corrected.reason == Reason.ALREADY_REDEEMED
    assert corrected.first_gate == "North"
    entry = store.journal_entry(scan_id)
    assert (entry.state, entry.hub_verdict, entry.effect) == ("done", "rejected", False)


def test_a_dropped_socket_decides_the_scans_waiting_for_the_hub_at_once(store, world):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    core.scan(world.token(0), NOW)
    core.disconnected(NOW + 0.2)
    [shown] = verdicts(core)
    assert shown.source == "door" and shown.accepted
    assert core.status(NOW).connection == Connection.OFFLINE


# --- uploads ------------------------------------------------------------------------------------


def test_queued_scans_upload_after_welcome_with_the_doors_verdicts(store, world):
    core = core_for(store, debounce=0)
    core.scan(world.token(0), NOW)
    core.scan(world.token(0), NOW + 1)  # refused at the door: already redeemed
    core.take_events()
    core.connected(NOW + 5)
    assert [f["type"] for f in sent(core)] == ["hello"]
    welcome(core, NOW + 5)
    [batch] = sent(core)
    assert batch["type"] == "scan_batch"
    first, second = batch["items"]
    assert (first["offline"], first["verdict"], "reason" in first) == (True, "accepted", True)
    assert first["reason"] is None
    assert (second["verdict"], second["reason"]) == ("rejected", "already_redeemed")
    results = Results(
        items=[
            result_for(world, first["scan_id"], 0, offline=True),
            result_for(
                world,
                second["scan_id"],
                0,
                verdict="rejected",
                reason=Reason.ALREADY_REDEEMED,
                offline=True,
            ),
        ]
    )
    core.receive_frame(encode_frame(results), NOW + 5.1)
    assert store.queued_count() == 0
    assert sent(core) == []


def test_a_long_queue_goes_up_in_batches_of_500_one_at_a_time(store, world):
    core = core_for(store, debounce=0)
    for n in range(1200):
        core.scan(f"ZZZZ-{n:04d}", NOW + n * 0.001)
    core.connected(NOW + 10)
    welcome(core, NOW + 10)
    frames = sent(core)
    [batch] = [f for f in frames if f["type"] == "scan_batch"]
    assert len(batch["items"]) == 500
    core.tick(NOW + 11)
    assert sent(core) == []  # the next batch waits for this one's results
    answer = Results(
        items=[
            result_for(
                world, i["scan_id"], 0, verdict="rejected", reason=Reason.INVALID, offline=True
            )
            for i in batch["items"]
        ]
    )
    core.receive_frame(encode_frame(answer), NOW + 11)
    [second] = sent(core)
    assert len(second["items"]) == 500
    assert second["items"][0]["scan_id"] != batch["items"][0]["scan_id"]


@pytest.mark.parametrize("code", ["rate_limited", "internal", "database_unavailable"])
def test_a_refused_or_unanswered_batch_is_sent_again_with_the_same_ids(store, world, code):
    core = core_for(store)
    core.scan(world.token(0), NOW)
    core.connected(NOW + 1)
    welcome(core, NOW + 1)
    [first] = [f for f in sent(core) if f["type"] == "scan_batch"]
    core.receive_frame(encode_frame(Error(code=code, detail="not now")), NOW + 1.1)
    core.tick(NOW + 2)
    assert sent(core) == []
    core.tick(NOW + 3.2)
    [again] = sent(core)
    assert again == first
    core.tick(NOW + 3.2 + 15)  # unanswered: sent once more
    assert sent(core) == [first]


def test_a_hub_without_its_database_closes_1013_and_the_scan_is_decided_at_once_then_uploaded(
    store, world
):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    scan_id = core.scan(world.token(0), NOW)
    sent(core)
    unavailable = Error(code="database_unavailable", detail="the database cannot be reached")
    core.receive_frame(encode_frame(unavailable), NOW + 0.01)
    assert verdicts(core) == []  # the error names no scan: the close decides
    core.disconnected(NOW + 0.01, 1013)
    [shown] = verdicts(core)
    assert (shown.scan_id, shown.source, shown.accepted) == (scan_id, "door", True)
    assert core.connection(NOW + 0.02) == Connection.OFFLINE  # not degraded: offline, at once
    assert not core.unpaired
    core.connected(NOW + 2)
    welcome(core, NOW + 2)
    [batch] = [f for f in sent(core) if f["type"] == "scan_batch"]
    [item] = batch["items"]
    assert (item["scan_id"], item["offline"], item["verdict"]) == (scan_id, True, "accepted")


def test_after_a_crash_a_scan_sent_online_but_never_answered_goes_up_for_the_hub_to_decide(
    tmp_path, store, world
):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    scan_id = core.scan(world.token(0), NOW)
    sent(core)
    # kill -9: the engine is gone, the journal stays.
    reopened = LocalStore.open(store.path)
    fresh = core_for(reopened)
    fresh.connected(NOW + 60)
    welcome(fresh, NOW + 60)
    [batch] = [f for f in sent(fresh) if f["type"] == "scan_batch"]
    [item] = batch["items"]
    assert item["scan_id"] == scan_id and item["offline"] is False and item["verdict"] is None
    reopened.close()


# --- the change log -----------------------------------------------------------------------------


def test_another_doors_check_in_refuses_the_ticket_offline(store, world):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    core.receive_frame(
        encode_frame(Changes(items=[scan_item(world, 3, seq=101)], head=101, has_more=False)), NOW
    )
    assert store.cursor() == 101
    core.disconnected(NOW + 1)
    core.scan(world.token(3), NOW + 2)
    [shown] = verdicts(core)
    assert shown.reason == Reason.ALREADY_REDEEMED and shown.first_gate == "North"
    assert not shown.first_here


def test_the_doors_own_unconfirmed_entries_survive_a_page_of_other_changes(store, world):
    core = core_for(store, debounce=0)
    core.scan(world.token(0), NOW)  # offline entry, not uploaded yet
    core.connected(NOW + 1)
    core.receive_frame(
        encode_frame(Welcome(device_id=DEVICE, event_id=EVENT, head=101, snapshot_required=False)),
        NOW + 1,
    )
    core.receive_frame(
        encode_frame(Changes(items=[scan_item(world, 1, seq=101)], head=101, has_more=False)),
        NOW + 1,
    )
    core.disconnected(NOW + 2)
    core.take_events()
    core.scan(world.token(0), NOW + 3)
    [shown] = verdicts(core)
    assert shown.reason == Reason.ALREADY_REDEEMED and shown.first_here


def test_a_gap_restarts_the_stream_and_a_bad_item_asks_for_a_snapshot(store, world):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    sent(core)
    core.receive_frame(
        encode_frame(Changes(items=[scan_item(world, 1, seq=105)], head=105, has_more=False)), NOW
    )
    assert sent(core) == [{"type": "hello", "cursor": 100}]
    assert store.cursor() == 100
    bad = {"seq": 101, "kind": "ticket.updated", "ticket": {"id": 5}}
    core.receive_frame(encode_frame(Changes(items=[bad], head=101, has_more=False)), NOW)
    assert core.wants_snapshot and store.cursor() == 100
    assert core.status(NOW).connection == Connection.SYNCING


def test_a_revoked_ticket_is_refused_offline(store, world):
    ticket = to_wire(world.ticket(4)) | {"status": "revoked"}
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    item = {"seq": 101, "kind": "ticket.revoked", "ticket": ticket}
    core.receive_frame(encode_frame(Changes(items=[item], head=101, has_more=False)), NOW)
    core.disconnected(NOW)
    core.scan(world.token(4), NOW + 1)
    [shown] = verdicts(core)
    assert shown.reason == Reason.REVOKED


def test_the_revocation_of_this_device_unpairs_it(store, world):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    item = {
        "seq": 101,
        "kind": "device.revoked",
        "device": {"id": DEVICE, "name": "Door", "gate": None},
    }
    core.receive_frame(encode_frame(Changes(items=[item], head=101, has_more=False)), NOW)
    assert core.unpaired and core.status(NOW).connection == Connection.UNPAIRED
    assert core.scan(world.token(0), NOW) is None


def test_a_close_4403_unpairs_the_device(store):
    core = core_for(store)
    core.connected(NOW)
    core.disconnected(NOW, 4403)
    statuses = [e for e in core.take_events() if isinstance(e, StatusChanged)]
    assert statuses[-1].connection == Connection.UNPAIRED


# --- undo ---------------------------------------------------------------------------------------


def test_undo_of_an_offline_entry_frees_the_ticket_at_once_and_annuls_it_after_upload(store, world):
    core = core_for(store, debounce=0)
    scan_id = core.scan(world.token(0), NOW)
    core.undo_last(NOW + 1)
    undone = [e for e in core.take_events() if isinstance(e, Undone)]
    assert undone == [Undone(scan_id=scan_id, ok=True, pending=True)]
    core.scan(world.token(0), NOW + 2)
    [again] = verdicts(core)
    assert again.accepted  # the undone entry no longer counts at this door
    core.connected(NOW + 5)
    welcome(core, NOW + 5)
    [batch] = [f for f in sent(core) if f["type"] == "scan_batch"]
    ids = [i["scan_id"] for i in batch["items"]]
    answer = Results(items=[result_for(world, i, 0, offline=True) for i in ids])
    core.receive_frame(encode_frame(answer), NOW + 5.1)
    assert {"type": "annul", "scan_id": scan_id} in sent(core)
    annulled = result_for(world, scan_id, 0, offline=True, annulled=True, entries=1)
    core.receive_frame(encode_frame(Result(**to_wire(annulled))), NOW + 5.2)
    [done] = [e for e in core.take_events() if isinstance(e, Undone)]
    assert done.ok and not done.pending and store.journal_entry(scan_id).annul == "done"


def test_an_undo_the_hub_refuses_is_reported_and_the_scan_stands(store, world):
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    scan_id = core.scan(world.token(0), NOW)
    core.receive_frame(encode_frame(Result(**to_wire(result_for(world, scan_id, 0)))), NOW)
    sent(core)
    core.undo_last(NOW + 1000)
    assert sent(core) == [{"type": "annul", "scan_id": scan_id}]
    core.receive_frame(
        encode_frame(Error(code="forbidden", detail="older than 15 minutes")), NOW + 1000
    )
    [refused] = [e for e in core.take_events() if isinstance(e, Undone)]
    assert (refused.ok, refused.error) == (False, "forbidden")
    assert store.journal_entry(scan_id).annul is None


def test_exit_mode_is_sent_and_decided_as_exits(store, world):
    core = core_for(store, direction=Direction.EXIT)
    core.scan(world.token(0), NOW)
    [shown] = verdicts(core)
    assert shown.accepted and shown.direction == Direction.EXIT and shown.entries == 0
