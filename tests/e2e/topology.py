"""docker/compose.yaml's topology started from plain processes of this machine, for a test.

Each Tessera service of compose.yaml runs as its own `tessera` process, with the command and
the TESSERA_* environment compose gives it (the image's ENV under the service's own), in the
order its `depends_on` says; only what names a place is made local: the database (a PostgreSQL
database of the test's own), Redis (a key prefix of its own), the ports, the keystore and maildir
directories, the public base URL and the trusted proxy (all on 127.0.0.1). The proxy is Debian's
nginx, run unprivileged on docker/nginx.conf with only its listen port, upstream servers and
/tmp substituted (`local_nginx_config`). Everything is stopped, and the database dropped, when
the `topology` context ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from tests.conftest import POSTGRES_ADMIN_URL
from tests.deployment import (
    DOCKER,
    TESSERA,
    command_of,
    dockerfile_env,
    environment_of,
    load_compose,
    nginx_upstream_servers,
    tessera_services,
)
from tests.deployment_checks import SAMPLE_ENV
from tests.live import free_port

__all__ = ["NGINX_MISSING", "Topology", "local_nginx_config", "nginx_binary", "topology"]

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")
START_TIMEOUT = 30.0  # seconds for one process to be ready
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
NGINX_MISSING = (
    "nginx is not installed, and the deployment test runs Debian's nginx as the proxy of "
    "docker/compose.yaml: install it with `apt-get install -y nginx` (as make test should)"
)


def nginx_binary(search: str | None = None) -> str:
    """The path of nginx on `search` (default: PATH and the sbin directories); fails the test,
    never skips it, when there is none."""
    if search is None:
        search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which("nginx", path=search)
    if found is None:
        pytest.fail(NGINX_MISSING, pytrace=False)
    return found


def local_nginx_config(text: str, listen: int, upstreams: Mapping[str, int], rundir: Path) -> str:
    """docker/nginx.conf with its one `listen` on 127.0.0.1:`listen`, each `server NAME:PORT` of
    its upstream on 127.0.0.1:`upstreams[NAME]`, and /tmp/ (pid, temporary files) in `rundir`.
    Raises ValueError when the file is not shaped so (then this and nginx.conf need each other
    updated): every other line is served as written."""
    text, listens = re.subn(r"(?m)^(\s*)listen\s+[^;]+;", rf"\1listen 127.0.0.1:{listen};", text)
    if listens != 1:
        raise ValueError(f"nginx.conf has {listens} listen lines, expected one")
    named = {host for host, _ in nginx_upstream_servers(text)}
    if named != set(upstreams):
        raise ValueError(
            f"nginx.conf proxies to {sorted(named)}, the test runs {sorted(upstreams)}"
        )
    for host, port in upstreams.items():
        text = re.sub(rf"(?m)^(\s*server\s+){re.escape(host)}:\d+", rf"\g<1>127.0.0.1:{port}", text)
    lines = text.splitlines(keepends=True)
    return "".join(
        line if line.lstrip().startswith("#") else line.replace("/tmp/", f"{rundir}/")
        for line in lines
    )


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    rundir: Path | None = None  # nginx's own directory (config, pid, temporary files)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after STOP_TIMEOUT; returns when it is gone."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL to its process group at once (`kill -9`: no shutdown, sockets just drop)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(STOP_TIMEOUT)


@dataclass
class Topology:
    """The running deployment: the proxy's base URL, each instance's, and the processes."""

    proxy: str
    instances: dict[str, str]  # compose service name -> its own base URL
    processes: dict[str, Process]
    env: dict[str, str]  # the environment of the `tessera` commands (the instances' settings)
    maildir: Path
    redis_prefix: str
    commands: dict[str, list[str]] = field(default_factory=dict)

    def tessera(self, *args: str) -> str:
        """Run `tessera ARGS…` as an operator would next to the instances; its stdout."""
        done = subprocess.run(
            [str(TESSERA), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"tessera {' '.join(args)}: {done.stderr}"
        return done.stdout

    def log_of(self, instance: str) -> Path:
        return self.processes[instance].log

    @property
    def database_url(self) -> str:
        return self.env["TESSERA_DATABASE_URL"]


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path, **kw: Any) -> Process:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )
    return Process(name, popen, log)


def _wait_http(process: Process, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name}: {url} not ready in {START_TIMEOUT} s:\n{process.output()}")


def _start_order(services: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The services in an order that starts each after what it `depends_on`."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name not in services:
            return
        if name in path:
            raise ValueError(f"compose.yaml: depends_on goes round: {' -> '.join(path)}")
        for other in services[name].get("depends_on") or {}:
            visit(other, (*path, name))
        order.append(name)

    for name in services:
        visit(name, ())
    return order


async def _create_database(name: str, admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str, admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _unprivileged() -> dict[str, Any]:
    """Popen arguments that run nginx as `nobody` when the tests run as root."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _start_nginx(logs: Path, listen: int, upstreams: dict[str, int]) -> Process:
    binary = nginx_binary()
    rundir = Path(tempfile.mkdtemp(prefix="tessera-nginx-"))
    config = rundir / "nginx.conf"
    text = (DOCKER / "nginx.conf").read_text()
    config.write_text(local_nginx_config(text, listen, upstreams, rundir))
    privileges = _unprivileged()
    if privileges:
        os.chown(rundir, privileges["user"], privileges["group"])
        os.chown(config, privileges["user"], privileges["group"])
    argv = [binary, "-p", str(rundir), "-c", str(config), "-e", "stderr", "-g", "daemon off;"]
    try:
        process = _start("nginx", argv, dict(os.environ), logs, cwd=rundir, **privileges)
    except BaseException:
        shutil.rmtree(rundir, ignore_errors=True)
        raise
    process.rundir = rundir
    return process


