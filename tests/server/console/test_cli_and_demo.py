"""`tessera user create` and the demo's console sign-in link, on both backends."""

from __future__ import annotations

import asyncio
import io
import re

from server.cli import main
from server.console import accounts
from server.db import Database
from server.db.migrate import migrate
from server.demo import seed_demo
from tests.server.console.helpers import csrf_of


def _env(monkeypatch, settings):
    monkeypatch.setenv("TESSERA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TESSERA_KEYS_DIR", settings.keys_dir)


async def _find(settings, email):
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            user = await accounts.find_user_by_email(session, email)
            if user is None:
                return None
            ok = await accounts.check_password(session, email, "a long passphrase")
            return user.role, ok is not None
    finally:
        await database.dispose()


def test_user_create_with_and_without_a_password(monkeypatch, settings, capsys):
    _env(monkeypatch, settings)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    args = ["user", "create", "--email", "Ed@Example.org", "--name", "Ed", "--role", "editor"]
    assert main([*args, "--password-stdin"]) == 0
    assert re.fullmatch(r"[0-9A-Z]+\n", capsys.readouterr().out)
    assert asyncio.run(_find(settings, "ed@example.org")) == ("editor", True)
    assert main(args) == 1  # the address is taken, whatever its case
    assert "exists" in capsys.readouterr().err
    bad = ["user", "create", "--email", "nope", "--name", " ", "--role", "admin"]
    assert main(bad) == 1
    err = capsys.readouterr().err
    assert "email:" in err and "name:" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    other = ["user", "create", "--email", "x@example.org", "--name", "X", "--role", "admin"]
    assert main([*other, "--password-stdin"]) == 1
    assert "password:" in capsys.readouterr().err
    assert main(["user", "list"]) == 0
    assert "Ed@Example.org" in capsys.readouterr().out


async def test_the_demo_prints_a_console_link_that_signs_the_admin_in(
    client, settings, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the demo keeps its token under ./var
    database = Database(settings.database_url)
    try:
        await migrate(database)
        await seed_demo(database, settings)
        await seed_demo(database, settings)  # idempotent: one admin, a fresh link each run
    finally:
        await database.dispose()
    printed = capsys.readouterr().out
    links = re.findall(
        r"  console         https://tickets\.test/console/sign-in/link/(\S+)", printed
    )
    assert len(links) == 2 and links[0] != links[1]
    for secret in links:
        page = await client.get(f"/console/sign-in/link/{secret}")
        used = await client.post(
            "/console/sign-in/link", data={"secret": secret, "csrf": csrf_of(page.text)}
        )
        assert used.status_code == 303
    events = await client.get("/console/events")
    assert "Tessera Demo Night" in events.text and "Demo Admin" in events.text
