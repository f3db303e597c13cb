"""Structured logs: one JSON object per line on standard output, access lines included."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import msgspec

__all__ = ["AccessLogMiddleware", "JsonFormatter", "configure_logging", "redact_path"]

_ENCODER = msgspec.json.Encoder()
# Record attributes that are not extra fields (uvicorn adds a coloured copy of its message).
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# Guest links are bearer secrets: they never reach a log line.
_SECRET_PATHS = re.compile(r"^(/t/)[^/]+")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry).decode()


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def redact_path(path: str) -> str:
    return _SECRET_PATHS.sub(r"\1…", path)


class AccessLogMiddleware:
    """Pure ASGI middleware: one `tessera.access` line per HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = logging.getLogger("tessera.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            self.log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": redact_path(scope["path"]),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
