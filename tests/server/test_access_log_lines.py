"""The access line of `tessera serve`: written straight to its stdout handler (no LogRecord per
request) and flushed once per loop turn, yet the same JSON line as the logging path gives."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest

from server.logs import AccessLogMiddleware, configure_logging


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope(path: str) -> dict:
    return {"type": "http", "method": "GET", "path": path, "client": ("10.0.0.7", 5)}


async def _noop_receive():
    return {"type": "http.request"}


async def _noop_send(message):
    return None


@pytest.fixture
def served_logging(monkeypatch):
    """Logging as `tessera serve` sets it up, on a captured stdout; put back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    flags = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    configure_logging()
    yield stdout
    root.handlers[:], level = saved
    root.setLevel(level)
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags


async def test_a_served_request_logs_one_json_line_flushed_after_the_loop_turn(served_logging):
    middleware = AccessLogMiddleware(_app)
    await middleware(_scope("/t/secret-link/qr.svg"), _noop_receive, _noop_send)
    await asyncio.sleep(0)  # the loop turn that flushes
    (line,) = served_logging.getvalue().splitlines()
    entry = json.loads(line)
    assert list(entry) == [
        "ts",
        "level",
        "logger",
        "msg",
        "method",
        "path",
        "status",
        "duration_ms",
        "client",
    ]
    assert entry["level"] == "info" and entry["logger"] == "tessera.access"
    assert entry["msg"] == "request" and entry["status"] == 204
    assert entry["path"] == "/t/…/qr.svg" and entry["client"] == "10.0.0.7"
    assert entry["ts"].endswith("Z") and len(entry["ts"]) == len("2026-12-02T17:28:35.746Z")


async def test_with_another_handler_the_access_line_goes_through_logging(served_logging, caplog):
    with caplog.at_level(logging.INFO, logger="tessera.access"):
        await AccessLogMiddleware(_app)(_scope("/healthz"), _noop_receive, _noop_send)
    (record,) = [r for r in caplog.records if r.name == "tessera.access"]
    assert record.status == 204 and record.path == "/healthz"


async def test_a_client_that_left_before_any_answer_is_logged_499_and_a_crash_500(caplog):
    async def reads_until_gone(scope, receive, send):
        while (await receive())["type"] != "http.disconnect":
            pass

    async def crashes(scope, receive, send):
        raise RuntimeError("boom")

    async def gone():
        return {"type": "http.disconnect"}

    caplog.set_level(logging.INFO, logger="tessera.access")
    await AccessLogMiddleware(reads_until_gone)(_scope("/left"), gone, _noop_send)
    with pytest.raises(RuntimeError):
        await AccessLogMiddleware(crashes)(_scope("/crashed"), _noop_receive, _noop_send)
    statuses = {r.__dict__.get("path") or r.getMessage(): r for r in caplog.records}
    lines = [json.dumps(r.__dict__, default=str) for r in statuses.values()]
    assert any('"/left"' in line and "499" in line for line in lines), lines
    assert any('"/crashed"' in line and "500" in line for line in lines), lines
