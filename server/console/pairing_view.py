"""How the pairing page shows a device's code again after the redirect that follows its form.

Creating a device (or asking it a new code) is a POST that answers 303 to the device's pairing
page, so a reload GETs that page and creates nothing. The service keeps only the code's hash,
so the GET must get the code from somewhere. The choices were:

- re-issuing a fresh code on every GET of an unpaired device: a GET would change the device,
  a second tab or a reload would break the code a door is typing, and any editor opening the
  URL would get (and replace) the code;
- keeping the code on the server for the session: a new table and migration for ten minutes
  of state, or memory that the other instances of a scaled deployment do not share;
- sealing the code into a cookie of the browser that asked for it (this module).

The cookie is HttpOnly, SameSite=Strict, scoped to that one device's pairing path, and lives
SHOWN_FOR. Its value is AES-GCM sealed under a key derived from the console session's own
secret, with the device id as associated data and the sealing time inside: another session
(even holding a copy of the cookie), another device's page or an old cookie opens nothing, and
a sign-out makes it unreadable. The page shows the code only while the service still says it is
the device's unused, unexpired code (`pairing_code_matches`), so once the door pairs, the code
is replaced or the device revoked, the page says so instead, and nothing a browser keeps
outlives SHOWN_FOR.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["COOKIE", "SHOWN_FOR", "seal", "unseal"]

COOKIE = "tessera_console_pairing"
SHOWN_FOR = timedelta(minutes=10)
_MAX_SEALED = 400  # a sealed 14-character code and a time is about 90 characters
_NONCE = 12


def _key(session_secret: str) -> bytes:
    return hmac.new(session_secret.encode(), b"tessera-console-pairing", hashlib.sha256).digest()


def seal(session_secret: str, device_id: str, code: str, *, now: datetime) -> str:
    """The cookie value holding `code` for this session and device, sealed at `now`."""
    nonce = secrets.token_bytes(_NONCE)
    plain = json.dumps({"code": code, "at": now.timestamp()}).encode()
    sealed = AESGCM(_key(session_secret)).encrypt(nonce, plain, device_id.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(session_secret: str, device_id: str, value: str, *, now: datetime) -> str | None:
    """The code sealed in `value` for this session and device less than SHOWN_FOR before
    `now`; None for anything else (another session or device, too old, tampered, garbage)."""
    if not value or len(value) > _MAX_SEALED or not value.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        plain = AESGCM(_key(session_secret)).decrypt(raw[:_NONCE], raw[_NONCE:], device_id.encode())
        fields = json.loads(plain)
        code, at = str(fields["code"]), float(fields["at"])
    except (binascii.Error, ValueError, InvalidTag, KeyError, TypeError):
        return None
    age = now.timestamp() - at
    return code if 0 <= age < SHOWN_FOR.total_seconds() else None
