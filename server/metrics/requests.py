"""The outermost HTTP middleware: a request id for every request, and request figures.

`ObserveRequests` wraps the whole Litestar handler (`app.asgi_handler`), outside routing and the
exception handlers, so it sees every answer: 404s for unknown paths and 405s too, which never
reach Litestar's per-route middleware.

Figures are kept in plain dicts (`RequestFigures`) and turned into Prometheus families only at
scrape time: a labelled prometheus-client histogram cost ~2.6 µs a request, this ~0.2 µs
(docs/metrics.md, "Cost"). Requests are labelled by route *template*
(`/api/v1/events/{event_id}`), never by path: ids in paths would make one series per id.

Failure rule: recording never breaks a request. Any error in it is logged once and the figures
stop for this process; the answer goes out as the app made it.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from server.logs import Unanswered
from server.request_ids import HEADER, current_request_id, request_id_from_headers

__all__ = ["BUCKETS", "ObserveRequests", "RequestFigures"]

log = logging.getLogger("tessera.metrics")

# Seconds. Redeem answers in ~1 ms, imports and exports in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a path no route matched (its 404 or 405)
# Import routes: their requests are also counted as import jobs by target and mode.
_IMPORT_ROUTES = {
    "/api/v1/events/{event_id}/imports": "event",
    "/api/v1/contact-lists/{list_id}/imports": "contact_list",
}


@dataclass
class _Series:
    count: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))


class RequestFigures:
    """Counts and latency buckets per (method, route, status), and import jobs, of one app."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], _Series] = {}
        self.imports: dict[tuple[str, str, int], int] = {}
        self.imports_running = 0

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        series.count += 1
        series.total += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        """The Prometheus families of what was recorded (called at scrape)."""
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "tessera_http_requests", "HTTP requests answered, by route template", labels=labels
        )
        latency = HistogramMetricFamily(
            "tessera_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer",
            labels=labels,
        )
        for (method, route, status), series in list(self.series.items()):
            values = [method, route, str(status)]
            requests.add_metric(values, series.count)
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), series.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            latency.add_metric(values, buckets, series.total)
        yield requests
        yield latency
        yield from self._collect_imports()

    def _collect_imports(self) -> Iterator[Metric]:
        jobs = CounterMetricFamily(
            "tessera_import_jobs",
            "Import requests answered (analyze or commit), by target and status",
            labels=["target", "mode", "status"],
        )
        for (target, mode, status), count in list(self.imports.items()):
            jobs.add_metric([target, mode, str(status)], count)
        yield jobs
        yield GaugeMetricFamily(
            "tessera_import_jobs_running",
            "Import requests being processed now",
            value=self.imports_running,
        )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ObserveRequests:
    """Pure ASGI wrapper of the Litestar handler: request id in and out, figures recorded.

    The figures go to `app.state.metrics.requests` as it is at each request (tests give an app
    a new state between tests); with metrics off (`TESSERA_METRICS=false`) only the id is kept.
    """

    def __init__(self, handler: Any, litestar: Any) -> None:
        self.handler = handler
        self.litestar = litestar
        self._state: Any = None  # the app state `_metrics` was read from
        self._metrics: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.handler(scope, receive, send)
            return
        request_id = request_id_from_headers(scope["headers"])
        header = (HEADER, request_id.encode("ascii"))
        token = current_request_id.set(request_id)
        state = self.litestar.state
        if state is not self._state:  # a new state (tests): read its metrics once
            self._state, self._metrics = state, state.get("metrics")
        metrics = self._metrics
        figures: RequestFigures | None = metrics.requests if metrics is not None else None
        started = time.perf_counter()
        status: int | None = None  # None: no answer began (the app failed, or the client left)
        unanswered = Unanswered(receive)

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new list: the app's may be one it reuses for every answer.
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        # Routing happens inside the handler, so an import is known by its path before it.
        running = False
        if figures is not None and scope["path"].endswith("/imports"):
            figures.imports_running += 1
            running = True
        try:
            await self.handler(scope, unanswered.receive, send_with_id)
        finally:
            current_request_id.reset(token)
            if figures is not None:
                seconds = time.perf_counter() - started
                self._record(scope, figures, unanswered.status(status), seconds, running)

    def _record(
        self, scope: Any, figures: RequestFigures, status: int, seconds: float, running: bool
    ) -> None:
        try:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = scope.get("path_template") or UNMATCHED
            figures.record(method, route, status, seconds)
            if running:
                figures.imports_running -= 1
                target = _IMPORT_ROUTES.get(route)
                if target is not None:
                    key = (target, _import_mode(scope), status)
                    figures.imports[key] = figures.imports.get(key, 0) + 1
        except Exception:
            log.exception("request figures failed; metrics stop recording in this process")
            if self._metrics is not None:
                self._metrics.requests = None


def _import_mode(scope: Any) -> str:
    """`analyze` or `commit` as the query asked; anything else (refused with 422) is `other`."""
    query = scope.get("query_string", b"").decode("latin-1")
    modes = [value for name, value in parse_qsl(query) if name == "mode"]
    return modes[0] if len(modes) == 1 and modes[0] in ("analyze", "commit") else "other"
