"""`GET /.well-known/jwks.json`: the public keys that verify ticket tokens (active keys only)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State

__all__ = ["JWKS_MAX_AGE", "jwks"]

# Short, so that a retired key leaves verifiers' caches within a minute; a rotated key is
# published before it signs anything a guest could hold for longer than that.
JWKS_MAX_AGE = 60


@get(
    "/.well-known/jwks.json",
    tags=["keys"],
    summary="Public signing keys (JWKS, RFC 7517): Ed25519, EdDSA",
    media_type="application/jwk-set+json",
)
async def jwks(state: State) -> Response[dict[str, Any]]:
    """Every non-retired key; any JOSE library verifies a ticket token from this document alone."""
    # A read-only transaction: this public GET never takes SQLite's write lock.
    async with state.database.transaction(read_only=True) as session:
        keys = await state.keyring.keys(session)
    return Response(
        {"keys": keys.jwks},
        media_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )
