"""Shared pieces of the HTTP edge: strict JSON bodies, pagination, organiser authentication."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.dto import DTOConfig, MsgspecDTO
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.typing import FieldDefinition
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.service import find_active_token
from server.errors import Forbidden, Unauthenticated, UnsupportedMediaType
from server.tickets.issuer import TicketIssuer
from server.validation import decode_json_body

__all__ = [
    "Body",
    "DbSession",
    "Issuer",
    "Limit",
    "Offset",
    "Page",
    "bearer_token",
    "bearer_token_of",
    "created",
    "organiser_guard",
    "page",
    "wake_outbox",
]

T = TypeVar("T")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Body(MsgspecDTO[T], Generic[T]):
    """A JSON request body decoded strictly: no coercion, unknown fields refused, all errors listed.

    Litestar's own conversion is lax ("1" passes for 1); this DTO replaces it for request bodies
    and keeps the OpenAPI request schema. Use with `return_dto=None`.
    """

    config = DTOConfig(forbid_unknown_fields=True)

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        # The request body never goes through Litestar's transfer backend (`decode_bytes` below
        # decodes into the struct), so none is generated for it: building one for each of the
        # app's handlers was a third of `create_app`. A return backend is still made if asked.
        if field_definition.name != "data":
            super().create_for_field_definition(field_definition, handler_id, backend_cls)

    def decode_builtins(self, value: Any) -> Any:
        # Form and multipart bodies: the only path to the (absent) transfer backend.
        raise UnsupportedMediaType("expected Content-Type application/json")

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        # Document the struct itself: the generated transfer model loses constraints on
        # optional fields (and then fails to build), and the struct is what decode_bytes uses.
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.model_type))

    def decode_bytes(self, value: bytes) -> Any:
        content_type = self.asgi_connection.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType(
                f"expected Content-Type application/json, got {content_type or 'none'!r}"
            )
        return decode_json_body(value, self.model_type)


class Page(msgspec.Struct, Generic[T]):
    items: Sequence[T]
    total: int
    limit: int
    offset: int


Limit = Annotated[int, QueryParameter(ge=1, le=500, description="items per page (at most 500)")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000_000, description="items to skip")]
DbSession = NamedDependency[AsyncSession]
"""The request's database session, inside one transaction (see `app.provide_db_session`)."""
Issuer = NamedDependency[TicketIssuer]
"""The request's ticket issuer: current signing key and public base URL (`app.provide_issuer`)."""


def page(items: Sequence[T], total: int, limit: int, offset: int) -> Page[T]:
    return Page(items=items, total=total, limit=limit, offset=offset)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return bearer_token_of(connection.headers.get("authorization", ""))


def bearer_token_of(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, else None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def organiser_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """401 without a valid organiser token; 403 when a read-only token tries to change anything."""
    token = bearer_token(connection)
    if token is None:
        raise Unauthenticated("an organiser token is required: Authorization: Bearer <token>")
    database = connection.app.state.database
    # A read: on SQLite its transaction begins DEFERRED, so checking the token does not take
    # the write lock that a concurrent request's transaction holds (and wait in SQLite's
    # sleeping busy handler until it is free).
    async with database.transaction(read_only=True) as session:
        api_token = await find_active_token(session, token)
    if api_token is None:
        raise Unauthenticated("unknown or revoked token")
    if api_token.read_only and connection.scope.get("method") not in SAFE_METHODS:
        raise Forbidden("this token is read-only")
    connection.scope.setdefault("state", {})["api_token_id"] = api_token.id


def created(
    content: T,
    request: Request[Any, Any, Any],
    location: str,
    *,
    background: BackgroundTask | None = None,
) -> Response[T]:
    """201 with an absolute `Location` of the new resource."""
    base = str(request.base_url).rstrip("/")
    headers = {"Location": f"{base}{location}"}
    return Response(content, status_code=201, headers=headers, background=background)


def wake_outbox(state: State) -> BackgroundTask:
    """After the answer (so after the request's commit): tell an in-process outbox worker that
    mail was queued, so it goes now instead of at the worker's next poll (`TESSERA_WORKER=
    external`: the worker polls on its own)."""

    def wake() -> None:
        outbox = state.get("outbox")
        if outbox is not None:
            outbox.wake()

    return BackgroundTask(wake)
