"""Request and response bodies of the check-in HTTP API (strict: unknown fields refused).

The redeem body is the wire `ScanItem` (protocol.messages) so that REST and websocket scans decode
by the same rules; its answer is the wire `ResultItem`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from protocol.messages import ScanItem
from server.schemas import (
    AwareDatetime,
    Id,
    Name,
    Rule,
    ShortText,
    apply_rules,
    check_window,
)

__all__ = [
    "AnnulRequest",
    "ChangesOut",
    "CheckinListCreate",
    "CheckinListOut",
    "CheckinListPatch",
    "DeviceCreate",
    "DeviceCreated",
    "DeviceOut",
    "PairOut",
    "PairRequest",
    "RedeemRequest",
]

MaxEntries = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
TypeIds = Annotated[list[Id], msgspec.Meta(max_length=200)]
ScanId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
PairingCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RedeemRequest = ScanItem


class CheckinListCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    ticket_type_ids: TypeIds | None = None
    max_entries: MaxEntries | None = 1
    allow_reentry: bool = False
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("valid_until", check_window, reads=("valid_from", "valid_until")),
    )

    def __post_init__(self) -> None:
        apply_rules(self)


class CheckinListPatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Change any field of a list; an absent field is left as it is, `null` clears it."""

    name: Name | UnsetType = UNSET
    ticket_type_ids: TypeIds | UnsetType | None = UNSET
    max_entries: MaxEntries | UnsetType | None = UNSET
    allow_reentry: bool | UnsetType = UNSET
    valid_from: AwareDatetime | UnsetType | None = UNSET
    valid_until: AwareDatetime | UnsetType | None = UNSET

    # Both halves given: checked here with every other field; a half given alone is checked
    # against the stored one by the service.
    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("valid_until", check_window, reads=("valid_from", "valid_until")),
    )

    def __post_init__(self) -> None:
        apply_rules(self)


class CheckinListOut(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    name: str
    ticket_type_ids: list[str] | None
    max_entries: int | None
    allow_reentry: bool
    valid_from: datetime | None
    valid_until: datetime | None


class DeviceCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    gate: ShortText | None = None


class DeviceOut(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    name: str
    gate: str | None
    paired: bool
    revoked: bool
    created_at: datetime
    paired_at: datetime | None
    revoked_at: datetime | None


class DeviceCreated(msgspec.Struct, frozen=True):
    """The answer to creating a device: the only time its pairing code is shown."""

    id: str
    event_id: str
    name: str
    gate: str | None
    pairing_code: str
    pairing_expires_at: datetime
    pairing_uri: str  # tessera-pair:?v=1&url=...&code=...
    pairing_payload: str  # the QR content: compact JSON {"v":1,"url":...,"code":...}


class PairRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pairing_code: PairingCode


class PairOut(msgspec.Struct, frozen=True):
    device_id: str
    token: str
    event_id: str
    ws_url: str


class AnnulRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    scan_id: ScanId


class ChangesOut(msgspec.Struct, frozen=True):
    items: list[dict[str, Any]]
    head: int
    has_more: bool
