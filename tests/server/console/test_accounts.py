"""Console accounts on both backends: users, one-time links, passwords, sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.console import accounts
from server.db import Database, utcnow
from server.errors import BodyInvalid, Conflict


@pytest.fixture
async def database(settings):
    database = Database(settings.database_url)
    yield database
    await database.dispose()


async def _user(database, **overrides):
    values = {"email": "Ada@Example.org", "name": "Ada", "role": "admin"} | overrides
    async with database.transaction() as session:
        return await accounts.create_user(session, **values)


async def test_an_address_is_one_user_whatever_its_case(database):
    await _user(database)
    with pytest.raises(Conflict):
        await _user(database, email="ada@EXAMPLE.org ")
    async with database.transaction() as session:
        found = await accounts.find_user_by_email(session, "ADA@example.ORG")
    assert found is not None and found.email == "Ada@Example.org"


async def test_create_user_names_every_bad_field(database):
    with pytest.raises(BodyInvalid) as caught:
        await _user(database, email="nope", name="", role="root", password="short")
    assert {e["field"] for e in caught.value.errors} == {"email", "name", "role", "password"}


async def test_a_link_signs_in_once(database):
    user = await _user(database)
    now = utcnow()
    async with database.transaction() as session:
        secret = await accounts.create_link(session, user, now=now)
    async with database.transaction() as session:
        first = await accounts.consume_link(session, secret, now=now)
    async with database.transaction() as session:
        second = await accounts.consume_link(session, secret, now=now)
    assert first is not None and first.id == user.id
    assert second is None


async def test_a_link_expires_after_fifteen_minutes(database):
    user = await _user(database)
    now = utcnow()
    async with database.transaction() as session:
        secret = await accounts.create_link(session, user, now=now)
    late = now + accounts.LINK_LIFETIME + timedelta(seconds=1)
    async with database.transaction() as session:
        assert await accounts.consume_link(session, secret, now=late) is None


async def test_only_the_links_hash_is_stored(database):
    user = await _user(database)
    async with database.transaction() as session:
        secret = await accounts.create_link(session, user, now=utcnow())
        from sqlalchemy import select

        from server.console.models import SignInLink

        stored = await session.scalar(select(SignInLink.token_hash))
    assert secret not in stored and len(stored) == 64


@pytest.mark.parametrize("garbage", ["", "tsl_", "tsl_" + "x" * 10_000, "\x00", "tss_abc"])
async def test_garbage_links_and_sessions_find_nothing(database, garbage):
    await _user(database)
    async with database.transaction() as session:
        assert await accounts.consume_link(session, garbage, now=utcnow()) is None
        assert await accounts.find_session(session, garbage, now=utcnow()) is None


async def test_password_sign_in(database):
    await _user(database, password="correct horse battery")
    await _user(database, email="nopass@example.org")
    async with database.transaction() as session:
        assert await accounts.check_password(session, "ada@example.org", "correct horse battery")
        assert await accounts.check_password(session, "ada@example.org", "wrong") is None
        assert await accounts.check_password(session, "nopass@example.org", "") is None
        assert await accounts.check_password(session, "who@example.org", "x" * 10**6) is None


async def test_sessions_end_one_or_everywhere(database):
    user = await _user(database)
    now = utcnow()
    async with database.transaction() as session:
        one, _ = await accounts.create_session(session, user, now=now)
        two, _ = await accounts.create_session(session, user, now=now)
        three, _ = await accounts.create_session(session, user, now=now)
    async with database.transaction() as session:
        signed_in = await accounts.find_session(session, one, now=now)
        assert signed_in is not None and signed_in.user.id == user.id
        await accounts.end_session(session, signed_in.session_id)
    async with database.transaction() as session:
        assert await accounts.find_session(session, one, now=now) is None
        assert await accounts.find_session(session, two, now=now) is not None
        assert await accounts.end_all_sessions(session, user.id) == 2
    async with database.transaction() as session:
        assert await accounts.find_session(session, three, now=now) is None


async def test_a_session_expires_and_a_disabled_user_has_none(database):
    user = await _user(database)
    now = utcnow()
    async with database.transaction() as session:
        secret, csrf = await accounts.create_session(session, user, now=now)
    later = now + accounts.SESSION_LIFETIME + timedelta(seconds=1)
    async with database.transaction() as session:
        assert (await accounts.find_session(session, secret, now=now)).csrf == csrf
        assert await accounts.find_session(session, secret, now=later) is None
        (await session.get(type(user), user.id)).disabled_at = now
    async with database.transaction() as session:
        assert await accounts.find_session(session, secret, now=now) is None
