"""DKIM signing of outgoing mail with the operator's key (`TESSERA_DKIM_*`, docs/campaigns.md §9).

Rules:
- The key is a PEM RSA private key file (PKCS#1 or PKCS#8, unencrypted, at least 1024 bits;
  2048 advised) that only its owner may read or write: no group or other permission bit (0600 or
  0400), as the keystore's keys. `load_key` refuses anything else with one line naming the
  setting at fault; Settings calls it, so a bad key stops the start, never a send.
- A key, its selector and its domain are checked by signing a probe with `mail.dkim_sign` itself:
  what starts is exactly what signs (its rules: relaxed/relaxed, `SIGNED_HEADERS` over-signed).
- The signature survives the transport byte for byte. The outbox serialises each mail once,
  signs those bytes (`sign_bytes`) and hands them to the mailer, which sends them as they are
  (SMTP) or only turns CRLF into LF (the maildir; DKIM canonicalises line ends). `sign_message`
  is for a caller holding an EmailMessage that a mailer will serialise with a policy of its own:
  aiosmtplib with `email.policy.SMTP`, which refolds any header line over 78 characters (the
  one-line List-Unsubscribe, the DKIM-Signature's h= list) and may turn it into encoded words.
  It parses the signed bytes back with a policy whose headers fold to exactly their source lines
  under any policy, and whose bodies the parser keeps as they were: every generator then writes
  the signed bytes again, line ends aside. tests/server/campaigns/test_dkim_and_auto_send.py
  checks both transports and verifies what a real SMTP server and the maildir received.
- The key is read again only when its file changes (inode, size, modification time): replacing
  the file rotates the key without a restart. A key file that became unreadable or too open
  raises DkimKeyError, which is not a MailError: the outbox retries the message with backoff
  instead of sending it unsigned (a DMARC policy could reject it) or failing it for good.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass, field
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy, Policy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.campaigns.mail import MailError, check_domain, dkim_sign

if TYPE_CHECKING:
    from server.config import Settings

__all__ = ["DkimKey", "DkimKeyError", "key_for", "load_key", "sign_bytes", "sign_message"]

_MAX_KEY_BYTES = 64 * 1024  # a 16384-bit RSA key is about 12 kB of PEM
_PROBE = b"From: probe@example.org\r\nSubject: probe\r\n\r\nprobe\r\n"
_PROBE_SELECTOR = "probe"


class DkimKeyError(ValueError):
    """A DKIM setting that cannot sign; `setting` names it (`dkim_key_file`, ...)."""

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(f"{setting}: {detail}")
        self.setting = setting
        self.detail = detail


@dataclass(frozen=True)
class DkimKey:
    domain: str  # d=, checked and normalised (punycode, lower case)
    selector: str  # s=
    private_key_pem: bytes = field(repr=False)  # never in a log line


def load_key(path: str | os.PathLike[str], *, selector: str, domain: str) -> DkimKey:
    """The key in `path` for `selector` and `domain`; raises DkimKeyError (rules above)."""
    return _load(*_stamp(Path(path)), selector, domain)


def key_for(settings: Settings) -> DkimKey | None:
    """The operator's key when the DKIM settings are set, else None; raises DkimKeyError."""
    if not (settings.dkim_key_file and settings.dkim_selector and settings.dkim_domain):
        return None
    return load_key(
        settings.dkim_key_file, selector=settings.dkim_selector, domain=settings.dkim_domain
    )


def sign_bytes(data: bytes, key: DkimKey) -> bytes:
    """`data` (a mail's wire form) with a DKIM-Signature first; send these bytes as they are.

    Raises MailError when the message cannot be signed (mail.dkim_sign's refusals).
    """
    return dkim_sign(
        data, domain=key.domain, selector=key.selector, private_key_pem=key.private_key_pem
    )


def sign_message(message: EmailMessage, key: DkimKey) -> EmailMessage:
    """`message` with a DKIM-Signature first, as a message any generator writes out as signed.

    Raises MailError when the message cannot be signed (mail.dkim_sign's refusals).
    """
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    signed = dkim_sign(
        raw, domain=key.domain, selector=key.selector, private_key_pem=key.private_key_pem
    )
    # Parsed with LF line ends, as the email package keeps a built message's parts: readers
    # (a preview) get text without CR, and generators write each line end as their policy says.
    parsed = BytesParser(policy=_SOURCE_POLICY).parsebytes(signed.replace(b"\r\n", b"\n"))
    assert isinstance(parsed, EmailMessage)  # EmailPolicy's message_factory
    return parsed


# --- keys -------------------------------------------------------------------------------------


def _stamp(path: Path) -> tuple[str, int, int, int]:
    """The file's identity for the cache: a replaced or rewritten key file is read again."""
    setting = "dkim_key_file"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DkimKeyError(setting, f"no such file: {str(path)!r}") from None
    except OSError as exc:
        raise DkimKeyError(setting, f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DkimKeyError(setting, f"not a regular file: {str(path)!r}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise DkimKeyError(
            setting,
            f"{str(path)!r} is mode {mode:04o}: a private key must be readable by its owner "
            f"alone (chmod 600 {str(path)!r})",
        )
    if info.st_size > _MAX_KEY_BYTES:
        raise DkimKeyError(setting, f"{str(path)!r} is too large for a PEM private key")
    return str(path), info.st_ino, info.st_size, info.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _load(path: str, _inode: int, _size: int, _mtime: int, selector: str, domain: str) -> DkimKey:
    if not isinstance(domain, str) or not domain.strip():
        raise DkimKeyError("dkim_domain", "must not be empty")
    try:
        domain = check_domain(domain.strip().rstrip("."))
    except MailError as exc:
        raise DkimKeyError("dkim_domain", exc.detail) from None
    try:
        with open(path, "rb") as file:
            pem = file.read(_MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise DkimKeyError("dkim_key_file", f"cannot read {path!r}: {exc.strerror}") from None
    try:
        dkim_sign(_PROBE, domain=domain, selector=selector, private_key_pem=pem)
    except MailError as exc:
        # The domain passed above; a probe with a selector known to be good tells whether the
        # key or the selector is at fault.
        try:
            dkim_sign(_PROBE, domain=domain, selector=_PROBE_SELECTOR, private_key_pem=pem)
        except MailError:
            raise DkimKeyError("dkim_key_file", f"{path!r}: {exc.detail}") from None
        raise DkimKeyError("dkim_selector", f"{exc.detail}: {selector[:80]!r}") from None
    return DkimKey(domain, selector, pem)


# --- a message that serialises as it was signed -----------------------------------------------


class _SourceHeader(BaseHeader):
    """A parsed header that folds to its source lines, whatever policy writes it."""

    source: str | None = None  # what followed "Name:" in the signed bytes, folds included

    def fold(self, *, policy: Policy) -> str:
        if self.source is None:  # set on the message after signing: an ordinary header
            return str(super().fold(policy=policy))
        return f"{self.name}:{policy.linesep.join(self.source.splitlines())}{policy.linesep}"


class _SourcePolicy(EmailPolicy):
    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, Any]:
        name, _, rest = sourcelines[0].partition(":")
        source = (rest + "".join(sourcelines[1:])).rstrip("\r\n")
        # The header object (decoded, with its addresses) is what readers of the message get.
        header = self.header_factory(name, "".join(source.lstrip(" \t").splitlines()))
        header.source = source
        return name, header


_SOURCE_POLICY = _SourcePolicy(
    linesep="\r\n", max_line_length=78, header_factory=HeaderRegistry(base_class=_SourceHeader)
)
