"""Ids, tokens and links of new tickets drawn many at a time (one random draw per batch)
look exactly like those drawn one by one."""

from __future__ import annotations

import re
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.ids import ALPHABET, TICKET_ID_LENGTH
from protocol.token import verify_ticket_token
from server.keys.service import KeySet
from server.tickets.issuer import TicketIssuer
from server.tickets.service import new_link, new_links


def test_links_drawn_together_are_distinct_and_shaped_like_one_link():
    links = new_links(500)
    assert len(set(links)) == 500
    shape = re.compile(r"^[A-Za-z0-9_-]{32}$")
    assert all(shape.match(link) for link in [*links, new_link()])


def test_sign_new_gives_distinct_ids_and_tokens_that_verify_as_version_1():
    key = Ed25519PrivateKey.generate()
    keys = KeySet("k1", key, {"k1": key.public_key()}, [], 0.0)
    signed = TicketIssuer(keys, "https://t.example").sign_new("EVT", 200)
    ids = [ticket_id for ticket_id, _ in signed]
    assert len(set(ids)) == 200
    assert all(len(i) == TICKET_ID_LENGTH and set(i) <= set(ALPHABET) for i in ids)
    ticket_id, token = signed[17]
    claims = verify_ticket_token(token, {"k1": key.public_key()}, event_id="EVT", now=time.time())
    assert claims.jti == ticket_id and claims.ver == 1
