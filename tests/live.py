"""A real `tessera serve` (uvicorn) in a subprocess on a free loopback port, for e2e tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from server.config import Settings

__all__ = ["free_port", "live_server", "settings_env"]


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
