"""`GET /metrics` on the app's own port: Prometheus text, behind an organiser token by default.

Where metrics are served is a setting (docs/metrics.md):
- default: here, with an organiser token (a read-only one is enough), since the app's port is
  the one the public reaches through the proxy;
- `TESSERA_METRICS_TOKEN_REQUIRED=false`: here without a token (the proxy must keep /metrics
  from the public);
- `TESSERA_METRICS_ADDRESS=HOST:PORT`: on that separate listener only; here it is 404;
- `TESSERA_METRICS=false`: nowhere (404).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from sqlalchemy.exc import SQLAlchemyError

from server.http import organiser_guard
from server.metrics.registry import Metrics
from server.problems import problem

__all__ = ["metrics_endpoint"]

log = logging.getLogger("tessera.metrics")
# Litestar adds `; charset=utf-8` to text types.
_MEDIA_TYPE = "text/plain; version=0.0.4"


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    security=[{"organiser": []}],
    include_in_schema=True,
)
async def metrics_endpoint(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """The Prometheus text exposition of this instance (docs/metrics.md lists every family)."""
    settings = state.settings
    metrics: Metrics | None = state.get("metrics")
    if metrics is None or settings.metrics_address:
        where = "not served" if metrics is None else "served on TESSERA_METRICS_ADDRESS"
        return problem(404, "not_found", f"metrics are {where}, not on this port")
    if settings.metrics_token_required:
        try:
            await organiser_guard(request, request.route_handler)
        except (SQLAlchemyError, OSError) as exc:
            # The token cannot be checked: say so plainly rather than answer 500.
            log.warning("metrics: token check failed: %s", type(exc).__name__)
            return problem(503, "database_unreachable", "the token cannot be checked now")
    return Response(await metrics.exposition(), media_type=_MEDIA_TYPE)
