"""One app's metrics: what its requests recorded, its hub's sockets, and the database's figures.

Each app has its own (`app.state.metrics`), never prometheus-client's global registry: tests
build many apps in one process, and an instance's figures are its own. A scrape builds the text
exposition from values read at that moment (the live hub rooms, one time-boxed database read),
so no decision path holds a metric.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from server.db import Database
from server.metrics.database import DatabaseFigures, DatabaseReader
from server.metrics.requests import RequestFigures

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The figures of one app and their Prometheus text exposition."""

    def __init__(self, database: Database, hub: Any, *, database_timeout: float = 2.0) -> None:
        # Set to None by ObserveRequests if recording ever fails: requests go on unrecorded.
        self.requests: RequestFigures | None = RequestFigures()
        self.reader = DatabaseReader(database, timeout=database_timeout)
        self.hub = hub
        self._process = ProcessCollector(registry=None)

    async def exposition(self) -> bytes:
        """The text format of every figure; database ones only if the database answered."""
        started = time.perf_counter()
        figures = await self.reader.figures()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(self, figures, started))
        registry.register(self._process)
        return generate_latest(registry)

    async def close(self) -> None:
        await self.reader.close()


class _Snapshot:
    """A prometheus-client collector over values already read (its `collect` cannot await)."""

    def __init__(self, metrics: Metrics, figures: DatabaseFigures | None, started: float) -> None:
        self.metrics = metrics
        self.figures = figures
        self.started = started

    def collect(self) -> Iterator[Metric]:
        if self.metrics.requests is not None:
            yield from self.metrics.requests.collect()
        yield _connections(self.metrics.hub)
        delays = getattr(self.metrics.hub, "fanout_delays", None)
        if delays is not None:
            yield from delays.collect()
        yield GaugeMetricFamily(
            "tessera_metrics_database_up",
            "1 if the database answered this scrape's read within its time box, else 0",
            value=0 if self.figures is None else 1,
        )
        if self.figures is not None:
            yield from self.figures.collect()
            yield GaugeMetricFamily(
                "tessera_metrics_database_seconds",
                "How long the database read behind these figures took",
                value=self.figures.seconds,
            )
        yield GaugeMetricFamily(
            "tessera_metrics_scrape_seconds",
            "How long this scrape took until its families were built",
            value=time.perf_counter() - self.started,
        )


def _connections(hub: Any) -> Metric:
    """Websocket door connections on this instance, per event (the hub's live rooms)."""
    family = GaugeMetricFamily(
        "tessera_websocket_connections",
        "Door websockets connected to this instance, per event",
        labels=["event"],
    )
    for event_id, room in list(getattr(hub, "rooms", {}).items()):
        family.add_metric([event_id], len(room.connections))
    return family
