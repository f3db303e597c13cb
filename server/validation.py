"""Strict decoding of request bodies, reporting every bad field at once.

msgspec decodes strictly (no "1" for 1, unknown fields refused) but stops at the first error.
When it fails, `collect_errors` walks the raw JSON against the target type field by field, so the
422 names every problem in one answer: each field's type, then its time bounds (EARLIEST..LATEST,
checked on every decoded time), then the struct's declared rules (`server.schemas.Rule`), each
run once the fields it reads are fine.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from protocol.messages import EARLIEST, LATEST
from server.errors import BodyInvalid, FieldError, MalformedBody

__all__ = ["EARLIEST", "LATEST", "collect_errors", "decode_json_body"]

T = TypeVar("T")

# Every time a body carries lies within protocol.messages' EARLIEST..LATEST (why: there), checked
# here for every body, so that no accepted time can fail later in a column, a zone or a timestamp.
_OFF_CALENDAR = "not representable in UTC: times must lie between 0001-01-02 and 9999-12-30 (UTC)"
_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def decode_json_body(raw: bytes, target: type[T]) -> T:
    """Decode `raw` JSON into `target`; raises MalformedBody (not JSON) or BodyInvalid."""
    try:
        decoded = msgspec.json.decode(raw, type=target, strict=True)
    except msgspec.ValidationError as exc:
        try:
            document = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            raise MalformedBody(_decode_detail(raw)) from None
        errors = list(collect_errors(document, target, "")) or [_from_exception(exc)]
        raise BodyInvalid(errors) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # msgspec reports invalid UTF-8 inside strings as UnicodeDecodeError, and very deep
        # nesting as RecursionError: both mean the body is not a JSON document we accept.
        raise MalformedBody(_decode_detail(raw)) from None
    times = list(_time_errors(decoded, ""))
    if times:
        raise BodyInvalid(times)
    # JSON can only carry NUL escaped; PostgreSQL cannot store it in text, so it is refused here,
    # field by field, rather than failing deep in a query.
    if b"\\u0000" in raw:
        errors = list(_nul_errors(msgspec.json.decode(raw), ""))
        if errors:
            raise BodyInvalid(errors)
    return decoded


def _nul_errors(value: Any, path: str) -> Iterator[FieldError]:
    if isinstance(value, str):
        if "\x00" in value:
            yield FieldError(path, "must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nul_errors(item, _join(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_errors(item, f"{path}[{index}]")


def _decode_detail(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not valid UTF-8"
    return "the body is not valid JSON"


def _from_exception(exc: msgspec.ValidationError) -> FieldError:
    message, _, where = str(exc).partition(" - at `")
    return FieldError(_path(where.rstrip("`")) if where else "", message)


def _path(json_path: str) -> str:
    return json_path.removeprefix("$").removeprefix(".")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def collect_errors(value: Any, target: Any, path: str) -> Iterator[FieldError]:
    """Every error of `value` against `target`; recurses into structs and lists of structs."""
    yield from _check(value, target, path)[0]


def _check(value: Any, target: Any, path: str) -> tuple[list[FieldError], Any]:
    """The errors of `value` against `target`, and when there are none its decoded value."""
    struct = _struct_of(target)
    if struct is not None and isinstance(value, dict):
        errors = _struct_errors(value, struct, path)
        if errors:
            return errors, None
    item_type = _list_item_of(target)
    if item_type is not None and _struct_of(item_type) is not None and isinstance(value, list):
        errors = []
        for index, item in enumerate(value):
            errors += _check(item, item_type, f"{path}[{index}]")[0]
        decoded, outer = _convert(value, target, path)
        # With bad items the whole fails too; only its own length bound is news.
        if outer is not None and (not errors or "Expected `array` of length" in outer["message"]):
            errors.insert(0, outer)
        return errors, None if errors else decoded
    decoded, error = _convert(value, target, path)
    if error is not None:
        if struct is not None and isinstance(value, dict):
            # Fields and declared rules are fine: a __post_init__ of its own refused the whole,
            # naming its field by starting its message with "field: ".
            name, sep, message = error["message"].partition(": ")
            if sep and name in _fields(struct):
                error = FieldError(_join(path, name), message)
        return [error], None
    # A struct's times were checked field by field above.
    times = [] if struct is not None else list(_time_errors(decoded, path))
    return times, None if times else decoded


def _struct_errors(
    value: dict[str, Any], struct: type[msgspec.Struct], path: str
) -> list[FieldError]:
    """Each field on its own, then each declared rule (server.schemas.Rule) whose fields passed."""
    fields = _fields(struct)
    hints = typing.get_type_hints(struct, include_extras=True)
    errors = [FieldError(_join(path, key), "unknown field") for key in value if key not in fields]
    good: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in value:
            if field.required:
                errors.append(FieldError(_join(path, name), "required field missing"))
            else:
                good[field.name] = _default(field)
            continue
        field_errors, decoded = _check(value[name], hints[field.name], _join(path, name))
        if field_errors:
            errors += field_errors
        else:
            good[field.name] = decoded
    encode_names = {field.name: name for name, field in fields.items()}
    for rule in getattr(struct, "rules", ()):
        if not all(name in good for name in rule.inputs):
            continue
        message = rule.failure([good[name] for name in rule.inputs])
        if message is not None:
            errors.append(FieldError(_join(path, encode_names[rule.field]), message))
            good.pop(rule.field, None)  # a later rule reading it would only repeat the error
    return errors


def _fields(struct: type[msgspec.Struct]) -> dict[str, msgspec.inspect.Field]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.encode_name: f for f in info.fields}


def _default(field: msgspec.inspect.Field) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    # msgspec.inspect shows an optional field defaulting to UNSET (a patch) as having no default.
    return msgspec.UNSET if field.default is msgspec.NODEFAULT else field.default


def _convert(value: Any, target: Any, path: str) -> tuple[Any, FieldError | None]:
    try:
        return msgspec.convert(value, target, strict=True), None
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        if message.startswith("Expected `str` matching regex"):
            message = "does not have the expected format"
        inner = _path(where.rstrip("`")) if where else ""
        field = path + ("" if not inner else (inner if inner.startswith("[") else f".{inner}"))
        return None, FieldError(field.lstrip("."), message)


def _time_errors(value: Any, path: str) -> Iterator[FieldError]:
    """A FieldError for each time in a decoded `value` that lies outside EARLIEST..LATEST."""
    if type(value) in _SCALARS:
        return
    if isinstance(value, datetime):
        if not _fits_calendar(value):
            yield FieldError(path, _OFF_CALENDAR)
    elif isinstance(value, msgspec.Struct):
        for name, encoded in zip(
            value.__struct_fields__, value.__struct_encode_fields__, strict=True
        ):
            yield from _time_errors(getattr(value, name), _join(path, encoded))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _time_errors(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _time_errors(item, _join(path, str(key)))


def _fits_calendar(moment: datetime) -> bool:
    if moment.tzinfo is None:
        return EARLIEST.replace(tzinfo=None) <= moment <= LATEST.replace(tzinfo=None)
    try:
        return EARLIEST <= moment.astimezone(UTC) <= LATEST
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        return False


_ABSENT = (type(None), msgspec.UnsetType)


def _struct_of(target: Any) -> type[msgspec.Struct] | None:
    target = _strip(target)
    if isinstance(target, type) and issubclass(target, msgspec.Struct):
        return target
    return None


def _list_item_of(target: Any) -> Any | None:
    target = _strip(target)
    if typing.get_origin(target) in (list, tuple) and typing.get_args(target):
        return typing.get_args(target)[0]
    return None


def _strip(target: Any) -> Any:
    """Unwrap Annotated[...], `X | None` and `X | UnsetType` (a patch's field), which is how
    optional nested bodies are declared."""
    while True:
        origin = typing.get_origin(target)
        if origin is typing.Annotated:
            target = typing.get_args(target)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(target) if a not in _ABSENT]
            if len(args) != 1:
                return target
            target = args[0]
        else:
            return target
