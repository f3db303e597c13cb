"""The `tessera` command run as an operator runs it, in a scratch directory of its own.

`tessera_in(home)` runs `python -m server.cli ...` with `home` as its working directory and its
SQLite database at `home/var/tessera.db` (keys in `home/keys`), the test environment's own
`TESSERA_*` variables removed. `demo_home_template` (a fixture in tests/conftest.py) is a home
where `tessera migrate` and `tessera demo` ran once per test process; `copy_home` gives a test
its own copy (file modes kept), 3 s cheaper than running both commands again for every test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["Tessera", "copy_home", "tessera_in"]

Tessera = Callable[..., subprocess.CompletedProcess[str]]


def tessera_in(home: Path, **fixed: str) -> Tessera:
    """A function running `tessera ARGS` in `home`: `ok=True` asserts exit 0; keyword strings
    are more environment variables for that run (`fixed` for every run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_DATABASE_URL=f"sqlite:///{home}/var/tessera.db", TESSERA_KEYS_DIR="keys")
    env.update(fixed)

    def run(*args: str, ok: bool = True, **more: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=env | more,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    return run


def make_demo_home(home: Path) -> Path:
    """`tessera migrate` and `tessera demo` in `home`."""
    run = tessera_in(home)
    run("migrate")
    run("demo")
    return home


def copy_home(template: Path, home: Path) -> Path:
    """`template`'s database, keys and demo token copied into `home`, modes kept."""
    shutil.copytree(template, home, dirs_exist_ok=True)
    return home
