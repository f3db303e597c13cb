"""What metrics and request ids cost per request, beside the same app without them, in one run.

Three contenders, the same Tessera app (access log off, so only what differs is measured),
driven in this process through its ASGI callable (no HTTP server: the difference sought is a few
microseconds, below the noise of a socket round trip):

  bare      the app without its outermost wrapper (no request id, no figures): as before
  ids       `TESSERA_METRICS=false`: request ids only (the baseline the brief asks for)
  metrics   the default: request ids, and each request recorded by route, status and latency

Each round sends `--requests` requests of a mix to each contender in turn (a noisy neighbour
hits all three): GET /healthz (200), GET /api/v1/events/{id} without a token (401 problem+json)
and GET /no/such/path (404, unmatched). Per contender it prints its median round as a JSON line:
microseconds of this process's CPU per request, and requests/s; then the ratios.

Run: ``.venv/bin/python bench/metrics_overhead.py [--rounds 7] [--requests 20000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from typing import Any

from litestar import Litestar

from server.app import create_app
from server.config import Settings

PATHS = ("/healthz", "/api/v1/events/EVT1234567", "/no/such/path")


def _apps(directory: str) -> dict[str, Litestar]:
    settings = Settings(
        database_url=f"sqlite:///{directory}/bench.db",
        keys_dir=f"{directory}/keys",
        access_log=False,
        mail_dir=f"{directory}/mail",
    )
    bare = create_app(settings.replace(metrics=False))
    bare.asgi_handler = bare.asgi_handler.handler  # unwrap ObserveRequests
    return {
        "bare": bare,
        "ids": create_app(settings.replace(metrics=False)),
        "metrics": create_app(settings),
    }


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _round(app: Litestar, requests: int) -> float:
    """CPU seconds of this process per request, over `requests` requests of the mix."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scopes = [_scope(path) for path in PATHS]
    started = time.process_time()
    for n in range(requests):
        await app(dict(scopes[n % len(scopes)]), receive, send)
    took = time.process_time() - started
    if sorted(set(statuses)) != [200, 401, 404]:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    return took / requests


async def main(rounds: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        apps = _apps(directory)
        for app in apps.values():  # warm up: routes, caches, the first problem bodies
            await _round(app, 300)
        per_request: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(rounds):
            for name, app in apps.items():
                per_request[name].append(await _round(app, requests))
    medians = {name: statistics.median(values) for name, values in per_request.items()}
    machine = f"{platform.machine()} {platform.python_version()}"
    for name, seconds in medians.items():
        line = {
            "contender": name,
            "us_cpu_per_request": round(seconds * 1e6, 2),
            "requests_per_s": round(1 / seconds),
            "rounds_us": [round(s * 1e6, 2) for s in per_request[name]],
            "litestar": version("litestar"),
            "prometheus_client": version("prometheus-client"),
            "machine": machine,
        }
        print(json.dumps(line))
    ratio = {
        "ratio": "metrics / ids",
        "value": round(medians["metrics"] / medians["ids"], 3),
        "metrics_minus_ids_us": round((medians["metrics"] - medians["ids"]) * 1e6, 2),
        "ids_minus_bare_us": round((medians["ids"] - medians["bare"]) * 1e6, 2),
        "metrics_over_bare": round(medians["metrics"] / medians["bare"], 3),
    }
    print(json.dumps(ratio))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
