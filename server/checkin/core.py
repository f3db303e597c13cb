"""What one authenticated socket does with each frame it receives (sans-I/O: no socket, no clock).

Rules, in the order a frame meets them:
1. The device's rate limit (frames per second, shared by its sockets) admits the frame or not.
   A dropped frame gets one `rate_limited` error at most every `rate_warning_interval` seconds;
   `close_after` seconds over the limit closes with 1008 after a last `rate_limited` error.
2. The frame is decoded strictly: a bad one gets an `error` frame naming why; one over the size
   limit is also closed with 1009. A bad frame never reaches a handler.
3. `auth` after authentication is refused (`invalid`); `hello`, `scan`, `scan_batch` and `annul`
   become `Dispatch` actions the shell carries out (they need the change feed or the writer).

The shell feeds `receive(data, now)` with the bytes and `loop.time()`, and performs the actions
in order: `Reply` (send a frame), `Close` (close the socket), `Dispatch` (run the frame).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.messages import (
    Annul,
    ClientFrame,
    Error,
    FrameError,
    Hello,
    HubFrame,
    Scan,
    ScanBatch,
    decode_client_frame,
)
from server.checkin.config import HubConfig
from server.checkin.ratelimit import Admission, RateLimiter

__all__ = [
    "CLOSE_POLICY",
    "CLOSE_TOO_LARGE",
    "Action",
    "Close",
    "Dispatch",
    "Dispatched",
    "FrameCore",
    "Reply",
]

CLOSE_POLICY = 1008
CLOSE_TOO_LARGE = 1009


@dataclass(frozen=True)
class Reply:
    frame: HubFrame


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


Dispatched = Hello | Scan | ScanBatch | Annul  # the frames the shell carries out


@dataclass(frozen=True)
class Dispatch:
    frame: Dispatched


Action = Reply | Close | Dispatch


class FrameCore:
    """The frame rules of one authenticated socket of `device_id`."""

    def __init__(self, device_id: str, limiter: RateLimiter, config: HubConfig) -> None:
        self.device_id = device_id
        self.limiter = limiter
        self.config = config
        self.rate_warned_at = -1e9

    def receive(self, data: bytes | str, now: float) -> list[Action]:
        """The actions one received frame asks for, in order."""
        admission = self.limiter.admit(self.device_id, now)
        if admission is not Admission.ADMIT:
            return self._over_limit(admission, now)
        try:
            frame = decode_client_frame(data)
        except FrameError as exc:
            refused: list[Action] = [Reply(Error(code=exc.code, detail=exc.detail))]
            if exc.code == "too_large":
                refused.append(Close(CLOSE_TOO_LARGE, "frame too large"))
            return refused
        return [self._dispatch(frame)]

    def _over_limit(self, admission: Admission, now: float) -> list[Action]:
        if admission is Admission.CLOSE:
            closing = Error(code="rate_limited", detail="rate limit exceeded: closing")
            return [Reply(closing), Close(CLOSE_POLICY, "rate limit exceeded")]
        if now - self.rate_warned_at < self.config.rate_warning_interval:
            return []
        self.rate_warned_at = now
        limits = f"{self.config.rate:g} frames/s (burst {self.config.burst:g})"
        return [Reply(Error(code="rate_limited", detail=f"over {limits}: frame dropped"))]

    @staticmethod
    def _dispatch(frame: ClientFrame) -> Action:
        if isinstance(frame, Hello | Scan | ScanBatch | Annul):
            return Dispatch(frame)
        return Reply(Error(code="invalid", detail="already authenticated"))
