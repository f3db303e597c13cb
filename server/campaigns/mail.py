"""The outgoing mail itself: who it is from, its headers and parts, and its DKIM signature.

Pure code: no socket, no DNS, and the clock only when no date is given. The outbox renders a
message, calls `build_message`, optionally `dkim_sign`s its bytes, and hands them to SMTP or the
maildir.

Sender identity (ARCHITECTURE §6, issue 14 item 7)
- From is the organiser's own name and address only when its domain is one the operator verified
  (exact match, case-insensitive, after IDNA: a subdomain is not implied) and is not a free-mail
  domain; free-mail providers publish DMARC policies that reject mail sent in their name from
  anywhere else, so those always fall back, even if listed. Over-matching them is safe: the
  fallback is always deliverable.
- The fallback is the platform's no-reply address with "<organiser> via <platform>" as display
  name and Reply-To the organiser; with no organiser, the platform alone.

Addresses (`check_address`)
- ASCII dot-atom local parts only: no quoted local parts, no SMTPUTF8 (many receivers still lack
  it, so such a mail would bounce somewhere we cannot see). Domains are IDNA 2008 / UTS 46 and come
  back as punycode, lower case, with at least two labels and a non-numeric top label (a dotless
  guest domain is a typo). The platform's own sender and Message-ID domain may also be a single
  label or an IPv4 address, because the embedded default is `no-reply@127.0.0.1`.

Headers
- No header text (names, subject, values, filenames) may hold a C0/C1 control character, a line or
  paragraph separator, a bidi override, or an RFC 2047 encoded word: Python's email package decodes
  `=?utf-8?q?=0D=0A...?=` when a header is set and then writes the decoded CR LF raw, a header
  injection (CPython 3.11.7, before `verify_generated_headers`). Every header is checked again
  once built, as a second line of defence.
- The message is built with the `compat32` classes (`email.mime`) and every header value is
  folded here, not by the package: names and subjects as RFC 2047 encoded words (`email.header`)
  when not ASCII, ASCII subjects at their spaces, filenames as RFC 2231 parameters. The modern
  API (EmailMessage, `policy.SMTP`) parses every header it is given and refolds it on output:
  about 2 ms a message here, three quarters of sending one (docs/performance.md "Campaigns").
  Bodies are 7bit when plain short-lined ASCII, quoted-printable UTF-8 otherwise, so the message
  is 7-bit clean and no relay re-encodes it under a DKIM signature (RFC 6376 §5.3).
- Every message carries `Auto-Submitted: auto-generated` (RFC 3834) and
  `X-Auto-Response-Suppress: OOF, AutoReply` (Exchange): ticket mail and campaigns are both sent
  by a process to many guests, and without them each vacation responder answers the organiser's
  Reply-To (hundreds for a summer campaign). Neither suppresses bounces.
- `tickets` mail is transactional: no List-Unsubscribe. `message` mail must carry one HTTPS URL
  (RFC 8058 one-click; http only for a loopback host, the embedded default) written on one line:
  a folder could cut a long URL into encoded words, which RFC 2369 does not allow.
- Extra headers only from `ALLOWED_HEADERS`, printable ASCII values, also written on one line.
- Refusals raise MailError (a ValueError) whose `field` names the argument at fault.

DKIM: RSA (PKCS#1 or PKCS#8 PEM, at least 1024 bits as RFC 8301 requires), relaxed/relaxed, the
headers of `SIGNED_HEADERS` each signed once more than present, so none can be added afterwards.
Ed25519 (RFC 8463) would need PyNaCl in dkimpy; it is not offered.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Literal
from urllib.parse import urlsplit

import dkim  # type: ignore[import-untyped]
import idna
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "ALLOWED_HEADERS",
    "FREE_MAIL_DOMAINS",
    "SIGNED_HEADERS",
    "Address",
    "Attachment",
    "Identity",
    "MailError",
    "build_message",
    "check_address",
    "check_domain",
    "dkim_sign",
    "is_free_mail_domain",
    "new_message_id",
    "sender_identity",
    "wire_bytes",
]


class Address(msgspec.Struct, frozen=True):
    name: str | None
    email: str


class Attachment(msgspec.Struct, frozen=True):
    filename: str
    content_type: str  # "type/subtype", optionally "; name=token" parameters
    data: bytes


class Identity(msgspec.Struct, frozen=True):
    sender: Address
    reply_to: Address | None


class MailError(ValueError):
    """Input that cannot become a safe mail; `field` names it ("" when the caller knows)."""

    def __init__(self, detail: str, field: str = "") -> None:
        super().__init__(f"{field}: {detail}" if field else detail)
        self.detail = detail
        self.field = field


# Header names the caller may add, in the case they are written; matched case-insensitively.
ALLOWED_HEADERS = ("X-Tessera-Campaign", "X-Tessera-Message", "Feedback-ID")

# Signed once more than they occur (absent ones too), so that none can be added or repeated.
SIGNED_HEADERS = (
    "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
    "List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
)  # fmt: skip

# Free-mail domains whose owners' DMARC policy (or habits) reject mail in their name sent from
# elsewhere; their subdomains too (DMARC's organisational domain). Brands below also match under
# any country code, .com/.net/.org, or a two-level suffix such as co.uk or com.au.
FREE_MAIL_DOMAINS = frozenset(
    {
        # global
        "gmail.com", "googlemail.com", "msn.com", "passport.com", "windowslive.com",
        "ymail.com", "rocketmail.com", "icloud.com", "me.com", "mac.com", "mail.com",
        "email.com", "zoho.com", "fastmail.com", "fastmail.fm", "hey.com", "proton.me",
        "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tutanota.de", "tuta.io",
        "tutamail.com", "mailbox.org", "posteo.de", "posteo.net",
        # France, Belgium, Switzerland, Germany, Austria, the Netherlands, Italy
        "free.fr", "orange.fr", "wanadoo.fr", "sfr.fr", "neuf.fr", "club-internet.fr",
        "numericable.fr", "bbox.fr", "laposte.net", "aliceadsl.fr", "telenet.be", "skynet.be",
        "proximus.be", "bluewin.ch", "hispeed.ch", "sunrise.ch", "swissonline.ch", "web.de",
        "t-online.de", "freenet.de", "arcor.de", "aon.at", "ziggo.nl", "kpnmail.nl",
        "planet.nl", "home.nl", "xs4all.nl", "libero.it", "virgilio.it", "tiscali.it",
        "alice.it",
        # United Kingdom, North America, elsewhere
        "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "talktalk.net",
        "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
        "shaw.ca", "rogers.com", "sympatico.ca", "bigpond.com", "optusnet.com.au",
        "uol.com.br", "bol.com.br", "terra.com.br", "mail.ru", "inbox.ru", "list.ru", "bk.ru",
        "rambler.ru", "seznam.cz", "wp.pl", "o2.pl", "interia.pl", "onet.pl", "qq.com",
        "163.com", "126.com", "sina.com", "naver.com", "daum.net", "rediffmail.com",
    }
)  # fmt: skip
_FREE_MAIL_BRANDS = frozenset(
    {"gmail", "hotmail", "outlook", "live", "yahoo", "aol", "gmx", "yandex", "icloud"}
)
_GENERIC_TOP = frozenset({"com", "net", "org"})
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ne", "or"})

_MAX_NAME = 200  # as `server.schemas.Name`
_MAX_SUBJECT = 998  # the RFC 5322 line bound: anything longer is a template bug
_MAX_BODY = 1_000_000  # characters per part; Gmail already clips HTML past ~100 kB
_MAX_HEADER_VALUE = 200
_MAX_URL = 900  # keeps "List-Unsubscribe: <url>" within the 998-octet line
_MAX_ATTACHMENTS = 20
# Base64 adds a third: 7 MB of files stay under the 10 MB limit many receivers still keep.
_MAX_ATTACHMENT_BYTES = 7_000_000

# C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings, overrides and isolates
# (they reorder "Camille via Tessera" on screen), the BOM, and lone surrogates (not encodable).
_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
_ENCODED_WORD = re.compile(r"=\?.*\?=", re.DOTALL)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL_PART = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_IPV4 = re.compile(
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
)
_MESSAGE_ID = re.compile(rf"<{_ATEXT}+(?:\.{_ATEXT}+)*@{_ATEXT}+(?:\.{_ATEXT}+)*>")
_TOKEN = r"[A-Za-z0-9!#$%&'*+^_`{|}~.-]+"
_CONTENT_TYPE = re.compile(
    rf"(application|text|image|audio|video|font|model)/({_TOKEN})((?:\s*;\s*{_TOKEN}={_TOKEN})*)",
    re.IGNORECASE,
)
_HEADER_VALUE = re.compile(r"[\x20-\x7e]+")
_URL = re.compile(r"[!#$%&'()*+\-./0-9:;=?@A-Z\[\]_a-z~]+")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]{1,63})*")


# The wire form (see "Headers" above): CRLF, and no folding by the email package, which would
# refold our values (compat32 folds ASCII after `,` and `;`, adding a space). Every header
# value is written as `_header_value` folded it; each line stays within 998 octets.
_WIRE = compat32.clone(linesep="\r\n", max_line_length=0)
_LINE_MAX = 998
_FOLD_AT = 78
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _text(value: object, field: str, limit: int, *, what: str = "text") -> str:
    """`value` if it is header-safe text of at most `limit` characters; raises MailError."""
    if not isinstance(value, str):
        raise MailError(f"{what} must be a string", field)
    if len(value) > limit:
        raise MailError(f"{what} is longer than {limit} characters", field)
    if _FORBIDDEN.search(value):
        raise MailError(f"{what} must not contain control characters or line breaks", field)
    if _ENCODED_WORD.search(value):
        raise MailError(f"{what} must not contain RFC 2047 encoded words (=?...?=)", field)
    return value


def check_domain(value: str, *, local: bool = False) -> str:
    """The domain as punycode in lower case; raises MailError.

    `local` also accepts a single label or an IPv4 address (the platform's own, in development).
    """
    _text(value, "", 253, what="a domain")
    if any(ch.isspace() for ch in value) or not value:
        raise MailError("a domain must not be empty or contain spaces")
    if local and _IPV4.fullmatch(value):
        return value
    ascii_domain = value.lower()
    # idna costs ~70 µs a call: plain ASCII host names (most) only need lower case and LDH.
    if not ascii_domain.isascii() or "xn--" in ascii_domain:
        try:
            ascii_domain = idna.encode(value, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise MailError(f"not a valid domain name: {value!r}") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise MailError(f"not a valid domain name: {value!r}")
    if not local and (len(labels) < 2 or labels[-1].isdigit()):
        raise MailError(f"not a domain on the internet: {value!r}")
    return ascii_domain


def check_address(value: str, *, local: bool = False) -> str:
    """The address with its domain normalised (punycode, lower case); raises MailError.

    The local part is kept as given (RFC 5321: it is the receiver's to interpret).
    """
    _text(value, "", 254, what="an address")
    if any(ch.isspace() for ch in value):
        raise MailError("an address must not contain spaces")
    local_part, at, domain = value.rpartition("@")
    if not at or not local_part:
        raise MailError(f"not an email address: {value!r}")
    if not local_part.isascii():
        raise MailError("the part before @ must be ASCII (SMTPUTF8 is not used)")
    if len(local_part) > 64 or not _LOCAL_PART.fullmatch(local_part):
        raise MailError(f"not an email address: {value!r}")
    address = f"{local_part}@{check_domain(domain, local=local)}"
    if len(address) > 254:
        raise MailError("an address is at most 254 characters")
    return address


def _address(value: object, field: str, *, local: bool = False, limit: int = _MAX_NAME) -> Address:
    """`value` as a checked Address (a blank name counts as none)."""
    if not isinstance(value, Address):
        raise MailError("must be an Address", field)
    name = value.name
    if name is not None:
        name = _text(name, field, limit, what="the name").strip() or None
    try:
        email = check_address(value.email, local=local)
    except MailError as exc:
        raise MailError(exc.detail, field) from None
    return Address(name, email)


def is_free_mail_domain(domain: str) -> bool:
    """Whether `domain` (or a domain it is under) belongs to a free-mail provider."""
    labels = check_domain(domain, local=True).split(".")
    for start in range(len(labels) - 1):
        if ".".join(labels[start:]) in FREE_MAIL_DOMAINS:
            return True
        brand, rest = labels[start], labels[start + 1 :]
        if brand in _FREE_MAIL_BRANDS and (
            (len(rest) == 1 and (len(rest[0]) == 2 or rest[0] in _GENERIC_TOP))
            or (len(rest) == 2 and rest[0] in _SECOND_LEVEL and len(rest[1]) == 2)
        ):
            return True
    return False


def sender_identity(
    organiser: Address | None, *, verified_domains: frozenset[str], platform: Address
) -> Identity:
    """Who a mail is from and whom replies reach (rules in the module comment); raises MailError."""
    platform = _address(platform, "platform", local=True)
    if organiser is None:
        return Identity(platform, None)
    organiser = _address(organiser, "organiser")
    domain = organiser.email.rpartition("@")[2]
    verified = {_verified(d) for d in verified_domains}
    if domain in verified and not is_free_mail_domain(domain):
        return Identity(organiser, None)
    if organiser.name and platform.name:
        name: str | None = f"{organiser.name} via {platform.name}"
    else:
        name = organiser.name or platform.name
    return Identity(Address(name, platform.email), organiser)


def _verified(domain: str) -> str:
    try:
        return check_domain(domain.strip().rstrip("."))
    except MailError as exc:
        raise MailError(exc.detail, "verified_domains") from None


def new_message_id(domain: str) -> str:
    """A fresh `<128 random bits in hex@domain>`; store it and reuse it on every retry."""
    return f"<{secrets.token_hex(16)}@{check_domain(domain, local=True)}>"


def build_message(
    *,
    subject: str,
    text: str,
    html: str,
    identity: Identity,
    to: Address,
    message_id: str,
    kind: Literal["tickets", "message"],
    test: bool = False,
    unsubscribe_url: str | None = None,
    attachments: Sequence[Attachment] = (),
    headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
) -> Message:
    """The mail as multipart/alternative (text, html), in multipart/mixed with attachments.

    `date` defaults to now; `test` puts "[TEST] " before the subject. Raises MailError naming
    the field at fault; nothing is partly built.
    """
    if kind not in ("tickets", "message"):
        raise MailError("must be 'tickets' or 'message'", "kind")
    subject = _text(subject, "subject", _MAX_SUBJECT, what="the subject")
    if not subject.strip():
        raise MailError("must not be empty", "subject")
    if test and not subject.startswith("[TEST] "):
        subject = f"[TEST] {subject}"
    if not isinstance(identity, Identity):
        raise MailError("must be an Identity", "identity")
    # From may be "<organiser> via <platform>", two names long.
    sender = _address(identity.sender, "from", local=True, limit=2 * _MAX_NAME + 5)
    reply_to = _address(identity.reply_to, "reply_to") if identity.reply_to is not None else None
    recipient = _address(to, "to")
    if (
        not isinstance(message_id, str)
        or len(message_id) > 250
        or not _MESSAGE_ID.fullmatch(message_id)
    ):
        raise MailError("must look like <id@domain>", "message_id")
    if date is None:
        date = datetime.now(UTC)
    elif not isinstance(date, datetime) or date.utcoffset() is None:
        raise MailError("must carry a time zone", "date")
    extra = _extra_headers(headers)
    unsubscribe = _unsubscribe(unsubscribe_url, kind)
    files = _attachments(attachments)

    alternative = MIMEMultipart(
        "alternative",
        _subparts=[
            _text_part(_body(text, "text"), "plain"),
            _text_part(_body(html, "html"), "html"),
        ],
        policy=_WIRE,
    )
    msg = alternative
    if files:
        msg = MIMEMultipart("mixed", _subparts=[alternative], policy=_WIRE)
        for attachment, maintype, subtype, params in files:
            msg.attach(_file_part(attachment, maintype, subtype, params))
    head = [
        ("From", _address_value("From", sender)),
        *([("Reply-To", _address_value("Reply-To", reply_to))] if reply_to else []),
        ("To", _address_value("To", recipient)),
        ("Subject", _header_value("Subject", subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "OOF, AutoReply"),
    ]
    if unsubscribe is not None:
        head.append(("List-Unsubscribe", f"<{unsubscribe}>"))  # one line: checked ASCII, ≤ 900
        head.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    head.extend(extra)  # one line each: checked printable ASCII, ≤ 200
    for name, value in head:
        msg[name] = value
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # only the top level needs one
    for name, value in msg.items():
        # Second line of defence: once our own folds are undone, no header may hold a line
        # break or a control character, whatever built it.
        if _FORBIDDEN.search(_FOLDS.sub(" ", str(value))):
            raise MailError("would carry a control character or line break", name)
    return msg


_FOLDS = re.compile(r"\r\n(?=[ \t])")


def _header_value(name: str, value: str) -> str:
    """`value` ready for the unstructured header `name`, folded at spaces: its ASCII words as
    they are and each run of non-ASCII words as RFC 2047 encoded words (as readers expect:
    `Vos billets pour la =?utf-8?q?F=C3=AAte?=`); all of it encoded when a word is too long
    for a 998-octet line."""
    header = Header(header_name=name, maxlinelen=_FOLD_AT)
    for chunk, ascii in _runs(value):
        header.append(chunk, "us-ascii" if ascii else "utf-8")
    folded = header.encode(splitchars=" ", linesep="\r\n")
    lines = folded.split("\r\n")
    fits = len(name) + 2 + len(lines[0]) <= _LINE_MAX and all(len(x) <= _LINE_MAX for x in lines)
    if fits and lines[0].strip():  # (a word too long for the first line is folded before it)
        return folded
    return Header(value, "utf-8", header_name=name, maxlinelen=_FOLD_AT).encode(linesep="\r\n")


_WORDS = re.compile(r"(\s+)")


def _runs(value: str) -> list[tuple[str, bool]]:
    """`value` cut into (text, is ASCII) runs: each run of non-ASCII words with the spaces
    between them, and the ASCII text around (with its spaces), in order."""
    runs: list[tuple[str, bool]] = []
    for piece in _WORDS.split(value):
        ascii = piece.isascii()
        if runs and (runs[-1][1] == ascii or (not runs[-1][1] and piece.isspace())):
            runs[-1] = (runs[-1][0] + piece, runs[-1][1])
        else:
            runs.append((piece, ascii))
    # Spaces that ended a non-ASCII run belong to the ASCII text after it (never encoded).
    out: list[tuple[str, bool]] = []
    for text, ascii in runs:
        if not ascii and text != text.rstrip():
            stripped = text.rstrip()
            out.append((stripped, False))
            out.append((text[len(stripped) :], True))
        else:
            out.append((text, ascii))
    merged: list[tuple[str, bool]] = []
    for text, ascii in out:
        if merged and merged[-1][1] and ascii:
            merged[-1] = (merged[-1][0] + text, True)
        elif text:
            merged.append((text, ascii))
    return merged


def _address_value(name: str, address: Address) -> str:
    """The address header's value: `Name <addr>`, the name quoted when it holds specials and
    encoded when it is not ASCII (an encoded word is one word: its specials stay in the name)."""
    if not address.name:
        return address.email
    if address.name.isascii():
        value = formataddr((address.name, address.email))
        if len(name) + 2 + len(value) <= _LINE_MAX:
            return value
    encoded = Header(address.name, "utf-8", header_name=name, maxlinelen=_FOLD_AT)
    return encoded.encode(linesep="\r\n") + f" <{address.email}>"


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    """A text part, 7bit when plain short-lined ASCII, quoted-printable UTF-8 otherwise; it
    ends with a line break."""
    if not body.endswith("\n"):
        body += "\n"
    if _cte(body) == "7bit":
        return MIMEText(body, subtype, "us-ascii", policy=_WIRE)
    return MIMEText(body, subtype, _UTF8_QP, policy=_WIRE)


def _file_part(
    attachment: Attachment, maintype: str, subtype: str, params: dict[str, str]
) -> MIMEBase:
    """An attachment in base64, its file name RFC 2231 encoded when it is not ASCII."""
    part = MIMEBase(maintype, subtype, policy=_WIRE, **params)
    part.set_payload(attachment.data)
    encoders.encode_base64(part)
    filename: str | tuple[str, str, str] = attachment.filename
    if not attachment.filename.isascii():
        filename = ("utf-8", "", attachment.filename)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def wire_bytes(message: Message) -> bytes:
    """The mail as SMTP carries it: CRLF line ends, 7-bit, lines within 998 octets."""
    return message.as_bytes(policy=_WIRE)


def _body(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise MailError("must be a string", field)
    if len(value) > _MAX_BODY:
        raise MailError(f"is longer than {_MAX_BODY} characters", field)
    if not value.strip():
        raise MailError("must not be empty", field)
    if "\x00" in value or re.search("[\ud800-\udfff]", value):
        raise MailError("must not contain NUL or unpaired surrogates (bad UTF-8)", field)
    return value


def _cte(body: str) -> str:
    short = all(len(line) <= 998 for line in body.splitlines())
    return "7bit" if body.isascii() and short else "quoted-printable"


def _extra_headers(headers: Mapping[str, str] | None) -> list[tuple[str, str]]:
    allowed = {name.lower(): name for name in ALLOWED_HEADERS}
    out: dict[str, tuple[str, str]] = {}
    for name, value in (headers or {}).items():
        canonical = allowed.get(name.lower()) if isinstance(name, str) else None
        if canonical is None:
            raise MailError(
                f"not an allowed header (allowed: {', '.join(ALLOWED_HEADERS)})", "headers"
            )
        field = f"headers.{canonical}"
        if canonical.lower() in out:
            raise MailError("given twice", field)
        _text(value, field, _MAX_HEADER_VALUE, what="the value")
        if not _HEADER_VALUE.fullmatch(value) or not value.strip():
            raise MailError("must be non-empty printable ASCII", field)
        out[canonical.lower()] = (canonical, value)
    return list(out.values())


def _unsubscribe(url: str | None, kind: str) -> str | None:
    field = "unsubscribe_url"
    if kind == "tickets":
        if url is not None:
            raise MailError("ticket mail is transactional and carries no unsubscribe link", field)
        return None
    if url is None:
        raise MailError("required for message campaigns (RFC 8058)", field)
    _text(url, field, _MAX_URL, what="the URL")
    if not _URL.fullmatch(url):
        raise MailError("must be an ASCII URL without spaces, quotes or angle brackets", field)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise MailError("not a URL", field) from None
    if not (parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)):
        raise MailError("must be an https:// URL (RFC 8058)", field)
    if not host:
        raise MailError("must name a host", field)
    return url


def _attachments(
    attachments: Sequence[Attachment],
) -> list[tuple[Attachment, str, str, dict[str, str]]]:
    if len(attachments) > _MAX_ATTACHMENTS:
        raise MailError(f"at most {_MAX_ATTACHMENTS}", "attachments")
    out = []
    total = 0
    for index, attachment in enumerate(attachments):
        field = f"attachments[{index}]"
        if not isinstance(attachment, Attachment):
            raise MailError("must be an Attachment", field)
        filename = _text(attachment.filename, f"{field}.filename", 200, what="the filename")
        if not filename.strip() or filename in {".", ".."} or any(c in filename for c in '/\\"'):
            raise MailError("must be a plain file name", f"{field}.filename")
        if not isinstance(attachment.data, bytes) or not attachment.data:
            raise MailError("must be non-empty bytes", f"{field}.data")
        total += len(attachment.data)
        if total > _MAX_ATTACHMENT_BYTES:
            raise MailError(f"more than {_MAX_ATTACHMENT_BYTES} bytes in all", "attachments")
        maintype, subtype, params = _content_type(attachment.content_type, f"{field}.content_type")
        if maintype == "text" and "charset" not in params and _is_utf8(attachment.data):
            params["charset"] = "utf-8"  # an .ics names places; without it readers assume ASCII
        out.append((attachment, maintype, subtype, params))
    return out


def _content_type(value: object, field: str) -> tuple[str, str, dict[str, str]]:
    """Type and subtype in lower case, and parameters (names lowered, values as given)."""
    match = None
    if isinstance(value, str) and len(value) <= 200:
        match = _CONTENT_TYPE.fullmatch(value.strip())
    if match is None:
        raise MailError("must be a type/subtype such as application/pdf", field)
    maintype, subtype, raw_params = match.groups()
    params = {}
    for item in raw_params.split(";")[1:]:
        name, _, param = item.partition("=")
        params[name.strip().lower()] = param.strip()
    return maintype.lower(), subtype.lower(), params


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def _pkcs1_pem(private_key_pem: bytes) -> bytes:
    """The key as the PKCS#1 PEM dkimpy parses; loaded (and checked) once per key."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MailError("not an unencrypted PEM private key", "dkim") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise MailError("only RSA keys are supported (Ed25519 needs PyNaCl)", "dkim")
    if key.key_size < 1024:
        raise MailError("an RSA key of at least 1024 bits is required (RFC 8301)", "dkim")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def dkim_sign(message: bytes, *, domain: str, selector: str, private_key_pem: bytes) -> bytes:
    """`message` with a DKIM-Signature header in front (rules in the module comment).

    Sign with d= the From domain (or its parent) so DMARC aligns. Raises MailError.
    """
    if not isinstance(message, bytes) or not isinstance(private_key_pem, bytes):
        raise MailError("the message and the key must be bytes", "dkim")
    domain = check_domain(domain)
    if not isinstance(selector, str) or not _SELECTOR.fullmatch(selector):
        raise MailError("not a valid selector", "dkim")
    key = _pkcs1_pem(private_key_pem)
    try:
        headers, _ = dkim.rfc822_parse(message)
    except dkim.DKIMException as exc:
        raise MailError(f"not a mail message: {exc}", "dkim") from None
    if sum(1 for name, _ in headers if name.lower() == b"from") != 1:
        raise MailError("the message must have exactly one From header", "dkim")
    present = {name.lower() for name, _ in headers}
    include: list[bytes] = []
    for name in SIGNED_HEADERS:
        lowered = name.lower().encode()
        count = sum(1 for header, _ in headers if header.lower() == lowered)
        include += [lowered] * (count + 1) if lowered in present else [lowered]
    try:
        signature = dkim.sign(
            message,
            selector.encode("ascii"),
            domain.encode("ascii"),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
    except dkim.DKIMException as exc:
        raise MailError(f"could not sign: {exc}", "dkim") from None
    if not isinstance(signature, bytes) or not signature.startswith(b"DKIM-Signature:"):
        raise MailError("dkimpy returned no signature", "dkim")
    return signature + message
