from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from server.schemas import Email, Id, Language, Name, ShortText

__all__ = [
    "BookingCreate",
    "BookingItemIn",
    "BookingOut",
    "Buyer",
    "Holder",
    "TicketOut",
]

MAX_QUANTITY = 500
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
ExternalRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Buyer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    email: Email
    language: Language | None = None


class Holder(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    name: Name | None = None
    email: Email | None = None
    seat: ShortText | None = None


class BookingItemIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    ticket_type_id: Id
    quantity: Quantity
    holders: Annotated[list[Holder], msgspec.Meta(max_length=MAX_QUANTITY)] | None = None

    def __post_init__(self) -> None:
        if self.holders is not None and len(self.holders) > self.quantity:
            raise ValueError("holders: more holders than tickets (quantity)")


class BookingCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    buyer: Buyer
    items: Annotated[list[BookingItemIn], msgspec.Meta(min_length=1, max_length=50)]
    external_ref: ExternalRef | None = None
    confirm: bool = False

    def __post_init__(self) -> None:
        if sum(item.quantity for item in self.items) > MAX_QUANTITY:
            raise ValueError(f"items: a booking holds at most {MAX_QUANTITY} tickets")


class TicketOut(msgspec.Struct, frozen=True):
    id: str
    code: str
    status: Literal["valid", "revoked"]
    blocked: bool
    ticket_type_id: str
    holder_name: str | None
    holder_email: str | None
    seat: str | None
    version: int
    token: str
    link: str


class BookingItemOut(msgspec.Struct, frozen=True):
    ticket_type_id: str
    quantity: int
    holders: list[Holder]


class BookingOut(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    reference: str
    status: Literal["pending", "confirmed", "cancelled"]
    buyer: Buyer
    items: list[BookingItemOut]
    external_ref: str | None
    tickets: list[TicketOut]
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
