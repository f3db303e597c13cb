"""What `make run` starts and what a door runs, as subprocesses of the venv, for the journey test.

`demo_server()` does in a scratch directory what the Makefile's `run` target does
(`tessera migrate`, `tessera demo`, `tessera serve`), with only the port and the mail settings
chosen by the test, and parses the console link that `tessera demo` prints. `HeadlessDoor` is
`tessera-scan pair CODE --server URL` then `tessera-scan run --headless` in a home of its own:
the real door client, over the real websocket hub. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from tests.live import free_port

__all__ = ["Demo", "HeadlessDoor", "demo_server"]

BIN = Path(sys.executable).parent  # the venv's console scripts, as `make run` calls them
CONSOLE_LINK = re.compile(r"^\s*console\s+(http://\S+/console/sign-in/link/\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Demo:
    base_url: str
    console_link: str  # the one-time sign-in link `tessera demo` printed
    printed: str  # all of `tessera demo`'s output
    log: Path  # `tessera serve`'s output


def _environment(**settings: str) -> dict[str, str]:
    """The caller's environment without any `TESSERA_*` variable, plus `settings`: the database,
    keys and maildir are `make run`'s defaults, relative to the scratch directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(settings)
    return env


def _run(command: str, *args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / command), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{command} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def demo_server(directory: Path, smtp_url: str) -> Iterator[Demo]:
    """`make run` in `directory`, on a free loopback port, its mail to `smtp_url`."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _environment(TESSERA_PORT=str(port), TESSERA_SMTP_URL=smtp_url)
    _run("tessera", "migrate", cwd=directory, env=env)
    printed = _run("tessera", "demo", cwd=directory, env=env)
    found = CONSOLE_LINK.search(printed)
    assert found, f"`tessera demo` printed no console link:\n{printed}"
    log = directory / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "tessera"), "serve"],
            cwd=directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_ready(base_url, server, log)
            yield Demo(base_url, found.group(1), printed, log)
        finally:
            _stop(server)


def _wait_ready(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert server.poll() is None, f"tessera serve exited:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"tessera serve not ready after 20 s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class HeadlessDoor:
    """A door paired by its code: codes on stdin, verdicts on stdout (door-staff.md §7)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self._env = _environment(TESSERA_SCAN_HOME=str(home / "scan"))
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._log: IO[bytes] | None = None

    def pair(self, code: str, server: str) -> str:
        """`tessera-scan pair CODE --server URL`, as door staff type it; its output."""
        return _run("tessera-scan", "pair", code, "--server", server, cwd=self.home, env=self._env)

    def start(self) -> None:
        self._log = (self.home / "door.log").open("wb")
        self._process = subprocess.Popen(
            [str(BIN / "tessera-scan"), "run", "--headless"],
            cwd=self.home,
            env=self._env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )

    def scan(self, code: str, within: float = 10) -> dict[str, Any]:
        """Type `code` and Enter; the verdict line printed for it."""
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(code.encode() + b"\n")
        process.stdin.flush()
        deadline = time.monotonic() + within
        while True:
            line = self._line(process.stdout, deadline)
            verdict = json.loads(line)
            if verdict.get("code") == code and not verdict.get("repeat"):
                return dict(verdict)

    def _line(self, stdout: IO[bytes], deadline: float) -> str:
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([stdout], [], [], max(left, 0))
            assert readable, f"no verdict in time; door log:\n{self.log()}"
            chunk = os.read(stdout.fileno(), 65536)
            assert chunk, f"the door stopped; its log:\n{self.log()}"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def log(self) -> str:
        path = self.home / "door.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """End of input: the door uploads what it owes and exits (bounded by `_stop`)."""
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _stop(self._process)
        finally:
            if self._log is not None:
                self._log.close()

    def _running(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "start() the door first"
        assert self._process.poll() is None, f"the door exited; its log:\n{self.log()}"
        return self._process
