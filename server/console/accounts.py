"""Console users, one-time sign-in links, passwords and sessions (no HTTP here).

Rules:
- An address is one user whatever its case (`email_key`); a disabled user signs in nowhere and
  its sessions stop working at once.
- A sign-in link's token is stored hashed, works once (`consume_link` marks it used in the same
  UPDATE that checks it, so two tabs cannot both win) and never after LINK_LIFETIME.
- A session's token is stored hashed; a session lasts SESSION_LIFETIME from its sign-in.
  Signing out deletes the row; signing out everywhere deletes every row of the user.
- `check_password` spends the same argon2 work whether or not the address exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.ids import new_id
from server.console.models import ConsoleSession, ConsoleUser, SignInLink
from server.errors import BodyInvalid, Conflict, FieldError
from server.schemas import check_email

__all__ = [
    "LINK_LIFETIME",
    "MAX_PASSWORD",
    "SESSION_LIFETIME",
    "Account",
    "Role",
    "SignedIn",
    "check_password",
    "consume_link",
    "create_link",
    "create_session",
    "create_user",
    "csrf_token",
    "email_key",
    "end_all_sessions",
    "end_session",
    "ensure_user",
    "find_session",
    "find_user_by_email",
    "list_users",
    "set_disabled",
    "set_language",
]

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 would hash more, but nobody types it: refuse it before the work
LINK_PREFIX = "tsl_"
SESSION_PREFIX = "tss_"

_hasher = PasswordHasher()
# Verified against when the address has no user (or no password), so both take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    ADMIN = "admin"  # everything, and the API tokens
    EDITOR = "editor"  # events, ticket types, lists
    READ_ONLY = "read_only"  # sees, changes nothing

    @property
    def can_edit(self) -> bool:
        return self is not Role.READ_ONLY


@dataclass(frozen=True)
class Account:
    """A user as a page shows it: plain values, still readable after the request's
    transaction rolled back."""

    id: str
    email: str
    name: str
    role: str
    language: str | None


@dataclass(frozen=True)
class SignedIn:
    """The user behind a request's session cookie."""

    user: Account
    session_id: str
    csrf: str  # the hidden field every form of this session carries

    @property
    def role(self) -> Role:
        return Role(self.user.role)


