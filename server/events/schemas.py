from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from server.campaigns.mail import Address, MailError, check_address, sender_identity
from server.schemas import (
    AwareDatetime,
    Email,
    Language,
    LongText,
    Name,
    Rule,
    apply_rules,
    check_distinct,
    check_timezone,
    check_window,
)

__all__ = [
    "Branding",
    "BrandingOut",
    "EventCreate",
    "EventOut",
    "EventPatch",
    "Sender",
    "TicketTypeCreate",
    "TicketTypeOut",
    "TicketTypePatch",
    "brand_colour",
]

Persons = Annotated[int, msgspec.Meta(ge=1, le=100)]
Capacity = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ColourText = Annotated[str, msgspec.Meta(max_length=32)]  # checked by _check_colour
Languages = Annotated[list[Language], msgspec.Meta(min_length=1, max_length=3)]


def _check_ends_after_start(starts_at: datetime, ends_at: datetime | None) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise ValueError("must be after starts_at")


_EVENT_RULES = (
    Rule("timezone", check_timezone),
    Rule("ends_at", _check_ends_after_start, reads=("starts_at", "ends_at")),
    Rule("languages", check_distinct),
)
_WINDOW_RULES = (Rule("valid_until", check_window, reads=("valid_from", "valid_until")),)


def _check_sender_email(email: str) -> None:
    try:
        check_address(email)
    except MailError as exc:
        raise ValueError(exc.detail) from None


_ANY_PLATFORM = Address(None, "no-reply@example.org")


def _check_sender_name(name: str | None) -> None:
    # Checked as the mail will use it: a name that cannot head a From line is refused now,
    # not at the first send.
    try:
        sender_identity(
            Address(name, "organiser@example.org"),
            verified_domains=frozenset(),
            platform=_ANY_PLATFORM,
        )
    except MailError as exc:
        raise ValueError(exc.detail) from None


class Sender(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The organiser as a mail's sender: its From when the operator verified the address's
    domain (not a free-mail one), else its Reply-To (server/campaigns/mail.py)."""

    email: Email
    name: Name | None = None

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("email", _check_sender_email),
        Rule("name", _check_sender_name),
    )

    def __post_init__(self) -> None:
        apply_rules(self)


_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_AA_CONTRAST = 4.5  # WCAG 2.1 AA for body text


def _luminance(colour: str) -> float:
    """WCAG's relative luminance of a `#RRGGBB` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _check_colour(colour: str | None) -> None:
    # The colour is the background of white text (the guest page's header and buttons, the
    # mail's buttons) and is written into CSS: only six hex digits, and only a readable one.
    if colour is None:
        return
    if not _COLOUR.fullmatch(colour):
        raise ValueError("must be a colour written #RRGGBB")
    contrast = 1.05 / (_luminance(colour) + 0.05)
    if contrast < _AA_CONTRAST:
        raise ValueError(
            f"white text on this colour has a contrast of {contrast:.2f}:1, under the "
            f"{_AA_CONTRAST}:1 of WCAG AA: choose a darker colour"
        )


def brand_colour(branding: dict[str, Any] | None) -> str | None:
    """The stored branding's colour, for pages and mails to write into CSS; only a value that
    is still six hex digits, so a row written by hand cannot inject into a style."""
    colour = (branding or {}).get("colour")
    return colour if isinstance(colour, str) and _COLOUR.fullmatch(colour) else None


class Branding(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sender: Sender | None = None  # none: mail is from the platform under the event's name
    colour: ColourText | None = None  # none: Tessera's own colours

    rules: ClassVar[tuple[Rule, ...]] = (Rule("colour", _check_colour),)

    def __post_init__(self) -> None:
        apply_rules(self)


class BrandingOut(msgspec.Struct, frozen=True):
    """What an event answer says of its branding: the settable fields, then the images'
    public paths (read-only: set by `PUT …/branding/{logo|banner}`), absent when it has none
    (so an event without images answers exactly as before they existed)."""

    sender: Sender | None = None
    colour: str | None = None
    logo: str | UnsetType = UNSET
    banner: str | UnsetType = UNSET


class EventCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    starts_at: AwareDatetime
    timezone: TimeZone
    ends_at: AwareDatetime | None = None
    venue: LongText | None = None
    languages: Languages = msgspec.field(default_factory=lambda: ["en"])
    branding: Branding = msgspec.field(default_factory=Branding)
    auto_send_tickets: bool = False  # mail each booking its e-tickets when it is confirmed

    rules: ClassVar[tuple[Rule, ...]] = _EVENT_RULES

    def __post_init__(self) -> None:
        apply_rules(self)


class EventPatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name | UnsetType = UNSET
    starts_at: AwareDatetime | UnsetType = UNSET
    ends_at: AwareDatetime | UnsetType | None = UNSET
    timezone: TimeZone | UnsetType = UNSET
    venue: LongText | UnsetType | None = UNSET
    languages: Languages | UnsetType = UNSET
    branding: Branding | UnsetType = UNSET  # replaces the whole branding
    auto_send_tickets: bool | UnsetType = UNSET

    # Times given together must agree here; one given alone is compared with the stored other
    # by the service.
    rules: ClassVar[tuple[Rule, ...]] = _EVENT_RULES

    def __post_init__(self) -> None:
        apply_rules(self)


class EventOut(msgspec.Struct, frozen=True):
    id: str
    slug: str
    name: str
    starts_at: datetime
    ends_at: datetime | None
    timezone: str
    venue: str | None
    languages: list[str]
    branding: BrandingOut
    auto_send_tickets: bool
    created_at: datetime
    updated_at: datetime


class TicketTypeCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    persons: Persons = 1
    capacity: Capacity | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    rules: ClassVar[tuple[Rule, ...]] = _WINDOW_RULES

    def __post_init__(self) -> None:
        apply_rules(self)


class TicketTypePatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name | UnsetType = UNSET
    capacity: Capacity | UnsetType | None = UNSET
    valid_from: AwareDatetime | UnsetType | None = UNSET
    valid_until: AwareDatetime | UnsetType | None = UNSET

    rules: ClassVar[tuple[Rule, ...]] = _WINDOW_RULES  # the service checks a half given alone

    def __post_init__(self) -> None:
        apply_rules(self)


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
