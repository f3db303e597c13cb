"""Ticket tokens: the compact JWS (Ed25519) carried by a ticket's QR code (ARCHITECTURE §4).

A token is ``b64url(header) . b64url(payload) . b64url(signature)`` with the header exactly
``{"alg":"EdDSA","kid":...}`` and a payload holding only ``jti``, ``evt``, ``ver`` and, when set,
``nbf``/``exp``. Any standard JOSE library verifies it from the public JWK alone.

Verification is a total function: every input yields claims or a `Reason`, never an exception.
The order of checks is the specification: structure → alg → kid → signature → claims shape →
event → time → version. The payload is parsed only once its signature holds, so forged bytes
never reach the JSON decoder beyond the small header; the one exception is
`unverified_ticket_id`, which a verifier holding the issued tokens (the hub) uses to find the
token to compare against, and whose answer is never trusted.

The signature step has one shortcut: a verifier that holds the token the issuer recorded for the
ticket passes it as `issued`, and a token identical to it byte for byte has its signature taken as
proven (the issuer made it with that key) instead of computed again; kid, claims, event, time and
version are still checked. Any other token, an older version of the same ticket included, is
verified in full. An Ed25519 verification was a third of the hub's CPU per online scan
(docs/decisions/0020-issued-token-identity.md).

Strictness, decided here (a verifier that accepts less has less to get wrong):

- base64url must be unpadded and canonical, so one ticket has exactly one token string;
- the header may hold only ``alg`` and ``kid`` (``typ``, ``crit``, ``jwk``... make it invalid);
- the payload may hold only the five claims above; an unknown claim could be a restriction this
  verifier cannot enforce, so it is invalid rather than ignored;
- ``ver`` greater than the version the verifier knows is invalid, not accepted: the issuer never
  signs a version it has not recorded, so such a token is forged-by-key-leak or from another
  database, and a scanner with stale data learns the new version at its next sync.
"""

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol.ids import new_id
from protocol.reasons import Reason
from protocol.rules import version_refusal

__all__ = [
    "TicketClaims",
    "load_public_jwk",
    "new_key_id",
    "public_jwk",
    "sign_ticket_token",
    "unverified_ticket_id",
    "verify_ticket_token",
]

# A real token is ~206 characters; anything far longer is refused before any decoding.
_MAX_TOKEN_LENGTH = 1024
_KEY_ID_LENGTH = 8
_SIGNATURE_LENGTH = 64
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