def email_key(email: str) -> str:
    return email.strip().lower()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The session's CSRF token, derived from its secret: nothing more to store, and it changes
    with every sign-in."""
    return hmac.new(session_secret.encode(), b"tessera-console-csrf", "sha256").hexdigest()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
) -> ConsoleUser:
    """A new user; raises BodyInvalid naming each bad field, Conflict for a taken address."""
    errors = _user_errors(email, name, role, password)
    if errors:
        raise BodyInvalid(errors)
    key = email_key(email)
    existing = await session.scalar(select(ConsoleUser.id).where(ConsoleUser.email_key == key))
    if existing is not None:
        raise Conflict(f"a user with the address {email.strip()!r} exists", id=existing)
    user = ConsoleUser(
        id=new_id(),
        email=email.strip(),
        email_key=key,
        name=name.strip(),
        role=role,
        password_hash=None if password is None else _hasher.hash(password),
    )
    session.add(user)
    await session.flush()
    return user


def _user_errors(email: str, name: str, role: str, password: str | None) -> list[FieldError]:
    errors = []
    try:
        if len(email) > 320:
            raise ValueError("is longer than 320 characters")
        check_email(email.strip())
    except ValueError as exc:
        errors.append(FieldError("email", str(exc)))
    if not name.strip() or len(name) > 200 or not name.isprintable():
        errors.append(FieldError("name", "must be 1 to 200 printable characters"))
    if role not in set(Role):
        errors.append(FieldError("role", f"must be one of {', '.join(Role)}"))
    if password is not None and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        errors.append(
            FieldError("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        )
    return errors


async def find_user_by_email(session: AsyncSession, email: str) -> ConsoleUser | None:
    """The enabled user of `email` (any case), or None."""
    if len(email) > 320 or "\x00" in email:
        return None
    return await session.scalar(
        select(ConsoleUser).where(
            ConsoleUser.email_key == email_key(email), ConsoleUser.disabled_at.is_(None)
        )
    )


async def list_users(session: AsyncSession) -> list[ConsoleUser]:
    return list(await session.scalars(select(ConsoleUser).order_by(ConsoleUser.created_at)))


async def create_link(session: AsyncSession, user: ConsoleUser, *, now: datetime) -> str:
    """A new one-time sign-in token of `user` (returned once; only its hash is kept)."""
    secret = LINK_PREFIX + secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            id=new_id(),
            user_id=user.id,
            token_hash=_hash(secret),
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    await session.flush()
    return secret


async def consume_link(session: AsyncSession, secret: str, *, now: datetime) -> ConsoleUser | None:
    """The user a valid, unused, unexpired link signs in, marking it used; else None."""
    if not secret.startswith(LINK_PREFIX) or len(secret) > 200:
        return None
    used = await session.execute(
        update(SignInLink)
        .where(
            SignInLink.token_hash == _hash(secret),
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(SignInLink.user_id)
    )
    user_id = used.scalar_one_or_none()
    if user_id is None:
        return None
    return await session.scalar(
        select(ConsoleUser).where(ConsoleUser.id == user_id, ConsoleUser.disabled_at.is_(None))
    )


async def check_password(session: AsyncSession, email: str, password: str) -> ConsoleUser | None:
    """The enabled user whose password this is, or None (same work for an unknown address)."""
    user = await find_user_by_email(session, email)
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    return user if stored is not None else None


async def create_session(
    session: AsyncSession, user: ConsoleUser, *, now: datetime
) -> tuple[str, str]:
    """A new session of `user`: (its cookie secret, its CSRF token)."""
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id=new_id(),
            user_id=user.id,
            token_hash=_hash(secret),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    await session.flush()
    return secret, csrf_token(secret)


async def find_session(session: AsyncSession, secret: str, *, now: datetime) -> SignedIn | None:
    """The enabled user of a live session, or None for anything else (expired, ended, garbage)."""
    if not secret.startswith(SESSION_PREFIX) or len(secret) > 200:
        return None
    row = (
        await session.execute(
            select(ConsoleSession.id, ConsoleUser)
            .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
            .where(
                ConsoleSession.token_hash == _hash(secret),
                ConsoleSession.expires_at > now,
                ConsoleUser.disabled_at.is_(None),
            )
        )
    ).first()
    if row is None:
        return None
    user = row[1]
    account = Account(user.id, user.email, user.name, user.role, user.language)
    return SignedIn(user=account, session_id=row[0], csrf=csrf_token(secret))


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


async def end_all_sessions(session: AsyncSession, user_id: str) -> int:
    """Sign `user_id` out everywhere; returns how many sessions ended."""
    result = await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))
    return int(result.rowcount or 0)


async def set_disabled(
    session: AsyncSession, email: str, *, disabled: bool, now: datetime
) -> ConsoleUser | None:
    """Disable (or enable again) the user of `email`, whatever its case; None if none has it.

    Disabling ends the user's sessions and voids its unused sign-in links in the same
    transaction (find_session and consume_link refuse a disabled user anyway), so enabling it
    again revives neither: the user signs in anew. Both are idempotent."""
    user = await session.scalar(
        select(ConsoleUser).where(ConsoleUser.email_key == email_key(email))
    )
    if user is None:
        return None
    if not disabled:
        user.disabled_at = None
    else:
        user.disabled_at = user.disabled_at or now
        await end_all_sessions(session, user.id)
        await session.execute(
            delete(SignInLink).where(SignInLink.user_id == user.id, SignInLink.used_at.is_(None))
        )
    await session.flush()
    return user


async def set_language(session: AsyncSession, user_id: str, language: str | None) -> None:
    await session.execute(
        update(ConsoleUser).where(ConsoleUser.id == user_id).values(language=language)
    )


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ConsoleUser)) or 0)


async def ensure_user(session: AsyncSession, *, email: str, name: str, role: str) -> ConsoleUser:
    """The enabled user of `email`, created with `name` and `role` when missing (the demo)."""
    user = await find_user_by_email(session, email)
    return (
        user if user is not None else await create_user(session, email=email, name=name, role=role)
    )
