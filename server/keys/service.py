"""Signing keys: generate, rotate, retire, and the per-instance key ring that signs and verifies.

Private keys are PEM files in the keystore directory (mode 0600, directory 0700), one per `kid`;
the `signing_key` table holds the public halves and which keys are retired, so every instance
sees a rotation or retirement within `KeyRing.ttl` seconds without a restart. The newest
non-retired key whose private file this instance can read is the one that signs.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.token import new_key_id, public_jwk
from server.changes.service import ChangeKind, append_changes
from server.db import utcnow
from server.errors import InvalidState, NotFound
from server.events.models import Event
from server.keys.models import SigningKey

__all__ = [
    "KeyRing",
    "KeySet",
    "Keystore",
    "ensure_signing_key",
    "list_keys",
    "retire_key",
    "rotate_key",
]


class Keystore:
    """The directory of private keys."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, kid: str) -> Path:
        return self.directory / f"{kid}.pem"

    def write(self, kid: str, private_key: Ed25519PrivateKey) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.path(kid)
        # O_EXCL: a key file is written once and never overwritten; 0600 from the first byte.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        return path

    def read(self, kid: str) -> Ed25519PrivateKey | None:
        try:
            pem = self.path(kid).read_bytes()
        except (FileNotFoundError, PermissionError):
            return None
        key = serialization.load_pem_private_key(pem, password=None)
        return key if isinstance(key, Ed25519PrivateKey) else None


def encode_public_key(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_public_key(text: str) -> Ed25519PublicKey:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


async def rotate_key(session: AsyncSession, keystore: Keystore) -> SigningKey:
    """Generate a key that signs from now on; older keys keep verifying until retired."""
    private_key = Ed25519PrivateKey.generate()
    kid = new_key_id()
    keystore.write(kid, private_key)
    row = SigningKey(kid=kid, public_key=encode_public_key(private_key.public_key()))
    session.add(row)
    await session.flush()
    await _announce_keys(session)
    return row


async def retire_key(session: AsyncSession, keystore: Keystore, kid: str) -> SigningKey:
    """Stop accepting `kid`: it leaves the JWKS and its tokens are refused.

    Refuses to retire the last key able to sign; rotate first.
    """
    row = await session.get(SigningKey, kid)
    if row is None:
        raise NotFound("signing key", kid)
    if row.retired_at is not None:
        return row
    others = [k for k in await list_keys(session) if k.kid != kid and k.retired_at is None]
    if not any(keystore.read(k.kid) for k in others):
        raise InvalidState("this is the last key able to sign: run `tessera keys rotate` first")
    await session.execute(
        update(SigningKey).where(SigningKey.kid == kid).values(retired_at=utcnow())
    )
    await session.refresh(row)
    await _announce_keys(session)
    return row


# Events that ended longer ago than this are not told of key changes: no door scans them.
ANNOUNCE_AFTER_END = timedelta(days=2)


async def _announce_keys(session: AsyncSession) -> None:
    """Append `keys.changed` with the usable keys to every current or coming event's log, so
    doors verifying offline learn of a rotation or retirement without a new snapshot."""
    usable = [k for k in await list_keys(session) if k.retired_at is None]
    payload = {"keys": [public_jwk(k.kid, decode_public_key(k.public_key)) for k in usable]}
    since = utcnow() - ANNOUNCE_AFTER_END
    ends = func.coalesce(Event.ends_at, Event.starts_at)
    for event_id in await session.scalars(select(Event.id).where(ends >= since)):
        await append_changes(session, event_id, [(ChangeKind.KEYS_CHANGED, payload)])


async def list_keys(session: AsyncSession) -> list[SigningKey]:
    return list(await session.scalars(select(SigningKey).order_by(SigningKey.created_at)))


async def ensure_signing_key(session: AsyncSession, keystore: Keystore) -> SigningKey:
    """The current signing key, generating the first one (or a new one if none is readable)."""
    for row in reversed(await list_keys(session)):
        if row.retired_at is None and keystore.read(row.kid) is not None:
            return row
    return await rotate_key(session, keystore)


@dataclass(frozen=True)
class KeySet:
    """What one instance signs and verifies with, as loaded at `loaded_at` (monotonic)."""

    signing_kid: str | None
    signing_key: Ed25519PrivateKey | None
    verifying: dict[str, Ed25519PublicKey]
    jwks: list[dict[str, str]]
    loaded_at: float


@dataclass
class KeyRing:
    keystore: Keystore
    ttl: float = 1.0
    _current: KeySet | None = None
    _private: dict[str, Ed25519PrivateKey | None] = field(default_factory=dict)

    async def keys(self, session: AsyncSession) -> KeySet:
        """The key set, reloaded from the database when older than `ttl` seconds."""
        now = time.monotonic()
        if self._current is None or now - self._current.loaded_at > self.ttl:
            self._current = await self._load(session, now)
        return self._current

    def invalidate(self) -> None:
        self._current = None

    async def _load(self, session: AsyncSession, now: float) -> KeySet:
        active = [k for k in await list_keys(session) if k.retired_at is None]
        verifying = {k.kid: decode_public_key(k.public_key) for k in active}
        signing_kid, signing_key = None, None
        for row in reversed(active):
            if row.kid not in self._private:
                self._private[row.kid] = self.keystore.read(row.kid)
            if self._private[row.kid] is not None:
                signing_kid, signing_key = row.kid, self._private[row.kid]
                break
        jwks = [public_jwk(kid, key) for kid, key in verifying.items()]
        return KeySet(signing_kid, signing_key, verifying, jwks, now)
