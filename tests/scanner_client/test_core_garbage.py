"""The sync engine fed garbage: by the hub (frames) and by the reader (codes).

What is pinned here:
  - no hub frame makes the engine raise; one it cannot read is a `Notice`, and no frame that is
    not an answer to one of this door's scans changes its journal;
  - the engine keeps working afterwards: the scan waiting for the hub is decided, the upload
    goes up again, the next real answer is shown;
  - no code read at the door makes it raise, and everything it sends for what it journaled is
    a frame the hub accepts (`protocol.messages.decode_client_frame`, strict), whatever the code
    and however many of them wait in the queue.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from protocol.messages import (
    MAX_FRAME_BYTES,
    Changes,
    ClientFrame,
    Hello,
    Result,
    ResultItem,
    Results,
    Scan,
    ScanBatch,
    Welcome,
    decode_client_frame,
    encode_frame,
)
from protocol.reasons import Reason
from scanner_client.core import UPLOAD_TIMEOUT, SyncCore
from scanner_client.events import Connection, DoorEvent, Notice, VerdictShown
from scanner_client.store import LocalStore
from tests.scanner_client.helpers import DEVICE, EVENT, T0, World, core_for, make_world

NOW = T0.timestamp() + 600
MB16 = 16 * 1024 * 1024


@pytest.fixture
def world() -> World:
    return make_world(5)


@pytest.fixture
def store(tmp_path: Path, world: World) -> Iterator[LocalStore]:
    opened = LocalStore.open(tmp_path / "door.db")
    opened.replace_snapshot(world.snapshot, now=NOW - 60)
    yield opened
    opened.close()


def welcome(core: SyncCore, now: float, *, head: int = 100) -> None:
    frame = Welcome(device_id=DEVICE, event_id=EVENT, head=head, snapshot_required=False)
    core.receive_frame(encode_frame(frame), now)
    core.receive_frame(encode_frame(Changes(items=[], head=head, has_more=False)), now)


def decoded(core: SyncCore) -> list[ClientFrame]:
    """Every frame the engine would send, as the hub decodes it (strict: raises if refused)."""
    return [decode_client_frame(frame) for frame in core.frames_to_send()]


def notices(events: list[DoorEvent]) -> list[str]:
    return [e.code for e in events if isinstance(e, Notice)]


def result(scan_id: str, world: World, n: int = 0, **fields: Any) -> ResultItem:
    ticket = world.ticket(n)
    values: dict[str, Any] = {
        "scan_id": scan_id,
        "verdict": "accepted",
        "reason": None,
        "forced": False,
        "offline": False,
        "annulled": False,
        "ticket": {
            "id": ticket.id,
            "code": ticket.code,
            "holder_name": ticket.holder_name,
            "ticket_type": "Standard",
            "seat": ticket.seat,
            "persons": 1,
        },
        "entries": 1,
    }
    return msgspec.convert(values | fields, ResultItem)


def busy_door(store: LocalStore, world: World) -> tuple[SyncCore, str, list[str]]:
    """A door with a batch of two offline scans in flight and an online scan awaiting the hub."""
    core = core_for(store, debounce=0)
    queued = [core.scan(world.token(1), NOW), core.scan(world.ticket(2).code, NOW + 0.1)]
    core.connected(NOW + 1)
    welcome(core, NOW + 1)
    pending = core.scan(world.token(0), NOW + 1)
    assert [type(f) for f in decoded(core)] == [Hello, ScanBatch, Scan]
    core.take_events()
    assert pending is not None and None not in queued
    return core, pending, [q for q in queued if q]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


GARBAGE_FRAMES: list[Any] = [
    pytest.param(b"", "hub_error", id="empty"),
    pytest.param(random.Random(7).randbytes(2048), "hub_error", id="random-bytes"),
    pytest.param(b"\xff\xfe\xfd", "hub_error", id="bad-utf8"),
    pytest.param(
        b'{"type": "error", "code": "x", "detail": "\xc3\x28"}', "hub_error", id="bad-utf8-inside"
    ),
    pytest.param(
        '{"type": "error", "code": "x", "detail": "\ud800"}', "hub_error", id="str-with-surrogate"
    ),
    pytest.param(b"hello hub", "hub_error", id="not-json"),
    pytest.param(b'{"type": "error"', "hub_error", id="truncated-json"),
    pytest.param(
        b'{"type": "error", "code": "x", "detail": "y"} {}', "hub_error", id="trailing-bytes"
    ),
    pytest.param(b"[1, 2, 3]", "hub_error", id="json-list"),
    pytest.param(b"18446744073709551616", "hub_error", id="json-huge-int"),
    pytest.param(b"{}", "hub_error", id="no-type"),
    pytest.param(b'{"type": 5}', "hub_error", id="type-not-a-string"),
    pytest.param(b'{"type": "scan"}', "hub_error", id="a-client-type"),
    pytest.param(b'{"type": "teleport", "where": "mars"}', "hub_error", id="unknown-type"),
    pytest.param(_deep(100_000), "hub_error", id="deeply-nested-list"),
    pytest.param(
        b'{"type": "changes", "head": 101, "has_more": false, "items": [{"seq": 101, "a": '
        + _deep(10_000)
        + b"}]}",
        "hub_error",
        id="deeply-nested-item",
    ),
    pytest.param(
        b'{"type": "error", "code": "x", "detail": "' + b"a" * MB16 + b'"}',
        "hub_error",
        id="16MB-frame",
    ),
    pytest.param("x" * (MB16 + 1), "hub_error", id="16MB-str"),
    pytest.param(
        _json({"type": "result", "scan_id": "nobody-1"}), "hub_error", id="result-missing-fields"
    ),
    pytest.param(
        _json(
            {
                "type": "welcome",
                "device_id": DEVICE,
                "event_id": EVENT,
                "head": -1,
                "snapshot_required": False,
            }
        ),
        "hub_error",
        id="welcome-negative-head",
    ),
    pytest.param(
        _json({"type": "changes", "head": 101, "has_more": False, "items": [1, "two"]}),
        "hub_error",
        id="changes-items-not-objects",
    ),
    pytest.param(
        _json(
            {
                "type": "changes",
                "head": 101,
                "has_more": False,
                "items": [{"seq": 101, "kind": "ticket.updated", "ticket": {"id": 5}}],
            }
        ),
        "resync",
        id="changes-bad-item",
    ),
    pytest.param(
        _json(
            {
                "type": "changes",
                "head": 101,
                "has_more": False,
                "items": [
                    {
                        "seq": 101,
                        "kind": "ticket_type.updated",
                        "ticket_type": {
                            "id": "TT00000000000001",
                            "name": "S",
                            "persons": 1,
                            "valid_from": "9999-12-31T23:00:00-14:00",
                            "valid_until": None,
                        },
                    }
                ],
            }
        ),
        "resync",
        id="changes-time-past-the-calendar",
    ),
    pytest.param(
        _json(
            {
                "type": "changes",
                "head": 101,
                "has_more": False,
                "items": [
                    {
                        "seq": 101,
                        "kind": "ticket_type.updated",
                        "ticket_type": {
                            "id": "TT00000000000001",
                            "name": "S",
                            "persons": 2**70,
                            "valid_from": None,
                            "valid_until": None,
                        },
                    }
                ],
            }
        ),
        "resync",
        id="changes-huge-int",
    ),
    pytest.param(
        _json({"type": "error", "code": "teapot", "detail": "short and stout"}),
        "hub_error",
        id="error-unknown-code",
    ),
    pytest.param(
        _json({"type": "error", "code": "forbidden", "detail": "no annul asked"}),
        "hub_error",
        id="error-annul-code-unasked",
    ),
    pytest.param(
        _json({"type": "error", "code": "x" * 65, "detail": ""}),
        "hub_error",
        id="error-code-too-long",
    ),
    pytest.param(
        _json(
            {
                "type": "counters",
                "total": 2**64,
                "checked_in": 0,
                "inside": 0,
                "remaining": 0,
                "lists": [],
                "gates": [],
            }
        ),
        None,
        id="counters-huge-int",
    ),
    pytest.param(
        _json(
            {
                "type": "conflict",
                "scan_id": "x",
                "reason": "bogus",
                "ticket": None,
                "device": None,
                "gate": None,
                "scanned_at": "2031-06-14T18:00:00Z",
            }
        ),
        "hub_error",
        id="conflict-unknown-reason",
    ),
]


@pytest.mark.parametrize(("frame", "notice"), GARBAGE_FRAMES)
def test_a_garbage_frame_never_raises_and_leaves_the_journal_as_it_was(
    store: LocalStore, world: World, frame: bytes | str, notice: str | None
) -> None:
    core, pending, queued = busy_door(store, world)
    journal, cursor = store.journal_entries(), store.cursor()
    core.receive_frame(frame, NOW + 1.1)
    events = core.take_events()
    assert notices(events) == ([notice] if notice else [])
    assert not [e for e in events if isinstance(e, VerdictShown)]
    assert store.journal_entries() == journal
    assert store.cursor() == cursor
    # Still working: the hub's next real answers are taken, the waiting scan decided in time.
    batch = Results(items=[result(q, world, 1, offline=True) for q in queued])
    core.receive_frame(encode_frame(batch), NOW + 1.2)
    assert store.queued_count() == 1
    core.receive_frame(
        encode_frame(Result(**msgspec.structs.asdict(result(pending, world)))), NOW + 1.3
    )
    [shown] = [e for e in core.take_events() if isinstance(e, VerdictShown)]
    assert (shown.scan_id, shown.source, shown.accepted) == (pending, "hub", True)
    assert store.queued_count() == 0


def test_answers_to_scans_this_door_never_made_change_nothing(
    store: LocalStore, world: World
) -> None:
    core, pending, queued = busy_door(store, world)
    journal = store.journal_entries()
    strangers = [result(f"other-device-{n}", world, n) for n in range(3)]
    core.receive_frame(encode_frame(Results(items=strangers)), NOW + 1.1)
    core.receive_frame(encode_frame(Result(**msgspec.structs.asdict(strangers[0]))), NOW + 1.1)
    annulled = msgspec.structs.replace(strangers[1], annulled=True)
    core.receive_frame(encode_frame(Result(**msgspec.structs.asdict(annulled))), NOW + 1.1)
    assert store.journal_entries() == journal
    assert [e for e in core.take_events() if isinstance(e, VerdictShown)] == []
    # The online scan the hub never answered is decided by the door in time...
    core.tick(NOW + 2.5)
    [shown] = [e for e in core.take_events() if isinstance(e, VerdictShown)]
    assert (shown.scan_id, shown.source) == (pending, "door")
    assert decoded(core) == []  # ...and waits: the batch in flight has no answer of its own yet
    core.tick(NOW + 1 + UPLOAD_TIMEOUT)
    again = [f for f in decoded(core) if isinstance(f, ScanBatch)]
    assert [[i.scan_id for i in f.items] for f in again] == [[*queued, pending]]


def test_a_catch_up_that_never_ends_keeps_the_door_degraded_and_scanning(
    store: LocalStore, world: World
) -> None:
    core = core_for(store, debounce=0)
    core.connected(NOW)
    core.receive_frame(
        encode_frame(
            Welcome(device_id=DEVICE, event_id=EVENT, head=10**9, snapshot_required=False)
        ),
        NOW,
    )
    for n in range(2_000):
        core.receive_frame(
            encode_frame(Changes(items=[], head=10**9, has_more=True)), NOW + n * 0.001
        )
    assert not core.is_caught_up and core.status(NOW + 3).connection == Connection.DEGRADED
    scan_id = core.scan(world.token(0), NOW + 3)
    [frame] = [f for f in decoded(core) if not isinstance(f, Hello)]
    assert isinstance(frame, Scan) and frame.scan_id == scan_id
    core.tick(NOW + 5)
    [shown] = [e for e in core.take_events() if isinstance(e, VerdictShown)]
    assert (shown.scan_id, shown.source, shown.accepted) == (scan_id, "door", True)
    assert store.cursor() == 100


@pytest.mark.parametrize("field", ["event_id", "device_id"])
def test_a_welcome_naming_another_event_or_device_unpairs_and_keeps_the_journal(
    store: LocalStore, world: World, field: str
) -> None:
    core, _, _ = busy_door(store, world)
    journal = store.journal_entries()
    names = {"device_id": DEVICE, "event_id": EVENT} | {field: "SOMEONE0ELSE"}
    core.receive_frame(encode_frame(Welcome(**names, head=100, snapshot_required=False)), NOW + 2)
    assert notices(core.take_events()) == ["hub_error", "unpaired"]
    assert core.unpaired and store.journal_entries() == journal
    assert core.scan(world.token(3), NOW + 3) is None
    assert store.journal_entries() == journal


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    frame=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    ["welcome", "result", "results", "changes", "conflict", "counters", "error"]
                )
            },
            optional={
                "scan_id": st.text(max_size=70),
                "items": st.lists(
                    st.dictionaries(
                        st.sampled_from(["seq", "kind", "scan_id", "verdict"]),
                        st.integers() | st.text(max_size=10),
                    ),
                    max_size=3,
                ),
                "head": st.integers(),
                "has_more": st.booleans(),
                "code": st.text(max_size=10),
                "detail": st.text(max_size=10),
                "verdict": st.sampled_from(["accepted", "rejected", "maybe"]),
                "device_id": st.just(DEVICE),
                "event_id": st.just(EVENT),
                "snapshot_required": st.booleans(),
            },
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_frame_at_all_never_raises(store: LocalStore, world: World, frame: bytes | str) -> None:
    core = core_for(store)
    core.connected(NOW)
    welcome(core, NOW)
    journal = store.journal_entries()
    core.receive_frame(frame, NOW + 1)
    core.tick(NOW + 100)
    decoded(core)
    assert store.journal_entries() == journal


# --- garbage scans ------------------------------------------------------------------------------

GARBAGE_CODES: list[Any] = [
    pytest.param("", id="empty"),
    pytest.param("   \t\r\n ", id="whitespace"),
    pytest.param("\u2028\u3000\x1c\x1d", id="unicode-blanks"),
    pytest.param("x" * 1024, id="1024-characters"),
    pytest.param("x" * 1025, id="1025-characters"),
    pytest.param(" " + "x" * 1024 + " ", id="1024-between-blanks"),
    pytest.param("x" * 10_000_000, id="10MB"),
    pytest.param("\x00", id="nul"),
    pytest.param("K7QH\x00M2PX", id="nul-inside"),
    pytest.param("\x01\x02\x03\x7f\x1b[31m", id="control-characters"),
    pytest.param("\x01" * 1024, id="1024-control-characters"),
    pytest.param("]C1\x1d0104012345678901\x1d10ABC", id="gs1-separators"),
    pytest.param("🎟️🎫 ticket", id="emoji"),
    pytest.param("🎫" * 1024, id="1024-emoji"),
    pytest.param("\u202eXP2M-HQ7K", id="right-to-left-override"),
    pytest.param("\ufeffK7QH-M2PX", id="byte-order-mark"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("K7QH-\udcffM2PX", id="surrogate-inside"),
    pytest.param("." * 1024, id="token-of-1024-dots"),
    pytest.param("." * 1025, id="token-of-1025-dots"),
    pytest.param("a.b.c", id="token-of-three-letters"),
    pytest.param("eyJ" + "A" * 1018 + ".b", id="token-1024-base64"),
    pytest.param("k7qh m2px", id="readable-code-lower-case-with-a-blank"),
]


@pytest.mark.parametrize("code", GARBAGE_CODES)
@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_a_garbage_code_never_raises_and_whatever_is_journaled_goes_up_as_a_valid_frame(
    store: LocalStore, world: World, code: str, online: bool
) -> None:
    core = core_for(store, debounce=0)
    if online:
        core.connected(NOW)
        welcome(core, NOW)
        decoded(core)
    scan_id = core.scan(code, NOW + 1)
    entries = store.journal_entries()
    assert [e.scan_id for e in entries] == ([scan_id] if scan_id else [])
    events = core.take_events()
    verdicts = [e for e in events if isinstance(e, VerdictShown)]
    msgspec.json.encode(events)  # what headless prints: every event encodes
    if scan_id is None:
        assert all(v.scan_id == "" and not v.accepted for v in verdicts)
        assert decoded(core) == []
        return
    if online:
        [frame] = decoded(core)
        assert isinstance(frame, Scan) and (frame.scan_id, frame.code) == (scan_id, entries[0].code)
        core.tick(NOW + 10)  # no answer: the door decides, the scan joins the queue
    [shown] = [e for e in core.take_events() if isinstance(e, VerdictShown)] or verdicts
    assert shown.scan_id == scan_id
    core.disconnected(NOW + 11)
    core.connected(NOW + 12)
    welcome(core, NOW + 12)
    [batch] = [f for f in decoded(core) if isinstance(f, ScanBatch)]
    assert [(i.scan_id, i.code) for i in batch.items] == [(scan_id, entries[0].code)]


def test_a_full_queue_of_the_longest_codes_goes_up_in_frames_the_hub_accepts(
    store: LocalStore, world: World
) -> None:
    core = core_for(store, debounce=0)
    # Control characters are escaped as \\u00XX: six bytes each on the wire.
    ids = [core.scan(f"{n:04d}" + "\x01" * 1020, NOW + n * 0.01) for n in range(600)]
    core.connected(NOW + 10)
    welcome(core, NOW + 10)
    uploaded: list[str] = []
    for _ in range(100):
        frames = core.frames_to_send()
        assert all(len(frame) <= MAX_FRAME_BYTES for frame in frames)
        batches = [f for f in map(decode_client_frame, frames) if not isinstance(f, Hello)]
        if not batches:
            break
        for batch in batches:
            assert isinstance(batch, ScanBatch)
            items = [
                result(i.scan_id, world, verdict="rejected", reason=Reason.INVALID, offline=True)
                for i in batch.items
            ]
            uploaded += [i.scan_id for i in batch.items]
            core.receive_frame(encode_frame(Results(items=items)), NOW + 11)
    assert uploaded == ids
    assert store.queued_count() == 0
