"""The outgoing mail: sender identity, addresses, headers and parts, header injection, DKIM.

Messages are parsed back with the standard library's default policy, as a mail client would;
DKIM signatures are checked with dkimpy against a key served by a local DNS function, and once
after a trip through a real SMTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart
from typing import Any

import aiosmtplib
import dkim  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from server.campaigns.mail import (
    ALLOWED_HEADERS,
    Address,
    Attachment,
    Identity,
    MailError,
    build_message,
    check_address,
    check_domain,
    dkim_sign,
    is_free_mail_domain,
    new_message_id,
    sender_identity,
)
from tests.ticket_renderer.factories import ticket_view
from ticket_renderer import render_ics, render_ticket_pdf

PLATFORM = Address("Tessera", "no-reply@tessera.example")
ORGANISER = Address("Camille", "camille@festival.fr")
GUEST = Address("Zoë Müller", "zoe@example.org")
WHEN = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
UNSUBSCRIBE = "https://tessera.example/m/tok123/unsubscribe"
HUGE = "x" * 10_000_000
BAD_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")  # what a Latin-1 file decodes to

# Payloads that would end a header line early, hide in it, or survive encoding and come back.
INJECTIONS = [
    pytest.param("a\rb", id="CR"),
    pytest.param("a\nb", id="LF"),
    pytest.param("a\r\nBcc: victim@example.com", id="CRLF-Bcc"),
    pytest.param("a\x00b", id="NUL"),
    pytest.param("a\tb", id="TAB"),
    pytest.param("a\x1b[31mb", id="ESC"),
    pytest.param("a\x7fb", id="DEL"),
    pytest.param("a\x85b", id="NEL-U+0085"),
    pytest.param("a\u2028b", id="LINE-SEPARATOR-U+2028"),
    pytest.param("a\u2029b", id="PARAGRAPH-SEPARATOR-U+2029"),
    pytest.param("a\u202eb", id="RTL-OVERRIDE"),
    pytest.param("=?utf-8?q?a=0D=0ABcc:_victim@example.com?=", id="encoded-word-CRLF"),
    pytest.param("=?utf-8?b?YQ0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?=", id="encoded-word-b64"),
    pytest.param(BAD_UTF8, id="bad-UTF-8"),
    pytest.param(HUGE, id="10MB"),
]


def build(**overrides: Any) -> EmailMessage:
    """A valid tickets mail; any argument of build_message can be overridden."""
    arguments: dict[str, Any] = {
        "subject": "Vos billets pour la Fête",
        "text": "Bonjour Zoë,\nvoici vos billets.\n",
        "html": "<p>Bonjour Zoë,</p>\n<p>voici vos billets.</p>\n",
        "identity": Identity(PLATFORM, None),
        "to": GUEST,
        "message_id": "<0123456789abcdef0123456789abcdef@tessera.example>",
        "kind": "tickets",
        "date": WHEN,
    }
    arguments.update(overrides)
    return build_message(**arguments)


def news(**overrides: Any) -> EmailMessage:
    return build(**{"kind": "message", "unsubscribe_url": UNSUBSCRIBE, **overrides})


def parse(message: EmailMessage | bytes) -> EmailMessage:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_of(part: MIMEPart) -> str:
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")  # the wire's line ends, as a client shows them


# --- sender identity ---------------------------------------------------------------------------

FALLBACK = Identity(Address("Camille via Tessera", PLATFORM.email), ORGANISER)

IDENTITY_CASES = [
    pytest.param(ORGANISER, {"festival.fr"}, Identity(ORGANISER, None), id="verified"),
    pytest.param(
        Address("Camille", "Camille@Festival.FR"),
        {"FESTIVAL.fr"},
        Identity(Address("Camille", "Camille@festival.fr"), None),
        id="verified-any-case",
    ),
    pytest.param(
        Address("Camille", "camille@festival.fr"),
        {" festival.fr. "},
        Identity(ORGANISER, None),
        id="verified-setting-with-spaces-and-root-dot",
    ),
    pytest.param(ORGANISER, set(), FALLBACK, id="nothing-verified"),
    pytest.param(ORGANISER, {"other.fr"}, FALLBACK, id="unverified"),
    pytest.param(
        Address("Camille", "camille@tickets.festival.fr"),
        {"festival.fr"},
        Identity(
            Address("Camille via Tessera", PLATFORM.email),
            Address("Camille", "camille@tickets.festival.fr"),
        ),
        id="subdomain-not-implied",
    ),
    pytest.param(ORGANISER, {"tickets.festival.fr"}, FALLBACK, id="parent-not-implied"),
    pytest.param(
        Address("Camille", "camille@gmail.com"),
        {"gmail.com"},
        Identity(
            Address("Camille via Tessera", PLATFORM.email),
            Address("Camille", "camille@gmail.com"),
        ),
        id="free-mail-verified-anyway",
    ),
    pytest.param(
        Address("Jörg", "jorg@MÜNSTER.de"),
        {"münster.de"},
        Identity(Address("Jörg", "jorg@xn--mnster-3ya.de"), None),
        id="idn-verified",
    ),
    pytest.param(
        Address("Jörg", "jorg@münster.de"),
        {"xn--mnster-3ya.de"},
        Identity(Address("Jörg", "jorg@xn--mnster-3ya.de"), None),
        id="idn-verified-as-punycode",
    ),
    pytest.param(
        Address(None, "camille@festival.fr"),
        set(),
        Identity(PLATFORM, Address(None, "camille@festival.fr")),
        id="nameless-organiser-unverified",
    ),
    pytest.param(
        Address("   ", "camille@festival.fr"),
        {"festival.fr"},
        Identity(Address(None, "camille@festival.fr"), None),
        id="blank-name-is-no-name",
    ),
    pytest.param(None, {"festival.fr"}, Identity(PLATFORM, None), id="no-organiser"),
]


@pytest.mark.parametrize(("organiser", "verified", "expected"), IDENTITY_CASES)
def test_sender_identity(organiser: Address | None, verified: set[str], expected: Identity) -> None:
    got = sender_identity(organiser, verified_domains=frozenset(verified), platform=PLATFORM)
    assert got == expected


def test_a_platform_without_a_name_lends_the_organiser_name_alone() -> None:
    platform = Address(None, "no-reply@127.0.0.1")  # the embedded default
    got = sender_identity(ORGANISER, verified_domains=frozenset(), platform=platform)
    assert got == Identity(Address("Camille", "no-reply@127.0.0.1"), ORGANISER)


@pytest.mark.parametrize(
    "domain",
    [
        "gmail.com", "googlemail.com", "outlook.com", "outlook.fr", "hotmail.com", "hotmail.fr",
        "hotmail.co.uk", "live.com", "live.fr", "msn.com", "yahoo.com", "yahoo.fr",
        "yahoo.co.jp", "yahoo.com.au", "icloud.com", "me.com", "gmx.de", "gmx.net", "gmx.ch",
        "web.de", "free.fr", "orange.fr", "wanadoo.fr", "laposte.net", "proton.me",
        "protonmail.com", "aol.com", "bluewin.ch", "t-online.de", "mail.gmail.com",
        "GMAIL.COM",
    ],
)  # fmt: skip
def test_free_mail_domains_always_fall_back(domain: str) -> None:
    assert is_free_mail_domain(domain)
    organiser = Address("Camille", f"camille@{domain}")
    got = sender_identity(organiser, verified_domains=frozenset({domain}), platform=PLATFORM)
    assert got.sender.email == PLATFORM.email
    assert got.reply_to is not None
    assert got.reply_to.email == f"camille@{domain.lower()}"


@pytest.mark.parametrize(
    "domain",
    ["festival.fr", "gmail.festival.fr", "livemusic.fr", "live.events", "yahoo.mybank.com"],
)
def test_own_domains_that_only_look_like_free_mail_are_not(domain: str) -> None:
    assert not is_free_mail_domain(domain)
    organiser = Address("Camille", f"camille@{domain}")
    got = sender_identity(organiser, verified_domains=frozenset({domain}), platform=PLATFORM)
    assert got == Identity(organiser, None)


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sender_identity_refuses_unsafe_organiser_names(payload: str) -> None:
    with pytest.raises(MailError) as caught:
        sender_identity(
            Address(payload, ORGANISER.email), verified_domains=frozenset(), platform=PLATFORM
        )
    assert caught.value.field == "organiser"


@pytest.mark.parametrize("bad", ["", "a b.fr", "fest\r\nival.fr", "x" * 300, "festival_fr.com"])
def test_sender_identity_refuses_a_bad_verified_domain_setting(bad: str) -> None:
    with pytest.raises(MailError) as caught:
        sender_identity(ORGANISER, verified_domains=frozenset({bad}), platform=PLATFORM)
    assert caught.value.field == "verified_domains"


def test_sender_identity_refuses_a_bad_organiser_address() -> None:
    with pytest.raises(MailError) as caught:
        sender_identity(
            Address("Camille", "camille@festival.fr\r\nBcc: x@y.com"),
            verified_domains=frozenset(),
            platform=PLATFORM,
        )
    assert caught.value.field == "organiser"


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("guest@example.com", "guest@example.com"),
        ("Guest.Name@EXAMPLE.COM", "Guest.Name@example.com"),
        ("a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("zoe@exämple.org", "zoe@xn--exmple-cua.org"),
        ("zoe@EXÄMPLE.org", "zoe@xn--exmple-cua.org"),
        ("hans@straße.de", "hans@xn--strae-oqa.de"),  # IDNA 2008: ß is not "ss"
        ("taro@例え.テスト", "taro@xn--r8jz45g.xn--zckzah"),
        ("x@a.b", "x@a.b"),
    ],
)
def test_check_address_normalises_the_domain(given: str, expected: str) -> None:
    assert check_address(given) == expected


def _long_address(length: int) -> str:
    """A 64-character local part at a domain of three long labels, `length` characters in all."""
    return "l" * 64 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * (length - 197) + ".com"


def test_check_address_length_bound_is_254() -> None:
    assert len(_long_address(254)) == 254
    assert check_address(_long_address(254)) == _long_address(254)
    with pytest.raises(MailError, match="254"):
        check_address(_long_address(255))


@pytest.mark.parametrize(
    "bad",
    [
        "", "no-at-sign", "@example.com", "guest@", "guest@@example.com", "a@b@example.com",
        "guest @example.com", " guest@example.com", "guest@example.com ", "guest@exa mple.com",
        "guest@example.com\r\n", "guest@example.com\nBcc: victim@example.com",
        "guest@example.com\rBcc: victim@example.com", "gu\x00est@example.com",
        "guest@example.com\x00", "guest\u2028@example.com", "guest\x85@example.com",
        "guest\u00a0@example.com", '"quoted"@example.com', '"a b"@example.com', "a..b@example.com",
        ".a@example.com", "a.@example.com", "zoé@example.com", "guest@localhost",
        "guest@127.0.0.1", "guest@[127.0.0.1]", "guest@b_c.com", "guest@-b.com", "guest@b-.com",
        "guest@b..com", "guest@example.com.", "guest@.example.com", "guest@xn--zz.com",
        "guest@example.123", "l" * 65 + "@example.com", "guest@" + "b" * 64 + ".com",
        "Name <guest@example.com>", "guest@example.com, other@example.com",
        "=?utf-8?q?x?=@example.com", f"gu{BAD_UTF8}@example.com", HUGE, HUGE + "@example.com",
        "guest@" + "a." * 200 + "com",
    ],
)  # fmt: skip
def test_check_address_refuses(bad: str) -> None:
    with pytest.raises(MailError):
        check_address(bad)


@pytest.mark.parametrize("bad", [None, b"guest@example.com", 42, ["guest@example.com"]])
def test_check_address_refuses_what_is_not_a_string(bad: Any) -> None:
    with pytest.raises(MailError):
        check_address(bad)


def test_check_address_error_is_a_value_error_without_a_field() -> None:
    with pytest.raises(ValueError, match="not an email address") as caught:
        check_address("no-at-sign")
    assert isinstance(caught.value, MailError)
    assert caught.value.field == ""
    assert str(caught.value) == caught.value.detail


@pytest.mark.parametrize("given", ["no-reply@localhost", "no-reply@127.0.0.1"])
def test_the_platform_may_send_from_a_local_host(given: str) -> None:
    assert check_address(given, local=True) == given
    with pytest.raises(MailError):
        check_address(given)


@pytest.mark.parametrize("bad", ["", ".", "a..b", "a b.com", "-a.com", "a" * 254, HUGE, "a\nb"])
def test_check_domain_refuses(bad: str) -> None:
    with pytest.raises(MailError):
        check_domain(bad, local=True)


# --- Message-ID --------------------------------------------------------------------------------


def test_message_ids_are_128_random_bits_at_the_domain() -> None:
    assert re.fullmatch(r"<[0-9a-f]{32}@tessera\.example>", new_message_id("Tessera.Example"))
    assert new_message_id("münster.de").endswith("@xn--mnster-3ya.de>")
    assert new_message_id("127.0.0.1").endswith("@127.0.0.1>")
    assert new_message_id("localhost").endswith("@localhost>")


def test_message_ids_do_not_repeat_over_100k() -> None:
    ids = {new_message_id("tessera.example") for _ in range(100_000)}
    assert len(ids) == 100_000


@pytest.mark.parametrize("bad", ["", "a b", "x\r\ny.com", "<x>", "a@b.com", HUGE])
def test_message_id_domain_garbage_is_refused(bad: str) -> None:
    with pytest.raises(MailError):
        new_message_id(bad)


def test_a_new_message_id_is_accepted_and_kept_by_build_message() -> None:
    message_id = new_message_id("tessera.example")
    assert parse(build(message_id=message_id))["Message-ID"] == message_id


@pytest.mark.parametrize(
    "bad",
    [
        "", "0123@tessera.example", "<0123>", "<0123@tessera.example",
        "<01 23@tessera.example>", "<0123@tessera.example>\r\nBcc: victim@example.com",
        "<0123@tessera.example>\x00", "<é@tessera.example>", "<" + HUGE + "@x>", None,
    ],
)  # fmt: skip
def test_build_message_refuses_a_bad_message_id(bad: Any) -> None:
    with pytest.raises(MailError) as caught:
        build(message_id=bad)
    assert caught.value.field == "message_id"


# --- the message -------------------------------------------------------------------------------


def test_headers_parse_back_as_given() -> None:
    identity = sender_identity(ORGANISER, verified_domains=frozenset(), platform=PLATFORM)
    parsed = parse(build(identity=identity))
    (sender,) = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Camille via Tessera", PLATFORM.email)
    (reply_to,) = parsed["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ("Camille", "camille@festival.fr")
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Zoë Müller", "zoe@example.org")
    assert parsed["Subject"] == "Vos billets pour la Fête"
    assert parsed["Date"].datetime == WHEN
    assert parsed["Message-ID"] == "<0123456789abcdef0123456789abcdef@tessera.example>"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert parsed.get_content_type() == "multipart/alternative"
    for absent in ("List-Unsubscribe", "List-Unsubscribe-Post", "Bcc", "Cc", "Sender"):
        assert parsed[absent] is None


def test_no_reply_to_when_the_organiser_is_the_sender() -> None:
    identity = sender_identity(
        ORGANISER, verified_domains=frozenset({"festival.fr"}), platform=PLATFORM
    )
    parsed = parse(build(identity=identity))
    assert parsed["From"].addresses[0].addr_spec == "camille@festival.fr"
    assert parsed["Reply-To"] is None


def test_text_and_html_parts_decode_to_what_was_given() -> None:
    text = "Bonjour Zoë,\nvotre place : Rang C \u2013 12.\n"
    html = '<p>Bonjour Zoë, <a href="https://x.example/t/1">billet</a> €</p>\n'
    parsed = parse(build(text=text, html=html))
    plain, rich = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert rich.get_content_type() == "text/html"
    assert body_of(plain) == text
    assert body_of(rich) == html
    assert plain["MIME-Version"] is None  # only the top level carries one


def test_a_body_without_a_final_newline_gets_one() -> None:
    parsed = parse(build(text="one line", html="<p>one</p>"))
    assert [body_of(p) for p in parsed.iter_parts()] == ["one line\n", "<p>one</p>\n"]


def test_the_wire_form_is_7bit_crlf_and_within_998_octets_per_line() -> None:
    long_html = "<p>" + "é" * 3000 + "</p>\n"  # one long non-ASCII line
    long_ascii = "<p>" + "a" * 5000 + "</p>\n"
    for html in (long_html, long_ascii):
        raw = build(html=html, text="mixed\rline\r\nendings\n").as_bytes()
        assert raw.isascii()
        assert b"\r" not in raw.replace(b"\r\n", b"")
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        _, rich = parse(raw).iter_parts()
        assert body_of(rich) == html
    plain, _ = parse(build(text="mixed\rline\r\nendings\n")).iter_parts()
    assert body_of(plain) == "mixed\nline\nendings\n"


def test_non_ascii_names_and_subjects_are_encoded_and_round_trip() -> None:
    subject = "Billets für das Fest \u2013 日本 🎫"
    raw = build(subject=subject, to=Address("Łukasz Ñúñez 🎫", "lukasz@example.pl")).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head
    parsed = parse(raw)
    assert parsed["Subject"] == subject
    assert parsed["To"].addresses[0].display_name == "Łukasz Ñúñez 🎫"


@pytest.mark.parametrize(
    "name",
    ['Müller, "Camille" <evil@example.com>', "a\\b (c) d;e:f@g", "Bcc: victim@example.com", "<>"],
)
def test_names_with_specials_stay_one_name_of_one_address(name: str) -> None:
    parsed = parse(build(to=Address(name, "zoe@example.org")))
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "zoe@example.org")
    assert parsed["Bcc"] is None
    assert parsed["Cc"] is None


def test_an_idn_recipient_is_sent_as_punycode() -> None:
    parsed = parse(build(to=Address("Jörg", "jorg@münster.de")))
    assert parsed["To"].addresses[0].addr_spec == "jorg@xn--mnster-3ya.de"


def test_a_test_mail_says_so_before_the_subject_once() -> None:
    assert parse(build(test=True))["Subject"] == "[TEST] Vos billets pour la Fête"
    assert parse(build(test=True, subject="[TEST] déjà"))["Subject"] == "[TEST] déjà"
    assert parse(build(test=False))["Subject"] == "Vos billets pour la Fête"


def test_the_date_defaults_to_now_and_keeps_a_given_zone() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    sent = parse(build(date=None))["Date"].datetime
    assert before <= sent <= datetime.now(UTC) + timedelta(seconds=1)
    paris = timezone(timedelta(hours=2))
    assert parse(build(date=WHEN.astimezone(paris)))["Date"].datetime == WHEN


def test_a_naive_date_is_refused() -> None:
    for bad in (datetime(2026, 5, 1, 12, 30), "2026-05-01", 0):
        with pytest.raises(MailError) as caught:
            build(date=bad)
        assert caught.value.field == "date"


# --- attachments -------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
ICS = "BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nLOCATION:Genève\r\nEND:VCALENDAR\r\n".encode()


def test_attachments_make_a_mixed_message_around_the_alternative() -> None:
    parsed = parse(
        build(
            attachments=[
                Attachment("billet-Zoë.pdf", "application/pdf", PDF),
                Attachment("event.ics", "text/calendar; method=PUBLISH", ICS),
            ]
        )
    )
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, pdf, ics = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, rich = alternative.iter_parts()
    assert body_of(plain) == "Bonjour Zoë,\nvoici vos billets.\n"
    assert body_of(rich) == "<p>Bonjour Zoë,</p>\n<p>voici vos billets.</p>\n"
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "billet-Zoë.pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_content() == PDF
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_filename() == "event.ics"
    assert ics.get_param("method") == "PUBLISH"
    assert ics.get_content_charset() == "utf-8"
    assert ics.get_payload(decode=True) == ICS


def test_a_text_attachment_that_is_not_utf8_gets_no_charset() -> None:
    parsed = parse(build(attachments=[Attachment("a.txt", "text/plain", b"caf\xe9")]))
    _, attachment = parsed.iter_parts()
    assert attachment.get_content_charset() is None
    assert attachment.get_payload(decode=True) == b"caf\xe9"


def test_the_real_ticket_pdf_and_ics_attach_intact() -> None:
    view = ticket_view(venue="Salle Pleyel, 252 rue du Faubourg Saint-Honoré")
    pdf, ics = render_ticket_pdf(view), render_ics(view)
    parsed = parse(
        build(
            attachments=[
                Attachment("ticket.pdf", "application/pdf", pdf),
                Attachment("event.ics", "text/calendar; method=PUBLISH", ics),
            ]
        )
    )
    _, got_pdf, got_ics = parsed.iter_parts()
    assert got_pdf.get_payload(decode=True) == pdf
    assert pdf.startswith(b"%PDF-")
    assert got_ics.get_payload(decode=True) == ics
    assert got_ics.get_content_charset() == "utf-8"


@pytest.mark.parametrize(
    ("attachment", "field"),
    [
        (Attachment("", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("  ", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("../x.pdf", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("a/b.pdf", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("a\\b.pdf", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment('a"b.pdf', "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("..", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("a\r\nb.pdf", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("a\x00.pdf", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("=?utf-8?q?a?=.pdf", "application/pdf", PDF), "attachments[0].filename"),
        (Attachment(HUGE, "application/pdf", PDF), "attachments[0].filename"),
        (Attachment("a.pdf", "", PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", "pdf", PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", "multipart/mixed", PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", "message/rfc822", PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", "text/html\r\nBcc: x@y.com", PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", 'application/pdf; name="x"', PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", "application/" + HUGE, PDF), "attachments[0].content_type"),
        (Attachment("a.pdf", "application/pdf", b""), "attachments[0].data"),
        (Attachment("a.pdf", "application/pdf", "text"), "attachments[0].data"),  # type: ignore[arg-type]
    ],
)
def test_bad_attachments_are_refused(attachment: Attachment, field: str) -> None:
    with pytest.raises(MailError) as caught:
        build(attachments=[attachment])
    assert caught.value.field == field


def test_too_many_or_too_large_attachments_are_refused() -> None:
    with pytest.raises(MailError, match="at most 20"):
        build(attachments=[Attachment(f"{i}.pdf", "application/pdf", PDF) for i in range(21)])
    big = Attachment("big.pdf", "application/pdf", b"x" * 3_500_000)
    with pytest.raises(MailError, match="bytes in all"):
        build(attachments=[big, big, Attachment("c.pdf", "application/pdf", b"x")])
    assert parse(build(attachments=[big, big])).get_content_type() == "multipart/mixed"


def test_an_attachment_list_of_something_else_is_refused() -> None:
    with pytest.raises(MailError) as caught:
        build(attachments=[{"filename": "a.pdf"}])
    assert caught.value.field == "attachments[0]"


# --- List-Unsubscribe --------------------------------------------------------------------------


def test_message_mail_carries_one_click_unsubscribe() -> None:
    parsed = parse(news())
    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_url_stays_one_unencoded_line() -> None:
    url = "https://tessera.example/m/" + "T" * 700 + "/unsubscribe?sig=" + "s" * 100
    raw = news(unsubscribe_url=url).as_bytes()
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert parse(raw)["List-Unsubscribe"] == f"<{url}>"


def test_http_unsubscribe_is_accepted_only_on_a_loopback_host() -> None:
    for url in ("http://127.0.0.1:8000/m/t/unsubscribe", "http://localhost/u", "http://[::1]/u"):
        assert parse(news(unsubscribe_url=url))["List-Unsubscribe"] == f"<{url}>"
    with pytest.raises(MailError):
        news(unsubscribe_url="http://tessera.example/m/t/unsubscribe")


def test_message_mail_without_unsubscribe_is_refused() -> None:
    with pytest.raises(MailError) as caught:
        build(kind="message")
    assert caught.value.field == "unsubscribe_url"
    with pytest.raises(MailError):
        build(kind="message", test=True)  # a test shows the real thing


def test_ticket_mail_is_transactional_and_refuses_an_unsubscribe_url() -> None:
    assert parse(build())["List-Unsubscribe"] is None
    with pytest.raises(MailError) as caught:
        build(unsubscribe_url=UNSUBSCRIBE)
    assert caught.value.field == "unsubscribe_url"


@pytest.mark.parametrize(
    "bad",
    [
        "", "https://", "https:///path", "ftp://tessera.example/u", "mailto:u@tessera.example",
        "javascript:alert(1)", "tessera.example/u", "https://tessera.example/u v",
        "https://tessera.example/<u>", "https://tessera.example/u>,<https://evil.example/",
        "https://tessera.example/u\r\nBcc: x@y.com", "https://tessera.example/ü",
        "https://[::1/u", "https://tessera.example/" + "a" * 1000, HUGE, 42,
    ],
)  # fmt: skip
def test_bad_unsubscribe_urls_are_refused(bad: Any) -> None:
    with pytest.raises(MailError) as caught:
        news(unsubscribe_url=bad)
    assert caught.value.field == "unsubscribe_url"


@pytest.mark.parametrize("kind", ["", "news", "TICKETS", None])
def test_an_unknown_kind_is_refused(kind: Any) -> None:
    with pytest.raises(MailError) as caught:
        build(kind=kind)
    assert caught.value.field == "kind"


# --- extra headers -----------------------------------------------------------------------------


def test_allowed_extra_headers_are_added_in_their_own_case() -> None:
    raw = build(
        headers={"x-tessera-campaign": "c-42", "X-Tessera-Message": "m-7", "Feedback-ID": "a:b"}
    ).as_bytes()
    parsed = parse(raw)
    assert parsed["X-Tessera-Campaign"] == "c-42"
    assert parsed["X-Tessera-Message"] == "m-7"
    assert parsed["Feedback-ID"] == "a:b"
    assert b"\r\nX-Tessera-Campaign: c-42\r\n" in raw
    assert set(ALLOWED_HEADERS) == {"X-Tessera-Campaign", "X-Tessera-Message", "Feedback-ID"}


def test_a_long_extra_header_value_is_not_turned_into_encoded_words() -> None:
    value = "a:b:" + "c" * 180 + ":tessera"
    raw = build(headers={"Feedback-ID": value}).as_bytes()
    assert f"\r\nFeedback-ID: {value}\r\n".encode() in raw


@pytest.mark.parametrize(
    "name",
    [
        "Bcc",
        "Cc",
        "From",
        "To",
        "Subject",
        "Reply-To",
        "Content-Type",
        "X-Other",
        "",
        "X-Tessera-Campaign\r\nBcc",
    ],
)
def test_headers_outside_the_allow_list_are_refused(name: str) -> None:
    with pytest.raises(MailError) as caught:
        build(headers={name: "value"})
    assert caught.value.field == "headers"


def test_an_allowed_header_given_twice_is_refused() -> None:
    with pytest.raises(MailError, match="twice"):
        build(headers={"X-Tessera-Message": "a", "x-tessera-message": "b"})


@pytest.mark.parametrize(
    "payload", [*INJECTIONS, pytest.param("", id="empty"), pytest.param("zoé", id="non-ascii")]
)
def test_unsafe_extra_header_values_are_refused(payload: str) -> None:
    with pytest.raises(MailError) as caught:
        build(headers={"X-Tessera-Message": payload})
    assert caught.value.field == "headers.X-Tessera-Message"


# --- header injection and garbage ------------------------------------------------------------

INJECTION_TARGETS: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
    ("to", lambda p: {"to": Address(p, "zoe@example.org")}),
    ("from", lambda p: {"identity": Identity(Address(p, PLATFORM.email), None)}),
    ("reply_to", lambda p: {"identity": Identity(PLATFORM, Address(p, ORGANISER.email))}),
    ("subject", lambda p: {"subject": p}),
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize(
    ("field", "where"), INJECTION_TARGETS, ids=[t[0] for t in INJECTION_TARGETS]
)
def test_header_injection_is_refused_everywhere(
    field: str, where: Callable[[str], dict[str, Any]], payload: str
) -> None:
    with pytest.raises(MailError) as caught:
        build(**where(payload))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("to", lambda p: {"to": Address("Zoë", p)}),
        ("from", lambda p: {"identity": Identity(Address("T", p), None)}),
        ("reply_to", lambda p: {"identity": Identity(PLATFORM, Address("C", p))}),
    ],
)
@pytest.mark.parametrize(
    "payload",
    ["zoe@example.org\r\nBcc: victim@example.com", "zoe@example.org, victim@example.com", ""],
)
def test_injection_through_the_address_is_refused(
    field: str, where: Callable[[str], dict[str, Any]], payload: str
) -> None:
    with pytest.raises(MailError) as caught:
        build(**where(payload))
    assert caught.value.field == field


def test_the_email_package_would_inject_what_the_check_refuses() -> None:
    """Why encoded words are refused: set as a header, the email package decodes them and then
    writes the decoded CR LF raw (the standard library alone, no Tessera code)."""
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = "=?utf-8?q?a=0D=0ABcc:_victim@example.com?="
    leaked = b"\r\nBcc: victim@example.com\r\n" in b"\r\n" + message.as_bytes()
    refused = False
    try:
        message.as_bytes()
    except Exception:  # newer Pythons refuse to write it (verify_generated_headers)
        refused = True
    assert leaked or refused
    with pytest.raises(MailError):
        build(subject="=?utf-8?q?a=0D=0ABcc:_victim@example.com?=")


@pytest.mark.parametrize(
    "subject",
    ["", "   ", "x" * 999, None, b"bytes"],
    ids=["empty", "blank", "999", "none", "bytes"],
)
def test_bad_subjects_are_refused(subject: Any) -> None:
    with pytest.raises(MailError) as caught:
        build(subject=subject)
    assert caught.value.field == "subject"


def test_a_subject_of_998_characters_and_a_name_of_200_are_accepted() -> None:
    parsed = parse(build(subject="é" * 998, to=Address("n" * 200, "zoe@example.org")))
    assert parsed["Subject"] == "é" * 998
    assert parsed["To"].addresses[0].display_name == "n" * 200
    with pytest.raises(MailError):
        build(to=Address("n" * 201, "zoe@example.org"))


def test_the_longest_names_still_make_a_via_sender() -> None:
    organiser = Address("o" * 200, "camille@festival.fr")
    platform = Address("p" * 200, PLATFORM.email)
    identity = sender_identity(organiser, verified_domains=frozenset(), platform=platform)
    parsed = parse(build(identity=identity))
    assert parsed["From"].addresses[0].display_name == "o" * 200 + " via " + "p" * 200


def test_ordinary_punctuation_in_a_subject_is_kept() -> None:
    subject = "2+2=? Oui ! 100 % « gratuit » — ça marche ; (vraiment) <b>?"
    assert parse(build(subject=subject))["Subject"] == subject


@pytest.mark.parametrize("part", ["text", "html"])
@pytest.mark.parametrize(
    "bad",
    ["", " \n ", "a\x00b", BAD_UTF8, "x" * 1_000_001, None, b"bytes"],
    ids=["empty", "blank", "NUL", "bad-UTF-8", "over-1M", "none", "bytes"],
)
def test_bad_bodies_are_refused(part: str, bad: Any) -> None:
    with pytest.raises(MailError) as caught:
        build(**{part: bad})
    assert caught.value.field == part


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"to": None}, "to"),
        ({"to": "zoe@example.org"}, "to"),
        ({"identity": None}, "identity"),
        ({"identity": Identity("no-reply@x.com", None)}, "from"),  # type: ignore[arg-type]
        ({"identity": Identity(PLATFORM, "camille@festival.fr")}, "reply_to"),  # type: ignore[arg-type]
        ({"to": Address(42, "zoe@example.org")}, "to"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_are_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(MailError) as caught:
        build(**overrides)
    assert caught.value.field == field


# --- DKIM --------------------------------------------------------------------------------------

DOMAIN = "tessera.example"
SELECTOR = "mail2026"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pkcs8(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def dns_for(
    key: rsa.RSAPrivateKey, name: bytes = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
) -> Callable[..., bytes | None]:
    """A dkimpy dnsfunc that knows one TXT record, as the operator publishes it."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(query: bytes, timeout: float = 5) -> bytes | None:
        return record if query == name else None

    return dnsfunc


