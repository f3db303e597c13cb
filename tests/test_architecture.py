"""The boundaries of ARCHITECTURE §2, checked on every run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ["protocol", "ticket_renderer"]
FORBIDDEN_IN_PURE = {"litestar", "sqlalchemy", "alembic", "server", "asyncpg", "aiosqlite", "redis"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_import_no_framework_database_or_server(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN_IN_PURE)
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_door_client_knows_the_hub_only_through_the_protocol():
    """scanner_client/ must not import server/ (ARCHITECTURE §2), nor the server's frameworks."""
    forbidden = {"server", "litestar", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "redis"}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & forbidden)
        for path in (ROOT / "scanner_client").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# The scanner's sync engine is pure like protocol/: strict types for it as well (STYLE §11).
STRICT_SCANNER_MODULES = [
    "scanner_client/core.py",
    "scanner_client/store.py",
    "scanner_client/decide.py",
    "scanner_client/counters.py",
    "scanner_client/events.py",
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }


def test_services_never_import_litestar_or_the_http_edge():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "server").rglob("service.py")
        if "litestar" in imported_roots(path)
        or imported_modules(path) & {"server.http", "server.problems"}
    ]
    assert offenders == []


def test_pure_packages_type_check_strictly():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            *PURE_PACKAGES,
            *STRICT_SCANNER_MODULES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
