"""Signing in to the console over HTTP, on both backends: mailed links, passwords, sessions,
CSRF, rate limits, and garbage."""

from __future__ import annotations

import pytest

from server.console.web import SESSION_COOKIE
from tests.server.console.helpers import (
    as_new_browser,
    ask_link,
    csrf_of,
    mailed_links,
    make_user,
    use_link,
)


async def test_a_mailed_link_signs_in_and_lands_on_the_console(client, settings):
    await make_user(settings)
    response = await ask_link(client, "ADA@example.org")
    assert response.status_code == 200
    assert "15 minutes" in response.text
    [secret] = mailed_links(settings.maildir)
    answer = await use_link(client, secret)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/events"
    set_cookie = answer.headers["set-cookie"]
    for part in ("HttpOnly", "Secure", "SameSite=lax", "Path=/console"):
        assert part.lower() in set_cookie.lower()


async def test_the_answer_is_the_same_for_an_unknown_address(client, settings):
    await make_user(settings)
    known = await ask_link(client, "ada@example.org")
    unknown = await ask_link(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    strip = lambda text: text.replace(csrf_of(text), "")  # noqa: E731
    assert strip(known.text) == strip(unknown.text)
    assert len(mailed_links(settings.maildir)) == 1


async def test_a_get_on_the_link_consumes_nothing(client, settings):
    await make_user(settings)
    await ask_link(client, "ada@example.org")
    [secret] = mailed_links(settings.maildir)
    for _ in range(3):
        page = await client.get(f"/console/sign-in/link/{secret}")
        assert page.status_code == 200
        assert 'action="/console/sign-in/link?lang=en"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
    assert (await use_link(client, secret)).status_code == 303


async def test_a_used_link_signs_in_nobody(client, settings):
    await make_user(settings)
    await ask_link(client, "ada@example.org")
    [secret] = mailed_links(settings.maildir)
    assert (await use_link(client, secret)).status_code == 303
    client.cookies.clear()
    again = await use_link(client, secret)
    assert again.status_code == 400
    assert SESSION_COOKIE not in again.headers.get("set-cookie", "")


async def test_an_expired_link_signs_in_nobody(client, settings):
    from datetime import timedelta

    from sqlalchemy import update

    from server.console.models import SignInLink
    from server.db import Database, utcnow

    await make_user(settings)
    await ask_link(client, "ada@example.org")
    [secret] = mailed_links(settings.maildir)
    database = Database(settings.database_url)
    async with database.transaction() as session:
        await session.execute(update(SignInLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    await database.dispose()
    assert (await use_link(client, secret)).status_code == 400


async def test_pages_need_a_session(client, settings):
    response = await client.get("/console/events")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"


async def test_password_sign_in_and_a_wrong_one(client, settings):
    await make_user(settings, password="correct horse battery")
    page = await client.get("/console/sign-in")
    csrf = csrf_of(page.text)
    wrong = await client.post(
        "/console/sign-in/password",
        data={"email": "ada@example.org", "password": "nope", "csrf": csrf},
    )
    assert wrong.status_code == 400
    unknown = await client.post(
        "/console/sign-in/password",
        data={"email": "who@example.org", "password": "nope", "csrf": csrf},
    )
    assert unknown.status_code == 400
    assert wrong.text.replace("ada@", "") == unknown.text.replace("who@", "")
    right = await client.post(
        "/console/sign-in/password",
        data={"email": "ada@example.org", "password": "correct horse battery", "csrf": csrf},
    )
    assert right.status_code == 303


async def test_a_forged_csrf_token_is_refused(client, settings):
    await make_user(settings)
    page = await client.get("/console/sign-in")
    forged = await client.post(
        "/console/sign-in", data={"email": "ada@example.org", "csrf": "x" * 43}
    )
    missing = await client.post("/console/sign-in", data={"email": "ada@example.org"})
    assert forged.status_code == missing.status_code == 403
    assert csrf_of(page.text)
    assert mailed_links(settings.maildir) == []


async def test_a_cross_site_form_is_refused(client, settings):
    await make_user(settings)
    page = await client.get("/console/sign-in")
    data = {"email": "ada@example.org", "csrf": csrf_of(page.text)}
    for headers in ({"Origin": "https://evil.test"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await client.post("/console/sign-in", data=data, headers=headers)
        assert response.status_code == 403


async def test_sign_out_and_sign_out_everywhere(client, settings):
    await make_user(settings)
    one = await as_new_browser(client, settings)
    two = await as_new_browser(client, settings)
    three = await as_new_browser(client, settings)
    client.cookies = one.cookies
    assert (await client.post("/console/sign-out", data={"csrf": one.csrf})).status_code == 303
    assert (await client.get("/console/events")).status_code == 303
    client.cookies = two.cookies
    assert (await client.get("/console/events")).status_code == 200
    client.cookies = three.cookies
    await client.post("/console/sign-out-everywhere", data={"csrf": three.csrf})
    for browser in (two, three):
        client.cookies = browser.cookies
        assert (await client.get("/console/events")).status_code == 303


async def test_another_users_session_cookie_with_my_csrf_token_is_refused(client, settings):
    await make_user(settings)
    await make_user(settings, email="eve@example.org", name="Eve", role="read_only")
    ada = await as_new_browser(client, settings)
    eve = await as_new_browser(client, settings, "eve@example.org")
    # Eve's CSRF token does not sign forms of Ada's session, nor the other way round.
    client.cookies = ada.cookies
    response = await client.post("/console/sign-out-everywhere", data={"csrf": eve.csrf})
    assert response.status_code == 403
    assert (await client.get("/console/events")).status_code == 200
    client.cookies = eve.cookies
    response = await client.post("/console/sign-out-everywhere", data={"csrf": ada.csrf})
    assert response.status_code == 403


async def test_a_session_cookie_of_garbage_is_no_session(client, settings):
    values = [b"", b"tss_" + b"A" * 43, b"x" * 4000, "tss_\u00e9".encode(), b"\xff\xfe"]
    for value in values:
        headers = {"Cookie": b"tessera_console=" + value}
        assert (await client.get("/console/events", headers=headers)).status_code == 303


async def test_sign_in_is_rate_limited_per_address_and_per_client(client, settings):
    await make_user(settings)
    statuses = [(await ask_link(client, "ada@example.org")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    unknown = [(await ask_link(client, "who@example.org")).status_code for _ in range(6)]
    assert unknown == [200] * 5 + [429]
    assert len(mailed_links(settings.maildir)) == 5
    rest = [(await ask_link(client, f"u{n}@example.org")).status_code for n in range(10)]
    assert rest[-1] == 429 and "Retry" not in rest  # the client's 20 are spent


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"email=" + b"a" * 10_000_000, "application/x-www-form-urlencoded", 413),
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded", 400),
        (b"email=%ff%fe", "application/x-www-form-urlencoded", 400),
        (b"email=a%00b", "application/x-www-form-urlencoded", 400),
        (b'{"email": "a@b.c"}', "application/json", 415),
        (b"", "application/x-www-form-urlencoded", 403),
        (b"novalue", "application/x-www-form-urlencoded", 400),
        (b"&".join([b"a=1"] * 1000), "application/x-www-form-urlencoded", 400),
    ],
)
async def test_garbage_forms_get_a_page_never_a_5xx(client, settings, body, content_type, status):
    for path in ("/console/sign-in", "/console/sign-in/link", "/console/sign-in/password"):
        response = await client.post(path, content=body, headers={"Content-Type": content_type})
        assert response.status_code == status, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("secret", ["x", "tsl_" + "a" * 5000, "%00", "tsl_%E9"])
async def test_garbage_link_pages(client, settings, secret):
    page = await client.get(f"/console/sign-in/link/{secret}")
    assert page.status_code in (200, 404)
    if page.status_code == 200:
        response = await client.post(
            "/console/sign-in/link", data={"secret": secret, "csrf": csrf_of(page.text)}
        )
        assert response.status_code == 400


async def test_pages_carry_a_strict_csp_and_no_script(client, settings):
    page = await client.get("/console/sign-in")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    assert len(page.content) < 100_000
