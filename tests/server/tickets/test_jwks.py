"""`GET /.well-known/jwks.json`: any JOSE library verifies a ticket from the JWKS alone."""

from __future__ import annotations

import jwt

from server.db import Database
from server.keys.service import Keystore, retire_key, rotate_key
from tests.factories import confirmed_booking


async def test_pyjwt_verifies_a_ticket_token_from_the_jwks_fetched_over_http(api, client):
    booking = await confirmed_booking(api)
    token = booking["tickets"][0]["token"]

    response = await client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    assert response.headers["cache-control"] == "public, max-age=60"
    jwk_set = jwt.PyJWKSet.from_dict(response.json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwk_set.keys if k.key_id == kid)
    claims = jwt.decode(token, key=key, algorithms=["EdDSA"])
    assert claims == {"jti": booking["tickets"][0]["id"], "evt": booking["event_id"], "ver": 1}


async def test_jwks_publishes_only_public_ed25519_keys(client):
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (keys[0]["kty"], keys[0]["crv"], keys[0]["alg"], keys[0]["use"]) == (
        "OKP",
        "Ed25519",
        "EdDSA",
        "sig",
    )


async def test_rotated_key_joins_and_retired_key_leaves_the_jwks(app, client, settings):
    first = (await client.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
    database = Database(settings.database_url)
    keystore = Keystore(settings.keys_path)
    try:
        async with database.transaction() as session:
            second = (await rotate_key(session, keystore)).kid
        app.state.keyring.invalidate()
        kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
        assert kids == {first, second}

        async with database.transaction() as session:
            await retire_key(session, keystore, first)
        app.state.keyring.invalidate()
        kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
        assert kids == {second}
    finally:
        await database.dispose()