class TicketClaims(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a ticket token asserts: ticket id, event id, ticket version, optional validity window.

    ``nbf`` and ``exp`` are unix seconds; ``None`` leaves them out of the token.
    """

    jti: str
    evt: str
    ver: int
    nbf: int | None = None
    exp: int | None = None


class _Header(msgspec.Struct, forbid_unknown_fields=True):
    alg: str
    kid: str


_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# Integers are bounded to int64 so every JOSE implementation reads them alike.
_Version = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
_Seconds = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    # UNSET rather than None: an explicit `"exp": null` is ill-typed, not absent.
    jti: _Text
    evt: _Text
    ver: _Version
    nbf: _Seconds | msgspec.UnsetType = msgspec.UNSET
    exp: _Seconds | msgspec.UnsetType = msgspec.UNSET


_header_decoder = msgspec.json.Decoder(_Header)
_payload_decoder = msgspec.json.Decoder(_Payload)
_encoder = msgspec.json.Encoder()


def new_key_id() -> str:
    """A fresh signing key id: 8 Crockford base32 characters."""
    return new_id(_KEY_ID_LENGTH)


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(segment: bytes) -> bytes | None:
    """Strict unpadded base64url, or None; non-canonical trailing bits are refused."""
    if len(segment) % 4 == 1 or _B64URL.fullmatch(segment) is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == segment else None


@lru_cache(maxsize=64)
def _header_segment(kid: str) -> bytes:
    # A handful of kids ever sign, so the header segment is built once per kid.
    return _b64encode(_encoder.encode({"alg": "EdDSA", "kid": kid}))


def sign_ticket_token(claims: TicketClaims, private_key: Ed25519PrivateKey, kid: str) -> str:
    """Sign `claims` into a compact JWS with header ``{"alg":"EdDSA","kid":kid}``.

    Raises ValueError for claims the verifier would refuse (empty ids, ``ver`` < 1).
    """
    if not claims.jti or not claims.evt or claims.ver < 1 or not kid:
        raise ValueError("a ticket token needs jti, evt, kid and ver >= 1")
    signing_input = _header_segment(kid) + b"." + _b64encode(_encoder.encode(claims))
    signature = private_key.sign(signing_input)
    return (signing_input + b"." + _b64encode(signature)).decode("ascii")


def _as_ascii(token: object) -> bytes | None:
    if isinstance(token, str):
        if len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            return None
        return token.encode("ascii")
    if isinstance(token, bytes) and len(token) <= _MAX_TOKEN_LENGTH:
        return token
    return None


def unverified_ticket_id(token: object) -> str | None:
    """The `jti` a token's payload names, read without checking its signature, or None.

    Only to look up the ticket whose issued token `verify_ticket_token(issued=...)` compares
    against; never an answer about the token. The payload is at most ~760 bytes (the token's
    length is bounded first) and goes through the same strict decoder as a verified one.
    """
    data = _as_ascii(token)
    if data is None:
        return None
    parts = data.split(b".")
    payload = _b64decode(parts[1]) if len(parts) == 3 else None
    if payload is None:
        return None
    try:
        return _payload_decoder.decode(payload).jti
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def _signed_payload(
    token: object, keys: Mapping[str, Ed25519PublicKey], issued: bytes | None
) -> bytes | None:
    """The payload bytes of a token whose structure, alg, kid and signature hold, else None.

    A token equal to `issued` (compared in constant time) has its signature taken as proven."""
    data = _as_ascii(token)
    if data is None:
        return None
    parts = data.split(b".")
    if len(parts) != 3:
        return None
    header_segment, payload_segment, signature_segment = parts
    header_bytes = _b64decode(header_segment)
    payload = _b64decode(payload_segment)
    signature = _b64decode(signature_segment)
    if header_bytes is None or payload is None or signature is None:
        return None
    try:
        header = _header_decoder.decode(header_bytes)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if header.alg != "EdDSA":
        return None
    key = keys.get(header.kid)
    if key is None or len(signature) != _SIGNATURE_LENGTH:
        return None
    if issued is not None and hmac.compare_digest(data, issued):
        return payload
    try:
        key.verify(signature, header_segment + b"." + payload_segment)
    except InvalidSignature:
        return None
    return payload


def verify_ticket_token(
    token: str | bytes,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    event_id: str,
    now: float,
    current_version: int | None = None,
    leeway: int = 0,
    issued: str | None = None,
) -> TicketClaims | Reason:
    """The claims of a valid token for `event_id` at `now` (unix seconds), else the reason it fails.

    `keys` maps kid to the usable (non-retired) public keys. Never raises. Reasons, checked in
    this order: ``invalid`` (unreadable, forged, unknown kid, bad claims, or ``ver`` above
    `current_version`), ``wrong_event``, ``not_yet_valid`` (now < nbf - leeway), ``expired``
    (now >= exp + leeway), ``revoked`` (``ver`` below `current_version`: superseded).

    `issued`: the token the issuer recorded for the ticket this token names, when the caller
    holds it (found with `unverified_ticket_id`); a token identical to it skips the signature
    computation, and only that (module docstring).
    """
    known = issued.encode("ascii") if issued is not None and issued.isascii() else None
    payload = _signed_payload(token, keys, known)
    if payload is None:
        return Reason.INVALID
    try:
        body = _payload_decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return Reason.INVALID
    nbf = None if body.nbf is msgspec.UNSET else body.nbf
    exp = None if body.exp is msgspec.UNSET else body.exp
    if body.evt != event_id:
        return Reason.WRONG_EVENT
    if nbf is not None and now < nbf - leeway:
        return Reason.NOT_YET_VALID
    if exp is not None and now >= exp + leeway:
        return Reason.EXPIRED
    if current_version is not None and (refusal := version_refusal(body.ver, current_version)):
        return refusal
    return TicketClaims(jti=body.jti, evt=body.evt, ver=body.ver, nbf=nbf, exp=exp)


def public_jwk(kid: str, public_key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 JWK of an Ed25519 public key, as published in the JWKS and the snapshot."""
    raw = public_key.public_bytes_raw()
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64encode(raw).decode("ascii"),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }


def load_public_jwk(jwk: Mapping[str, Any]) -> tuple[str, Ed25519PublicKey]:
    """The ``(kid, key)`` of an Ed25519 public JWK.

    Raises ValueError for anything else: another key type or curve, a missing kid, an ``alg``
    other than EdDSA, a ``use`` other than sig, a malformed ``x``, or private material (``d``).
    """
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 (OKP) key")
    if "d" in jwk:
        raise ValueError("a private key does not belong in a public key set")
    if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
        raise ValueError("key is not for EdDSA signatures")
    kid, x = jwk.get("kid"), jwk.get("x")
    if not isinstance(kid, str) or not kid:
        raise ValueError("key has no kid")
    raw = _b64decode(x.encode("ascii")) if isinstance(x, str) and x.isascii() else None
    if raw is None or len(raw) != 32:
        raise ValueError("key has no valid x coordinate")
    return kid, Ed25519PublicKey.from_public_bytes(raw)