def signed_news(key: rsa.RSAPrivateKey) -> bytes:
    identity = sender_identity(ORGANISER, verified_domains=frozenset(), platform=PLATFORM)
    raw = news(
        identity=identity,
        attachments=[Attachment("event.ics", "text/calendar", ICS)],
        headers={"X-Tessera-Message": "m-1"},
    ).as_bytes()
    return dkim_sign(raw, domain=DOMAIN, selector=SELECTOR, private_key_pem=pkcs8(key))


def test_a_signed_message_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    signed = signed_news(rsa_key)
    assert signed.startswith(b"DKIM-Signature: ")
    assert dkim.verify(signed, dnsfunc=dns_for(rsa_key))


def test_the_signature_is_relaxed_and_covers_the_headers_twice(rsa_key: rsa.RSAPrivateKey) -> None:
    signed = signed_news(rsa_key)
    signature = parse(signed)["DKIM-Signature"]
    tags = dict(
        item.strip().split("=", 1) for item in re.sub(r"\s+", "", signature).split(";") if item
    )
    assert tags["c"] == "relaxed/relaxed"
    assert tags["a"] == "rsa-sha256"
    assert (tags["d"], tags["s"]) == (DOMAIN, SELECTOR)
    signed_names = tags["h"].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe",
                 "list-unsubscribe-post", "mime-version", "content-type"):  # fmt: skip
        assert signed_names.count(name) == 2, name  # present once, signed once more
    for absent in ("cc", "sender"):
        assert signed_names.count(absent) == 1


