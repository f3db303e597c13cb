"""Signing many new tickets in a child process while this one writes them (bulk confirmation).

Why: an Ed25519 signature costs ~50 µs of CPU here and holds the interpreter lock, so 100,000
tickets are 5 s of one core spent signing, with the other core idle. A thread does not help
(the signing and the row building then queue on the lock, measured ~30 % slower); a process
signs chunk n + 1 while this one inserts chunk n.

Rules:
  - Only for a batch of at least `PARALLEL_FROM` tickets: starting the child (a fresh
    interpreter, `spawn`, so nothing of this process's state is inherited) costs ~0.3 s.
  - The child gets the raw signing key once, through the pool's initializer (a pipe between
    two processes of the same user: the key never touches the disk), and signs exactly what
    `TicketIssuer.sign` signs, with the same function.
  - The pool lives for one batch; leaving the context ends the child, also on an error.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from protocol.token import TicketClaims, sign_ticket_token
from server.errors import InvalidState

__all__ = ["PARALLEL_FROM", "TokenSigner", "token_signer"]

PARALLEL_FROM = 5_000

_child_key: Ed25519PrivateKey | None = None
_child_kid: str | None = None


def _start_child(raw_key: bytes, kid: str) -> None:
    global _child_key, _child_kid
    _child_key = Ed25519PrivateKey.from_private_bytes(raw_key)
    _child_kid = kid


def _sign_in_child(event_id: str, ticket_ids: Sequence[str]) -> list[str]:
    assert _child_key is not None and _child_kid is not None
    return [_sign(_child_key, _child_kid, event_id, ticket_id) for ticket_id in ticket_ids]


def _sign(key: Ed25519PrivateKey, kid: str, event_id: str, ticket_id: str) -> str:
    return sign_ticket_token(TicketClaims(jti=ticket_id, evt=event_id, ver=1), key, kid)


class TokenSigner:
    """Signs version-1 tokens of new tickets: `sign(event_id, ids)` gives an awaitable of the
    tokens, in order; in a child process when there is one, else here, when awaited."""

    def __init__(self, key: Ed25519PrivateKey, kid: str, pool: ProcessPoolExecutor | None) -> None:
        self._key = key
        self._kid = kid
        self._pool = pool

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def sign(self, event_id: str, ticket_ids: Sequence[str]) -> Awaitable[list[str]]:
        if self._pool is not None:
            loop = asyncio.get_running_loop()
            return loop.run_in_executor(self._pool, _sign_in_child, event_id, list(ticket_ids))
        return self._inline(event_id, ticket_ids)

    async def _inline(self, event_id: str, ticket_ids: Sequence[str]) -> list[str]:
        return [_sign(self._key, self._kid, event_id, ticket_id) for ticket_id in ticket_ids]


@asynccontextmanager
async def token_signer(
    key: Ed25519PrivateKey | None, kid: str | None, tickets: int
) -> AsyncIterator[TokenSigner]:
    """A signer for a batch of `tickets` (see the module docstring for when it is parallel)."""
    if key is None or kid is None:
        raise InvalidState("no signing key: run `tessera keys rotate`")
    if tickets < PARALLEL_FROM:
        yield TokenSigner(key, kid, None)
        return
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_child,
        initargs=(raw, kid),
    )
    try:
        yield TokenSigner(key, kid, pool)
    finally:
        # In a thread: waiting for a chunk still being signed must not stall the event loop.
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
