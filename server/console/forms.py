"""From console forms to the API's own request structs, so a form is checked by exactly the
rules a JSON body is (server/validation.py), and its errors are shown next to its fields.

A form holds text only: this module turns it into the JSON values the struct expects (a
`datetime-local` wall-clock time in the event's zone becomes an aware time; an empty optional
field becomes null; a whole number becomes an int) and then decodes that with
`decode_json_body`. A value that cannot even become JSON (no date, not a number) is reported on
its field and left out, and the struct's "required field missing" for it is not repeated.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from server.console.web import Form
from server.errors import BodyInvalid, Conflict, DomainError, FieldError
from server.schemas import check_timezone
from server.validation import decode_json_body

__all__ = [
    "FormValues",
    "Refused",
    "attempt",
    "errors_by_field",
    "local_input",
    "shown",
    "to_struct",
]

T = TypeVar("T")
_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_WHOLE = re.compile(r"-?[0-9]{1,12}")  # ASCII digits: int() also takes Arabic-Indic ones


class FormValues:
    """The JSON-ready values read from a form so far, and the errors met on the way."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self.values: dict[str, Any] = {}
        self.errors: list[FieldError] = []

    def text(self, name: str, *, optional: bool = False, strip: bool = True) -> None:
        value = self.form.get(name)
        value = value.strip() if strip else value
        if optional and not value:
            self.values[name] = None
        else:
            self.values[name] = value.replace("\r\n", "\n")

    def whole(self, name: str, *, optional: bool = False) -> None:
        value = self.form.get(name).strip()
        if optional and not value:
            self.values[name] = None
        elif _WHOLE.fullmatch(value):
            self.values[name] = int(value)
        else:
            self.errors.append(FieldError(name, "must be a whole number"))

    def flag(self, name: str) -> None:
        self.values[name] = name in self.form

    def choices(self, name: str, allowed: tuple[str, ...] | None = None) -> None:
        picked = [v for v in self.form.all(name) if v]
        self.values[name] = picked if allowed is None else [v for v in picked if v in allowed]

    def local_time(self, name: str, zone: str | None, *, optional: bool = False) -> None:
        """A `datetime-local` value read as the wall-clock time in `zone`."""
        value = self.form.get(name).strip()
        if optional and not value:
            self.values[name] = None
            return
        if not _LOCAL.fullmatch(value):
            self.errors.append(FieldError(name, "must be a date and time"))
            return
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.errors.append(FieldError(name, "must be a date and time"))
            return
        if zone is None:
            return  # the zone's own error says why; the time cannot be placed without it
        self.values[name] = moment.replace(tzinfo=ZoneInfo(zone)).isoformat()


def valid_zone(name: str) -> str | None:
    try:
        check_timezone(name)
    except ValueError:
        return None
    return name


def to_struct(values: FormValues, target: type[T]) -> T:
    """`values` decoded as `target`; raises BodyInvalid naming every bad field once."""
    body = msgspec.json.encode(values.values)
    found = list(values.errors)
    try:
        result = decode_json_body(body, target)
    except BodyInvalid as exc:
        known = {e["field"] for e in found}
        found += [e for e in exc.errors if _field(e["field"]) not in known]
    if found:
        raise BodyInvalid(found)
    return result


def _field(path: str) -> str:
    return path.split("[", 1)[0].split(".", 1)[0]


def errors_by_field(errors: list[FieldError]) -> dict[str, str]:
    """The first message of each form field ("languages[0]" is the field "languages")."""
    shown: dict[str, str] = {}
    for error in errors:
        shown.setdefault(_field(error["field"]), error["message"])
    return shown


def local_input(moment: datetime | None, zone: str) -> str:
    """`moment` as a `datetime-local` value at the venue's wall clock."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


class Refused(Exception):
    """A change the service refused, as its form shows it: `status` 422 with `errors` by field,
    or 409 with the `problem` of the whole form (or its message on a field: `attempt(field=)`).
    `extra` is the domain error's (e.g. the recipient count a send found)."""

    def __init__(
        self,
        status: int,
        *,
        errors: Sequence[FieldError] = (),
        problem: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(problem or "; ".join(e["message"] for e in errors))
        self.status = status
        self.errors = list(errors)
        self.problem = problem
        self.extra = extra or {}


def shown(refused: Refused | None) -> tuple[int, list[FieldError], str | None]:
    """A page's (status, errors, problem): 200 and nothing without a refusal."""
    if refused is None:
        return 200, [], None
    return refused.status, refused.errors, refused.problem


async def attempt(
    session: AsyncSession,
    change: Callable[[], Awaitable[T]],
    *,
    field: str | None = None,
    own: tuple[type[DomainError], ...] = (),
) -> T:
    """`change()`'s result, run in a savepoint so that a refusal leaves nothing of it behind and
    the request's transaction goes on (the page then reads the data as it stands).

    Raises Refused: 422 for BodyInvalid (`to_struct` called inside `change` included), 409 for
    a Conflict (InvalidState, CapacityExceeded...), on `field` when given. The errors in `own`,
    which the page answers itself, and every other error (NotFound: the 404 page) pass as they
    are."""
    try:
        async with session.begin_nested():
            return await change()
    except own:
        raise
    except BodyInvalid as exc:
        raise Refused(422, errors=exc.errors) from exc
    except Conflict as exc:
        if field is not None:
            raise Refused(409, errors=[FieldError(field, exc.detail)], extra=exc.extra) from exc
        raise Refused(409, problem=exc.detail, extra=exc.extra) from exc
