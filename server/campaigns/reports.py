"""Delivery reports: reading an SMTP Delivery Status Notification (RFC 3464) that came back.

A report is a mail, `multipart/report; report-type=delivery-status`, holding a
`message/delivery-status` part (one block of per-message fields, then one block per recipient)
and usually the returned headers of the mail it is about (`text/rfc822-headers`, or the whole
`message/rfc822` when the reporting server ignored RET=HDRS). Python's `email` package does the
MIME work; this module only picks the fields out and makes them safe to store and show.

What it gives (`DeliveryReport`):
- `message_ids`: the Message-IDs to look the message up by, in order: the Original-Envelope-Id
  (Tessera sends each mail's Message-ID as its ENVID; xtext decoded, put in angle brackets),
  then the Message-ID of the returned headers, then Gmail's `X-Original-Message-ID` field when
  no headers were returned. Which of them is a message of ours is the service's question.
- `recipients`: per recipient, `action` (delivered, failed, delayed, relayed, expanded: RFC 3464
  §2.3.3), `status` (the enhanced code "5.1.1", or ""), `diagnostic` (the remote server's words,
  else ""), `final_recipient`. Text is unfolded, without control characters, at most 500
  characters; undecodable bytes become U+FFFD.

Refused with `ReportUnreadable` (a 422 naming `report`, code `not_a_report`): more than
`MAX_REPORT_BYTES`, no `message/delivery-status` part (a plain mail, a read receipt, bytes), no
recipient block with a known Action, or no id to look the message up by.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

import msgspec

from server.errors import BodyInvalid, FieldError

__all__ = [
    "ACTIONS",
    "MAX_REPORT_BYTES",
    "DeliveryReport",
    "RecipientReport",
    "ReportUnreadable",
    "parse_report",
]

# RET=HDRS keeps reports to a few kilobytes; a server that returns the whole mail (with its PDF
# tickets) still fits well under this.
MAX_REPORT_BYTES = 4 * 1024 * 1024
ACTIONS = frozenset({"delivered", "failed", "delayed", "relayed", "expanded"})
_STATUS_PARTS = ("message/delivery-status", "message/global-delivery-status")  # RFC 6533
_RETURNED_HEADERS = ("text/rfc822-headers", "message/global-headers")
_RETURNED_MESSAGES = ("message/rfc822", "message/global")
_MAX_TEXT = 500
_MAX_ID = 200  # the ledger's message_id column
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,198}>")  # printable ASCII but < and >
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_PARSER = BytesParser(policy=policy.default)


class ReportUnreadable(BodyInvalid):
    """The body is not a delivery report Tessera can read (why in `errors[0].message`)."""

    code = "not_a_report"
    title = "Not a delivery report"

    def __init__(self, why: str) -> None:
        super().__init__([FieldError("report", why)])


class RecipientReport(msgspec.Struct, frozen=True):
    action: str  # one of ACTIONS
    status: str  # "5.1.1", or "" when missing or malformed
    diagnostic: str  # the Diagnostic-Code ("smtp; 550 5.1.1 ..."), or ""
    final_recipient: str  # the address, without its "rfc822;" type


class DeliveryReport(msgspec.Struct, frozen=True):
    envelope_id: str | None  # the Original-Envelope-Id, decoded, in angle brackets
    message_ids: tuple[str, ...]  # to look the message up by, best first (module docstring)
    recipients: tuple[RecipientReport, ...]


def parse_report(raw: bytes, *, content_type: str | None = None) -> DeliveryReport:
    """The report in `raw`: a whole mail (`content_type` None or message/rfc822), or the body of
    a `message/delivery-status` or `multipart/report; boundary=...` part. Raises
    ReportUnreadable."""
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportUnreadable(
            f"a delivery report is at most {MAX_REPORT_BYTES} bytes; this one is too large"
        )
    media = (content_type or "message/rfc822").split(";", 1)[0].strip().lower()
    if media not in ("message/rfc822", ""):
        if not content_type or not content_type.isprintable():
            raise ReportUnreadable("not a delivery report: unreadable Content-Type")
        raw = f"Content-Type: {content_type}\r\n\r\n".encode("ascii", "replace") + raw
    try:
        message = _PARSER.parsebytes(raw)
        status_part, returned = _parts(message)
    except Exception:  # the email package is lenient; anything it still trips on is garbage
        raise ReportUnreadable("not a delivery report: unreadable MIME structure") from None
    if status_part is None:
        raise ReportUnreadable("not a delivery report: no message/delivery-status part (RFC 3464)")
    blocks = [b for b in status_part.get_payload() if isinstance(b, Message)]
    per_message = blocks[0] if blocks else None
    recipients = tuple(r for r in map(_recipient, blocks[1:]) if r is not None)
    if not recipients:
        raise ReportUnreadable(
            "not a delivery report Tessera can read: no recipient with a known Action "
            f"({', '.join(sorted(ACTIONS))})"
        )
    envelope_id = _envelope_id(_field(per_message, "Original-Envelope-Id"))
    ids = [envelope_id] if envelope_id else []
    ids += [i for i in map(_message_id, returned) if i]
    if len(ids) == (1 if envelope_id else 0):
        ids.append(_message_id(_field(per_message, "X-Original-Message-ID")))
    found = tuple(dict.fromkeys(i for i in ids if i))
    if not found:
        raise ReportUnreadable(
            "the delivery report names no message: no Original-Envelope-Id and no returned "
            "Message-ID"
        )
    return DeliveryReport(envelope_id=envelope_id, message_ids=found, recipients=recipients)


def _parts(message: Message) -> tuple[Message | None, list[str]]:
    """The first delivery-status part, and the Message-ID header of each returned message."""
    status_part = None
    returned: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in _STATUS_PARTS and status_part is None:
            status_part = part
        elif kind in _RETURNED_HEADERS:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = _PARSER.parsebytes(payload, headersonly=True)
                returned.append(_field(headers, "Message-ID"))
        elif kind in _RETURNED_MESSAGES:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                returned.append(_field(inner[0], "Message-ID"))
    return status_part, returned


def _recipient(block: Message) -> RecipientReport | None:
    action = _field(block, "Action").lower()
    if action not in ACTIONS:
        return None
    status = _field(block, "Status").split(" ", 1)[0]
    final = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
    return RecipientReport(
        action=action,
        status=status if _STATUS.fullmatch(status) else "",
        diagnostic=_field(block, "Diagnostic-Code"),
        final_recipient=final.partition(";")[2].strip() if ";" in final else final,
    )


def _envelope_id(value: str) -> str | None:
    decoded = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value).strip()
    if not decoded:
        return None
    if not decoded.startswith("<"):
        decoded = f"<{decoded}>"
    return decoded if _MESSAGE_ID.fullmatch(decoded) else None


def _message_id(value: str) -> str:
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else ""


def _field(block: Message | EmailMessage | None, name: str) -> str:
    """A field's value as one safe line: unfolded, no controls, undecodable bytes replaced,
    at most 500 characters; "" when absent."""
    if block is None:
        return ""
    try:
        value = block.get(name)
    except Exception:  # the policy parses values as they are read: keep the raw text instead
        value = next((v for k, v in block.raw_items() if k.lower() == name.lower()), None)
    if value is None:
        return ""
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    line = " ".join(_CONTROLS.sub(" ", text).split())
    return line if len(line) <= _MAX_TEXT else line[: _MAX_TEXT - 1] + "…"
