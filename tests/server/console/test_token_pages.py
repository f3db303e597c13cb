"""The API tokens page: a token made there is shown once and works on the API; revoked, it
stops working; only administrators make or revoke one."""

from __future__ import annotations

import re

from tests.server.console.helpers import make_user, sign_in

SECRET = re.compile(r"<code>(tsr_[A-Za-z0-9_-]+)</code>")


async def test_create_use_and_revoke_a_token(client, settings):
    await make_user(settings)
    csrf = await sign_in(client, settings)
    made = await client.post("/console/tokens", data={"csrf": csrf, "name": "import script"})
    assert made.status_code == 201
    [secret] = SECRET.findall(made.text)
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/events", headers=auth)).status_code == 200
    listing = await client.get("/console/tokens")
    assert secret not in listing.text and "import script" in listing.text
    [token_id] = re.findall(r'action="/console/tokens/([0-9A-Z]+)/revoke"', listing.text)
    revoked = await client.post(f"/console/tokens/{token_id}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/events", headers=auth)).status_code == 401
    again = await client.post(f"/console/tokens/{token_id}/revoke", data={"csrf": csrf})
    assert again.status_code == 303  # revoking twice changes nothing


async def test_a_read_only_token_from_the_console_is_read_only(client, settings):
    await make_user(settings)
    csrf = await sign_in(client, settings)
    made = await client.post(
        "/console/tokens", data={"csrf": csrf, "name": "report", "read_only": "1"}
    )
    [secret] = SECRET.findall(made.text)
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"name": "X", "starts_at": "2031-01-01T10:00:00+00:00", "timezone": "UTC"}
    assert (await client.post("/api/v1/events", json=body, headers=auth)).status_code == 403


async def test_editors_see_tokens_but_only_admins_change_them(client, settings):
    await make_user(settings, role="editor")
    csrf = await sign_in(client, settings)
    page = await client.get("/console/tokens")
    assert page.status_code == 200 and 'action="/console/tokens"' not in page.text
    assert (
        await client.post("/console/tokens", data={"csrf": csrf, "name": "x"})
    ).status_code == 403


async def test_garbage_token_forms(client, settings):
    await make_user(settings)
    csrf = await sign_in(client, settings)
    for name in ("", "   ", "a\x07b", "n" * 201):
        response = await client.post("/console/tokens", data={"csrf": csrf, "name": name})
        assert response.status_code == 422, name
        assert "tsr_" not in response.text
    for token_id in ("NOPE", "x" * 3000):
        response = await client.post(f"/console/tokens/{token_id}/revoke", data={"csrf": csrf})
        assert response.status_code == 404
    forged = await client.post("/console/tokens", data={"csrf": "f" * 64, "name": "x"})
    assert forged.status_code == 403