def test_a_pkcs1_key_signs_too(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).replace(b"\n", b"\r\n")  # as a key file edited on Windows
    signed = dkim_sign(build().as_bytes(), domain=DOMAIN, selector=SELECTOR, private_key_pem=pem)
    assert dkim.verify(signed, dnsfunc=dns_for(rsa_key))


def _replace(signed: bytes, old: bytes, new: bytes) -> bytes:
    assert old in signed
    return signed.replace(old, new, 1)


TAMPERING: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("body", lambda s: _replace(s, b"Bonjour Zo", b"Bonsoir Zo")),
    ("subject", lambda s: _replace(s, b"\r\nSubject: Vos billets", b"\r\nSubject: Nos billets")),
    ("to", lambda s: _replace(s, b"<zoe@example.org>", b"<eve@example.org>")),
    ("reply-to", lambda s: _replace(s, b"<camille@festival.fr>", b"<eve@evil.example>")),
    ("unsubscribe", lambda s: _replace(s, b"/m/tok123/", b"/m/tok999/")),
    ("attachment", lambda s: _replace(s, b'filename="event.ics"', b'filename="event.exe"')),
    ("second-subject", lambda s: _replace(s, b"\r\nFrom: ", b"\r\nSubject: Urgent\r\nFrom: ")),
    (
        "added-reply-to",
        lambda s: _replace(s, b"\r\nTo: ", b"\r\nReply-To: eve@evil.example\r\nTo: "),
    ),
    ("added-cc", lambda s: _replace(s, b"\r\nTo: ", b"\r\nCc: eve@evil.example\r\nTo: ")),
    ("body-appended", lambda s: s + b"\r\nP.S. click https://evil.example\r\n"),
]


