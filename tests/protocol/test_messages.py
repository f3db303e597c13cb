"""Websocket frames: every type round-trips; anything else is a FrameError with a stable code."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol.messages
from protocol.messages import (
    MAX_BATCH_ITEMS,
    MAX_FRAME_BYTES,
    Annul,
    Auth,
    Changes,
    ClientFrame,
    Conflict,
    Counters,
    EarlierScan,
    Error,
    FirstScan,
    FrameError,
    GateCounters,
    Hello,
    HubFrame,
    ListCounters,
    Result,
    ResultItem,
    Results,
    Scan,
    ScanBatch,
    ScanItem,
    TicketInfo,
    Welcome,
    decode_client_frame,
    decode_hub_frame,
    encode_frame,
)
from protocol.reasons import Reason
from protocol.rules import Direction

AT = datetime(2031, 6, 14, 20, 0, tzinfo=UTC)
TICKET = TicketInfo(
    id="TKT0000000000001",
    code="K7QH-M2PX",
    holder_name="Ada Lovelace",
    ticket_type="Adult",
    seat="B12",
    persons=2,
)
ITEM = ScanItem(
    scan_id="scan-1",
    code="K7QH-M2PX",
    list_id="L1",
    direction=Direction.EXIT,
    scanned_at=AT,
    offline=True,
    verdict="accepted",
)
RESULT_FIELDS: dict[str, Any] = {
    "scan_id": "scan-1",
    "verdict": "rejected",
    "reason": Reason.ALREADY_REDEEMED,
    "forced": False,
    "offline": False,
    "annulled": False,
    "ticket": TICKET,
    "entries": 1,
    "first_scan": FirstScan(at=AT, gate="A", device="D1"),
}

CLIENT_FRAMES: list[ClientFrame] = [
    Auth(token="dev-token"),
    Hello(cursor=None),
    Hello(cursor=42),
    Scan(scan_id="scan-1", code="K7QH-M2PX", list_id="L1"),
    Scan(**{f: getattr(ITEM, f) for f in ITEM.__struct_fields__}),
    ScanBatch(items=[ITEM, ScanItem(scan_id="scan-2", code="eyJhbGciOi", list_id="L1")]),
    ScanBatch(items=[]),
    Annul(scan_id="scan-1"),
]
HUB_FRAMES: list[HubFrame] = [
    Welcome(device_id="D1", event_id="EVT0000001", head=17, snapshot_required=False),
    Result(**RESULT_FIELDS),
    Result(**(RESULT_FIELDS | {"ticket": None, "reason": Reason.INVALID, "first_scan": None})),
    Results(items=[ResultItem(**RESULT_FIELDS)]),
    Changes(
        items=[{"seq": 18, "kind": "ticket.revoked", "ticket_id": "T1"}], head=18, has_more=False
    ),
    Conflict(
        scan_id="scan-9",
        ticket=TICKET,
        reason=Reason.ALREADY_REDEEMED,
        device="D2",
        gate="B",
        scanned_at=AT,
        earlier=EarlierScan(scan_id="scan-1", device="D1", gate="A", at=AT),
    ),
    Conflict(
        scan_id="s", ticket=None, reason=Reason.REVOKED, device=None, gate=None, scanned_at=AT
    ),
    Counters(
        total=100,
        checked_in=40,
        inside=35,
        remaining=60,
        lists=[ListCounters(list_id="L1", name="Main", checked_in=40, inside=35, remaining=60)],
        gates=[GateCounters(gate="A", checked_in=40, inside=35)],
    ),
    Error(code="invalid", detail="Expected `int | null`, got `str` - at `$.cursor`"),
]
VALID = encode_frame(Scan(scan_id="scan-1", code="K7QH-M2PX", list_id="L1"))


def _refusal(data: bytes | str) -> str:
    """The FrameError code `decode_client_frame` raises for `data`."""
    with pytest.raises(FrameError) as info:
        decode_client_frame(data)
    assert info.value.detail
    return info.value.code


def _scan(**fields: Any) -> bytes:
    return json.dumps(
        {"type": "scan", "scan_id": "s", "code": "c", "list_id": "L"} | fields
    ).encode()


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: type(f).__name__)
def test_client_frames_round_trip(frame: ClientFrame) -> None:
    assert decode_client_frame(encode_frame(frame)) == frame
    assert decode_client_frame(encode_frame(frame).decode()) == frame


@pytest.mark.parametrize("frame", HUB_FRAMES, ids=lambda f: type(f).__name__)
def test_hub_frames_round_trip(frame: HubFrame) -> None:
    assert decode_hub_frame(encode_frame(frame)) == frame


@pytest.mark.parametrize("frame", [*CLIENT_FRAMES, *HUB_FRAMES], ids=lambda f: type(f).__name__)
def test_every_frame_is_one_flat_object_with_its_type_first(frame: Any) -> None:
    raw = json.loads(encode_frame(frame))
    assert next(iter(raw)) == "type"
    assert raw["type"] == type(frame).__struct_config__.tag


def test_scan_frame_fields_are_the_spec() -> None:
    assert json.loads(encode_frame(CLIENT_FRAMES[3])) == {
        "type": "scan",
        "scan_id": "scan-1",
        "code": "K7QH-M2PX",
        "list_id": "L1",
        "direction": "entry",
        "scanned_at": None,
        "offline": False,
        "verdict": None,
        "reason": None,
    }


OFFLINE_ITEM_CASES = [
    pytest.param({"offline": True}, False, id="offline-without-the-doors-verdict"),
    pytest.param({"offline": True, "verdict": "accepted"}, True, id="offline-admitted"),
    pytest.param(
        {"offline": True, "verdict": "rejected", "reason": "revoked"}, True, id="offline-refused"
    ),
    pytest.param({"offline": True, "verdict": "rejected"}, False, id="refused-without-reason"),
    pytest.param(
        {"offline": True, "verdict": "accepted", "reason": "revoked"},
        False,
        id="admitted-with-a-reason",
    ),
    pytest.param({"verdict": "accepted"}, False, id="online-with-a-verdict"),
    pytest.param({"reason": "revoked"}, False, id="online-with-a-reason"),
    pytest.param(
        {"offline": True, "verdict": "rejected", "reason": "nope"}, False, id="unknown-reason"
    ),
    pytest.param({"offline": True, "verdict": "maybe"}, False, id="unknown-verdict"),
    pytest.param({"scanned_at": "9999-12-31T23:59:59-14:00"}, False, id="after-year-9999-in-utc"),
    pytest.param({"scanned_at": "0001-01-01T00:00:00+14:00"}, False, id="before-year-1-in-utc"),
    pytest.param({"scanned_at": "9999-12-31T09:59:59-14:00"}, False, id="last-day-of-9999"),
    pytest.param({"scanned_at": "9999-12-30T09:59:59-14:00"}, True, id="last-day-but-one"),
    pytest.param({"scanned_at": "0001-01-02T00:00:00Z"}, True, id="second-day-of-year-1"),
]


@pytest.mark.parametrize(("fields", "valid"), OFFLINE_ITEM_CASES)
def test_an_offline_scan_carries_the_doors_verdict_and_its_reason_only_when_refused(
    fields: dict[str, Any], valid: bool
) -> None:
    frame = {"type": "scan", "scan_id": "s", "code": "c", "list_id": "L", **fields}
    batch = {"type": "scan_batch", "items": [{k: v for k, v in frame.items() if k != "type"}]}
    for data in (frame, batch):
        raw = json.dumps(data)
        if valid:
            decode_client_frame(raw)
        else:
            with pytest.raises(FrameError) as refused:
                decode_client_frame(raw)
            assert refused.value.code == "invalid"


def test_scan_defaults_apply_when_optional_fields_are_absent() -> None:
    frame = decode_client_frame(b'{"type":"scan","scan_id":"s","code":"c","list_id":"L"}')
    assert frame == Scan(scan_id="s", code="c", list_id="L")
    assert frame.direction is Direction.ENTRY


def test_result_frame_fields_are_the_spec() -> None:
    raw = json.loads(encode_frame(HUB_FRAMES[1]))
    assert raw["verdict"] == "rejected"
    assert raw["reason"] == "already_redeemed"
    assert raw["ticket"] == {
        "id": "TKT0000000000001",
        "code": "K7QH-M2PX",
        "holder_name": "Ada Lovelace",
        "ticket_type": "Adult",
        "seat": "B12",
        "persons": 2,
    }
    assert raw["first_scan"] == {"at": "2031-06-14T20:00:00Z", "gate": "A", "device": "D1"}


def test_hub_frames_are_not_accepted_from_a_client_and_vice_versa() -> None:
    with pytest.raises(FrameError) as info:
        decode_client_frame(encode_frame(HUB_FRAMES[0]))
    assert info.value.code == "unknown_type"
    with pytest.raises(FrameError) as info:
        decode_hub_frame(encode_frame(CLIENT_FRAMES[0]))
    assert info.value.code == "unknown_type"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"", "malformed", id="empty"),
        pytest.param(b"hello", "malformed", id="not-json"),
        pytest.param(b'{"type":"hello","cursor":1', "malformed", id="truncated"),
        pytest.param(b'{"type":"auth","token":"\xff\xfe"}', "malformed", id="invalid-utf8"),
        pytest.param('{"type":"auth","token":"\ud800"}', "malformed", id="lone-surrogate-str"),
        pytest.param(b'{"type":"auth","token":"\\ud800"}', "malformed", id="escaped-surrogate"),
        pytest.param(b'[{"type":"hello","cursor":1}]', "malformed", id="json-array"),
        pytest.param(b"42", "malformed", id="json-number"),
        pytest.param(b'"hello"', "malformed", id="json-string"),
        pytest.param(b"null", "malformed", id="json-null"),
        pytest.param(b'{"cursor":1}', "unknown_type", id="missing-type"),
        pytest.param(b'{"type":"bogus"}', "unknown_type", id="unknown-type"),
        pytest.param(b'{"type":1,"cursor":1}', "unknown_type", id="type-not-a-string"),
        pytest.param(b'{"type":"HELLO","cursor":1}', "unknown_type", id="type-is-case-sensitive"),
        pytest.param(b'{"type":"hello","cursor":"1"}', "invalid", id="cursor-as-string"),
        pytest.param(b'{"type":"hello","cursor":1.0}', "invalid", id="cursor-as-float"),
        pytest.param(b'{"type":"hello","cursor":true}', "invalid", id="cursor-as-bool"),
        pytest.param(b'{"type":"hello","cursor":-1}', "invalid", id="negative-cursor"),
        pytest.param(b'{"type":"hello"}', "invalid", id="missing-cursor"),
        pytest.param(b'{"type":"hello","cursor":1,"x":1}', "invalid", id="unknown-field"),
        pytest.param(b'{"type":"auth","token":7}', "invalid", id="token-as-number"),
        pytest.param(b'{"type":"annul"}', "invalid", id="missing-scan-id"),
        pytest.param(_scan(scan_id=""), "invalid", id="empty-scan-id"),
        pytest.param(_scan(scan_id="s" * 65), "invalid", id="scan-id-over-64"),
        pytest.param(_scan(code="c" * 1025), "invalid", id="code-over-1024"),
        pytest.param(_scan(list_id="L" * 65), "invalid", id="list-id-over-64"),
        pytest.param(_scan(direction="sideways"), "invalid", id="unknown-direction"),
        pytest.param(_scan(offline="true"), "invalid", id="offline-as-string"),
        pytest.param(_scan(scanned_at="2031-06-14T20:00:00"), "invalid", id="naive-time"),
        pytest.param(_scan(scanned_at="yesterday"), "invalid", id="unparsable-time"),
        pytest.param(
            json.dumps({"type": "auth", "token": "t" * 513}).encode(),
            "invalid",
            id="token-over-512",
        ),
        pytest.param(
            b'{"type":"scan_batch","items":[{"type":"scan","scan_id":"s","code":"c","list_id":"L"}]}',
            "invalid",
            id="batch-item-with-type",
        ),
        pytest.param(b'{"type":"scan_batch","items":{}}', "invalid", id="batch-items-not-a-list"),
        pytest.param(VALID + b"x", "malformed", id="trailing-garbage"),
        pytest.param(VALID + VALID, "malformed", id="two-frames-in-one"),
    ],
)
def test_bad_frames_are_refused_with_a_stable_code(data: bytes | str, code: str) -> None:
    assert _refusal(data) == code


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"type":"hello","cursor":1,"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        pytest.param(b'{"x":' + b"[" * 50_000 + b"]" * 50_000 + b',"type":"hello"}'),
    ],
    ids=["unknown-field", "before-type"],
)
def test_deeply_nested_json_is_malformed_not_a_crash(data: bytes) -> None:
    assert _refusal(data) == "malformed"


def test_deeply_nested_change_items_are_malformed_for_the_scanner() -> None:
    items = b"[" * 50_000 + b"]" * 50_000
    data = b'{"type":"changes","head":1,"has_more":false,"items":[{"a":' + items + b"}]}"
    with pytest.raises(FrameError) as info:
        decode_hub_frame(data)
    assert info.value.code == "malformed"


def test_the_refusal_detail_names_the_json_path() -> None:
    with pytest.raises(FrameError) as info:
        decode_client_frame(b'{"type":"hello","cursor":"1"}')
    assert "$.cursor" in info.value.detail


def test_a_frame_over_the_size_limit_is_too_large_before_parsing() -> None:
    padding = "x" * MAX_FRAME_BYTES
    assert _refusal(json.dumps({"type": "auth", "token": padding})) == "too_large"
    assert _refusal(b"[" * (MAX_FRAME_BYTES + 1)) == "too_large"


def test_a_frame_at_the_size_limit_is_decoded() -> None:
    frame = b'{"type":"hello","cursor":1}'
    padded = frame[:-1] + b" " * (MAX_FRAME_BYTES - len(frame)) + b"}"
    assert len(padded) == MAX_FRAME_BYTES
    assert decode_client_frame(padded) == Hello(cursor=1)


def _batch(count: int) -> bytes:
    return encode_frame(ScanBatch(items=[ITEM] * count))


def test_a_batch_of_500_scans_is_accepted() -> None:
    batch = _batch(MAX_BATCH_ITEMS)
    assert len(batch) < MAX_FRAME_BYTES
    frame = decode_client_frame(batch)
    assert isinstance(frame, ScanBatch)
    assert len(frame.items) == MAX_BATCH_ITEMS


def test_a_batch_of_501_scans_is_invalid() -> None:
    assert _refusal(_batch(MAX_BATCH_ITEMS + 1)) == "invalid"


@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_ever_raise_frame_error(data: bytes) -> None:
    try:
        decode_client_frame(data)
    except FrameError as exc:
        assert exc.code in {"malformed", "unknown_type", "invalid"}


@given(st.text(max_size=256))
def test_arbitrary_text_only_ever_raises_frame_error(data: str) -> None:
    try:
        decode_client_frame(data)
    except FrameError as exc:
        assert exc.code in {"malformed", "unknown_type", "invalid"}


@given(st.binary(max_size=512))
def test_arbitrary_bytes_to_the_scanner_only_ever_raise_frame_error(data: bytes) -> None:
    try:
        decode_hub_frame(data)
    except FrameError as exc:
        assert exc.code in {"malformed", "unknown_type", "invalid"}


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@given(
    st.sampled_from(["auth", "hello", "scan", "scan_batch", "annul", "welcome", "nope"]),
    st.dictionaries(
        st.sampled_from(["token", "cursor", "scan_id", "code", "list_id", "items", "direction"]),
        _json_values,
    ),
)
def test_arbitrary_objects_with_a_type_only_ever_raise_frame_error(
    kind: str, fields: dict[str, Any]
) -> None:
    try:
        decode_client_frame(json.dumps({"type": kind} | fields))
    except FrameError as exc:
        assert exc.code in {"unknown_type", "invalid"}


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: type(f).__name__)
def test_every_strict_prefix_of_a_valid_frame_is_refused(frame: ClientFrame) -> None:
    data = encode_frame(frame)
    for end in range(len(data)):
        with pytest.raises(FrameError):
            decode_client_frame(data[:end])


def test_frame_errors_carry_code_and_detail() -> None:
    error = FrameError("invalid", "x" * 10_000)
    assert error.code == "invalid"
    assert len(error.detail) <= 500


def test_public_names_are_pinned() -> None:
    assert sorted(protocol.messages.__all__) == sorted(
        [
            "EARLIEST",
            "LATEST",
            "MAX_BATCH_ITEMS",
            "MAX_FRAME_BYTES",
            "MAX_HUB_FRAME_BYTES",
            "Annul",
            "Auth",
            "Changes",
            "ClientFrame",
            "Conflict",
            "Counters",
            "EarlierScan",
            "Error",
            "FirstScan",
            "FrameError",
            "GateCounters",
            "Hello",
            "HubFrame",
            "ListCounters",
            "Result",
            "ResultItem",
            "Results",
            "Scan",
            "ScanBatch",
            "ScanItem",
            "TicketInfo",
            "Welcome",
            "decode_client_frame",
            "decode_hub_frame",
            "encode_frame",
            "fits_in_utc",
        ]
    )
