"""Per-device flood protection for the websocket hub: a token bucket counting frames.

Rules (ARCHITECTURE §5): every frame a device sends costs one token, whatever it holds (a
`scan_batch` of 500 scans is one frame, and so is a malformed one). A bucket holds at most `burst`
tokens and refills at `rate` tokens per second; a frame arriving to an empty bucket is dropped. A
device is "over the limit" from its first dropped frame until it has had no frame dropped for
`forgive_after` seconds; one that stays over the limit for `close_after` seconds is told to go away
(a flood at any rate above `rate` does, since the refill only ever admits `rate` frames/s). The
bucket is keyed by device, so the sockets of one device share it.

Pure: time is passed in (seconds on any monotonic clock), nothing here sleeps or reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Admission", "RateLimiter", "TokenBucket"]

DEFAULT_RATE = 200.0
DEFAULT_BURST = 1000.0
DEFAULT_CLOSE_AFTER = 3.0
DEFAULT_FORGIVE_AFTER = 1.0


class Admission(StrEnum):
    ADMIT = "admit"  # process the frame
    DROP = "drop"  # over the limit: drop the frame, tell the device
    CLOSE = "close"  # over the limit for `close_after` seconds in a row: close the socket


@dataclass
class TokenBucket:
    """A bucket that starts full; `take(now)` spends one token if there is one."""

    rate: float = DEFAULT_RATE
    burst: float = DEFAULT_BURST
    tokens: float = field(default=-1.0)
    stamp: float | None = None
    forgive_after: float = DEFAULT_FORGIVE_AFTER
    over_since: float | None = None  # when the device went over the limit, None when under
    last_drop: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        if self.tokens < 0:
            self.tokens = self.burst

    def refill(self, now: float) -> None:
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token at `now`; False when the bucket is empty (the frame must be dropped)."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        if self.over_since is None or now - self.last_drop > self.forgive_after:
            self.over_since = now
        self.last_drop = now
        return False

    def over_for(self, now: float) -> float:
        """Seconds the device has been over the limit (0 when it is not)."""
        if self.over_since is None or now - self.last_drop > self.forgive_after:
            return 0.0
        return now - self.over_since

    def is_full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.burst


class RateLimiter:
    """Token buckets by key (a device id); `admit(key, now)` says what to do with one frame."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        close_after: float = DEFAULT_CLOSE_AFTER,
        forgive_after: float = DEFAULT_FORGIVE_AFTER,
    ) -> None:
        TokenBucket(rate, burst)  # validates the figures once, here
        self.rate = rate
        self.burst = burst
        self.close_after = close_after
        self.forgive_after = forgive_after
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, key: str, now: float) -> Admission:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(
                self.rate, self.burst, forgive_after=self.forgive_after
            )
        if bucket.take(now):
            return Admission.ADMIT
        if bucket.over_for(now) >= self.close_after:
            return Admission.CLOSE
        return Admission.DROP

    def forget_idle(self, now: float) -> int:
        """Drop the buckets that refilled completely (they behave as new ones); returns how many.

        Keeps memory bounded by the devices that sent something in the last `burst / rate` s.
        """
        idle = [key for key, bucket in self._buckets.items() if bucket.is_full(now)]
        for key in idle:
            del self._buckets[key]
        return len(idle)

    def __len__(self) -> int:
        return len(self._buckets)
