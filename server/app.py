"""`create_app(settings)`: the one place that assembles the service (routes, plugins, errors)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import import_module
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPI, SecurityScheme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.routes import BookingController
from server.branding.routes import BrandImageController, BrandingController
from server.campaigns.links import MailLinkController
from server.campaigns.outbox import Outbox
from server.campaigns.routes import CampaignController
from server.campaigns.transport import mailer_for
from server.changes.publish import publish_committed
from server.changes.retention import Pruner
from server.checkin.fanout import Fanout, MemoryFanout
from server.checkin.fast_redeem import FastRedeem
from server.checkin.hub import ScannerHub, scanner_socket
from server.checkin.redis_fanout import RedisFanout
from server.checkin.routes import CheckinAdminController, DeviceApiController, pair_device
from server.checkin.snapshot import SnapshotBuilds
from server.checkin.writer import RedeemWriter
from server.config import Settings
from server.console.limits import SignInLimits
from server.console.routes import console_router
from server.contacts.routes import ContactListController
from server.db import Database
from server.events.routes import EventController
from server.exports.routes import ExportController
from server.guests.resend import ResendLimits
from server.guests.resend_routes import resend_page, resend_submit
from server.guests.routes import GuestController
from server.http import DbSession
from server.imports.routes import EventImportController
from server.keys.routes import jwks
from server.keys.service import KeyRing, Keystore, ensure_signing_key
from server.logs import AccessLogMiddleware, configure_logging
from server.metrics import Metrics, MetricsListener, ObserveRequests
from server.metrics.routes import metrics_endpoint
from server.openapi import (
    SelfHostedSwaggerPlugin,
    StrictStructSchemaPlugin,
    add_problem_responses,
    docs_router,
)
from server.problems import EXCEPTION_HANDLERS, problem
from server.ratelimit import TokenBuckets
from server.tickets.routes import TicketController
from server.tickets.service import TicketIssuer

__all__ = ["app_from_env", "create_app"]


def freeze_startup_heap() -> None:
    """Put everything alive at startup (modules, the app, mappers) out of the collector's reach,
    once per process (later objects stay collectable).

    Why: a full (generation 2) collection walks every tracked object and stops the event loop
    meanwhile; with the app loaded that took ~90 ms, several times in an 8 s redeem run, and made
    the redeem p99 (docs/performance.md "Check-in"). With the startup heap frozen it takes ~3 ms.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.

    After the commit, every event whose change log the request appended to gets a fan-out notice
    (`publish_committed`, the path every change takes), so connected doors learn of issued,
    changed, blocked or revoked tickets within a blink.
    """
    async with state.database.transaction() as session:
        yield session
    await publish_committed(session, state.fanout)


async def provide_issuer(state: State, db_session: DbSession) -> TicketIssuer:
    keys = await state.keyring.keys(db_session)
    return TicketIssuer(keys=keys, base_url=state.settings.public_base_url)


async def refuse_nul_in_path(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """404 for a path parameter holding NUL (`%00`): no id has one, and PostgreSQL cannot even
    compare text with it, so the lookup would fail instead of finding nothing."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            return problem(404, "not_found", f"no resource with that {name}: it holds NUL")
    return None


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


