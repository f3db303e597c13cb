"""Websocket frames of `/ws/scanner` (ARCHITECTURE §5): the wire contract third-party scanners use.

Every frame is one flat JSON object: `type` names the message, its fields sit beside it. Client
frames: auth, hello, scan, scan_batch, annul. Hub frames: welcome, result, results, changes,
conflict, counters, error. Field names and shapes mirror the spec; changing them needs a decision
record.

Decoding is strict and total: unknown fields, wrong types (no "1" for 1), overlong strings, naive
times and oversize frames are refused, and every refusal is a `FrameError` with a stable `code`
(never another exception), so the hub answers a bad frame with an `error` frame and carries on:

  malformed     not JSON, not UTF-8, not an object, nested too deeply, or trailing bytes
  unknown_type  `type` missing, not a string, or not a message of this direction
  invalid       a known `type` whose fields are missing, extra, mistyped or out of bounds
  too_large     more than MAX_FRAME_BYTES (client frames) or MAX_HUB_FRAME_BYTES (hub frames)

Encoding does not validate: whoever builds a frame keeps to the bounds below.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias, cast

import msgspec

from protocol.reasons import Reason
from protocol.rules import Direction

__all__ = [
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

MAX_FRAME_BYTES = 256 * 1024  # a client frame; 500 scans of a 213-character token fit easily
MAX_HUB_FRAME_BYTES = 16 * 1024 * 1024  # a hub frame; the hub pages `changes` well below it
MAX_BATCH_ITEMS = 500

# Ids are visible ASCII (UUIDs, Crockford base32): no control characters, no NUL (which
# PostgreSQL cannot store), no blanks.
_VISIBLE_ASCII = r"^[\x21-\x7e]+$"
ScanId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=_VISIBLE_ASCII)]
# A code may hold whatever a door read (GS1 barcodes carry control characters), but not NUL.
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=_VISIBLE_ASCII)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Name = Annotated[str, msgspec.Meta(max_length=256)]  # holder, ticket type, seat, gate, list
Detail = Annotated[str, msgspec.Meta(max_length=2048)]
Time = Annotated[datetime, msgspec.Meta(tz=True)]  # ISO 8601 with an offset
Count = Annotated[int, msgspec.Meta(ge=0)]
Persons = Annotated[int, msgspec.Meta(ge=1)]


# Every time on the wire lies a day inside the calendar once in UTC: 9999-12-31T23:59:59-14:00
# has no UTC equivalent at all (year 10000), and a time on the first or last day leaves the
# calendar when shown in a venue's zone. The hub's HTTP bodies keep the same bounds.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def fits_in_utc(moment: datetime) -> bool:
    """Whether `moment` (aware) lies within EARLIEST..LATEST once converted to UTC."""
    try:
        return EARLIEST <= moment.astimezone(UTC) <= LATEST
    except OverflowError:
        return False


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A nested value or batch item: strict, no `type`."""


class _Frame(_Struct, frozen=True, tag_field="type"):
    """A whole frame: `type` carries the tag given by each subclass."""


# --- client -> hub ----------------------------------------------------------------------------


class Auth(_Frame, frozen=True, tag="auth"):
    token: Token


class Hello(_Frame, frozen=True, tag="hello"):
    cursor: Count | None  # the last `seq` applied; null before the first snapshot


class _ScanFields(_Struct, frozen=True):
    scan_id: ScanId  # unique per device
    code: Code  # the QR token or the readable ticket code
    list_id: Id
    direction: Direction = Direction.ENTRY
    scanned_at: Time | None = None  # the door's clock; the hub's receive time when absent
    offline: bool = False
    # An offline scan carries the door's own verdict (the guest was let in or not), and the
    # door's reason when it refused; an online scan carries neither: the hub decides.
    verdict: Literal["accepted", "rejected"] | None = None
    reason: Reason | None = None

    def __post_init__(self) -> None:
        if self.scanned_at is not None and not fits_in_utc(self.scanned_at):
            raise ValueError("scanned_at: must lie between 0001-01-02 and 9999-12-30 in UTC")
        if not self.offline:
            if self.verdict is not None or self.reason is not None:
                raise ValueError("verdict: only an offline scan carries the door's verdict")
            return
        if self.verdict is None:
            raise ValueError("verdict: an offline scan carries the door's verdict")
        if (self.verdict == "rejected") != (self.reason is not None):
            raise ValueError("reason: required with verdict rejected, refused with accepted")


class Scan(_ScanFields, _Frame, frozen=True, tag="scan"):
    pass


class ScanItem(_ScanFields, frozen=True):
    """One scan of a `scan_batch`: the fields of `scan` without `type`."""


class ScanBatch(_Frame, frozen=True, tag="scan_batch"):
    items: Annotated[list[ScanItem], msgspec.Meta(max_length=MAX_BATCH_ITEMS)]


class Annul(_Frame, frozen=True, tag="annul"):
    scan_id: ScanId


# --- hub -> client ----------------------------------------------------------------------------


class Welcome(_Frame, frozen=True, tag="welcome"):
    device_id: Id
    event_id: Id
    head: Count  # the newest `seq` of the event's change log
    snapshot_required: bool


