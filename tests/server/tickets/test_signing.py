"""Tickets signed in a child process are the tokens the door verifies, as signed inline."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.ids import new_id
from protocol.reasons import Reason
from protocol.token import TicketClaims, verify_ticket_token
from server.errors import InvalidState
from server.tickets.signing import PARALLEL_FROM, token_signer


@pytest.mark.parametrize("tickets", [3, PARALLEL_FROM], ids=["inline", "child-process"])
async def test_tokens_verify_with_the_event_and_id_they_were_signed_for(tickets: int) -> None:
    key = Ed25519PrivateKey.generate()
    ids = [new_id() for _ in range(5)]
    async with token_signer(key, "k1", tickets) as signer:
        assert signer.parallel == (tickets >= PARALLEL_FROM)
        first, second = await signer.sign("EVT0000001", ids), await signer.sign("EVT0000002", ids)
    for event_id, tokens in (("EVT0000001", first), ("EVT0000002", second)):
        for ticket_id, token in zip(ids, tokens, strict=True):
            keys = {"k1": key.public_key()}
            claims = verify_ticket_token(token, keys, event_id=event_id, now=time.time())
            assert isinstance(claims, TicketClaims)
            assert (claims.jti, claims.evt, claims.ver) == (ticket_id, event_id, 1)
            other = verify_ticket_token(token, keys, event_id="EVT0000009", now=time.time())
            assert other == Reason.WRONG_EVENT


async def test_no_key_is_refused_before_any_process_starts() -> None:
    with pytest.raises(InvalidState, match="no signing key"):
        async with token_signer(None, None, PARALLEL_FROM):
            pass
