from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from server.schemas import AwareDatetime, Language, LongText, Name, check_timezone, check_window

__all__ = [
    "EventCreate",
    "EventOut",
    "EventPatch",
    "TicketTypeCreate",
    "TicketTypeOut",
    "TicketTypePatch",
]

Persons = Annotated[int, msgspec.Meta(ge=1, le=100)]
Capacity = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Languages = Annotated[list[Language], msgspec.Meta(min_length=1, max_length=3)]


class EventCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    starts_at: AwareDatetime
    timezone: TimeZone
    ends_at: AwareDatetime | None = None
    venue: LongText | None = None
    languages: Languages = msgspec.field(default_factory=lambda: ["en"])

    def __post_init__(self) -> None:
        check_timezone(self.timezone)
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages: must not repeat")


class EventPatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name | UnsetType = UNSET
    starts_at: AwareDatetime | UnsetType = UNSET
    ends_at: AwareDatetime | UnsetType | None = UNSET
    timezone: TimeZone | UnsetType = UNSET
    venue: LongText | UnsetType | None = UNSET
    languages: Languages | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.timezone is not UNSET:
            check_timezone(self.timezone)


class EventOut(msgspec.Struct, frozen=True):
    id: str
    slug: str
    name: str
    starts_at: datetime
    ends_at: datetime | None
    timezone: str
    venue: str | None
    languages: list[str]
    created_at: datetime
    updated_at: datetime


class TicketTypeCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    persons: Persons = 1
    capacity: Capacity | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_window(self.valid_from, self.valid_until)


class TicketTypePatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name | UnsetType = UNSET
    capacity: Capacity | UnsetType | None = UNSET
    valid_from: AwareDatetime | UnsetType | None = UNSET
    valid_until: AwareDatetime | UnsetType | None = UNSET


class TicketTypeOut(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    name: str
    persons: int
    capacity: int | None
    confirmed: int
    remaining: int | None
    valid_from: datetime | None
    valid_until: datetime | None
