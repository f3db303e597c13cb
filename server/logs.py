"""Structured logs: one JSON object per line on standard output, access lines included."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import Any

import msgspec

from server.request_ids import current_request_id

__all__ = [
    "AccessLogMiddleware",
    "JsonFormatter",
    "LoopFlushingHandler",
    "configure_logging",
    "redact_path",
]

_ENCODER = msgspec.json.Encoder()
# Record attributes that are not extra fields (uvicorn adds a coloured copy of its message).
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# Guest links are bearer secrets: they never reach a log line.
_SECRET_PATHS = re.compile(r"^(/t/)[^/]+")


def _timestamp(created: float, msecs: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if (request_id := current_request_id.get()) is not None:
            entry.setdefault("request_id", request_id)  # a request's lines name it
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry).decode()


class LoopFlushingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that flushes once per turn of the event loop, not once per line.

    Why: under load the access log wrote one line per request, each its own `write` system
    call (StreamHandler flushes every record); here the lines of one loop turn go out in one
    write, at the end of that turn (so a quiet server still logs each request at once). Outside
    a running loop (start-up, other threads) every line is flushed as before.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._flush_planned = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Write a line formatted elsewhere (the access log's own), under the handler's lock."""
        with self.lock:  # type: ignore[union-attr]
            self._write(line)

    def _write(self, line: str) -> None:
        self.stream.write(line + self.terminator)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if not self._flush_planned:
            self._flush_planned = True
            loop.call_soon(self._flush_planned_lines)

    def _flush_planned_lines(self) -> None:
        self._flush_planned = False
        self.flush()


def configure_logging(level: int = logging.INFO) -> None:
    handler = LoopFlushingHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    global _served
    _served = handler
    root.setLevel(level)
    # No line shows the process, thread or process name (JsonFormatter leaves them out), and
    # reading them cost a third of each access line (threading and multiprocessing lookups).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    for noisy in ("uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


_served: LoopFlushingHandler | None = None
"""The handler `configure_logging` installed (that of `tessera serve`), if it did."""


def _direct_handler(log: logging.Logger) -> LoopFlushingHandler | None:
    """`tessera serve`'s handler when it alone would write `log`'s INFO lines unfiltered: then
    an access line can skip the LogRecord (its making and routing cost ~12 µs a request, a
    quarter of the HTTP floor) and be the same line. Any other set-up (a test's `caplog`, an
    operator's handler or filter) gets records as before."""
    handler = _served
    root = logging.root
    if handler is None or log.handlers or log.filters or not log.propagate:
        return None
    if root.handlers != [handler] or root.filters or handler.filters:
        return None
    if not log.isEnabledFor(logging.INFO) or handler.level > logging.INFO:
        return None
    return handler


def redact_path(path: str) -> str:
    if not path.startswith("/t/"):  # the regex only for guest paths: it ran on every request
        return path
    return _SECRET_PATHS.sub(r"\1…", path)


CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before any answer began


class Unanswered:
    """The status to record for a request, given the one its answer began with (None: none
    began). A client that went away (its `receive` said `http.disconnect`) before a whole answer
    could reach it is CLIENT_CLOSED, even where the framework then answered 500 to nobody, so that
    a dropped upload is not counted and logged as a server error; no answer at all is 500."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.client_gone = False

    async def receive(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.client_gone = True
        return message

    def status(self, answered: int | None) -> int:
        if self.client_gone and (answered is None or answered >= 500):
            return CLIENT_CLOSED
        return 500 if answered is None else answered


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
        status: int | None = None
        unanswered = Unanswered(receive)

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, unanswered.receive, send_wrapper)
        finally:
            self.record(scope, unanswered.status(status), started)

    def record(self, scope: Any, status: int, started: float) -> None:
        """Write the access line of the request `scope`, answered `status`, begun at
        `started` (`time.perf_counter()`); for an answer made outside this middleware."""
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "path": redact_path(scope["path"]),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "client": client[0] if client else None,
        }
        if (request_id := current_request_id.get()) is not None:
            fields["request_id"] = request_id  # set by server.metrics.ObserveRequests
        handler = _direct_handler(self.log)
        if handler is None:
            self.log.info("request", extra=fields)
        else:
            handler.write_line(_access_line(fields))


def _access_line(fields: dict[str, Any]) -> str:
    """The line JsonFormatter makes of the access record, made without the record."""
    now = time.time()
    entry: dict[str, Any] = {
        "ts": _timestamp(now, (now - int(now)) * 1000),
        "level": "info",
        "logger": "tessera.access",
        "msg": "request",
    }
    entry.update(fields)
    return _ENCODER.encode(entry).decode()
