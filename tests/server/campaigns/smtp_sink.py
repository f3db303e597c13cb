"""A real SMTP server for tests: aiosmtpd on a free 127.0.0.1 port, in a thread of its own.

`SmtpSink` records every message with its envelope and the connection it came on, and misbehaves
on request: a chosen reply for chosen recipients, a chosen reply to DATA after N messages, the
connection dropped (no reply) at chosen messages, 421 and a close after N messages on one
connection, DATA never answered at chosen messages, idle connections closed after
`idle_timeout`, STARTTLS or implicit TLS with a self-signed certificate, AUTH with one user.

aiosmtpd knows no DSN (RFC 3461): it refuses every MAIL or RCPT parameter it does not know with
555, and upper-cases those it keeps. `dsn=True` makes the sink advertise DSN in its EHLO answer
and take RET, ENVID, NOTIFY and ORCPT; every sink records the MAIL and RCPT parameters each
message came with exactly as the client wrote them (`mail_params`, `rcpt_params`), so a test
sees what a DSN-less server was sent too.

Also here: `silent_server()` (accepts connections, never says a word), `closed_port()` (nothing
listens: connections are refused) and `self_signed_tls()`. Run as a script
(`python -m tests.server.campaigns.smtp_sink`) it serves on a port it prints, until its stdin
closes, then prints how many messages it took: a sink in another process for measurements,
where one in a thread would share the client's interpreter lock.

Connections are numbered from 1 in the order they were opened; `connections` counts them.
Messages are numbered from 1 in the order their DATA ended (`attempts` counts every DATA, kept,
refused or dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import sys
import tempfile
import threading
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Received", "SmtpSink", "closed_port", "self_signed_tls", "silent_server"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    connection: int  # which connection it came on, from 1
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    tls: bool  # the connection was encrypted (STARTTLS or implicit TLS)
    login: str | None  # the AUTH user, when the client logged in
    mail_params: tuple[str, ...] = ()  # MAIL FROM's parameters, as sent
    rcpt_params: tuple[tuple[str, ...], ...] = ()  # each accepted RCPT TO's, as sent

    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=default_policy).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SmtpSink:
    """An aiosmtpd server that records and, if asked, refuses, drops or closes (module doc)."""

    def __init__(
        self,
        *,
        rcpt_replies: Mapping[str, str] | None = None,
        data_reply: str | None = None,
        data_reply_after: int = 0,
        drop_at: Collection[int] = (),
        hang_at: Collection[int] = (),
        per_connection: int | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        data_size_limit: int | None = 32 * 1024 * 1024,
        smtputf8: bool = True,
        idle_timeout: float = 300,
        record: bool = True,
        dsn: bool = False,
    ) -> None:
        self.rcpt_replies = dict(rcpt_replies or {})
        self.data_reply = data_reply
        self.data_reply_after = data_reply_after
        self.drop_at = set(drop_at)
        self.hang_at = set(hang_at)
        self.per_connection = per_connection
        self.auth = auth
        self.record = record
        self.dsn = dsn
        self.messages: list[Received] = []
        self.connections = 0
        self.attempts = 0
        self.taken = 0
        self.quits = 0
        self.data_started = threading.Event()  # set at the first DATA, whatever becomes of it
        self._lock = threading.Lock()
        kwargs: dict[str, Any] = {
            "data_size_limit": data_size_limit,
            "enable_SMTPUTF8": smtputf8,
            "server_hostname": "sink.test",
            "timeout": idle_timeout,
        }
        if starttls is not None:
            kwargs["tls_context"] = starttls
        if auth is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=starttls is not None,
            )
        self._controller = _Controller(self, _Handler(self), ssl_context=implicit_tls, **kwargs)
        self.scheme = "smtps" if implicit_tls is not None else "smtp"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    def start(self) -> SmtpSink:
        with warnings.catch_warnings():
            # AUTH without TLS is what the plain-text auth test wants.
            warnings.simplefilter("ignore")
            self._controller.start()
        with self._lock:
            self.connections = 0  # Controller.start() opened one to check the server is up
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def recipients(self) -> list[str]:
        return [r for m in self.messages for r in m.recipients]

    # --- called on the sink's thread ---

    def _opened(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.auth is not None
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode("utf-8", "replace"),
                data.password.decode("utf-8", "replace"),
            )
            == self.auth
        )
        # handled=False on failure: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=ok, auth_data=data if ok else None)


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, hostname=HOST, port=0, **kwargs)
        self.sink = sink

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _SMTP(self.handler, **self.SMTP_kwargs)
        server.dsn = self.sink.dsn
        server.number = self.sink._opened()  # type: ignore[attr-defined]
        server.count = 0  # type: ignore[attr-defined]
        return server

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the port the system chose before connecting to it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


_DSN_MAIL = frozenset({"RET", "ENVID"})
_DSN_RCPT = frozenset({"NOTIFY", "ORCPT"})


class _SMTP(SMTP):
    """aiosmtpd's server, recording MAIL and RCPT parameters as sent, taking DSN's if `dsn`."""

    dsn = False

    async def smtp_MAIL(self, arg: str | None) -> None:
        kept, raw = self._params(arg, _DSN_MAIL)
        await super().smtp_MAIL(kept)
        if self.envelope is not None and self.envelope.mail_from:
            self.envelope.raw_mail = raw  # type: ignore[attr-defined]

    async def smtp_RCPT(self, arg: str | None) -> None:
        before = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        kept, raw = self._params(arg, _DSN_RCPT)
        await super().smtp_RCPT(kept)
        envelope = self.envelope
        if envelope is not None and len(envelope.rcpt_tos) > before:
            envelope.raw_rcpt = [*getattr(envelope, "raw_rcpt", []), raw]  # type: ignore[attr-defined]

    def _params(self, arg: str | None, dsn: frozenset[str]) -> tuple[str | None, tuple[str, ...]]:
        """`arg` without the DSN parameters this sink takes, and every parameter as sent."""
        if arg is None:
            return None, ()
        path, *params = arg.split()
        kept = [p for p in params if not (self.dsn and p.partition("=")[0].upper() in dsn)]
        return " ".join([path, *kept]), tuple(params)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves it to a handler that has this hook
        if getattr(server, "dsn", False):
            responses.insert(len(responses) - 1, "250-DSN")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        limit = self.sink.per_connection
        if limit is not None and server.count >= limit:  # type: ignore[attr-defined]
            assert server.transport is not None
            server.loop.call_soon(server.transport.close)  # after the reply is written
            return "421 4.7.0 sink.test too many messages on one connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink._lock:
            self.sink.quits += 1
        return "221 Bye"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.sink.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        sink = self.sink
        with sink._lock:
            sink.attempts += 1
            attempt = sink.attempts
        sink.data_started.set()
        if attempt in sink.drop_at:
            assert server.transport is not None
            server.transport.abort()  # no reply: the client has sent it all and hears nothing
            return "250 OK (never sent)"
        if attempt in sink.hang_at:
            await asyncio.Event().wait()  # never answers; cancelled when the sink stops
        if sink.data_reply is not None and attempt > sink.data_reply_after:
            return sink.data_reply
        server.count += 1  # type: ignore[attr-defined]
        assert server.transport is not None
        auth = session.auth_data
        received = Received(
            connection=server.number,  # type: ignore[attr-defined]
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            tls=server.transport.get_extra_info("sslcontext") is not None,
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            mail_params=getattr(envelope, "raw_mail", ()),
            rcpt_params=tuple(getattr(envelope, "raw_rcpt", [])),
        )
        with sink._lock:
            sink.taken += 1
            if sink.record:
                sink.messages.append(received)
        return "250 2.0.0 OK queued"


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever answers (no SMTP greeting)."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(64)  # never accept(): the backlog completes the handshakes
        yield listener.getsockname()[1]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused, and no one can take it."""
    with socket.socket() as bound:
        bound.bind((HOST, 0))
        yield bound.getsockname()[1]


def self_signed_tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context that trusts it) for a certificate naming 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sink.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as directory:  # load_cert_chain reads files only
        cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


def main() -> None:
    sink = SmtpSink(record=False).start()
    print(sink.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    sink.stop()
    print(sink.taken, flush=True)


if __name__ == "__main__":
    main()
