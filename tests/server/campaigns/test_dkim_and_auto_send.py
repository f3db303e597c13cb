"""DKIM-signed campaign mail, the organiser as sender, and e-tickets sent on confirmation.

DKIM: the operator's key file is checked at start (settings), every mail the real outbox sends is
signed, and the signature verifies (dkimpy, the public key served by a local DNS function) on
what a real aiosmtpd server received and on what the maildir stored; it fails with another key.
Both transports' generators are shown to write the signed bytes again, byte for byte.
"""

from __future__ import annotations

import base64
import email
import os
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import msgspec
import pytest
from aiosmtplib.email import flatten_message
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.campaigns.dkim import DkimKey, DkimKeyError, key_for, load_key, sign_message
from server.campaigns.mail import Address, Attachment, Identity, MailError, build_message
from server.campaigns.outbox import Outbox
from server.campaigns.transport import MaildirMailer, Mailer, SmtpMailer
from server.config import Settings, SettingsError
from server.db import Database
from tests.conftest import problem_of
from tests.factories import create_booking, create_event, create_ticket_type, event_body
from tests.server.campaigns.smtp_sink import SmtpSink

SELECTOR = "tessera2026"
DOMAIN = "tickets.test"  # the conftest settings' base URL host: the platform sender's domain
HUGE = "x" * 10_000_000


# --- keys and DNS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(
    key: Any, fmt: Any = serialization.PrivateFormat.PKCS8, password: bytes | None = None
) -> bytes:
    encryption: Any = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))


