"""`TicketIssuer`: what issuing a ticket needs from outside, the signing key and the public base
of guest links. Apart from the tickets service so that the HTTP edge can hand one to every
request (`server.http.Issuer`) without importing the service."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.ids import TICKET_ID_LENGTH, new_id
from protocol.token import TicketClaims, sign_ticket_token
from server.errors import InvalidState
from server.keys.service import KeySet

__all__ = ["TicketIssuer"]


@dataclass(frozen=True)
class TicketIssuer:
    """The current signing key (loaded once per key-ring reload, not per ticket) and base URL."""

    keys: KeySet
    base_url: str

    def sign(self, ticket_id: str, event_id: str, version: int) -> str:
        if self.keys.signing_key is None or self.keys.signing_kid is None:
            raise InvalidState("no signing key: run `tessera keys rotate`")
        claims = TicketClaims(jti=ticket_id, evt=event_id, ver=version)
        return sign_ticket_token(claims, self.keys.signing_key, self.keys.signing_kid)

    def sign_new(self, event_id: str, count: int) -> list[tuple[str, str]]:
        """Fresh ids and version-1 tokens for `count` new tickets of the event, in order."""
        # One draw from the system's random source for them all (a draw costs a system call;
        # every character is independent, so slices of one long id are as good as many ids).
        drawn = new_id(TICKET_ID_LENGTH * count)
        fresh = [drawn[i : i + TICKET_ID_LENGTH] for i in range(0, len(drawn), TICKET_ID_LENGTH)]
        return [(ticket_id, self.sign(ticket_id, event_id, 1)) for ticket_id in fresh]

    def link_url(self, link: str) -> str:
        return f"{self.base_url}/t/{link}"
