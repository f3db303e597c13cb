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
from tests.server.console.helpers import (
    ask_link,
    csrf_of,
    mailed_links,
    make_user,
    sign_in,
    use_link,
)


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


async def test_a_disabled_user_is_signed_out_at_once_and_signs_in_nowhere_until_enabled(
    client, settings, monkeypatch, capsys
):
    _env(monkeypatch, settings)
    await make_user(settings, email="ada@example.org", password="a long passphrase")
    await sign_in(client, settings, "ada@example.org")
    assert (await client.get("/console/events")).status_code == 200
    await ask_link(client, "ada@example.org")  # a link mailed before, not used yet
    pending = mailed_links(settings.maildir)[-1]

    assert await asyncio.to_thread(main, ["user", "disable", "ADA@example.org"]) == 0
    assert "disabled ada@example.org" in capsys.readouterr().out
    stopped = await client.get("/console/events")
    assert stopped.status_code == 303 and stopped.headers["location"] == "/console/sign-in"
    assert (await use_link(client, pending)).status_code == 400
    assert (await _password(client, "ada@example.org")).status_code == 400
    before = len(mailed_links(settings.maildir))
    await ask_link(client, "ada@example.org")
    assert len(mailed_links(settings.maildir)) == before  # no link for a disabled user
    assert await asyncio.to_thread(main, ["user", "list"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "ada@example.org" in line]
    assert re.search(r" 20[0-9]{2}-[0-9]{2}-[0-9]{2}", row), row  # when it was disabled

    assert await asyncio.to_thread(main, ["user", "enable", "ada@example.org"]) == 0
    assert (await use_link(client, pending)).status_code == 400  # its links went with it
    assert (await _password(client, "ada@example.org")).status_code == 303
    assert (await client.get("/console/events")).status_code == 200
    assert await asyncio.to_thread(main, ["user", "disable", "nobody@example.org"]) == 1
    assert "no user" in capsys.readouterr().err


async def _password(client, email: str):
    page = await client.get("/console/sign-in")
    form = {"email": email, "password": "a long passphrase", "csrf": csrf_of(page.text)}
    return await client.post("/console/sign-in/password", data=form)
