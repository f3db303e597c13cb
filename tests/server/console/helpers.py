"""Helpers of the console tests: users in the database, links from the maildir, signed-in
clients, and the CSRF token of a page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.campaigns.transport import read_mail, read_maildir, view_mail
from server.console import accounts
from server.db import Database

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/console/sign-in/link/(tsl_[A-Za-z0-9_-]+)")


async def make_user(settings, *, email="ada@example.org", role="admin", password=None, name="Ada"):
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            return await accounts.create_user(
                session, email=email, name=name, role=role, password=password
            )
    finally:
        await database.dispose()


@dataclass
class Browser:
    """One signed-in browser: its cookies and its session's CSRF token."""

    cookies: httpx.Cookies
    csrf: str


async def as_new_browser(client, settings, email="ada@example.org") -> Browser:
    """Sign in from a fresh cookie jar; the client keeps that jar."""
    client.cookies = httpx.Cookies()
    csrf = await sign_in(client, settings, email)
    return Browser(httpx.Cookies(client.cookies), csrf)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:2000]
    return match.group(1)


def mailed_links(maildir: Path) -> list[str]:
    """Every sign-in link secret in the maildir, oldest first."""
    secrets = []
    for mail in read_maildir(maildir):
        view = view_mail(read_mail(maildir, mail.id))
        secrets += LINK.findall(view.text or "")
    return secrets


async def ask_link(client, email: str):
    page = await client.get("/console/sign-in")
    return await client.post("/console/sign-in", data={"email": email, "csrf": csrf_of(page.text)})


async def use_link(client, secret: str):
    page = await client.get(f"/console/sign-in/link/{secret}")
    return await client.post(
        "/console/sign-in/link", data={"secret": secret, "csrf": csrf_of(page.text)}
    )


async def sign_in(client, settings, email="ada@example.org") -> str:
    """Sign `client` in by a mailed link; returns the session's CSRF token."""
    before = len(mailed_links(settings.maildir))
    await ask_link(client, email)
    secret = mailed_links(settings.maildir)[before]
    response = await use_link(client, secret)
    assert response.status_code == 303, response.text
    page = await client.get("/console/events")
    return csrf_of(page.text)