def build_state(settings: Settings) -> State:
    """Everything a running app holds besides its routes: the database, keys, fan-out, hub,
    outbox and rate limiters, all made from `settings` and started by the app's lifespan.

    Separate from `create_app` so that the route tree, which `settings` does not change
    (see `create_app`), can be built once and given a new state: the tests do that between
    tests instead of building the whole app again (0.3 s each).
    """
    database = Database(settings.database_url)
    # Scaled mode: Redis pub/sub between instances; embedded: in-process queues.
    fanout: Fanout = RedisFanout(settings.redis_url) if settings.redis_url else MemoryFanout()
    redeem_writer = RedeemWriter(database, fanout)
    # Embedded: this process sends the campaign mail too; scaled: `tessera worker` does.
    outbox = None
    if settings.worker == "embedded":
        mailer = mailer_for(settings.smtp_url, settings.maildir)
        lease = timedelta(seconds=settings.outbox_lease)
        outbox = Outbox(database, settings, mailer, lease=lease)
    retention = settings.change_retention_period
    pruner = Pruner(database, retention) if outbox is not None and retention else None
    hub = ScannerHub(database, fanout, redeem_writer)
    return State(
        {
            "settings": settings,
            "database": database,
            "keyring": KeyRing(Keystore(settings.keys_path)),
            "fanout": fanout,
            "hub": hub,
            # Failed guest-link lookups per client address: a burst of 20, then 20 a minute.
            "guest_limiter": TokenBuckets(rate=20 / 60, burst=20),
            # Failed pairing attempts per client address: a burst of 10, then 10 a minute
            # (codes carry 60 bits); a right code costs nothing, so a fleet pairs at once.
            "pair_limiter": TokenBuckets(rate=10 / 60, burst=10),
            # The guests' "send me my tickets again" page: 3 an hour per address (hashed), and
            # per client a burst of 10, then 10 an hour (server/guests/resend.py).
            "resend_limiter": ResendLimits(),
            "console_limits": SignInLimits(),
            "redeem_writer": redeem_writer,
            # Doors' snapshots, one built at a time (memory), shared while unchanged.
            "snapshot_builds": SnapshotBuilds(),
            "outbox": outbox,
            "pruner": pruner,
            # Request figures, the hub's sockets and database figures read at scrape time.
            "metrics": Metrics(database, hub) if settings.metrics else None,
        }
    )


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start what `build_state` made (the signing key, fan-out, redeem writer, outbox) and stop
    it all when the server stops."""
    state = app.state
    database: Database = state.database
    outbox: Outbox | None = state.outbox
    async with database.transaction() as session:
        await ensure_signing_key(session, state.keyring.keystore)
    await state.fanout.start()
    await state.redeem_writer.start()
    outbox_stop = asyncio.Event()
    outbox_task = asyncio.create_task(outbox.run(outbox_stop)) if outbox else None
    # The change log's retention runs where the outbox does (embedded here, else the worker).
    pruner: Pruner | None = state.pruner
    pruner_task = asyncio.create_task(pruner.run(outbox_stop)) if pruner else None
    listener = None
    if state.metrics is not None and state.settings.metrics_address:
        listener = MetricsListener(state.metrics, state.settings.metrics_address)
        await listener.start()
        state.metrics_listener = listener  # its port, when 0 was asked (tests)
    freeze_startup_heap()
    try:
        yield
    finally:
        if listener is not None:
            await listener.stop()
        if state.metrics is not None:
            await state.metrics.close()
        outbox_stop.set()
        if pruner_task is not None:
            await pruner_task
        if outbox is not None and outbox_task is not None:
            outbox.wake()
            await outbox_task
            await outbox.mailer.close()
        await state.hub.close()
        await state.redeem_writer.stop()
        await state.fanout.stop()
        await database.dispose()


def create_app(settings: Settings) -> Litestar:
    """The service for `settings`. Of the settings, only `access_log` and `max_body_bytes`
    shape the app itself (its middleware and body limit); the rest is read from `app.state`."""
    api = [EventController, BookingController, TicketController, CampaignController]
    api += [CheckinAdminController, DeviceApiController, pair_device]
    api += [ExportController]
    api += [ContactListController]
    api += [EventImportController]
    api += [BrandingController]
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics_endpoint,
            jwks,
            GuestController,
            BrandImageController,
            resend_page,
            resend_submit,
            MailLinkController,
            scanner_socket,
            console_router(),
            *api,
        ],
        guards=[],
        dependencies={
            "db_session": Provide(provide_db_session),
            "issuer": Provide(provide_issuer),
        },
        state=build_state(settings),
        lifespan=[lifespan],
        before_request=refuse_nul_in_path,
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
                    "device": SecurityScheme(type="http", scheme="bearer"),
                }
            ),
            use_handler_docstrings=True,
            # Only the self-hosted Swagger UI: Litestar's other renderers load their code and
            # fonts from CDNs, which the guests' origin must not run, and fail offline.
            render_plugins=[SelfHostedSwaggerPlugin()],
            openapi_router=docs_router(),
        ),
        plugins=[StrictStructSchemaPlugin()],
        logging_config=None,
        debug=False,
    )
    document_problems_lazily(app)
    # Outermost, around routing and the error handlers: every answer gets its request id and
    # is counted, 404s of unknown paths included (server/metrics/requests.py).
    # Inside it, ordinary redeems skip Litestar's request machinery (server/checkin/fast_redeem.py).
    fast = FastRedeem(
        app.asgi_handler, app, max_body=settings.max_body_bytes, access_log=settings.access_log
    )
    app.asgi_handler = ObserveRequests(fast, app)
    return app


def document_problems_lazily(app: Litestar) -> None:
    """Add the problem+json answers to the OpenAPI document when it is first built.

    Litestar builds the document on the first request for it; building it at startup (0.15 s)
    cost every process start, and every test, for a page few open. Litestar offers no hook for
    this and its plugin has `__slots__`, so the instance becomes the subclass below.
    """
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin.__class__ = _ProblemDocumentingOpenAPIPlugin


class _ProblemDocumentingOpenAPIPlugin(OpenAPIPlugin):
    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        openapi = super()._build_openapi()
        add_problem_responses(openapi)
        return openapi


def app_from_env() -> Litestar:
    """The uvicorn factory used by `tessera serve`: settings from the environment."""
    configure_logging()
    # Loaded now, not on the first guest's PDF (ticket_renderer imports fpdf2 lazily, 0.3 s,
    # for the commands that render none).
    import_module("ticket_renderer.pdf")
    return create_app(Settings.from_env())
