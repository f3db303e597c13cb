"""Sending mail: SMTP over a small pool of reused connections, or a local maildir.

`mailer_for(settings.smtp_url, settings.maildir)` picks the transport: `TESSERA_SMTP_URL` set →
`SmtpMailer`, unset → `MaildirMailer` (the embedded default, read with `tessera mail`).

The contract every `Mailer` keeps:
- A mail is given as its wire bytes (CRLF line ends, what the outbox serialised and signed
  once: sent byte for byte, so a DKIM signature survives) or as an EmailMessage (serialised by
  the mailer: aiosmtplib's `send_message`, or the message's policy for the maildir).
- `send` never raises for SMTP, network or disk trouble: it returns a `SendResult`. `ok` means
  every recipient was accepted. Otherwise `permanent` says whether trying the same message again
  can help, and `reply` is one line for people ("550 5.1.1 no such user", "connection refused by
  mx.example:25"), at most 500 characters, never holding the SMTP password.
- It raises only for programming errors: an envelope no SMTP command can carry (no recipients,
  an empty address, one without "@", control characters: the service validates addresses
  before they reach the ledger), a bare string as `recipients`, a send after `close()`.

SMTP (`smtp://[user:pass@]host[:port][?timeout=S]`, port 25, STARTTLS when the server offers
it; `smtps://` for implicit TLS, port 465; user and password percent-decoded; a bad URL is a
ValueError at construction, shown with its password masked):
- Permanent: a 5xx reply to MAIL, RCPT or DATA, or a message this server cannot carry (an
  address that needs SMTPUTF8 when it has none). Temporary: 4xx replies, timeouts, refused and
  dropped connections, refusals before the envelope (greeting, EHLO, STARTTLS, AUTH, an
  untrusted certificate) and the AUTH replies 530/534/535/538 at any step: those are the
  server's or the configuration's fault, not the message's, and the outbox retries them.
- Several recipients: `ok` only if all were accepted; a refusal of some is reported although
  the message went to the others, permanent only if every refusal was a 5xx. The outbox sends
  one recipient per message, so this is for test sends.
- The pool holds up to `connections` open connections, opened when a send finds none free,
  reused most-recent-first without RSET (a refused transaction is RSET by aiosmtplib itself). A
  connection idle for more than `_MAX_IDLE` seconds is closed instead of reused: a server or a
  NAT may have forgotten it without a word, and a send on it would wait a whole timeout.
- A connection that breaks once open (dropped, timed out, closed with 421) is discarded and the
  send tried once more on a fresh connection; a connection that cannot be opened is reported at
  once, as a second try would meet the same server. So a dead server costs one timeout, and a
  send waits at most about twice `timeout` (each SMTP command waits at most `timeout`).
- Delivery reports (RFC 3461): a send that names an `envelope_id` (the outbox passes the row's
  Message-ID) asks a server that advertises DSN for them: `RET=HDRS ENVID=<xtext of the id>` on
  MAIL (ENVID left out when its xtext is over RFC 3461's 100 characters: the returned headers
  still carry the Message-ID), `NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;<xtext of the address>`
  on each RCPT (ORCPT only for an ASCII address). HDRS, not FULL: a report returns the headers,
  never the guest's ticket links. A server without DSN gets none of these parameters (it would
  refuse them), nor does a send without an envelope id (a sign-in link has no ledger row).
- Certificates and host names are checked against the system's CAs (or the file named by
  `SSL_CERT_FILE`) unless a `tls_context` is given: an opportunistic STARTTLS that fails the
  check is a failed send, never a silent fall back to plain text.

Maildir: each message is written to `tmp/`, fsynced and linked into `new/` (the stdlib's
`mailbox.Maildir`), so a reader never sees half a message. The maildir and its folders are
0700 and each message 0600 from the moment it is created: they hold guest links.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import ipaddress
import mailbox
import math
import os
import re
import socket
import ssl
import stat
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Literal, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
from aiosmtplib import (
    SMTP,
    SMTPConnectError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from aiosmtplib.typing import Default

__all__ = [
    "SHOWN_HEADERS",
    "Mail",
    "MailView",
    "MaildirMailer",
    "Mailer",
    "SendResult",
    "SmtpMailer",
    "StoredMail",
    "mailer_for",
    "read_mail",
    "read_maildir",
    "view_mail",
    "xtext",
]

Mail = EmailMessage | bytes  # see the module docstring

_MAX_IDLE = 30.0  # seconds a pooled connection may sit unused and still be trusted
_MAX_CONNECTIONS = 64
_MAX_TIMEOUT = 3600.0
_MAX_REPLY = 500
_MAX_ENVID = 100  # RFC 3461 §4.4
_MAX_ADDRESS = 320  # RFC 3696's longest address; anything longer is garbage, not mail
_QUIT_TIMEOUT = 5.0
_MAX_HEAD = 1024 * 1024  # bytes of a stored message's header block that `mail list` reads


class SendResult(msgspec.Struct, frozen=True):
    """What became of one send: accepted, refused for good, or worth trying again later."""

    ok: bool
    permanent: bool = False
    reply: str = ""  # "550 5.1.1 no such user", "connection refused by mx.example:25"


class Mailer(Protocol):
    """Where the outbox hands its mail (the contract is in the module docstring)."""

    async def send(
        self,
        message: Mail,
        *,
        sender: str,
        recipients: Sequence[str],
        envelope_id: str | None = None,
    ) -> SendResult: ...

    async def close(self) -> None: ...


def mailer_for(smtp_url: str | None, maildir: Path) -> Mailer:
    """An SmtpMailer for `smtp_url`, or a MaildirMailer writing to `maildir` when it is unset."""
    if smtp_url:
        return SmtpMailer(smtp_url)
    return MaildirMailer(maildir)


# --- SMTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Server:
    hostname: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None
    timeout: float
    shown: str  # the URL with its password masked, for messages and repr

    @property
    def where(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}"


@dataclass
class _Idle:
    smtp: _SMTP
    since: float  # loop time it was put back


class SmtpMailer:
    """Sends over up to `connections` reused SMTP connections (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        connections: int = 4,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if isinstance(connections, bool) or not 1 <= connections <= _MAX_CONNECTIONS:
            raise ValueError(f"connections: expected 1 to {_MAX_CONNECTIONS}, got {connections!r}")
        _check_timeout("timeout", timeout)
        self._server = _parse_smtp_url(url, timeout)
        self._tls_context = tls_context
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Idle] = []
        self._closed = False
        self._local_hostname: str | None = None

    def __repr__(self) -> str:
        return f"SmtpMailer({self._server.shown!r})"

    async def send(
        self,
        message: Mail,
        *,
        sender: str,
        recipients: Sequence[str],
        envelope_id: str | None = None,
    ) -> SendResult:
        """Send `message` to `recipients` with `sender` as the envelope sender (MAIL FROM),
        asking for delivery reports on `envelope_id` when the server offers DSN."""
        envelope = _check_envelope(sender, recipients)
        if envelope_id is not None:
            _check_envelope_id(envelope_id)
        if self._closed:
            raise RuntimeError("SmtpMailer.send after close()")
        async with self._slots:
            smtp = self._take_idle()
            if smtp is None:
                smtp, failure = await self._open()
                if smtp is None:
                    return failure
            result, broke = await self._deliver(smtp, message, sender, envelope, envelope_id)
            if not broke:
                return result
            smtp, failure = await self._open()  # the one retry, on a fresh connection
            if smtp is None:
                return failure
            result, _ = await self._deliver(smtp, message, sender, envelope, envelope_id)
            return result

    async def close(self) -> None:
        """QUIT every idle connection; those in use are closed when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(entry.smtp) for entry in idle))

    def _take_idle(self) -> _SMTP | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            entry = self._idle.pop()
            if entry.smtp.is_connected and now - entry.since <= _MAX_IDLE:
                return entry.smtp
            entry.smtp.close()
        return None

    async def _put_back(self, smtp: _SMTP) -> None:
        if self._closed:
            await _quit(smtp)
        elif smtp.is_connected:
            self._idle.append(_Idle(smtp, asyncio.get_running_loop().time()))

    async def _open(self) -> tuple[_SMTP | None, SendResult]:
        server = self._server
        if self._local_hostname is None:
            self._local_hostname = _ehlo_name(await asyncio.to_thread(socket.getfqdn))
        smtp = _SMTP(
            hostname=server.hostname,
            port=server.port,
            username=server.username,
            password=server.password,
            local_hostname=self._local_hostname,
            timeout=server.timeout,
            use_tls=server.use_tls,
            # None: STARTTLS when the server offers it (aiosmtplib's opportunistic mode).
            start_tls=False if server.use_tls else None,
            tls_context=self._tls_context,
        )
        try:
            await smtp.connect()
        except SMTPResponseException as exc:
            # A refusal before any envelope (greeting, EHLO, AUTH) is about the server or our
            # credentials: temporary, so the outbox keeps the messages for a fixed setup.
            return None, SendResult(ok=False, reply=_reply(exc.code, exc.message))
        except (SMTPException, OSError) as exc:
            return None, SendResult(ok=False, reply=self._network_reply(exc))
        return smtp, SendResult(ok=True)

    async def _deliver(
        self,
        smtp: _SMTP,
        message: Mail,
        sender: str,
        recipients: list[str],
        envelope_id: str | None,
    ) -> tuple[SendResult, bool]:
        """The send on `smtp`, and whether the connection broke (so a fresh one may do)."""
        reusable = False
        smtp.envelope_id = envelope_id  # one send at a time holds a connection
        try:
            if isinstance(message, bytes):
                refused = await smtp.sendmail(sender, recipients, message)
            else:
                refused = await smtp.send_message(message, sender=sender, recipients=recipients)
            reusable = True
            if not refused[0]:
                return SendResult(ok=True), False
            refusals = [(rcpt, r.code, r.message) for rcpt, r in refused[0].items()]
            return _refusal(refusals, several=True), False
        except SMTPRecipientsRefused as exc:
            reusable = True
            refusals = [(e.recipient, e.code, e.message) for e in exc.recipients]
            return _refusal(refusals, several=len(recipients) > 1), False
        except SMTPResponseException as exc:
            # 421: the server is closing this connection (often "too many messages on one
            # connection"): a fresh one may well take the message.
            closing = exc.code == 421
            reusable = not closing
            reply = _reply(exc.code, exc.message)
            return SendResult(ok=False, permanent=_is_permanent(exc.code), reply=reply), closing
        except SMTPNotSupported as exc:
            reusable = True
            return SendResult(ok=False, permanent=True, reply=_one_line(exc.message)), False
        except (SMTPException, OSError) as exc:  # dropped, timed out, reset
            return SendResult(ok=False, reply=self._network_reply(exc)), True
        finally:
            smtp.envelope_id = None
            if reusable:
                await self._put_back(smtp)
            else:  # also on cancellation: the connection is mid-transaction, in no known state
                smtp.close()

    def _network_reply(self, exc: BaseException) -> str:
        server = self._server
        cause = exc.__cause__
        if isinstance(exc, SMTPConnectTimeoutError):
            return f"timed out connecting to {server.where} after {server.timeout:g} s"
        if isinstance(exc, TimeoutError):  # SMTPReadTimeoutError, SMTPTimeoutError
            return f"timed out after {server.timeout:g} s waiting for {server.where}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {server.where}"
        tls_error = next((e for e in (exc, cause) if isinstance(e, ssl.SSLError)), None)
        if isinstance(tls_error, ssl.SSLCertVerificationError):
            why = tls_error.verify_message
            return _one_line(f"TLS with {server.where}: certificate verify failed: {why}")
        if tls_error is not None:
            return _one_line(f"TLS with {server.where}: {tls_error.reason or tls_error}")
        if isinstance(exc, SMTPServerDisconnected):
            return _one_line(f"connection to {server.where} lost: {exc.message}")
        if isinstance(exc, SMTPConnectError) and isinstance(cause, OSError):
            return _one_line(f"cannot connect to {server.where}: {cause.strerror or cause}")
        if isinstance(exc, SMTPException):
            return _one_line(f"{server.where}: {exc.message}")
        return _one_line(f"{server.where}: {exc}")


class _SMTP(SMTP):
    """aiosmtplib's client, asking for delivery reports (RFC 3461) while `envelope_id` is set
    and the server advertised DSN (its EHLO answer is read before MAIL: sendmail greets first)."""

    envelope_id: str | None = None

    def _reports_wanted(self) -> bool:
        return self.envelope_id is not None and self.supports_extension("dsn")

    async def mail(
        self,
        sender: str,
        /,
        *,
        options: Iterable[str] | None = None,
        encoding: str = "ascii",
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109
    ) -> SMTPResponse:
        options = list(options or [])
        if self.envelope_id is not None and self._reports_wanted():
            options.append("RET=HDRS")
            envid = xtext(self.envelope_id)
            if len(envid) <= _MAX_ENVID:
                options.append(f"ENVID={envid}")
        return await super().mail(sender, options=options, encoding=encoding, timeout=timeout)

    async def rcpt(
        self,
        recipient: str,
        /,
        *,
        options: Iterable[str] | None = None,
        encoding: str = "ascii",
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109
    ) -> SMTPResponse:
        options = list(options or [])
        if self._reports_wanted():
            options.append("NOTIFY=SUCCESS,FAILURE,DELAY")
            if recipient.isascii():  # a UTF-8 address needs RFC 6533's utf-8-addr-xtext
                options.append(f"ORCPT=rfc822;{xtext(recipient)}")
        return await super().rcpt(recipient, options=options, encoding=encoding, timeout=timeout)


def xtext(text: str) -> str:
    """`text` as RFC 3461 xtext: "+", "=" and anything outside "!".."~" as +HH (UTF-8 bytes)."""
    return "".join(
        chr(b) if 33 <= b <= 126 and b not in (0x2B, 0x3D) else f"+{b:02X}"
        for b in text.encode("utf-8")
    )


def _check_envelope_id(envelope_id: str) -> None:
    if not isinstance(envelope_id, str):
        raise TypeError(f"envelope_id: expected a str, got {type(envelope_id).__name__}")
    if not envelope_id or len(envelope_id) > 1000:
        raise ValueError(f"envelope_id: expected 1 to 1000 characters, got {len(envelope_id)}")


# RFC 4954's "authentication required / too weak / invalid / encryption required" replies say
# the same of every message: the setup is wrong, not this message.
_SETUP_CODES = frozenset({530, 534, 535, 538})


def _is_permanent(code: int) -> bool:
    return 500 <= code <= 599 and code not in _SETUP_CODES


def _refusal(refusals: list[tuple[str, int, str]], *, several: bool) -> SendResult:
    permanent = all(_is_permanent(code) for _, code, _ in refusals)
    if several:
        reply = "; ".join(f"{rcpt}: {_reply(code, text)}" for rcpt, code, text in refusals)
    else:
        _, code, text = refusals[0]
        reply = _reply(code, text)
    return SendResult(ok=False, permanent=permanent, reply=_one_line(reply))


async def _quit(smtp: SMTP) -> None:
    with contextlib.suppress(SMTPException, OSError):
        await smtp.quit(timeout=_QUIT_TIMEOUT)
    smtp.close()


def _reply(code: int, text: str) -> str:
    return _one_line(f"{code} {text}")


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _one_line(text: str) -> str:
    """`text` on one line (a multi-line reply is joined), without controls, cut to length."""
    line = " ".join(_CONTROLS.sub(" ", text).split())
    return line if len(line) <= _MAX_REPLY else line[: _MAX_REPLY - 1] + "…"


def _ehlo_name(fqdn: str) -> str:
    return fqdn if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", fqdn) else "localhost"


def _check_envelope(sender: str, recipients: Sequence[str]) -> list[str]:
    if isinstance(recipients, str):
        raise TypeError("recipients: expected a sequence of addresses, got one string")
    envelope = list(recipients)
    if not envelope:
        raise ValueError("recipients: no recipient")
    for name, address in [("sender", sender)] + [("recipient", r) for r in envelope]:
        if not isinstance(address, str):
            raise TypeError(f"{name}: expected a str, got {type(address).__name__}")
        if len(address) > _MAX_ADDRESS or "@" not in address:
            raise ValueError(f"{name}: not an address: {address[:80]!r}")
        if not address.isprintable() or any(c.isspace() for c in address):
            raise ValueError(f"{name}: control characters or spaces in {address[:80]!r}")
    return envelope


def _check_timeout(name: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= _MAX_TIMEOUT
    ):
        raise ValueError(
            f"{name}: expected seconds above 0 and up to {_MAX_TIMEOUT:g}, got {value!r}"
        )


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"  # "_": container service names
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def _parse_smtp_url(url: str, timeout: float) -> _Server:
    """The server of an smtp:// or smtps:// URL; ValueError naming what is wrong."""
    if not isinstance(url, str):
        raise TypeError(f"smtp_url: expected a str, got {type(url).__name__}")
    if len(url) > 2048 or not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("smtp_url: not a URL (too long, spaces or control characters)")
    try:
        parts = urlsplit(url)
        shown = _masked(url, parts.password)
        hostname = parts.hostname or ""
    except ValueError:  # "smtp://[::1": urlsplit's own refusal
        raise ValueError("smtp_url: not a URL (unbalanced brackets)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ValueError(f"smtp_url: expected smtp:// or smtps://, got {shown!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"smtp_url: no path or fragment expected in {shown!r}")
    if not hostname:
        raise ValueError(f"smtp_url: no host in {shown!r}")
    if not (_is_ip_address(hostname) or _HOSTNAME.fullmatch(hostname)):
        raise ValueError(f"smtp_url: bad host {hostname!r} (use the xn-- form of a non-ASCII name)")
    port = _port(parts.netloc, shown, default=465 if scheme == "smtps" else 25)
    try:
        username = None if parts.username is None else unquote(parts.username, errors="strict")
        password = None if parts.password is None else unquote(parts.password, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"smtp_url: the user or password is not UTF-8 in {shown!r}") from None
    if username is not None and (not username or password is None):
        raise ValueError(f"smtp_url: a user needs a password (user:password@host) in {shown!r}")
    for name, value in (("user", username), ("password", password)):
        if value is not None and not value.isprintable():
            raise ValueError(f"smtp_url: control characters in the {name} of {shown!r}")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"smtp_url: unreadable query in {shown!r}") from None
    for key, value in query:
        if key != "timeout" or len(query) > 1:
            raise ValueError(f"smtp_url: only ?timeout=SECONDS is understood, got {parts.query!r}")
        try:
            timeout = float(value)
        except ValueError:
            raise ValueError(f"smtp_url: timeout: expected seconds, got {value!r}") from None
        _check_timeout("smtp_url: timeout", timeout)
    return _Server(hostname, port, scheme == "smtps", username, password, timeout, shown)


