"""A PostgreSQL cluster of the test's own, which the test may stop and start.

The machine's PostgreSQL is shared and must never be stopped; a test about PostgreSQL going away
runs `initdb` and `pg_ctl` (PostgreSQL 15's, as the `postgres` user when the tests run as root:
the server refuses to run as root) in a temporary directory, listening on 127.0.0.1 only, on a
free port, with trust authentication, fsync off (a test's data need not survive a power cut) and
a small memory footprint. `stop()` is a fast shutdown (open connections are terminated, new ones
refused, as when an operator stops PostgreSQL); `start()` brings the same data back on the same
port. The cluster is stopped and its directory removed when the context ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import free_port

__all__ = ["PrivatePostgres", "postgres_binaries", "private_postgres"]

_SEARCH = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin", "/usr/bin")
_TIMEOUT = 60


def postgres_binaries() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `postgres`; fails the test (never skips it)
    when there is none."""
    for directory in _SEARCH:
        if all((Path(directory) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    pytest.fail(
        "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install -y postgresql-15",
        pytrace=False,
    )


@dataclass
class PrivatePostgres:
    """A running private cluster: its port, its admin URL (database `postgres`), stop/start."""

    bindir: Path
    datadir: Path
    port: int
    user: str | None  # whom pg_ctl runs as (None: the current user)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT)
        if done.returncode != 0:
            log = (self.datadir / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"pg_ctl {' '.join(args)}: {done.stderr}\n{log}")

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        log = self.datadir / "server.log"
        self._pg_ctl("start", "-w", "-t", str(_TIMEOUT), "-l", str(log))

    def stop(self) -> None:
        """Fast shutdown: sessions terminated, transactions in progress rolled back."""
        self._pg_ctl("stop", "-w", "-t", str(_TIMEOUT), "-m", "fast")

    @property
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()


def _owner() -> str | None:
    """`postgres` when running as root (the server refuses root), else nobody in particular."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root needs a `postgres` user for the private cluster")
    return "postgres"


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb, configure, start; stop and remove at the end (see the module comment)."""
    bindir = postgres_binaries()
    user = _owner()
    root = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
    datadir = root / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    initdb = [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust"]
    initdb += ["-E", "UTF8", "--locale=C", "--no-sync"]
    if user is not None:
        initdb = ["runuser", "-u", user, "--", *initdb]
    cluster = PrivatePostgres(bindir, datadir, free_port(), user)
    try:
        done = subprocess.run(initdb, capture_output=True, text=True, timeout=_TIMEOUT, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{root}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "logging_collector": "off",
        }
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        (datadir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        cluster.start()
        yield cluster
    finally:
        if cluster.running:
            with contextlib.suppress(Exception):
                cluster._pg_ctl("stop", "-w", "-t", str(_TIMEOUT), "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)
