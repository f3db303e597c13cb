"""Field types shared by every domain's request and response bodies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from server.errors import BodyInvalid, FieldError

__all__ = [
    "AwareDatetime",
    "Email",
    "Id",
    "Language",
    "LongText",
    "Name",
    "Rule",
    "ShortText",
    "apply_rules",
    "check_distinct",
    "check_email",
    "check_patched_window",
    "check_timezone",
    "check_window",
]

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
# Names, seats, gates and venues are shown on door terminals, guest pages, PDFs and mails: no
# control characters (an escape sequence in a holder name would reach a door's terminal), and
# no line breaks but in a venue's address.
# (`(?!\n)$`: Python's `$` also matches before a final line break; JSON Schema's does not.)
_NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*(?!\n)$"
_LINES = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*(?!\n)$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_NO_CONTROLS)]
ShortText = Annotated[str, msgspec.Meta(max_length=100, pattern=_NO_CONTROLS)]
LongText = Annotated[str, msgspec.Meta(max_length=300, pattern=_LINES)]
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Language = Literal["fr", "en", "de"]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Rule:
    """A rule of a request body beyond its field types, declared in the struct's `rules`.

    `check` receives the values of `reads` (default: `field` alone) and raises ValueError with
    the message reported on `field`. Declared rather than written in `__post_init__` so that
    validation.py can run each rule on its own, and only once the fields it reads passed their
    own checks: one 422 then names every bad field. A rule is skipped while a value it reads is
    UNSET (an absent field of a patch), because the stored value it would compare with is the
    service's to read.
    """

    field: str
    check: Callable[..., None]
    reads: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.reads or (self.field,)

    def failure(self, values: Sequence[Any]) -> str | None:
        """The message if `values` (one per name of `inputs`) break the rule, else None."""
        if any(value is msgspec.UNSET for value in values):
            return None
        try:
            self.check(*values)
        except ValueError as exc:
            # Checks shared with services name their field themselves ("timezone: ...").
            return str(exc).removeprefix(f"{self.field}: ")
        return None


def apply_rules(body: msgspec.Struct) -> None:
    """Raise ValueError ("field: message") for the first rule `body` breaks; for __post_init__."""
    for rule in getattr(type(body), "rules", ()):
        message = rule.failure([getattr(body, name) for name in rule.inputs])
        if message is not None:
            raise ValueError(f"{rule.field}: {message}")


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


def check_patched_window(changes: Mapping[str, Any], stored: Any) -> None:
    """Raise BodyInvalid unless the window after a patch (the halves it changes over the ones
    `stored` has) ends after it starts: a half sent alone is checked against the stored one."""
    valid_from = changes.get("valid_from", stored.valid_from)
    valid_until = changes.get("valid_until", stored.valid_until)
    try:
        check_window(valid_from, valid_until)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise BodyInvalid([FieldError(field, message)]) from None


def check_distinct(values: Sequence[Any]) -> None:
    """Raise ValueError unless no value of `values` repeats."""
    if len(set(values)) != len(values):
        raise ValueError("must not repeat")


def check_email(address: str) -> None:
    if not _EMAIL.match(address):
        raise ValueError(f"not an email address: {address!r}")