@pytest.mark.parametrize(("what", "tamper"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_breaks_the_signature(
    rsa_key: rsa.RSAPrivateKey, what: str, tamper: Callable[[bytes], bytes]
) -> None:
    signed = signed_news(rsa_key)
    assert dkim.verify(signed, dnsfunc=dns_for(rsa_key))
    assert not dkim.verify(tamper(signed), dnsfunc=dns_for(rsa_key)), what


def test_relaxed_canonicalisation_survives_whitespace_changes(rsa_key: rsa.RSAPrivateKey) -> None:
    signed = signed_news(rsa_key)
    respaced = _replace(signed, b"\r\nSubject: Vos", b"\r\nSubject:    Vos")
    respaced = _replace(
        respaced, b"\r\nAuto-Submitted: auto-generated", b"\r\nauto-submitted:auto-generated "
    )
    assert dkim.verify(respaced, dnsfunc=dns_for(rsa_key))


def test_a_signature_does_not_verify_with_another_key_or_selector(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    signed = signed_news(rsa_key)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not dkim.verify(signed, dnsfunc=dns_for(other))
    assert not dkim.verify(signed, dnsfunc=dns_for(rsa_key, b"other._domainkey.tessera.example."))


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, list[bytes]]]:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""
    received: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.original_content or envelope.content)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