def _port(netloc: str, shown: str, *, default: int) -> int:
    hostport = netloc.rpartition("@")[2]
    _, colon, text = hostport.rpartition(":")
    if not colon or not text or "]" in text:  # "host", "host:" or "[::1]": no port named
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise ValueError(f"smtp_url: port must be 1 to 65535, got {text[:20]!r} in {shown!r}")
    return int(text)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _masked(url: str, password: str | None) -> str:
    if password is None:
        return url
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***{at}{hostpart}"


# --- Maildir ----------------------------------------------------------------------------------

# Maildir keys count with a class-wide counter that is not thread-safe; adds are rare and short.
_MAILDIR_LOCK = threading.Lock()


class _PrivateMaildir(mailbox.Maildir):
    """A maildir whose messages are 0600 before a byte is written to them.

    The stdlib creates them 0666 minus the umask; tightening after the write would leave a
    readable file for a moment, and changing the umask would change it for every thread.
    """

    def _create_tmp(self) -> IO[bytes]:
        file: IO[bytes] = super()._create_tmp()  # type: ignore[misc]
        os.fchmod(file.fileno(), 0o600)
        return file


class MaildirMailer:
    """Writes each message into the maildir at `path` (created 0700 on the first send)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"MaildirMailer({str(self.path)!r})"

    async def send(
        self,
        message: Mail,
        *,
        sender: str,
        recipients: Sequence[str],
        envelope_id: str | None = None,
    ) -> SendResult:
        """Store `message` with its envelope as Return-Path and Delivered-To, as an MTA would
        (a maildir sends no delivery reports: `envelope_id` is not stored)."""
        envelope = _check_envelope(sender, recipients)
        data = _with_envelope(message, sender, envelope)
        try:
            # A thread: the event loop also serves the doors' websockets, and add() fsyncs.
            await asyncio.to_thread(self._add, data)
        except OSError as exc:  # a full disk or a read-only directory: may pass, so temporary
            return SendResult(ok=False, reply=_one_line(f"maildir {self.path}: {exc}"))
        return SendResult(ok=True)

    async def close(self) -> None:
        return None

    def _add(self, data: bytes) -> str:
        with _MAILDIR_LOCK:
            _make_private_dirs(self.path)
            return _PrivateMaildir(self.path, create=False).add(data)


def _with_envelope(message: Mail, sender: str, recipients: list[str]) -> bytes:
    lines = [f"Return-Path: <{sender}>"] + [f"Delivered-To: {r}" for r in recipients]
    header = ("\n".join(lines) + "\n").encode("utf-8")
    if isinstance(message, bytes):  # a maildir file has the local line ends
        return header + message.replace(b"\r\n", b"\n")
    return header + message.as_bytes(policy=message.policy.clone(linesep="\n"))


def _make_private_dirs(path: Path) -> None:
    """The maildir, its folders and the missing folders above it, 0700 whatever the umask.

    (mkdir's `parents` would create the ones above with the umask's mode, and mailbox.Maildir
    leaves an existing directory as it is, even without tmp/, new/ and cur/.)"""
    for folder in (*reversed(path.parents), path):
        if not folder.exists():
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)
    _tighten(path)
    for sub in ("tmp", "new", "cur"):
        with contextlib.suppress(FileExistsError):
            (path / sub).mkdir(mode=0o700)
        _tighten(path / sub)


def _tighten(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)


# --- Reading the maildir (`tessera mail`) -----------------------------------------------------


class StoredMail(msgspec.Struct, frozen=True):
    """One message of the maildir, as `tessera mail list` shows it. Header values are decoded
    text; whoever prints them to a terminal must still take out control characters."""

    id: str  # the maildir key
    date: datetime | None  # the Date header; None when missing or unreadable
    delivered: datetime  # when it reached the maildir (UTC)
    from_: str
    to: str
    subject: str
    message_id: str


_HEADERS_ONLY = BytesParser(policy=email.policy.default)


def read_maildir(path: Path) -> list[StoredMail]:
    """The messages in the maildir at `path` (new/ and cur/), oldest first; [] if there is none.

    A file that is not mail is listed with what could be read of it, never skipped in silence.
    """
    mails = []
    for key, file in _message_files(Path(path)):
        try:
            headers = _HEADERS_ONLY.parsebytes(_head(file), headersonly=True)
            delivered = datetime.fromtimestamp(file.stat().st_mtime, UTC)
        except FileNotFoundError:  # moved or deleted while we read: not ours to list
            continue
        mails.append(
            StoredMail(
                id=key,
                date=_date(_header(headers, "Date")),
                delivered=delivered,
                from_=_header(headers, "From"),
                to=_header(headers, "To") or _header(headers, "Delivered-To"),
                subject=_header(headers, "Subject"),
                message_id=_header(headers, "Message-ID"),
            )
        )
    mails.sort(key=lambda m: (m.delivered, m.id))
    return mails


def _head(file: Path) -> bytes:
    """The header block of a stored message: a listing of campaign mail with PDF tickets
    attached must not read every attachment."""
    head = b""
    with file.open("rb") as fp:
        while len(head) < _MAX_HEAD and (chunk := fp.read(64 * 1024)):
            head += chunk
            ends = [i for i in (head.find(b"\n\n"), head.find(b"\r\n\r\n")) if i >= 0]
            if ends:
                return head[: min(ends) + 1]
    return head[:_MAX_HEAD]


def read_mail(path: Path, mail_id: str) -> bytes:
    """The whole message `mail_id` (a key, or a prefix of exactly one key) as stored.

    Raises KeyError(mail_id, matches) when no message, or more than one, matches. `mail_id` is
    only compared with the keys found, never joined to a path, so "../x" names nothing.
    """
    files = dict(_message_files(Path(path)))
    if mail_id in files:
        return files[mail_id].read_bytes()
    matches = [key for key in files if mail_id and key.startswith(mail_id)]
    if len(matches) != 1:
        raise KeyError(mail_id, len(matches))
    return files[matches[0]].read_bytes()


class MailView(msgspec.Struct, frozen=True):
    """A stored message as `tessera mail show` prints it: decoded, not yet made terminal-safe."""

    headers: list[tuple[str, str]]  # those of SHOWN_HEADERS present, in that order
    text: str | None  # the text/plain body, None if there is none
    html: str | None  # the text/html body, None if there is none


SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Reply-To")


def view_mail(raw: bytes) -> MailView:
    """The headers and the text and HTML bodies of a stored message, however broken it is."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage
    headers = [(name, _header(message, name)) for name in SHOWN_HEADERS if name in message]
    return MailView(headers, _body(message, "plain"), _body(message, "html"))


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except Exception:  # a broken MIME tree: no such part to show, rather than no mail
        return None
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, bad transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return None
    return content.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _message_files(path: Path) -> list[tuple[str, Path]]:
    found = []
    for sub in ("new", "cur"):
        try:
            entries = list(os.scandir(path / sub))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            found.append((entry.name.split(mailbox.Maildir.colon)[0], Path(entry.path)))
    return found


def _header(headers: EmailMessage, name: str) -> str:
    try:
        value = headers.get(name)
    except Exception:  # the policy parses each value as it is read: keep the raw text instead
        value = next((v for k, v in headers.raw_items() if k.lower() == name.lower()), None)
    if value is None:
        return ""
    # Undecodable bytes arrive as surrogates, which no terminal encoding can print.
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split())


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
