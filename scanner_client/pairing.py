"""Pairing a door: read what the organiser gave (code, URI or QR payload), trade it for a token.

Accepted input (docs/protocol.md §1):
- the typed code `K7QH-M2PX-9RTA`: any case, blanks and dashes optional, `O`/`I`/`L` read as
  `0`/`1`/`1`; the server then comes from `--server`;
- the URI `tessera-pair:?v=1&url=...&code=...` (the create-device answer's `pairing_uri`);
- the QR payload `{"v":1,"url":...,"code":...}` (`pairing_payload`).

Rules: only version 1 is understood, strictly (no unknown fields, no repeated field, `v` the
integer 1); the server is an http(s) base URL without query or fragment; `--server` wins over
the URL inside a URI or payload (a door behind another address than the one the hub announces).
Every refusal is a `PairingError` whose message is for door staff. Nothing is sent before the
input has been read whole and found valid: a pairing code works once, so a bad request must not
be what spends it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec

from protocol.ids import ALPHABET
from scanner_client.home import Credentials

__all__ = ["PAIR_TIMEOUT", "PairingError", "PairingRequest", "pair", "parse_pairing_input"]

PAIR_TIMEOUT = 5.0  # seconds, for connecting and for the answer
URI_PREFIX = "tessera-pair:"
_MAX_INPUT = 4096  # a URI with a long base URL is a few hundred characters
_MAX_URL = 2048
_CODE_LENGTH = 12
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_FIELDS = frozenset({"v", "url", "code"})


class PairingError(Exception):
    """Pairing cannot go on; the message says why, for people."""


class PairingRequest(msgspec.Struct, frozen=True):
    """Where to pair (`base_url`, no trailing slash) and the code, as `XXXX-XXXX-XXXX`."""

    base_url: str
    code: str


class _PairAnswer(msgspec.Struct, frozen=True):
    # Not forbid_unknown_fields: a newer hub may tell a door more than it needs.
    device_id: str
    token: str
    event_id: str
    ws_url: str


def parse_pairing_input(text: str, server: str | None) -> PairingRequest:
    """The pairing request in `text` (a code, a URI or a QR payload); `server` overrides its URL.

    Raises PairingError for anything else.
    """
    if len(text) > _MAX_INPUT:
        raise PairingError(f"this is not a pairing code: {len(text):,} characters is far too long")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # undecodable bytes on the command line (surrogateescape)
        raise PairingError("this is not a pairing code: it is not valid UTF-8 text") from error
    text = text.strip()
    if not text:
        raise PairingError("no pairing code given")
    if text[:1] == "{":
        fields = _payload_fields(text)
    elif text[: len(URI_PREFIX)].lower() == URI_PREFIX:
        fields = _uri_fields(text[len(URI_PREFIX) :])
    else:
        if server is None:
            raise PairingError(
                "a typed pairing code needs the server: add --server URL "
                "(or give the tessera-pair: link instead)"
            )
        return PairingRequest(_base_url(server), _code(text))
    _check_fields(fields)
    url = server if server is not None else fields.get("url")
    if url is None:
        raise PairingError("the pairing link names no server: add --server URL")
    return PairingRequest(_base_url(url), _code(fields["code"]))


def _payload_fields(text: str) -> dict[str, Any]:
    try:
        fields = msgspec.json.decode(text)
    except msgspec.DecodeError as error:
        raise PairingError(f"this pairing QR content is not valid JSON ({error})") from error
    if not isinstance(fields, dict):
        raise PairingError("this pairing QR content is not a JSON object")
    version = fields.get("v")
    # bool is an int in Python; `true` is not version 1.
    if type(version) is not int:
        raise PairingError("this pairing QR content has no version number `v` (an integer)")
    if version != 1:
        raise PairingError(_unknown_version(str(version)))
    for name in ("url", "code"):
        if name in fields and not isinstance(fields[name], str):
            raise PairingError(f"the pairing QR content's {name!r} is not text")
    return fields


def _uri_fields(query: str) -> dict[str, Any]:
    if not query.startswith("?"):
        raise PairingError("this tessera-pair: link is malformed (expected tessera-pair:?v=1&...)")
    try:
        pairs = parse_qsl(query[1:], keep_blank_values=True, strict_parsing=True, max_num_fields=10)
    except ValueError as error:
        raise PairingError("this tessera-pair: link is malformed") from error
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise PairingError(f"this tessera-pair: link gives {name!r} twice")
        fields[name] = value
    if "v" not in fields:
        raise PairingError("this tessera-pair: link has no version (v=1)")
    if fields["v"] != "1":
        raise PairingError(_unknown_version(fields["v"]))
    fields["v"] = 1
    return fields


def _unknown_version(version: str) -> str:
    shown = version if len(version) <= 20 else version[:20] + "..."
    return (
        f"pairing format version {shown} is not understood by this tessera-scan "
        "(it knows version 1): update tessera-scan"
    )


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(str(name)[:40] for name in set(fields) - _FIELDS)
    if unknown:
        raise PairingError(f"the pairing link has unknown fields: {', '.join(unknown)}")
    if not fields.get("code"):
        raise PairingError("the pairing link holds no code")


def _code(typed: str) -> str:
    """The canonical `XXXX-XXXX-XXXX` of a typed code, as the hub compares it."""
    compact = "".join(typed.split()).replace("-", "").upper().translate(_ALIASES)
    if len(compact) != _CODE_LENGTH or any(c not in ALPHABET for c in compact):
        raise PairingError(
            "this is not a pairing code: expected 12 letters and digits such as K7QH-M2PX-9RTA"
        )
    return f"{compact[:4]}-{compact[4:8]}-{compact[8:]}"


def _base_url(url: str) -> str:
    """`url` checked to be an http(s) base URL, without its trailing slash."""
    url = url.strip()
    shown = url if len(url) <= 80 else url[:80] + "..."
    if len(url) > _MAX_URL or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise PairingError(f"the server {shown!r} is not a valid http(s) URL")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as error:
        raise PairingError(f"the server {shown!r} is not a valid http(s) URL") from error
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise PairingError(f"the server {shown!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise PairingError(f"the server {shown!r} must be a base URL, without ? or #")
    if parts.username is not None or parts.password is not None:
        raise PairingError(f"the server {shown!r} must not carry a user name or password")
    return url.rstrip("/")


async def pair(
    request: PairingRequest,
    *,
    client: httpx.AsyncClient | None = None,
    now: datetime | None = None,
) -> Credentials:
    """Trade the pairing code for the device's credentials (`now`: the paired_at to record).

    Raises PairingError: the code is unknown, used or expired (401), this address tried too many
    codes (429), the server cannot be reached in PAIR_TIMEOUT, or it refused otherwise.
    """
    url = f"{request.base_url}/api/v1/devices/pair"
    body = {"pairing_code": request.code}
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=PAIR_TIMEOUT) as own:
                response = await own.post(url, json=body)
        else:
            response = await client.post(url, json=body, timeout=PAIR_TIMEOUT)
    except httpx.TimeoutException as error:
        raise PairingError(
            f"the server {request.base_url} did not answer within {PAIR_TIMEOUT:g} s"
        ) from error
    except httpx.HTTPError as error:
        raise PairingError(f"cannot reach the server {request.base_url}: {_why(error)}") from error
    return _credentials(request.base_url, response, now or datetime.now(UTC))


def _why(error: httpx.HTTPError) -> str:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__


def _credentials(base_url: str, response: httpx.Response, now: datetime) -> Credentials:
    status = response.status_code
    if status == 401:
        raise PairingError("unknown, used or expired pairing code")
    if status == 429:
        wait = response.headers.get("Retry-After", "").strip()
        after = f"; try again in {wait} s" if wait.isdigit() else "; try again later"
        raise PairingError(f"too many failed pairing attempts from this address{after}")
    if status != 200:
        raise PairingError(
            f"the server {base_url} refused to pair (HTTP {status}){_detail(response)}"
        )
    try:
        answer = msgspec.json.decode(response.content, type=_PairAnswer)
    except msgspec.DecodeError as error:
        raise PairingError(
            f"the server {base_url} answered the pairing with something unexpected ({error})"
        ) from error
    if not answer.ws_url.startswith(("ws://", "wss://")):
        raise PairingError(f"the server {base_url} gave a websocket URL that is not ws(s)://")
    try:
        return msgspec.convert(
            {
                "server": base_url,
                "ws_url": answer.ws_url,
                "device_id": answer.device_id,
                "event_id": answer.event_id,
                "token": answer.token,
                "paired_at": now,
            },
            Credentials,
        )
    except msgspec.ValidationError as error:
        raise PairingError(f"the server {base_url} answered the pairing oddly ({error})") from error


def _detail(response: httpx.Response) -> str:
    """`: <detail>` of a problem+json answer, or nothing when there is none."""
    try:
        body = msgspec.json.decode(response.content[:65536])
    except (msgspec.DecodeError, UnicodeDecodeError):
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail.strip():
        return ""
    detail = " ".join(detail.split())
    return ": " + (detail if len(detail) <= 200 else detail[:200] + "...")