async def test_the_signature_survives_a_real_smtp_hop(
    rsa_key: rsa.RSAPrivateKey, smtp_sink: tuple[int, list[bytes]]
) -> None:
    port, received = smtp_sink
    # A body line starting with a dot is dot-stuffed on the wire and must come back intact.
    text = "Bonjour,\n.hidden dot line\n..two dots\n"
    raw = news(text=text).as_bytes()
    signed = dkim_sign(raw, domain=DOMAIN, selector=SELECTOR, private_key_pem=pkcs8(rsa_key))
    await aiosmtplib.send(
        signed,
        sender=PLATFORM.email,
        recipients=[GUEST.email],
        hostname="127.0.0.1",
        port=port,
        timeout=10,
    )
    (got,) = received
    assert dkim.verify(got, dnsfunc=dns_for(rsa_key))
    plain, _ = parse(got).iter_parts()
    assert body_of(plain) == text


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"selector": ""}, "selector"),
        ({"selector": "a b"}, "selector"),
        ({"selector": "sel\r\nx"}, "selector"),
        ({"selector": HUGE}, "selector"),
        ({"domain": "tessera example"}, "domain"),
        ({"domain": ""}, "domain"),
        ({"domain": HUGE}, "longer"),
        ({"private_key_pem": b""}, "PEM"),
        (
            {
                "private_key_pem": b"-----BEGIN PRIVATE KEY-----\ngarbage\n"
                b"-----END PRIVATE KEY-----\n"
            },
            "PEM",
        ),
        ({"private_key_pem": b"\xff" * 10_000_000}, "PEM"),
        ({"private_key_pem": "not bytes"}, "bytes"),
        ({"message": "not bytes"}, "bytes"),
        ({"message": b""}, "From"),
        ({"message": b"Subject: no sender\r\n\r\nbody\r\n"}, "From"),
        ({"message": b"From: a@b.com\r\nFrom: c@d.com\r\n\r\nbody\r\n"}, "From"),
    ],
)
def test_dkim_sign_refuses_garbage(
    rsa_key: rsa.RSAPrivateKey, overrides: dict[str, Any], match: str
) -> None:
    arguments: dict[str, Any] = {
        "message": build().as_bytes(),
        "domain": DOMAIN,
        "selector": SELECTOR,
        "private_key_pem": pkcs8(rsa_key),
    }
    arguments.update(overrides)
    message = arguments.pop("message")
    with pytest.raises(MailError, match=match) as caught:
        dkim_sign(message, **arguments)
    assert caught.value.field in {"dkim", ""}


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="ec-p256"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, id="ed25519"),
    ],
)
def test_dkim_sign_refuses_keys_other_than_rsa(key: Callable[[], Any]) -> None:
    with pytest.raises(MailError, match="only RSA"):
        dkim_sign(
            build().as_bytes(), domain=DOMAIN, selector=SELECTOR, private_key_pem=pkcs8(key())
        )


def test_dkim_sign_refuses_an_encrypted_key(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(MailError, match="unencrypted"):
        dkim_sign(build().as_bytes(), domain=DOMAIN, selector=SELECTOR, private_key_pem=pem)
