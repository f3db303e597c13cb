"""The `tessera` command as an operator uses it, in a scratch directory with its own database."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.cli_home import Tessera, tessera_in

TOKEN = re.compile(r"^tsr_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def tessera(tmp_path: Path) -> Tessera:
    run = tessera_in(tmp_path)
    run("migrate")
    return run


def test_token_create_prints_the_token_alone(tessera):
    done = tessera("token", "create", "--name", "ci")
    assert TOKEN.match(done.stdout.strip())
    assert done.stdout.count("\n") == 1


def test_token_list_shows_names_never_secrets(tessera):
    secret = tessera("token", "create", "--name", "door-office", "--read-only").stdout.strip()
    listing = tessera("token", "list").stdout
    assert "door-office" in listing and "read-only" in listing
    assert secret not in listing


def test_token_revoke_by_name_and_unknown_name_fails(tessera):
    tessera("token", "create", "--name", "old")
    assert "revoked 1" in tessera("token", "revoke", "old").stderr
    refused = tessera("token", "revoke", "old", ok=False)
    assert refused.returncode == 1 and "no token" in refused.stderr


def test_demo_is_idempotent_and_prints_what_a_user_needs(tessera, tmp_path):
    first = tessera("demo").stdout
    second = tessera("demo").stdout
    assert "organiser token" in first and "/schema" in first and "/t/" in first
    token_lines = [line for line in first.splitlines() if "organiser token" in line]
    assert token_lines and token_lines[0] in second, "the demo token is reused"
    database = sqlite3.connect(tmp_path / "var" / "tessera.db")
    counts = [
        database.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("event", "booking", "ticket", "api_token")
    ]
    assert counts == [1, 3, 6, 1]
    assert (tmp_path / "var" / "demo-token").stat().st_mode & 0o777 == 0o600


def test_keys_rotate_list_retire(tessera, tmp_path):
    first = tessera("keys", "rotate").stdout.strip()
    second = tessera("keys", "rotate").stdout.strip()
    listing = tessera("keys", "list").stdout
    assert f"{second}" in listing and "signing" in listing
    assert (tmp_path / "keys" / f"{first}.pem").stat().st_mode & 0o777 == 0o600
    tessera("keys", "retire", first)
    assert re.search(rf"{first}\s+retired", tessera("keys", "list").stdout)
    refused = tessera("keys", "retire", second, ok=False)
    assert refused.returncode == 1 and "last key able to sign" in refused.stderr


def test_help_lists_every_command(tessera):
    text = tessera("--help").stdout
    for command in ("serve", "migrate", "demo", "token", "keys"):
        assert command in text


def test_serve_refuses_several_workers_without_redis(tessera):
    refused = tessera("serve", "--workers", "2", ok=False)
    assert refused.returncode == 2
    assert "TESSERA_REDIS_URL" in refused.stderr
