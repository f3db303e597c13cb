"""Domain errors: services raise these with a stable code; `app.py` maps them to HTTP in one table.

No HTTP status lives here: a service says what went wrong, the edge decides how to say it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BodyInvalid",
    "CapacityExceeded",
    "Conflict",
    "DomainError",
    "EventArchived",
    "FieldError",
    "Forbidden",
    "InvalidState",
    "MalformedBody",
    "NotFound",
    "RateLimited",
    "SnapshotRequired",
    "Unauthenticated",
    "UnsupportedMediaType",
]


class DomainError(Exception):
    code = "error"
    title = "Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"

    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(
            f"no {resource} with id {resource_id!r}", resource=resource, id=resource_id
        )


class Conflict(DomainError):
    """The request clashes with an existing resource, named in `extra` (e.g. its `id`)."""

    code = "conflict"
    title = "Conflict"


class CapacityExceeded(Conflict):
    code = "capacity_exceeded"
    title = "Capacity exceeded"


class InvalidState(Conflict):
    code = "invalid_state"
    title = "Not allowed in the current state"


class RateLimited(DomainError):
    """Over a rate limit; `retry_after` is the whole seconds to wait."""

    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class SnapshotRequired(Conflict):
    """The device's cursor cannot be followed: it must load a snapshot and start from its seq."""

    code = "snapshot_required"
    title = "Snapshot required"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class EventArchived(Forbidden):
    """The device's event was archived: its doors are closed for good (server/events/archive.py)."""

    code = "event_archived"
    title = "Event archived"


class MalformedBody(DomainError):
    code = "malformed_body"
    title = "Malformed request body"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    title = "Unsupported media type"


class FieldError(dict[str, str]):
    """One entry of a 422's `errors`: `{"field": "items[0].quantity", "message": "..."}`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


class BodyInvalid(DomainError):
    code = "validation_failed"
    title = "Validation failed"

    def __init__(self, errors: list[FieldError]) -> None:
        fields = ", ".join(e["field"] for e in errors)
        super().__init__(f"{len(errors)} invalid field(s): {fields}")
        self.errors = errors
