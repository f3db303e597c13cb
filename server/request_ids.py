"""Request ids: one per HTTP request, in its log lines, its problem+json body and its answer.

The id of the request being served lives in a context variable, set by the outermost middleware
(`server.metrics.requests.ObserveRequests`) for the request's task and reset after it, so code
deep inside (the problem+json builder, the log formatter) reads it without it being passed
down through every handler.

A client (or a proxy such as nginx's `$request_id`) may send its own `X-Request-Id`: it is kept
only when it is short and made of a few safe ASCII characters, so it can never split a log
line, forge a header or fill the logs; anything else is replaced by a new id.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from contextvars import ContextVar

__all__ = ["HEADER", "current_request_id", "new_request_id", "request_id_from_headers"]

HEADER = b"x-request-id"
MAX_LENGTH = 64
_SAFE = re.compile(rb"[A-Za-z0-9._:+=/-]{1,64}")

current_request_id: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)
"""The id of the HTTP request this code serves; None outside a request (start-up, workers)."""


_random = random.Random()  # seeded from the OS: ids need to be unique, not secret


def new_request_id() -> str:
    """32 random hex digits (nginx's `$request_id` has the same shape)."""
    return f"{_random.getrandbits(128):032x}"


def request_id_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-Id` when it is safe (at most 64 of `A-Z a-z 0-9 . _ : + = / -`),
    else a new id. Only the first such header counts."""
    for name, value in headers:
        if name == HEADER:
            # The length first: a 10 KB header never reaches the regex.
            if len(value) <= MAX_LENGTH and _SAFE.fullmatch(value):
                return value.decode("ascii")
            break
    return new_request_id()
