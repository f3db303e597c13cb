"""Strict decoding of request bodies, reporting every bad field at once.

msgspec decodes strictly (no "1" for 1, unknown fields refused) but stops at the first error.
When it fails, `collect_errors` walks the raw JSON against the target type field by field, so the
422 names every problem in one answer.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec

from server.errors import BodyInvalid, FieldError, MalformedBody

__all__ = ["collect_errors", "decode_json_body"]

T = TypeVar("T")


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
    struct = _struct_of(target)
    if struct is not None and isinstance(value, dict):
        yield from _struct_errors(value, struct, path)
        return
    item_type = _list_item_of(target)
    if item_type is not None and _struct_of(item_type) is not None and isinstance(value, list):
        outer = _convert_error(value, target, path)
        if outer is not None and "Expected `array` of length" in outer["message"]:
            yield outer
        for index, item in enumerate(value):
            yield from collect_errors(item, item_type, f"{path}[{index}]")
        return
    error = _convert_error(value, target, path)
    if error is not None:
        yield error


def _struct_errors(
    value: dict[str, Any], struct: type[msgspec.Struct], path: str
) -> Iterator[FieldError]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = {f.encode_name: f for f in info.fields}
    hints = typing.get_type_hints(struct, include_extras=True)
    for key in value:
        if key not in fields:
            yield FieldError(_join(path, key), "unknown field")
    found_field_error = False
    for name, field in fields.items():
        if name not in value:
            if field.required:
                found_field_error = True
                yield FieldError(_join(path, name), "required field missing")
            continue
        for error in collect_errors(value[name], hints[field.name], _join(path, name)):
            found_field_error = True
            yield error
    if not found_field_error and set(value) <= set(fields):
        # Fields are fine one by one: what is left is a rule across fields (__post_init__),
        # which names its field by starting its message with "field: ".
        whole = _convert_error(value, struct, path)
        if whole is not None:
            name, sep, message = whole["message"].partition(": ")
            if sep and name in fields:
                whole = FieldError(_join(path, name), message)
            yield whole


def _convert_error(value: Any, target: Any, path: str) -> FieldError | None:
    try:
        msgspec.convert(value, target, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        if message.startswith("Expected `str` matching regex"):
            message = "does not have the expected format"
        inner = _path(where.rstrip("`")) if where else ""
        field = path + ("" if not inner else (inner if inner.startswith("[") else f".{inner}"))
        return FieldError(field.lstrip("."), message)
    return None


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
    """Unwrap Annotated[...] and `X | None`, which is how optional nested bodies are declared."""
    while True:
        origin = typing.get_origin(target)
        if origin is typing.Annotated:
            target = typing.get_args(target)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(target) if a is not type(None)]
            if len(args) != 1:
                return target
            target = args[0]
        else:
            return target