def write_key(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def key_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    return write_key(tmp_path / "dkim.pem", pem(rsa_key))


def dns_for(key: rsa.RSAPrivateKey, domain: str = DOMAIN) -> Callable[..., bytes | None]:
    """A dkimpy dnsfunc that knows the one TXT record the operator publishes (docs §9)."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    name = f"{SELECTOR}._domainkey.{domain}.".encode()

    def dnsfunc(query: bytes, timeout: float = 5) -> bytes | None:
        return record if query == name else None

    return dnsfunc


def env(**values: str) -> dict[str, str]:
    return {f"TESSERA_{name.upper()}": value for name, value in values.items()}


# --- settings: all three or none, and a key that signs ----------------------------------------


def test_dkim_settings_load_a_private_key_file(key_file: Path) -> None:
    settings = Settings.from_env(
        env(dkim_key_file=str(key_file), dkim_selector=SELECTOR, dkim_domain="Tickets.TEST.")
    )
    key = key_for(settings)
    assert key is not None and (key.domain, key.selector) == ("tickets.test", SELECTOR)
    assert b"PRIVATE KEY" not in repr(key).encode()  # never in a log line
    assert key_for(Settings()) is None


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"dkim_key_file"}, "TESSERA_DKIM_SELECTOR"),
        ({"dkim_selector"}, "TESSERA_DKIM_KEY_FILE"),
        ({"dkim_domain"}, "TESSERA_DKIM_KEY_FILE"),
        ({"dkim_key_file", "dkim_selector"}, "TESSERA_DKIM_DOMAIN"),
        ({"dkim_key_file", "dkim_domain"}, "TESSERA_DKIM_SELECTOR"),
        ({"dkim_selector", "dkim_domain"}, "TESSERA_DKIM_KEY_FILE"),
    ],
)
def test_dkim_settings_come_all_three_or_none(
    key_file: Path, given: set[str], missing: str
) -> None:
    values = {"dkim_key_file": str(key_file), "dkim_selector": SELECTOR, "dkim_domain": DOMAIN}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(**{k: v for k, v in values.items() if k in given}))
    message = str(caught.value)
    assert message.startswith(f"{missing}: required with ") and "\n" not in message


def test_empty_dkim_settings_count_as_unset() -> None:
    settings = Settings.from_env(env(dkim_key_file="", dkim_selector="", dkim_domain=""))
    assert key_for(settings) is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o611])
def test_a_key_file_others_may_touch_stops_the_start(key_file: Path, mode: int) -> None:
    key_file.chmod(mode)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            env(dkim_key_file=str(key_file), dkim_selector=SELECTOR, dkim_domain=DOMAIN)
        )
    message = str(caught.value)
    assert message.startswith("TESSERA_DKIM_KEY_FILE: ") and f"mode {mode:04o}" in message
    assert "chmod 600" in message and "\n" not in message


def test_a_read_only_key_file_is_private_enough(key_file: Path) -> None:
    key_file.chmod(0o400)
    assert load_key(key_file, selector=SELECTOR, domain=DOMAIN).selector == SELECTOR


def _garbage_keys(rsa_key: rsa.RSAPrivateKey) -> list[Any]:
    ed = ed25519.Ed25519PrivateKey.generate()
    return [
        pytest.param(b"", "PEM", id="empty"),
        pytest.param(b"x" * 10_000_000, "too large", id="10MB"),
        pytest.param(b"caf\xe9 \xff\xfe", "PEM", id="bad-utf8"),
        pytest.param(
            b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n", "PEM", id="junk"
        ),
        pytest.param(pem(ed), "RSA", id="ed25519"),
        pytest.param(pem(rsa_key, password=b"secret"), "PEM", id="encrypted"),
        pytest.param(
            rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "PEM",
            id="public-key",
        ),
        pytest.param(pem(rsa_key) + b"\x00" * 1000, "", id="trailing-nul"),
    ]


def test_garbage_key_files_stop_the_start(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    for case in _garbage_keys(rsa_key):
        data, match = case.values
        path = write_key(tmp_path / f"{case.id}.pem", data)
        try:
            load_key(path, selector=SELECTOR, domain=DOMAIN)
        except DkimKeyError as exc:
            assert exc.setting == "dkim_key_file", case.id
            assert match in str(exc) and "\n" not in str(exc), (case.id, str(exc))
        else:
            # PEM readers skip what follows the END line: such a key is a key.
            assert case.id == "trailing-nul"


@pytest.mark.parametrize(
    ("what", "make", "match"),
    [
        ("missing", lambda p: p / "nowhere.pem", "no such file"),
        ("directory", lambda p: p, "not a regular file"),
    ],
)
def test_a_key_file_that_is_not_a_file_stops_the_start(
    tmp_path: Path, what: str, make: Callable[[Path], Path], match: str
) -> None:
    values = env(dkim_key_file=str(make(tmp_path)), dkim_selector=SELECTOR, dkim_domain=DOMAIN)
    with pytest.raises(SettingsError, match=f"^TESSERA_DKIM_KEY_FILE: {match}"):
        Settings.from_env(values)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("dkim_selector", "a b"),
        ("dkim_selector", "sel\r\nx"),
        ("dkim_selector", "-x"),
        ("dkim_selector", "sél"),
        ("dkim_selector", HUGE),
        ("dkim_domain", "tickets test"),
        ("dkim_domain", "localhost"),
        ("dkim_domain", "tickets.test\r\nBcc: x@y.test"),
        ("dkim_domain", "1.2.3.4"),
        ("dkim_domain", HUGE),
    ],
)
def test_a_bad_selector_or_domain_stops_the_start(key_file: Path, setting: str, value: str) -> None:
    values = {"dkim_key_file": str(key_file), "dkim_selector": SELECTOR, "dkim_domain": DOMAIN}
    with pytest.raises(ValueError) as caught:
        Settings(**{**values, setting: value})  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(f"{setting}: ") and "\n" not in message
    assert len(message) < 400  # the 10 MB value is not echoed


def test_a_key_replaced_on_disk_is_used_without_a_restart(
    key_file: Path, other_key: rsa.RSAPrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    first = load_key(key_file, selector=SELECTOR, domain=DOMAIN)
    replacement = write_key(key_file.with_name("new.pem"), pem(other_key))
    os.replace(replacement, key_file)
    second = load_key(key_file, selector=SELECTOR, domain=DOMAIN)
    assert first.private_key_pem == pem(rsa_key) and second.private_key_pem == pem(other_key)
    key_file.chmod(0o644)  # loosened after the start: refused at the next send, not used
    with pytest.raises(DkimKeyError, match="mode 0644"):
        load_key(key_file, selector=SELECTOR, domain=DOMAIN)


# --- the signed message survives both transports byte for byte --------------------------------

PLATFORM = Address("Jazz at the Pier", "no-reply@tickets.test")


def mail_variants() -> list[Any]:
    base: dict[str, Any] = {
        "subject": "Vos billets pour la Fête",
        "text": "Bonjour Zoë,\n.a line that starts with a dot\nFrom the organiser\n",
        "html": "<p>Bonjour Zoë,</p>\n<p>voici vos billets.</p>\n",
        "identity": Identity(PLATFORM, None),
        "to": Address("Zoë Müller", "zoe@example.org"),
        "message_id": "<0123456789abcdef0123456789abcdef@tickets.test>",
        "kind": "tickets",
        "date": datetime(2026, 5, 1, 12, 30, tzinfo=UTC),
        "headers": {"X-Tessera-Message": "m-1"},
    }
    long_url = "https://tickets.test/m/" + "t" * 120 + "/unsubscribe"
    return [
        pytest.param(base, id="tickets"),
        pytest.param(
            {
                **base,
                "kind": "message",
                "unsubscribe_url": long_url,  # a 160-character header line, unfolded
                "subject": "Ñews " * 60,  # encoded words over several lines
                "identity": Identity(
                    Address("Camille Müller via Jazz at the Pier", PLATFORM.email),
                    Address("Camille Müller", "camille@gmail.com"),
                ),
            },
            id="news-long-headers",
        ),
        pytest.param(
            {
                **base,
                "text": "ligne " * 400 + "\n" + "é" * 2000 + "\n",  # quoted-printable
                "attachments": [
                    Attachment("ticket-AB12.pdf", "application/pdf", os.urandom(50_000)),
                    Attachment("event.ics", "text/calendar", "SUMMARY:Fête\r\n".encode()),
                ],
            },
            id="attachments",
        ),
    ]


def maildir_bytes(message: EmailMessage) -> bytes:
    """How MaildirMailer serialises a message (transport._with_envelope, without the envelope)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\n"))


@pytest.mark.parametrize("arguments", mail_variants())
def test_every_transport_writes_the_signed_bytes_again(
    arguments: dict[str, Any], rsa_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    unsigned = build_message(**arguments)
    raw = unsigned.as_bytes()
    key = DkimKey(DOMAIN, SELECTOR, pem(rsa_key))
    signed = sign_message(unsigned, key)
    for cte_type in ("8bit", "7bit"):  # aiosmtplib's choice, by the server's 8BITMIME
        wire = flatten_message(signed, cte_type=cte_type)
        assert wire.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        # Everything after the signature is exactly what was signed.
        assert wire.endswith(b"\r\n" + raw) and wire.count(b"DKIM-Signature:") == 1
        assert dkim.verify(wire, dnsfunc=dns_for(rsa_key))
        assert not dkim.verify(wire, dnsfunc=dns_for(other_key))
    stored = maildir_bytes(signed)
    assert stored == flatten_message(signed).replace(b"\r\n", b"\n")
    assert dkim.verify(stored, dnsfunc=dns_for(rsa_key))
    # What readers of the signed message object see is decoded, as in the unsigned mail.
    read = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
    assert str(signed["Subject"]) == str(read["Subject"])
    assert signed["To"].addresses == read["To"].addresses
    assert signed.get_body(("plain",)).get_content() == read.get_body(("plain",)).get_content()


def test_a_header_set_after_signing_is_written_but_breaks_no_other(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    signed = sign_message(
        build_message(**mail_variants()[0].values[0]), DkimKey(DOMAIN, SELECTOR, pem(rsa_key))
    )
    signed["X-Later"] = "not signed, not harmful"
    wire = flatten_message(signed)
    assert b"\r\nX-Later: not signed, not harmful\r\n" in wire
    assert dkim.verify(wire, dnsfunc=dns_for(rsa_key))


def test_a_message_that_cannot_be_signed_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    message = build_message(**mail_variants()[0].values[0])
    del message["From"]
    with pytest.raises(MailError, match="From"):
        sign_message(message, DkimKey(DOMAIN, SELECTOR, pem(rsa_key)))


# --- end to end: the API, the real outbox, a real SMTP server and the maildir ----------------


@pytest.fixture
def settings(settings: Settings, key_file: Path) -> Settings:
    return msgspec.structs.replace(
        settings,
        worker="external",
        dkim_key_file=str(key_file),
        dkim_selector=SELECTOR,
        dkim_domain=DOMAIN,
    )


async def drain(settings: Settings, mailer: Mailer) -> None:
    database = Database(settings.database_url)
    outbox = Outbox(database, settings, mailer)
    try:
        while await outbox.run_once():
            pass
    finally:
        await mailer.close()
        await database.dispose()


def stored_mail(settings: Settings) -> list[bytes]:
    root = Path(settings.mail_dir) / "new"
    return [path.read_bytes() for path in sorted(root.iterdir())] if root.exists() else []


async def signed_venue(api: AsyncTestClient[Litestar]) -> dict[str, Any]:
    """An event with two confirmed bookings, a tickets campaign (PDF and .ics attached) and a
    news campaign sent to them, and one resend."""
    event = await create_event(api, languages=["fr", "en"])
    ticket_type = await create_ticket_type(api, event["id"])
    bookings = [
        await create_booking(
            api,
            event["id"],
            ticket_type["id"],
            2,
            confirm=True,
            buyer={"name": f"Zoë Müller {n}", "email": f"guest{n}@example.org", "language": "fr"},
        )
        for n in range(2)
    ]
    campaigns = [
        {"name": "E-tickets", "attach_pdf": True, "attach_ics": True},
        {
            "name": "News",
            "kind": "message",
            "content": {"fr": {"subject": "Nouvelles — {{ event.name }}", "body": "Bonjour !"}},
        },
    ]
    for body in campaigns:
        made = await api.post(f"/api/v1/events/{event['id']}/campaigns", json=body)
        assert made.status_code == 201, made.text
        sent = await api.post(
            f"/api/v1/campaigns/{made.json()['id']}/send", json={"expected_recipients": 2}
        )
        assert sent.status_code == 202, sent.text
    resent = await api.post(f"/api/v1/bookings/{bookings[0]['id']}/resend", json={})
    assert resent.status_code == 202, resent.text
    return event


async def test_campaign_mail_sent_over_smtp_verifies_with_the_published_key(
    api: AsyncTestClient[Litestar],
    settings: Settings,
    rsa_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
) -> None:
    await signed_venue(api)
    with SmtpSink() as sink:
        await drain(settings, SmtpMailer(sink.url))
    assert len(sink.messages) == 5
    for received in sink.messages:
        assert dkim.verify(received.data, dnsfunc=dns_for(rsa_key)), received.data[:400]
        assert not dkim.verify(received.data, dnsfunc=dns_for(other_key))
    kinds = {received.message()["List-Unsubscribe"] is not None for received in sink.messages}
    assert kinds == {True, False}  # news (one-click unsubscribe) and ticket mail both signed
    assert any(
        part.get_filename() and part.get_filename().endswith(".pdf")
        for received in sink.messages
        for part in received.message().iter_attachments()
    )


async def test_campaign_mail_in_the_maildir_verifies_with_the_published_key(
    api: AsyncTestClient[Litestar],
    settings: Settings,
    rsa_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
) -> None:
    await signed_venue(api)
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    stored = stored_mail(settings)
    assert len(stored) == 5
    for data in stored:
        assert data.startswith(b"Return-Path: <no-reply@tickets.test>\nDelivered-To: ")
        assert dkim.verify(data, dnsfunc=dns_for(rsa_key))
        assert not dkim.verify(data, dnsfunc=dns_for(other_key))
        # Tampering with a signed header breaks it.
        tampered = data.replace(b"\nSubject: ", b"\nSubject: Re: ", 1)
        assert not dkim.verify(tampered, dnsfunc=dns_for(rsa_key))


async def test_a_key_that_went_bad_after_the_start_delays_mail_instead_of_sending_it_unsigned(
    api: AsyncTestClient[Litestar], settings: Settings, key_file: Path
) -> None:
    await signed_venue(api)
    os.chmod(key_file, 0o644)
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    assert stored_mail(settings) == []
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            from sqlalchemy import select

            from server.campaigns.models import Message

            rows = list(await session.scalars(select(Message)))
    finally:
        await database.dispose()
    assert {row.status for row in rows} == {"queued"}  # retried later, with backoff
    assert all("mode 0644" in (row.last_reply or "") for row in rows)


# --- the organiser as sender (branding.sender) ------------------------------------------------

ORGANISER = {"name": "Camille Martin", "email": "billets@festival.fr"}


def mail_of(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def one_resent_mail(
    api: AsyncTestClient[Litestar], settings: Settings, branding: dict[str, Any] | None
) -> EmailMessage:
    """The e-ticket mail of a booking of an event with `branding`, resent and stored."""
    body = {} if branding is None else {"branding": branding}
    event = await create_event(api, **body)
    ticket_type = await create_ticket_type(api, event["id"])
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    resent = await api.post(f"/api/v1/bookings/{booking['id']}/resend", json={})
    assert resent.status_code == 202, resent.text
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    [data] = stored_mail(settings)
    return mail_of(data)


@pytest.mark.parametrize(
    ("domains", "organiser", "from_", "reply_to"),
    [
        pytest.param(
            "festival.fr, other.example",
            ORGANISER,
            "Camille Martin <billets@festival.fr>",
            None,
            id="verified",
        ),
        pytest.param(
            "other.example",
            ORGANISER,
            "Camille Martin via Jazz at the Pier <no-reply@tickets.test>",
            "Camille Martin <billets@festival.fr>",
            id="unverified",
        ),
        pytest.param(
            "gmail.com",  # listed, and still never used as From: its DMARC policy rejects that
            {"name": "Camille Martin", "email": "camille.martin@gmail.com"},
            "Camille Martin via Jazz at the Pier <no-reply@tickets.test>",
            "Camille Martin <camille.martin@gmail.com>",
            id="free-mail",
        ),
        pytest.param(
            "festival.fr",
            {"email": "billets@FESTIVAL.fr"},
            "billets@festival.fr",
            None,
            id="verified-without-a-name",
        ),
        pytest.param(
            "festival.fr",
            None,
            "Jazz at the Pier <no-reply@tickets.test>",
            None,
            id="no-organiser",
        ),
    ],
)
async def test_the_organiser_is_the_sender_only_from_a_verified_domain(
    api: AsyncTestClient[Litestar],
    settings: Settings,
    rsa_key: rsa.RSAPrivateKey,
    domains: str,
    organiser: dict[str, str] | None,
    from_: str,
    reply_to: str | None,
) -> None:
    outbox_settings = msgspec.structs.replace(settings, mail_domains=domains)
    branding = None if organiser is None else {"sender": organiser}
    mail = await one_resent_mail(api, outbox_settings, branding)
    assert str(mail["From"]) == from_
    assert (None if mail["Reply-To"] is None else str(mail["Reply-To"])) == reply_to
    assert dkim.verify(mail.as_bytes(), dnsfunc=dns_for(rsa_key))  # whoever it is from


async def test_the_sender_is_read_patched_and_cleared_with_the_event(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    event = await create_event(api)
    assert event["branding"] == {"sender": None, "colour": None}
    patched = await api.patch(
        f"/api/v1/events/{event['id']}", json={"branding": {"sender": ORGANISER}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["branding"] == {"sender": ORGANISER, "colour": None}
    read = await api.get(f"/api/v1/events/{event['id']}")
    assert read.json()["branding"] == {"sender": ORGANISER, "colour": None}
    untouched = await api.patch(f"/api/v1/events/{event['id']}", json={"name": "Other"})
    assert untouched.json()["branding"] == {"sender": ORGANISER, "colour": None}
    cleared = await api.patch(f"/api/v1/events/{event['id']}", json={"branding": {}})
    assert cleared.json()["branding"] == {"sender": None, "colour": None}


@pytest.mark.parametrize(
    ("sender", "field"),
    [
        pytest.param({"name": "Camille"}, "branding.sender.email", id="no-email"),
        pytest.param({"email": ""}, "branding.sender.email", id="empty-email"),
        pytest.param({"email": "not-an-address"}, "branding.sender.email", id="no-at"),
        pytest.param({"email": "a@localhost.x y"}, "branding.sender.email", id="space"),
        pytest.param({"email": "billets@festival"}, "branding.sender.email", id="dotless"),
        pytest.param({"email": "zoë@festival.fr"}, "branding.sender.email", id="utf8-local"),
        pytest.param({"email": '"a b"@festival.fr'}, "branding.sender.email", id="quoted"),
        pytest.param(
            {"email": "a@festival.fr\r\nBcc: x@evil.example"}, "branding.sender.email", id="crlf"
        ),
        pytest.param({"email": "a@" + "x" * 320 + ".fr"}, "branding.sender.email", id="long-email"),
        pytest.param({"email": "a@" + "x" * 70 + ".fr"}, "branding.sender.email", id="long-label"),
        pytest.param({"email": "a@festival.fr", "name": ""}, "branding.sender.name", id="empty"),
        pytest.param(
            {"email": "a@festival.fr", "name": "C\r\nBcc: x@evil.example"},
            "branding.sender.name",
            id="name-crlf",
        ),
        pytest.param(
            {"email": "a@festival.fr", "name": "=?utf-8?q?C=0D=0ABcc:_x?="},
            "branding.sender.name",
            id="encoded-word",
        ),
        pytest.param(
            {"email": "a@festival.fr", "name": "Camille \u202eevil"},
            "branding.sender.name",
            id="bidi-override",
        ),
        pytest.param(
            {"email": "a@festival.fr", "name": "x" * 201}, "branding.sender.name", id="long"
        ),
        pytest.param({"email": "a@festival.fr", "name": 12}, "branding.sender.name", id="int"),
        pytest.param(
            {"email": "a@festival.fr", "colour": "red"}, "branding.sender.colour", id="extra"
        ),
    ],
)
async def test_a_sender_that_cannot_head_a_mail_is_refused(
    api: AsyncTestClient[Litestar], sender: dict[str, Any], field: str
) -> None:
    created = await api.post("/api/v1/events", json=event_body(branding={"sender": sender}))
    assert created.status_code == 422, created.text[:300]
    fields = [error["field"] for error in problem_of(created)["errors"]]
    assert fields == [field], fields
    event = await create_event(api)
    patched = await api.patch(
        f"/api/v1/events/{event['id']}", json={"branding": {"sender": sender}}
    )
    assert patched.status_code == 422
    # A patch's nested body is reported on its object (validation.py unwraps `X | None` only).
    [error] = problem_of(patched)["errors"]
    assert field.startswith(error["field"]) and error["field"].startswith("branding.sender")


@pytest.mark.parametrize("branding", ["red", [], {"sender": "a@festival.fr"}, {"logo": "x"}])
async def test_branding_is_an_object_of_known_fields(
    api: AsyncTestClient[Litestar], branding: Any
) -> None:
    created = await api.post("/api/v1/events", json=event_body(branding=branding))
    assert created.status_code == 422, created.text[:300]


async def test_a_10_mb_sender_is_refused_before_it_is_read(api: AsyncTestClient[Litestar]) -> None:
    sender = {"email": "a@festival.fr", "name": "x" * 10_000_000}
    created = await api.post("/api/v1/events", json=event_body(branding={"sender": sender}))
    assert created.status_code == 413


# --- e-tickets sent on confirmation (event.auto_send_tickets) ---------------------------------


async def auto_event(
    api: AsyncTestClient[Litestar], *, auto: bool = True, capacity: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    event = await create_event(api, auto_send_tickets=auto)
    ticket_type = await create_ticket_type(api, event["id"], capacity=capacity)
    return event, ticket_type


async def ledger(api: AsyncTestClient[Litestar], booking_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/v1/bookings/{booking_id}/messages")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_auto_send_is_an_event_option_off_by_default(
    api: AsyncTestClient[Litestar],
) -> None:
    plain = await create_event(api)
    assert plain["auto_send_tickets"] is False
    event, _ = await auto_event(api)
    assert event["auto_send_tickets"] is True
    read = await api.get(f"/api/v1/events/{event['id']}")
    assert read.json()["auto_send_tickets"] is True
    off = await api.patch(f"/api/v1/events/{event['id']}", json={"auto_send_tickets": False})
    assert off.status_code == 200 and off.json()["auto_send_tickets"] is False
    kept = await api.patch(f"/api/v1/events/{event['id']}", json={"name": "Renamed"})
    assert kept.json()["auto_send_tickets"] is False


@pytest.mark.parametrize("value", ["true", 1, None, [], {"on": True}])
async def test_auto_send_must_be_a_boolean(api: AsyncTestClient[Litestar], value: Any) -> None:
    created = await api.post("/api/v1/events", json=event_body(auto_send_tickets=value))
    assert created.status_code == 422
    assert [e["field"] for e in problem_of(created)["errors"]] == ["auto_send_tickets"]
    event = await create_event(api)
    patched = await api.patch(f"/api/v1/events/{event['id']}", json={"auto_send_tickets": value})
    assert patched.status_code == 422


async def test_confirming_a_booking_mails_its_e_tickets_once(
    api: AsyncTestClient[Litestar], settings: Settings, rsa_key: rsa.RSAPrivateKey
) -> None:
    event, ticket_type = await auto_event(api)
    pending = await create_booking(api, event["id"], ticket_type["id"], 2)
    assert await ledger(api, pending["id"]) == []  # a pending booking has no tickets to send
    confirmed = await api.post(f"/api/v1/bookings/{pending['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    booking = confirmed.json()
    assert set(booking) == set(pending) and booking["status"] == "confirmed"  # the same answer
    again = await api.post(f"/api/v1/bookings/{pending['id']}/confirm")
    assert again.status_code == 200 and again.json()["tickets"] == booking["tickets"]
    [row] = await ledger(api, pending["id"])
    assert (row["source"], row["status"], row["to"]) == ("auto", "queued", "camille@example.org")
    assert row["campaign_id"] is None and row["language"] == "fr"

    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    await api.post(f"/api/v1/bookings/{pending['id']}/confirm")  # a third time, after the send
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    [data] = stored_mail(settings)
    mail = mail_of(data)
    assert str(mail["To"]) == "Camille Martin <camille@example.org>"
    assert mail["Message-ID"] == row["message_id"] and mail["List-Unsubscribe"] is None
    text = mail.get_body(("plain",)).get_content()
    for ticket in booking["tickets"]:
        assert ticket["link"] in text and ticket["code"] in text
    assert dkim.verify(data, dnsfunc=dns_for(rsa_key))
    [sent] = await ledger(api, pending["id"])
    assert sent["status"] == "sent"


async def test_a_booking_confirmed_at_creation_mails_its_e_tickets(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    event, ticket_type = await auto_event(api)
    booking = await create_booking(api, event["id"], ticket_type["id"], 1, confirm=True)
    [row] = await ledger(api, booking["id"])
    assert row["source"] == "auto"
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    [data] = stored_mail(settings)
    assert booking["tickets"][0]["link"] in mail_of(data).get_body(("plain",)).get_content()


async def test_without_the_option_confirming_mails_nothing(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    event, ticket_type = await auto_event(api, auto=False)
    pending = await create_booking(api, event["id"], ticket_type["id"])
    await api.post(f"/api/v1/bookings/{pending['id']}/confirm")
    await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    assert stored_mail(settings) == []


async def test_a_confirmation_that_fails_queues_no_mail(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    event, ticket_type = await auto_event(api, capacity=1)
    pending = await create_booking(api, event["id"], ticket_type["id"], 2)
    refused = await api.post(f"/api/v1/bookings/{pending['id']}/confirm")
    assert refused.status_code == 409
    created = await api.post(
        f"/api/v1/events/{event['id']}/bookings",
        json={
            "buyer": {"name": "Late", "email": "late@example.org", "language": "en"},
            "items": [{"ticket_type_id": ticket_type["id"], "quantity": 2}],
            "confirm": True,
        },
    )
    assert created.status_code == 409
    assert await ledger(api, pending["id"]) == []
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    assert stored_mail(settings) == []


async def test_a_booking_cancelled_before_its_mail_went_gets_no_tickets_by_mail(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    event, ticket_type = await auto_event(api)
    booking = await create_booking(api, event["id"], ticket_type["id"], confirm=True)
    await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    assert stored_mail(settings) == []
    [row] = await ledger(api, booking["id"])
    assert row["status"] == "failed" and row["last_reply"] == "no valid ticket left to send"


async def test_two_confirms_at_once_mail_the_tickets_once(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    import asyncio

    event, ticket_type = await auto_event(api)
    pending = await create_booking(api, event["id"], ticket_type["id"], 3)
    answers = await asyncio.gather(
        *(api.post(f"/api/v1/bookings/{pending['id']}/confirm") for _ in range(4))
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert len(await ledger(api, pending["id"])) == 1
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    assert len(stored_mail(settings)) == 1


async def test_bookings_made_in_code_as_the_demo_does_are_mailed_too(
    api: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """`tessera demo` and other callers of the service pass no settings: the Message-ID
    domain is then the issuer's base URL host, the default platform sender's."""
    from server.bookings.schemas import BookingCreate, BookingItemIn, Buyer
    from server.bookings.service import create_booking as create_in_code
    from server.keys.service import KeyRing, Keystore, ensure_signing_key
    from server.tickets.service import TicketIssuer

    event, ticket_type = await auto_event(api)
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            keyring = KeyRing(Keystore(settings.keys_path))
            await ensure_signing_key(session, keyring.keystore)
            issuer = TicketIssuer(await keyring.keys(session), settings.public_base_url)
            data = BookingCreate(
                buyer=Buyer(name="Jonas Weber", email="jonas@example.org", language="de"),
                items=[BookingItemIn(ticket_type["id"], 1)],
                confirm=True,
            )
            booking = await create_in_code(session, event["id"], data, issuer)
    finally:
        await database.dispose()
    [row] = await ledger(api, booking.id)
    assert row["source"] == "auto" and row["message_id"].endswith("@tickets.test>")
    assert row["language"] == "de"  # the built-in e-ticket mail is written in all three
    await drain(settings, MaildirMailer(Path(settings.mail_dir)))
    [stored] = stored_mail(settings)
    assert str(mail_of(stored)["To"]) == "Jonas Weber <jonas@example.org>"
