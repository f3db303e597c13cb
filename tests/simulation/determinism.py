"""The server's own randomness, drawn from the run's seed while a run lasts.

Ids, ticket codes, pairing codes and tokens come from `secrets` in the server. They change no
decision, but they order rows (tickets by id, presence pairs by id) and so the shape of a trace;
for a seed to replay step for step they must be the same every time. Only `secrets`' draws are
replaced, for the length of one run; signing keys still come from the OS (an Ed25519 signature
is deterministic once the key is made, and its bytes change nothing the doors decide).
"""

from __future__ import annotations

import base64
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["seeded_secrets"]


@contextmanager
def seeded_secrets(seed: int) -> Iterator[None]:
    rng = random.Random(f"secrets-{seed}")
    saved = (secrets.token_bytes, secrets.token_urlsafe, secrets.token_hex, secrets.choice)

    def token_bytes(n: int | None = None) -> bytes:
        return rng.randbytes(32 if n is None else n)

    def token_urlsafe(n: int | None = None) -> str:
        return base64.urlsafe_b64encode(token_bytes(n)).rstrip(b"=").decode("ascii")

    def token_hex(n: int | None = None) -> str:
        return token_bytes(n).hex()

    secrets.token_bytes, secrets.token_urlsafe, secrets.token_hex = (
        token_bytes, token_urlsafe, token_hex,
    )  # fmt: skip
    secrets.choice = rng.choice  # type: ignore[assignment]
    try:
        yield
    finally:
        secrets.token_bytes, secrets.token_urlsafe, secrets.token_hex, secrets.choice = saved
