"""Organiser tokens: hashed at rest, 401 without a valid one, 403 for read-only changes."""

import pytest
from sqlalchemy import select

from server.auth.models import ApiToken
from server.auth.service import create_token, revoke_token
from server.db import Database
from tests.conftest import problem_of
from tests.factories import event_body


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer tsr_unknown", "Basic dXNlcjpwYXNz", "bearer " + "x" * 5000],
)
async def test_missing_or_unknown_tokens_get_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/api/v1/events", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert problem_of(response)["code"] == "unauthenticated"


async def test_read_only_token_reads_but_gets_403_on_any_change(client, read_only_token):
    client.headers["Authorization"] = f"Bearer {read_only_token}"
    assert (await client.get("/api/v1/events")).status_code == 200
    response = await client.post("/api/v1/events", json=event_body())
    assert response.status_code == 403
    assert problem_of(response)["code"] == "forbidden"
    assert (await client.get("/api/v1/events")).json()["total"] == 0


async def test_only_the_hash_of_a_token_is_stored(settings):
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            _, secret = await create_token(session, "ci")
        async with database.transaction() as session:
            stored = await session.scalar(select(ApiToken).where(ApiToken.name == "ci"))
    finally:
        await database.dispose()
    assert secret.startswith("tsr_") and len(secret) > 40
    assert secret not in stored.token_hash and len(stored.token_hash) == 64


async def test_a_revoked_token_is_refused(client, settings, organiser_token):
    client.headers["Authorization"] = f"Bearer {organiser_token}"
    assert (await client.get("/api/v1/events")).status_code == 200
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            await revoke_token(session, "tests")
    finally:
        await database.dispose()
    assert (await client.get("/api/v1/events")).status_code == 401
