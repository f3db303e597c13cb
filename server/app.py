"""`create_app(settings)`: the one place that assembles the service (routes, plugins, errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.routes import BookingController
from server.checkin.fanout import MemoryFanout
from server.config import Settings
from server.db import Database
from server.events.routes import EventController
from server.http import DbSession
from server.keys.service import KeyRing, Keystore, ensure_signing_key
from server.logs import AccessLogMiddleware, configure_logging
from server.openapi import StrictStructSchemaPlugin
from server.problems import EXCEPTION_HANDLERS, problem
from server.tickets.service import TicketIssuer

__all__ = ["app_from_env", "create_app"]


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back if it raises."""
    async with state.database.transaction() as session:
        yield session


async def provide_issuer(state: State, db_session: DbSession) -> TicketIssuer:
    keys = await state.keyring.keys(db_session)
    return TicketIssuer(keys=keys, base_url=state.settings.public_base_url)


@get("/healthz", include_in_schema=True, tags=["operations"], summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["operations"], summary="Readiness: the database answers")
async def readyz(state: State) -> Response[dict[str, Any]]:
    try:
        async with state.database.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", and says why
        return problem(503, "database_unreachable", f"database unreachable: {type(exc).__name__}")
    return Response({"status": "ready"}, media_type=MediaType.JSON)


def create_app(settings: Settings) -> Litestar:
    database = Database(settings.database_url)
    keyring = KeyRing(Keystore(settings.keys_path))
    fanout = MemoryFanout()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with database.transaction() as session:
            await ensure_signing_key(session, keyring.keystore)
        await fanout.start()
        try:
            yield
        finally:
            await fanout.stop()
            await database.dispose()

    api = [EventController, BookingController]
    return Litestar(
        route_handlers=[healthz, readyz, *api],
        guards=[],
        dependencies={
            "db_session": Provide(provide_db_session),
            "issuer": Provide(provide_issuer),
        },
        state=State(
            {"settings": settings, "database": database, "keyring": keyring, "fanout": fanout}
        ),
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[AccessLogMiddleware] if settings.access_log else [],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tessera",
            version="1.0.0",
            description="E-tickets and check-in: the organiser, guest and scanner HTTP API.",
            components=Components(
                security_schemes={
                    "organiser": SecurityScheme(type="http", scheme="bearer"),
                }
            ),
            use_handler_docstrings=True,
        ),
        plugins=[StrictStructSchemaPlugin()],
        logging_config=None,
        debug=False,
    )


def app_from_env() -> Litestar:
    """The uvicorn factory used by `tessera serve`: settings from the environment."""
    configure_logging()
    return create_app(Settings.from_env())
