"""`attempt`, the one way a console form runs a service change: in a savepoint, so a refusal
leaves nothing behind and the request's transaction goes on; the refusal comes back as what the
form shows (422 with errors by field, 409 with a problem, or on a named field); errors the page
handles itself, and a missing resource, pass through as they are."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.console import accounts
from server.console.forms import Refused, attempt
from server.console.models import ConsoleUser
from server.db import Database
from server.errors import BodyInvalid, Conflict, FieldError, InvalidState, NotFound


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def _users(session) -> int:
    return int(await session.scalar(select(func.count()).select_from(ConsoleUser)) or 0)


async def _refused_after_a_write(session, error: Exception, **options):
    async def change():
        await accounts.create_user(session, email="x@example.org", name="X", role="admin")
        raise error

    with pytest.raises(Exception) as caught:
        await attempt(session, change, **options)
    return caught.value


async def test_a_change_that_succeeds_returns_its_result_and_keeps_its_writes(settings):
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            user = await attempt(
                session,
                lambda: accounts.create_user(
                    session, email="a@example.org", name="A", role="admin"
                ),
            )
            assert user.email == "a@example.org" and await _users(session) == 1
    finally:
        await database.dispose()


async def test_a_refusal_leaves_nothing_behind_and_says_what_the_form_shows(settings):
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            bad = await _refused_after_a_write(session, BodyInvalid([FieldError("name", "empty")]))
            assert isinstance(bad, Refused)
            assert (bad.status, bad.errors, bad.problem) == (
                422,
                [{"field": "name", "message": "empty"}],
                None,
            )
            taken = await _refused_after_a_write(session, Conflict("taken", id="E1"))
            assert (taken.status, taken.errors, taken.problem) == (409, [], "taken")
            assert taken.extra == {"id": "E1"}
            on_field = await _refused_after_a_write(
                session, InvalidState("below 3 confirmed"), field="capacity"
            )
            assert (on_field.status, on_field.problem) == (409, None)
            assert on_field.errors == [{"field": "capacity", "message": "below 3 confirmed"}]
            assert await _users(session) == 0  # each savepoint rolled its user back
            await accounts.create_user(session, email="b@example.org", name="B", role="admin")
            assert await _users(session) == 1  # and the transaction goes on
    finally:
        await database.dispose()


async def test_errors_the_page_handles_itself_and_not_found_pass_through(settings):
    class Mine(Conflict):
        pass

    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            mine = await _refused_after_a_write(session, Mine("its own page"), own=(Mine,))
            assert type(mine) is Mine
            missing = await _refused_after_a_write(session, NotFound("event", "E9"))
            assert type(missing) is NotFound
            assert await _users(session) == 0
    finally:
        await database.dispose()
