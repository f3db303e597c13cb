"""The hub's limits and timers, one frozen value handed to the hub, its rooms and its sockets."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HubConfig"]


@dataclass(frozen=True)
class HubConfig:
    auth_timeout: float = 5.0  # seconds for the first `auth` frame without a header token
    rate: float = 200.0  # frames per second per device
    burst: float = 1000.0
    close_after: float = 3.0  # seconds over the rate limit before closing with 1008
    counters_interval: float = 0.2  # at most 5 `counters` frames per second
    heal_interval: float = 5.0  # re-read the change log after this much fan-out silence
    revocation_check_interval: float = 15.0
    page_size: int = 500  # items per `changes` frame
    pending_limit: int = 2000  # offered items a slow socket may queue before it catches up alone
    rate_warning_interval: float = 1.0  # at most one `rate_limited` error per socket per second