class TicketInfo(_Struct, frozen=True):
    id: Id
    code: Code
    holder_name: Name | None
    ticket_type: Name | None
    seat: Name | None
    persons: Persons


class FirstScan(_Struct, frozen=True):
    at: Time
    gate: Name | None
    device: Id | None


class _ResultFields(_Struct, frozen=True):
    scan_id: ScanId
    verdict: Literal["accepted", "rejected"]
    reason: Reason | None  # with `forced`, what the online rules would have decided
    forced: bool
    offline: bool
    annulled: bool
    ticket: TicketInfo | None
    entries: Count
    first_scan: FirstScan | None = None  # with `already_redeemed`


class Result(_ResultFields, _Frame, frozen=True, tag="result"):
    pass


class ResultItem(_ResultFields, frozen=True):
    """One result of a `results` frame: the fields of `result` without `type`."""


class Results(_Frame, frozen=True, tag="results"):
    items: list[ResultItem]


class Changes(_Frame, frozen=True, tag="changes"):
    items: list[dict[str, Any]]  # each {seq, kind, ...}, gap-free and in `seq` order
    head: Count
    has_more: bool


class EarlierScan(_Struct, frozen=True):
    scan_id: ScanId
    device: Id | None
    gate: Name | None
    at: Time


class Conflict(_Frame, frozen=True, tag="conflict"):
    scan_id: ScanId
    ticket: TicketInfo | None
    reason: Reason
    device: Id | None
    gate: Name | None
    scanned_at: Time
    earlier: EarlierScan | None = None


class ListCounters(_Struct, frozen=True):
    list_id: Id
    name: Name
    checked_in: Count
    inside: Count
    remaining: Count


class GateCounters(_Struct, frozen=True):
    gate: Name | None  # null gathers devices without a gate
    checked_in: Count
    inside: Count


class Counters(_Frame, frozen=True, tag="counters"):
    total: Count
    checked_in: Count
    inside: Count
    remaining: Count
    lists: list[ListCounters]
    gates: list[GateCounters]


class Error(_Frame, frozen=True, tag="error"):
    code: Id  # stable: a FrameError code, or one the hub documents
    detail: Detail


ClientFrame: TypeAlias = Auth | Hello | Scan | ScanBatch | Annul
HubFrame: TypeAlias = Welcome | Result | Results | Changes | Conflict | Counters | Error

FrameErrorCode = Literal["malformed", "unknown_type", "invalid", "too_large"]


class FrameError(Exception):
    """A refused frame: `code` is stable, `detail` (with a JSON path) is for people."""

    def __init__(self, code: FrameErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: FrameErrorCode = code
        self.detail = detail[:500]


_client_decoder = msgspec.json.Decoder(ClientFrame)
_hub_decoder = msgspec.json.Decoder(HubFrame)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_CLIENT_TYPES = frozenset({"auth", "hello", "scan", "scan_batch", "annul"})
_HUB_TYPES = frozenset({"welcome", "result", "results", "changes", "conflict", "counters", "error"})


def decode_client_frame(data: bytes | str) -> ClientFrame:
    """The client frame in `data` (a websocket text or binary message); raises FrameError."""
    return cast(ClientFrame, _decode(data, _client_decoder, _CLIENT_TYPES, MAX_FRAME_BYTES))


def decode_hub_frame(data: bytes | str) -> HubFrame:
    """The hub frame in `data`, as the scanner receives it; raises FrameError."""
    return cast(HubFrame, _decode(data, _hub_decoder, _HUB_TYPES, MAX_HUB_FRAME_BYTES))


def encode_frame(frame: ClientFrame | HubFrame) -> bytes:
    """The JSON text of `frame` as UTF-8 bytes, `type` first."""
    return _encoder.encode(frame)


def _decode(
    data: bytes | str, decoder: msgspec.json.Decoder[Any], types: frozenset[str], limit: int
) -> Any:
    """Decode with the hot path first; classify a refusal only once it happened."""
    if isinstance(data, str):
        if len(data) > limit:  # a character takes at least one byte: refuse before encoding
            raise FrameError("too_large", f"frame of over {limit} bytes")
        try:
            data = data.encode()
        except UnicodeEncodeError as exc:
            raise FrameError("malformed", f"not valid Unicode: {exc.reason}") from None
    if len(data) > limit:
        raise FrameError("too_large", f"frame of {len(data)} bytes exceeds {limit}")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _classify(data, types, str(exc)) from None
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        raise FrameError("malformed", f"not a JSON object: {exc}") from None


def _classify(data: bytes, types: frozenset[str], message: str) -> FrameError:
    """Why well-formed JSON was refused: not an object, unknown `type`, or bad fields."""
    try:
        raw = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        return FrameError("malformed", f"not a JSON object: {exc}")
    if not isinstance(raw, dict):
        return FrameError("malformed", f"expected a JSON object, got {type(raw).__name__}")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in types:
        return FrameError("unknown_type", f"unknown frame type {kind!r}"[:200])
    return FrameError("invalid", message)
