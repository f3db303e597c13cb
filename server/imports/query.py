"""The query parameters of an import (events and contact lists), checked strictly.

Every parameter that is unknown, repeated, missing while required, or of a value not allowed is
named in one 422 (Litestar's own parsing would answer 400, one parameter at a time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from server.errors import BodyInvalid, FieldError

__all__ = ["DIGEST", "read_query"]

DIGEST = (re.compile(r"[0-9a-f]{64}"), "must be the 64 hex digits an analysis answered")


def read_query(
    items: Iterable[tuple[str, str]],
    *,
    choices: Mapping[str, Sequence[str]],
    patterns: Mapping[str, tuple[re.Pattern[str], str]],
    required: Mapping[str, str],
    refused: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, str]:
    """The parameters by name; raises BodyInvalid naming each bad one.

    `choices`: the values a parameter may take; `patterns`: a free parameter's form and what
    to say when it does not match; `required`: what to say when one is absent; `refused`: a
    value of `choices`' kind with its own reason (`duplicates=keep` on a contact list).
    """
    known = {*choices, *patterns}
    values: dict[str, str] = {}
    errors: list[FieldError] = []
    for name, value in items:
        if name not in known:
            errors.append(FieldError(name[:100], "unknown parameter"))
        elif name in values:
            errors.append(FieldError(name, "given more than once"))
        else:
            values[name] = value
    for name, allowed in choices.items():
        value = values.get(name)
        if value is None or value in allowed:
            continue
        reason = (refused or {}).get((name, value))
        errors.append(FieldError(name, reason or f"must be one of {', '.join(allowed)}"))
    for name, (pattern, reason) in patterns.items():
        if name in values and not pattern.fullmatch(values[name]):
            errors.append(FieldError(name, reason))
    errors += [FieldError(name, why) for name, why in required.items() if name not in values]
    if errors:
        raise BodyInvalid(errors)
    return values
