"""Field types shared by every domain's request and response bodies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

__all__ = [
    "AwareDatetime",
    "Email",
    "Id",
    "Language",
    "LongText",
    "Name",
    "ShortText",
    "check_email",
    "check_timezone",
    "check_window",
]

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=100)]
LongText = Annotated[str, msgspec.Meta(max_length=300)]
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Language = Literal["fr", "en", "de"]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_timezone(name: str) -> None:
    """Raise ValueError ("timezone: ...") unless `name` is an IANA zone known to this machine."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"timezone: unknown time zone {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {name!r}") from None


def check_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    """Raise ValueError ("valid_until: ...") unless a closed window ends after it starts."""
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ValueError("valid_until: must be after valid_from")


def check_email(address: str) -> None:
    if not _EMAIL.match(address):
        raise ValueError(f"not an email address: {address!r}")