def _local_env(
    compose_env: Mapping[str, str], base: Mapping[str, str], port: int | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(compose_env)
    env.update(base)
    if port is not None:
        env["TESSERA_PORT"] = str(port)
    return env


@contextlib.contextmanager
def topology(
    workdir: Path, *, postgres_admin_url: str | None = None, redis_url: str = REDIS_URL
) -> Iterator[Topology]:
    """Start compose.yaml's services as processes (see the module); stop them all at the end.

    `postgres_admin_url` is the server to make the database on (default: the machine's
    PostgreSQL); a test that stops PostgreSQL passes its private cluster's
    (tests/private_postgres.py). `redis_url`: the Redis server to use (a test that stops Redis
    runs a private one)."""
    admin_url = postgres_admin_url or POSTGRES_ADMIN_URL
    compose = load_compose(DOCKER / "compose.yaml", SAMPLE_ENV)
    services = tessera_services(compose)
    image_env = {
        k: v for k, v in dockerfile_env(DOCKER / "Dockerfile").items() if k[:8] == "TESSERA_"
    }
    database = f"tessera_topology_{secrets.token_hex(6)}"
    prefix = f"tessera-topology-{secrets.token_hex(6)}:"
    proxy_port = free_port()
    proxy = f"http://127.0.0.1:{proxy_port}"
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    local = {
        "TESSERA_DATABASE_URL": f"{admin_url.rpartition('/')[0]}/{database}",
        "TESSERA_REDIS_URL": f"{redis_url}?prefix={prefix}",
        "TESSERA_BASE_URL": proxy,
        "TESSERA_TRUSTED_PROXIES": "127.0.0.1",  # the proxy's address, as compose fixes it
        "TESSERA_HOST": "127.0.0.1",
        "TESSERA_KEYS_DIR": str(workdir / "keys"),
        "TESSERA_MAIL_DIR": str(workdir / "mail"),
        "TESSERA_ACCESS_LOG": "true",  # the test reads which instance served a request
    }
    running: dict[str, Process] = {}
    instances: dict[str, str] = {}
    asyncio.run(_create_database(database, admin_url))
    try:
        for name in _start_order(services):
            service = services[name]
            command = command_of(service)
            service_env = {**image_env, **environment_of(service)}
            port = free_port() if command[0] == "serve" else None
            env = _local_env(service_env, local, port)
            process = _start(name, [str(TESSERA), *command], env, logs)
            running[name] = process
            if command[0] == "migrate":  # run once, to completion, before the rest
                assert process.popen.wait(START_TIMEOUT * 2) == 0, process.output()
            elif port is not None:
                instances[name] = f"http://127.0.0.1:{port}"
                _wait_http(process, f"{instances[name]}/readyz")
        upstreams = {name: int(url.rsplit(":", 1)[1]) for name, url in instances.items()}
        running["nginx"] = _start_nginx(logs, proxy_port, upstreams)
        _wait_http(running["nginx"], f"{proxy}/healthz")
        yield Topology(
            proxy=proxy,
            instances=instances,
            processes=running,
            env=_local_env(
                image_env | environment_of(services[next(iter(instances))]), local, None
            ),
            maildir=workdir / "mail",
            redis_prefix=prefix,
            commands={name: command_of(s) for name, s in services.items()},
        )
    finally:
        for process in reversed(running.values()):
            process.stop()
            if process.rundir is not None:
                shutil.rmtree(process.rundir, ignore_errors=True)
        asyncio.run(_drop_database(database, admin_url))
        client = redis.Redis.from_url(redis_url)
        try:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
        finally:
            client.close()
