from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec

from server.schemas import Email, Id, Language, Name, Rule, ShortText, apply_rules
from server.tickets.schemas import TicketOut  # a booking answers with its tickets

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


def _check_holders_fit(quantity: int, holders: list[Holder] | None) -> None:
    if holders is not None and len(holders) > quantity:
        raise ValueError("more holders than tickets (quantity)")


def _check_ticket_limit(items: list[BookingItemIn]) -> None:
    if sum(item.quantity for item in items) > MAX_QUANTITY:
        raise ValueError(f"a booking holds at most {MAX_QUANTITY} tickets")


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

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("holders", _check_holders_fit, reads=("quantity", "holders")),
    )

    def __post_init__(self) -> None:
        apply_rules(self)


class BookingCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    buyer: Buyer
    items: Annotated[list[BookingItemIn], msgspec.Meta(min_length=1, max_length=50)]
    external_ref: ExternalRef | None = None
    confirm: bool = False

    rules: ClassVar[tuple[Rule, ...]] = (Rule("items", _check_ticket_limit),)

    def __post_init__(self) -> None:
        apply_rules(self)


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
