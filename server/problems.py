"""RFC 9457 problem+json for every error: the one table from exceptions to HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from server.db.unavailable import DATABASE_RETRY_AFTER, is_database_unavailable
from server.errors import (
    BodyInvalid,
    Conflict,
    DomainError,
    Forbidden,
    MalformedBody,
    NotFound,
    RateLimited,
    Unauthenticated,
    UnsupportedMediaType,
)
from server.request_ids import current_request_id

__all__ = ["EXCEPTION_HANDLERS", "problem"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tessera.errors")

# Order matters: the first matching class wins (subclasses before their parents).
STATUS_OF: list[tuple[type[DomainError], int]] = [
    (BodyInvalid, 422),
    (MalformedBody, 400),
    (UnsupportedMediaType, 415),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
]

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int, code: str, detail: str, *, title: str | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"urn:tessera:problem:{code}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    # The id of the request's log lines and X-Request-Id header (server/request_ids.py).
    request_id = current_request_id.get()
    if request_id is not None:
        body["request_id"] = request_id
    # Extension members never shadow the standard ones.
    body.update({k: v for k, v in extra.items() if k not in body})
    headers = {"WWW-Authenticate": 'Bearer realm="tessera"'} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    status = next((s for cls, s in STATUS_OF if isinstance(exc, cls)), 400)
    extra = dict(exc.extra)
    if isinstance(exc, BodyInvalid):
        extra["errors"] = exc.errors
    response = problem(status, exc.code, exc.detail, title=exc.title, **extra)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = [
        {"field": str(e.get("key", "")), "message": str(e.get("message", ""))}
        for e in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(e, dict)
    ]
    return problem(400, "invalid_parameters", exc.detail or "invalid request", errors=errors)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    code = _TITLES.get(status, "error").lower().replace(" ", "_")
    headers = exc.headers or {}
    response = problem(status, code, exc.detail or _TITLES.get(status, "Error"))
    response.headers.update(headers)
    return response


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if is_database_unavailable(exc):
        log.warning(
            "database unavailable: %s", type(exc).__name__, extra={"path": request.url.path}
        )
        response = problem(
            503,
            "database_unavailable",
            "the database cannot be reached now: try again shortly (a redeem sent again with "
            "its scan_id is recorded once)",
        )
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return problem(500, "internal_error", "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
