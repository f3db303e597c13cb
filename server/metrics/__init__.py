"""Prometheus metrics at `/metrics` and request ids (docs/metrics.md).

The route lives in `server.metrics.routes` (the edge); this package's other modules import no
Litestar, so they stay testable and usable from `tessera worker`.
"""

from server.metrics.listener import MetricsListener
from server.metrics.registry import Metrics
from server.metrics.requests import ObserveRequests, RequestFigures

__all__ = ["Metrics", "MetricsListener", "ObserveRequests", "RequestFigures"]
