"""Create, find and revoke organiser tokens. Only hashes are stored; the secret is shown once."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import new_id
from server.auth.models import ApiToken
from server.db import utcnow
from server.errors import NotFound

__all__ = [
    "TOKEN_PREFIX",
    "create_token",
    "find_active_token",
    "hash_secret",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "tsr_"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret (tokens carry 256 random bits: no slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    session: AsyncSession, name: str, *, read_only: bool = False
) -> tuple[ApiToken, str]:
    """A new token row and its secret (returned once, never stored)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(id=new_id(), name=name, token_hash=hash_secret(secret), read_only=read_only)
    session.add(token)
    await session.flush()
    return token, secret


async def find_active_token(session: AsyncSession, secret: str) -> ApiToken | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return await session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_secret(secret), ApiToken.revoked_at.is_(None)
        )
    )


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.created_at)))


async def revoke_token(session: AsyncSession, token_id_or_name: str) -> int:
    """Revoke by id, or every active token of that name; returns how many were revoked."""
    result = await session.execute(
        update(ApiToken)
        .where(
            (ApiToken.id == token_id_or_name) | (ApiToken.name == token_id_or_name),
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound("token", token_id_or_name)
    return result.rowcount
