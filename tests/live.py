"""Real servers for tests on free loopback ports: `tessera serve` in a subprocess (`live_server`),
or an app served by uvicorn in a thread of the test process (`serve_in_thread`), whose state the
test can reach."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from litestar import Litestar

from server.config import Settings

__all__ = ["free_port", "live_server", "serve_in_thread", "settings_env"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The `TESSERA_*` environment that makes `tessera` use `settings`."""
    env = {
        "TESSERA_DATABASE_URL": settings.database_url,
        "TESSERA_KEYS_DIR": settings.keys_dir,
        "TESSERA_ACCESS_LOG": "true" if settings.access_log else "false",
    }
    if settings.redis_url:
        env["TESSERA_REDIS_URL"] = settings.redis_url
    env.update(extra)
    return env


@contextlib.contextmanager
def live_server(settings: Settings, log_path: Path, **extra_env: str) -> Iterator[str]:
    """Start `tessera serve` with `settings`, wait until ready, yield its base URL, then stop it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(settings_env(settings, TESSERA_PORT=str(port), TESSERA_BASE_URL=base_url))
    env.update(extra_env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_ready(base_url, process, log_path)
            yield base_url
        finally:
            _stop(process)


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after 30 s:\n{log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def serve_in_thread(
    app: Litestar, port: int | None = None
) -> Iterator[tuple[int, asyncio.AbstractEventLoop]]:
    """Serve `app` with uvicorn on 127.0.0.1 in a thread with its own event loop; yield the port
    and that loop (to run coroutines on the server's side), then stop it within 15 s or fail."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        ws_per_message_deflate=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield port, loop
    finally:
        server.should_exit = True
        thread.join(15)
    if thread.is_alive():  # show what the server still waits for, then fail the test
        for task in asyncio.all_tasks(loop):
            task.print_stack(file=sys.stderr)
        raise RuntimeError("uvicorn did not stop within 15 s")
    loop.close()
