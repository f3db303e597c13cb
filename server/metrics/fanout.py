"""Fan-out delay: from the commit that appended a change to the moment a room pushes it out.

Every `head` notice carries `committed_at`, the wall-clock time (seconds since the epoch) taken
right after its commit (server/changes/publish.py); through Redis it crosses instances as it is.
Each room that reads the log on that notice and offers the changes to its sockets records once
per notice: `now - committed_at`. Across instances the figure includes their clock difference;
a negative one (a clock behind) counts as 0, and a value that is no number or over an hour (a
forged or very stale notice) is not recorded.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.metrics_core import Metric

__all__ = ["FANOUT_BUCKETS", "FanoutDelays", "commit_time"]

# Seconds: the target is 100 ms (ARCHITECTURE §5); a heal after a lost notice takes ~5 s.
FANOUT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_TOO_OLD = 3600.0


def commit_time(value: object) -> float | None:
    """A notice's `committed_at` when it is a plausible time, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        moment = float(value)
    except OverflowError:  # an int too large for a float
        return None
    if not math.isfinite(moment) or abs(time.time() - moment) > _TOO_OLD:
        return None
    return moment


class FanoutDelays:
    """One instance's fan-out delays, in histogram buckets (turned into a family at scrape)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(FANOUT_BUCKETS) + 1)

    def observe(self, committed: Iterable[float], now: float | None = None) -> None:
        """Record one delay for each commit time in `committed`, pushed at `now`."""
        now = time.time() if now is None else now
        for moment in committed:
            delay = max(0.0, now - moment)
            self.count += 1
            self.total += delay
            self.buckets[bisect_left(FANOUT_BUCKETS, delay)] += 1

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "tessera_fanout_delay_seconds",
            "From the commit of a change to its room pushing it to the sockets (per room)",
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*FANOUT_BUCKETS, float("inf")), self.buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric([], buckets, self.total)
        yield family
