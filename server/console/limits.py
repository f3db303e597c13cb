"""Sign-in budgets: per client address and per email address, in-process token buckets.

Every sign-in request (link wanted, link used, password tried) costs its client one token; a
link request or a password try also costs the address one, whether or not it belongs to a
user, so a 429 says nothing about who exists. Addresses are keyed by their hash: no address
sits in memory in clear for longer than the request.
"""

from __future__ import annotations

import hashlib
import time

from server.console.accounts import email_key
from server.ratelimit import TokenBuckets

__all__ = ["SignInLimits"]


class SignInLimits:
    def __init__(
        self,
        *,
        client_rate: float = 20 / 600,
        client_burst: int = 20,
        address_rate: float = 5 / 900,
        address_burst: int = 5,
    ) -> None:
        # A client: a burst of 20, then 20 per 10 minutes. An address: 5, then 5 per 15 min.
        self.clients = TokenBuckets(rate=client_rate, burst=client_burst)
        self.addresses = TokenBuckets(rate=address_rate, burst=address_burst)

    def take_client(self, client: str, now: float | None = None) -> int:
        """0 when `client` may try now, else the seconds to wait."""
        return self.clients.take(client, time.monotonic() if now is None else now)

    def take_address(self, address: str, now: float | None = None) -> int:
        key = hashlib.sha256(email_key(address).encode()).hexdigest()
        return self.addresses.take(key, time.monotonic() if now is None else now)
