"""Ticket tokens: round trips, interoperability with PyJWT, and every way a token must fail."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import jwt
import pytest
import segno
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

import protocol.token
from protocol.ids import ALPHABET, EVENT_ID_LENGTH, TICKET_ID_LENGTH, new_id
from protocol.reasons import Reason
from protocol.token import (
    TicketClaims,
    load_public_jwk,
    new_key_id,
    public_jwk,
    sign_ticket_token,
    unverified_ticket_id,
    verify_ticket_token,
)

PRIVATE_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = PRIVATE_KEY.public_key()
KID = "K1D0K1D0"
KEYS = {KID: PUBLIC_KEY}
EVENT = "EVT0000001"
NOW = 1_773_500_000.0


def claims(**overrides: object) -> TicketClaims:
    values: dict[str, object] = {"jti": "T" * TICKET_ID_LENGTH, "evt": EVENT, "ver": 1}
    values.update(overrides)
    return TicketClaims(**values)  # type: ignore[arg-type]


def token(**overrides: object) -> str:
    return sign_ticket_token(claims(**overrides), PRIVATE_KEY, KID)


def verify(tok: str | bytes, **overrides: object) -> TicketClaims | Reason:
    kwargs: dict[str, object] = {"event_id": EVENT, "now": NOW}
    kwargs.update(overrides)
    keys = kwargs.pop("keys", KEYS)
    return verify_ticket_token(tok, keys, **kwargs)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(tok: str) -> list[str]:
    return tok.split(".")


def forge_hs256(secret: bytes) -> str:
    """A token claiming HS256, MACed with `secret`: the classic key-confusion attack."""
    header = b64(json.dumps({"alg": "HS256", "kid": KID}).encode())
    payload = segments(token())[1]
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def with_header(header: dict[str, object]) -> str:
    """A token re-signed with the real key under another header."""
    head = b64(json.dumps(header, separators=(",", ":")).encode())
    payload = segments(token())[1]
    signature = PRIVATE_KEY.sign(f"{head}.{payload}".encode())
    return f"{head}.{payload}.{b64(signature)}"


def with_payload(payload: bytes) -> str:
    """A validly signed token around an arbitrary payload."""
    head = segments(token())[0]
    body = b64(payload)
    signature = PRIVATE_KEY.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64(signature)}"


def flip_char(segment: str, index: int) -> str:
    replacement = "A" if segment[index] != "A" else "B"
    return segment[:index] + replacement + segment[index + 1 :]


def test_signed_token_round_trips_to_its_claims() -> None:
    assert verify(token()) == claims()


def test_round_trip_keeps_nbf_and_exp() -> None:
    tok = token(nbf=int(NOW) - 10, exp=int(NOW) + 10)
    assert verify(tok) == claims(nbf=int(NOW) - 10, exp=int(NOW) + 10)


def test_bytes_token_verifies_like_str() -> None:
    assert verify(token().encode()) == claims()


def test_header_is_exactly_alg_and_kid_and_payload_omits_unset_claims() -> None:
    head, body, _ = segments(token())
    assert base64.urlsafe_b64decode(head + "==") == b'{"alg":"EdDSA","kid":"K1D0K1D0"}'
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {
        "jti": "T" * TICKET_ID_LENGTH,
        "evt": EVENT,
        "ver": 1,
    }
    assert "=" not in token()


def test_pyjwt_verifies_our_token_from_the_jwk_alone() -> None:
    jwk = json.loads(json.dumps(public_jwk(KID, PUBLIC_KEY)))
    key = jwt.PyJWK(jwk).key
    decoded = jwt.decode(token(exp=int(NOW) + 3600 * 24 * 365 * 20), key=key, algorithms=["EdDSA"])
    assert decoded["jti"] == "T" * TICKET_ID_LENGTH
    assert jwt.get_unverified_header(token()) == {"alg": "EdDSA", "kid": KID}


def test_pyjwt_signed_token_with_same_shape_verifies() -> None:
    tok = jwt.encode(
        {"jti": "T" * 16, "evt": EVENT, "ver": 2}, PRIVATE_KEY, "EdDSA", headers={"kid": KID}
    )
    # PyJWT adds `typ`, which our strict header refuses: only Tessera-shaped tokens pass.
    assert verify(tok) == Reason.INVALID


def test_signing_refuses_claims_the_verifier_would_refuse() -> None:
    for bad in (claims(ver=0), claims(jti=""), claims(evt="")):
        with pytest.raises(ValueError):
            sign_ticket_token(bad, PRIVATE_KEY, KID)
    with pytest.raises(ValueError):
        sign_ticket_token(claims(), PRIVATE_KEY, "")


def test_new_key_id_is_eight_crockford_characters() -> None:
    kid = new_key_id()
    assert len(kid) == 8
    assert set(kid) <= set(ALPHABET)


def _tamper_payload_byte() -> str:
    head, body, sig = segments(token())
    return f"{head}.{flip_char(body, 10)}.{sig}"


def _tamper_signature() -> str:
    head, body, sig = segments(token())
    return f"{head}.{body}.{flip_char(sig, 5)}"


def _tamper_signature_last_char() -> str:
    # The last character carries 4 padding bits: lenient decoders would accept a changed one.
    head, body, sig = segments(token())
    last = sig[-1]
    other = ALPHABET_B64[(ALPHABET_B64.index(last) ^ 1)]
    return f"{head}.{body}.{sig[:-1]}{other}"


ALPHABET_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _alg_none() -> str:
    head = b64(b'{"alg":"none","kid":"K1D0K1D0"}')
    return f"{head}.{segments(token())[1]}."


def _rs256() -> str:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        {"jti": "T" * 16, "evt": EVENT, "ver": 1}, rsa_key, "RS256", headers={"kid": KID}
    )


def _public_pem() -> bytes:
    return PUBLIC_KEY.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _other_key_same_kid() -> str:
    return sign_ticket_token(claims(), Ed25519PrivateKey.generate(), KID)


TAMPERED: list[tuple[str, Callable[[], str]]] = [
    ("changed-payload-byte", _tamper_payload_byte),
    ("changed-signature", _tamper_signature),
    ("changed-signature-padding-bits", _tamper_signature_last_char),
    ("alg-none-unsigned", _alg_none),
    ("hs256-public-key-raw-bytes", lambda: forge_hs256(PUBLIC_KEY.public_bytes_raw())),
    ("hs256-public-key-pem", lambda: forge_hs256(_public_pem())),
    ("rs256-header", _rs256),
    ("alg-lowercase", lambda: with_header({"alg": "eddsa", "kid": KID})),
    ("alg-ed25519", lambda: with_header({"alg": "Ed25519", "kid": KID})),
    ("crit-header", lambda: with_header({"alg": "EdDSA", "kid": KID, "crit": ["exp"]})),
    ("typ-header", lambda: with_header({"alg": "EdDSA", "kid": KID, "typ": "JWT"})),
    ("header-not-object", lambda: f"{b64(b'[1]')}.{segments(token())[1]}.AAAA"),
    ("header-not-json", lambda: f"{b64(b'{alg')}.{segments(token())[1]}.AAAA"),
    ("kid-not-string", lambda: with_header({"alg": "EdDSA", "kid": 1})),
    ("kid-missing", lambda: with_header({"alg": "EdDSA"})),
    ("unknown-kid", lambda: with_header({"alg": "EdDSA", "kid": "ZZZZZZZZ"})),
    ("other-key-same-kid", _other_key_same_kid),
    ("padded-base64", lambda: token().replace(".", "=.", 1)),
    ("standard-base64-alphabet", lambda: token().replace("-", "+").replace("_", "/") + "+"),
    ("two-parts", lambda: ".".join(segments(token())[:2])),
    ("four-parts", lambda: token() + ".AAAA"),
    ("trailing-garbage", lambda: token() + "garbage"),
    ("trailing-newline", lambda: token() + "\n"),
    ("leading-space", lambda: " " + token()),
    ("empty", lambda: ""),
    ("dots-only", lambda: ".."),
    ("too-long", lambda: token() + "." + "A" * 1024),
    ("payload-not-object", lambda: with_payload(b'["T","EVT0000001",1]')),
    ("payload-not-json", lambda: with_payload(b"jti=T")),
    ("payload-missing-ver", lambda: with_payload(b'{"jti":"T","evt":"EVT0000001"}')),
    ("payload-ver-string", lambda: with_payload(b'{"jti":"T","evt":"EVT0000001","ver":"1"}')),
    ("payload-ver-zero", lambda: with_payload(b'{"jti":"T","evt":"EVT0000001","ver":0}')),
    ("payload-ver-float", lambda: with_payload(b'{"jti":"T","evt":"EVT0000001","ver":1.0}')),
    ("payload-ver-bool", lambda: with_payload(b'{"jti":"T","evt":"EVT0000001","ver":true}')),
    ("payload-jti-number", lambda: with_payload(b'{"jti":1,"evt":"EVT0000001","ver":1}')),
    (
        "payload-exp-null",
        lambda: with_payload(b'{"jti":"T","evt":"EVT0000001","ver":1,"exp":null}'),
    ),
    (
        "payload-exp-huge",
        lambda: with_payload(
            b'{"jti":"T","evt":"EVT0000001","ver":1,"exp":1000000000000000000000000000000}'
        ),
    ),
    ("payload-extra-claim", lambda: with_payload(b'{"jti":"T","evt":"EVT0000001","ver":1,"x":1}')),
    ("non-ascii", lambda: token()[:-1] + "é"),
]


@pytest.mark.parametrize("make", [make for _, make in TAMPERED], ids=[i for i, _ in TAMPERED])
def test_tampered_or_foreign_token_is_invalid(make: Callable[[], str]) -> None:
    assert verify(make()) == Reason.INVALID


def test_retired_kid_missing_from_the_mapping_is_invalid() -> None:
    new_private = Ed25519PrivateKey.generate()
    tok = sign_ticket_token(claims(), new_private, "NEWKEY01")
    assert verify(tok, keys={"NEWKEY01": new_private.public_key()}) == claims()
    assert verify(token(), keys={"NEWKEY01": new_private.public_key()}) == Reason.INVALID


def test_token_for_another_event_is_wrong_event() -> None:
    assert verify(token(evt="EVT0000002")) == Reason.WRONG_EVENT


def test_wrong_event_is_only_reported_once_the_signature_holds() -> None:
    head, body, sig = segments(token(evt="EVT0000002"))
    assert verify(f"{head}.{body}.{flip_char(sig, 3)}") == Reason.INVALID


@pytest.mark.parametrize(
    ("overrides", "now", "leeway", "expected"),
    [
        pytest.param({"nbf": 1000}, 999.9, 0, Reason.NOT_YET_VALID, id="before-nbf"),
        pytest.param({"nbf": 1000}, 1000.0, 0, None, id="at-nbf"),
        pytest.param({"nbf": 1000}, 995.0, 5, None, id="before-nbf-within-leeway"),
        pytest.param({"exp": 2000}, 2000.0, 0, Reason.EXPIRED, id="at-exp"),
        pytest.param({"exp": 2000}, 1999.9, 0, None, id="just-before-exp"),
        pytest.param({"exp": 2000}, 2004.0, 5, None, id="after-exp-within-leeway"),
        pytest.param({"exp": 2000}, 2005.0, 5, Reason.EXPIRED, id="after-exp-beyond-leeway"),
        pytest.param({"nbf": 1000, "exp": 900}, 950.0, 0, Reason.NOT_YET_VALID, id="nbf-first"),
    ],
)
def test_validity_window_is_honoured(
    overrides: dict[str, int], now: float, leeway: int, expected: Reason | None
) -> None:
    result = verify(token(**overrides), now=now, leeway=leeway)
    assert result == (expected if expected is not None else claims(**overrides))


def test_time_is_checked_after_the_event() -> None:
    assert verify(token(evt="EVT0000002", exp=1), now=NOW) == Reason.WRONG_EVENT


@pytest.mark.parametrize(
    ("ver", "current", "expected"),
    [
        pytest.param(2, 3, Reason.REVOKED, id="superseded-version-is-revoked"),
        pytest.param(3, 3, None, id="current-version-is-valid"),
        pytest.param(4, 3, Reason.INVALID, id="version-above-current-is-invalid"),
        pytest.param(7, None, None, id="no-known-version-accepts-any"),
    ],
)
def test_version_is_checked_against_the_current_one(
    ver: int, current: int | None, expected: Reason | None
) -> None:
    result = verify(token(ver=ver), current_version=current)
    assert result == (expected if expected is not None else claims(ver=ver))


def test_expiry_is_reported_before_a_superseded_version() -> None:
    assert verify(token(ver=1, exp=1), current_version=2) == Reason.EXPIRED


def test_every_truncation_of_a_token_is_invalid() -> None:
    tok = token()
    for end in range(len(tok)):
        assert verify(tok[:end]) == Reason.INVALID, end
        assert verify(tok[:end].encode()) == Reason.INVALID, end


def test_every_single_character_change_is_invalid() -> None:
    tok = token()
    for index, char in enumerate(tok):
        for other in {"A", "x", "."} - {char}:
            changed = tok[:index] + other + tok[index + 1 :]
            assert verify(changed) == Reason.INVALID, (index, other)


@given(st.text(max_size=2000))
def test_arbitrary_text_never_raises_and_is_invalid(text: str) -> None:
    assert verify(text) == Reason.INVALID


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_and_are_invalid(data: bytes) -> None:
    assert verify(data) == Reason.INVALID


@given(st.lists(st.binary(max_size=200), min_size=3, max_size=3))
def test_three_arbitrary_base64_segments_are_invalid(parts: list[bytes]) -> None:
    assert verify(".".join(b64(part) for part in parts)) == Reason.INVALID


def test_non_string_input_is_invalid() -> None:
    for value in (None, 42, bytearray(token().encode()), memoryview(token().encode())):
        assert verify(value) == Reason.INVALID  # type: ignore[arg-type]


_ids = st.text(alphabet=ALPHABET, min_size=1, max_size=64)
_times = st.none() | st.integers(min_value=-(2**62), max_value=2**62)


@given(jti=_ids, evt=_ids, ver=st.integers(min_value=1, max_value=2**62), nbf=_times, exp=_times)
def test_any_signed_claims_round_trip(
    jti: str, evt: str, ver: int, nbf: int | None, exp: int | None
) -> None:
    original = TicketClaims(jti=jti, evt=evt, ver=ver, nbf=nbf, exp=exp)
    tok = sign_ticket_token(original, PRIVATE_KEY, KID)
    result = verify_ticket_token(tok, KEYS, event_id=evt, now=0.0, leeway=2**63)
    assert result == original


# `issued`: the token the issuer stored for the ticket. Identity with it stands in for the
# signature computation, and for nothing else.


def test_the_issued_token_itself_needs_no_signature_computation() -> None:
    wrong = {KID: Ed25519PrivateKey.generate().public_key()}  # would fail any real check
    assert verify(token(), keys=wrong) == Reason.INVALID
    assert verify(token(), keys=wrong, issued=token()) == claims()
    assert verify(token().encode(), keys=wrong, issued=token()) == claims()


@pytest.mark.parametrize("make", [make for _, make in TAMPERED], ids=[i for i, _ in TAMPERED])
def test_a_token_that_differs_from_the_issued_one_is_verified_in_full(
    make: Callable[[], str],
) -> None:
    assert verify(make(), issued=token()) == Reason.INVALID


@pytest.mark.parametrize(
    ("overrides", "checks", "expected"),
    [
        pytest.param({}, {"keys": {}}, Reason.INVALID, id="retired-kid"),
        pytest.param({"evt": "EVT0000002"}, {}, Reason.WRONG_EVENT, id="other-event"),
        pytest.param({"nbf": 2**40}, {}, Reason.NOT_YET_VALID, id="not-yet-valid"),
        pytest.param({"exp": 1}, {}, Reason.EXPIRED, id="expired"),
        pytest.param({"ver": 1}, {"current_version": 2}, Reason.REVOKED, id="superseded"),
        pytest.param({"ver": 3}, {"current_version": 2}, Reason.INVALID, id="above-current"),
    ],
)
def test_the_issued_token_still_meets_every_other_check(
    overrides: dict[str, int], checks: dict[str, object], expected: Reason
) -> None:
    tok = token(**overrides)
    assert verify(tok, issued=tok, **checks) == verify(tok, **checks) == expected


def test_an_older_version_beside_the_issued_one_is_verified_and_revoked() -> None:
    wrong = {KID: Ed25519PrivateKey.generate().public_key()}
    assert verify(token(ver=1), issued=token(ver=2), current_version=2) == Reason.REVOKED
    assert verify(token(ver=1), keys=wrong, issued=token(ver=2)) == Reason.INVALID


def test_an_issued_token_that_is_not_ascii_is_ignored() -> None:
    assert verify(token(), issued=token()[:-1] + "é") == claims()
    wrong = {KID: Ed25519PrivateKey.generate().public_key()}
    assert verify(token(), keys=wrong, issued="é" * 10_000_000) == Reason.INVALID


@given(jti=_ids, evt=_ids, ver=st.integers(min_value=1, max_value=2**62), nbf=_times, exp=_times)
def test_issued_or_not_the_verdict_is_the_same(
    jti: str, evt: str, ver: int, nbf: int | None, exp: int | None
) -> None:
    tok = sign_ticket_token(
        TicketClaims(jti=jti, evt=evt, ver=ver, nbf=nbf, exp=exp), PRIVATE_KEY, KID
    )
    for now in (0.0, NOW, -(2.0**62), 2.0**62):
        assert verify(tok, event_id=evt, now=now, issued=tok) == verify(tok, event_id=evt, now=now)


def test_unverified_ticket_id_reads_the_jti_and_trusts_nothing() -> None:
    assert unverified_ticket_id(token()) == "T" * TICKET_ID_LENGTH
    assert unverified_ticket_id(token().encode()) == "T" * TICKET_ID_LENGTH
    assert unverified_ticket_id(_tamper_signature()) == "T" * TICKET_ID_LENGTH  # unverified
    for junk in ("", "..", "a.b.c", "x" * 10_000_000, "é.é.é", token() + ".AAAA", 42, None):
        assert unverified_ticket_id(junk) is None, repr(junk)[:40]
    assert unverified_ticket_id(with_payload(b'{"jti":"T","evt":"E"}')) is None


@given(st.text(max_size=2000) | st.binary(max_size=2000))
def test_unverified_ticket_id_never_raises(data: str | bytes) -> None:
    found = unverified_ticket_id(data)
    assert found is None or isinstance(found, str)


def test_longest_usual_token_fits_qr_version_10_at_level_m() -> None:
    tok = sign_ticket_token(
        TicketClaims(jti=new_id(TICKET_ID_LENGTH), evt=new_id(EVENT_ID_LENGTH), ver=999),
        PRIVATE_KEY,
        new_key_id(),
    )
    assert len(tok) <= 213
    qr = segno.make(tok, error="m", boost_error=False, mask=0, micro=False)
    assert qr.version <= 10


def test_public_jwk_round_trips_through_load_public_jwk() -> None:
    jwk = public_jwk(KID, PUBLIC_KEY)
    assert jwk.keys() == {"kty", "crv", "x", "kid", "alg", "use"}
    kid, key = load_public_jwk(jwk)
    assert kid == KID
    assert key.public_bytes_raw() == PUBLIC_KEY.public_bytes_raw()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"kty": "RSA"}, id="rsa"),
        pytest.param({"kty": "EC", "crv": "P-256"}, id="ec"),
        pytest.param({"crv": "X25519"}, id="x25519"),
        pytest.param({"crv": "Ed448"}, id="ed448"),
        pytest.param({"alg": "HS256"}, id="other-alg"),
        pytest.param({"use": "enc"}, id="encryption-use"),
        pytest.param({"kid": ""}, id="empty-kid"),
        pytest.param({"kid": 7}, id="kid-not-string"),
        pytest.param({"x": "AAAA"}, id="short-x"),
        pytest.param({"x": 12}, id="x-not-string"),
        pytest.param({"x": "é" * 43}, id="x-not-ascii"),
        pytest.param({"d": "AAAA"}, id="private-part"),
    ],
)
def test_load_public_jwk_refuses_anything_but_an_ed25519_public_key(
    change: dict[str, object],
) -> None:
    jwk: dict[str, object] = {**public_jwk(KID, PUBLIC_KEY), **change}
    with pytest.raises(ValueError):
        load_public_jwk(jwk)


def test_load_public_jwk_refuses_missing_fields() -> None:
    for field in ("kty", "crv", "x", "kid"):
        jwk = {k: v for k, v in public_jwk(KID, PUBLIC_KEY).items() if k != field}
        with pytest.raises(ValueError):
            load_public_jwk(jwk)


def test_public_names_are_pinned() -> None:
    assert sorted(protocol.token.__all__) == [
        "TicketClaims",
        "load_public_jwk",
        "new_key_id",
        "public_jwk",
        "sign_ticket_token",
        "unverified_ticket_id",
        "verify_ticket_token",
    ]
