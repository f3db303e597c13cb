"""The delivery report parser (RFC 3464), fed the hand-written samples of `dsn/` and garbage.

Pure: bytes in, a `DeliveryReport` out or `ReportUnreadable`; which message of the ledger it
names, and what that changes, is the service's (test_report_api.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.campaigns.reports import (
    MAX_REPORT_BYTES,
    DeliveryReport,
    RecipientReport,
    ReportUnreadable,
    parse_report,
)

SAMPLES = Path(__file__).parent / "dsn"
ENVID = "<5f0c2b9e4a7d4c1e9b3a8f6d2e1c0b7a@tickets.example.org>"
MESSAGE_ID = "<0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e@tickets.example.org>"


def sample(name: str, *, envid: str = ENVID, message_id: str = MESSAGE_ID) -> bytes:
    """A hand-written sample (dsn/README.md) naming `envid` and `message_id`."""
    text = (SAMPLES / name).read_bytes()
    text = text.replace(b"@@ENVID@@", envid.encode()).replace(
        b"@@MESSAGE_ID@@", message_id.encode()
    )
    return text.replace(b"\n", b"\r\n")  # as it comes over SMTP


@pytest.mark.parametrize(
    ("name", "action", "status", "diagnostic", "envid"),
    [
        pytest.param(
            "postfix-delivered.eml",
            "delivered",
            "2.0.0",
            "smtp; 250 2.0.0 OK",
            ENVID,
            id="postfix-delivered",
        ),
        pytest.param(
            "postfix-failed.eml",
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 <nobody@example.com>",
            ENVID,
            id="postfix-failed",
        ),
        pytest.param(
            "postfix-delayed.eml",
            "delayed",
            "4.4.1",
            "X-Postfix; connect to mx.example.net",
            ENVID,
            id="postfix-delayed",
        ),
        pytest.param(
            "postfix-relayed.eml", "relayed", "2.0.0", "smtp; 250 Ok", ENVID, id="postfix-relayed"
        ),
        pytest.param(
            "exim-failed.eml", "failed", "5.2.2", "X-Exim; mailbox is full", None, id="exim-failed"
        ),
        pytest.param(
            "gmail-failed.eml",
            "failed",
            "5.1.1",
            "smtp; 550-5.1.1 The email account",
            None,
            id="gmail-failed",
        ),
        pytest.param("expanded.eml", "expanded", "2.0.0", "", ENVID, id="expanded"),
    ],
)
def test_each_sample_says_what_happened_and_to_which_message(
    name, action, status, diagnostic, envid
):
    report = parse_report(sample(name))
    assert report.envelope_id == envid
    assert MESSAGE_ID in report.message_ids  # the returned headers' Message-ID
    [recipient] = report.recipients
    assert (recipient.action, recipient.status) == (action, status)
    assert recipient.diagnostic.startswith(diagnostic)
    assert "\n" not in recipient.diagnostic and "  " not in recipient.diagnostic  # unfolded


def test_the_envelope_id_comes_first_among_the_ids_to_look_up():
    report = parse_report(sample("postfix-failed.eml"))
    assert report.message_ids[0] == ENVID
    assert report.message_ids == (ENVID, MESSAGE_ID)


def test_an_xtext_encoded_envelope_id_is_decoded():
    report = parse_report(sample("postfix-delivered.eml", envid="<a+2Bb@t.example>"))
    assert report.envelope_id == "<a+b@t.example>"


def test_an_envelope_id_without_angle_brackets_is_looked_up_with_them():
    report = parse_report(sample("postfix-delivered.eml", envid="abc@t.example"))
    assert report.message_ids[0] == "<abc@t.example>"


def test_a_bare_delivery_status_part_is_a_report_without_returned_headers():
    body = (
        b"Reporting-MTA: dns; mx.example\r\nOriginal-Envelope-Id: " + ENVID.encode() + b"\r\n\r\n"
        b"Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.0.0\r\n"
    )
    report = parse_report(body, content_type="message/delivery-status")
    assert report == DeliveryReport(
        envelope_id=ENVID,
        message_ids=(ENVID,),
        recipients=(RecipientReport("failed", "5.0.0", "", "a@example.com"),),
    )


def test_the_gmail_original_message_id_field_counts_when_no_headers_were_returned():
    raw = sample("gmail-failed.eml")
    cut = raw.index(b"--000000000000a1b2c3061aeed1f4\r\nContent-Type: text/rfc822-headers")
    report = parse_report(raw[:cut] + b"--000000000000a1b2c3061aeed1f4--\r\n")
    assert report.message_ids == (MESSAGE_ID,)


def test_parsed_whole_byte_for_byte_with_lf_or_crlf_line_ends_alike():
    crlf = parse_report(sample("postfix-failed.eml"))
    lf = parse_report(sample("postfix-failed.eml").replace(b"\r\n", b"\n"))
    assert crlf == lf


def test_trailing_garbage_after_the_last_boundary_changes_nothing():
    raw = sample("postfix-failed.eml")
    assert parse_report(raw + b"\x00\xff garbage " * 100) == parse_report(raw)


# --- garbage ---


def unreadable(raw: bytes, **kw: str) -> str:
    with pytest.raises(ReportUnreadable) as caught:
        parse_report(raw, **kw)
    [error] = caught.value.errors
    assert error["field"] == "report"
    return error["message"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello", id="a-word"),
        pytest.param(b"\x00\xff\xfe" * 1000, id="binary"),
        pytest.param(b"Subject: hi\r\n\r\nJust a mail.\r\n", id="plain-mail"),
        pytest.param(
            b"Content-Type: multipart/report; report-type=disposition-notification; "
            b"boundary=x\r\n\r\n--x\r\nContent-Type: message/disposition-notification\r\n\r\n"
            b"Disposition: manual-action/MDN-sent-manually; displayed\r\n--x--\r\n",
            id="read-receipt",
        ),
        pytest.param(
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: text/plain\r\n\r\nno status part\r\n--x--\r\n",
            id="no-status-part",
        ),
        pytest.param(
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\r\n\r\n",
            id="empty-boundary",
        ),
    ],
)
def test_what_is_not_a_delivery_report_is_refused_with_a_reason(raw):
    assert "delivery" in unreadable(raw)


def test_a_recipient_block_without_action_or_with_an_unknown_one_is_no_report():
    for block in (b"Status: 5.0.0\r\n", b"Action: exploded\r\nStatus: 5.0.0\r\n", b""):
        body = b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b.c\r\n" + block
        assert "Action" in unreadable(body, content_type="message/delivery-status")


def test_a_report_naming_no_message_at_all_is_refused():
    body = b"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@b.c\r\nAction: failed\r\n"
    assert "Message-ID" in unreadable(body, content_type="message/delivery-status")


def test_a_report_over_the_size_limit_is_refused_unread():
    raw = sample("postfix-failed.eml")
    big = raw + b"x" * (MAX_REPORT_BYTES - len(raw) + 1)
    assert "too large" in unreadable(big)


def test_a_10_mb_string_of_one_character_is_refused():
    assert unreadable(b"a" * 10_000_000)


def test_a_wrong_or_unknown_charset_and_8_bit_bytes_read_as_replaced_text():
    raw = (
        sample("postfix-failed.eml")
        .replace(b"charset=us-ascii", b"charset=x-no-such-charset")
        .replace(b"Recipient address\r\n    rejected", b"Empf\xe4nger \xff\xfe\r\n    rejected")
    )
    [recipient] = parse_report(raw).recipients
    assert recipient.action == "failed"
    assert "\ufffd" in recipient.diagnostic and recipient.diagnostic.isprintable()


def test_control_characters_and_huge_fields_are_cut_out_of_the_diagnostic():
    body = (
        b"Original-Envelope-Id: <a@b.c>\r\n\r\nFinal-Recipient: rfc822; a@b.c\r\nAction: failed\r\n"
        b"Status: 5.0.0\r\nDiagnostic-Code: smtp; 550 \x1b[31mred\x07 " + b"y" * 100_000 + b"\r\n"
    )
    [recipient] = parse_report(body, content_type="message/delivery-status").recipients
    assert "\x1b" not in recipient.diagnostic and "\x07" not in recipient.diagnostic
    assert len(recipient.diagnostic) <= 500


def test_an_envelope_id_of_huge_or_control_text_is_no_id():
    for envid in (b"<" + b"a" * 5000 + b"@b.c>", b"<a\x01b@c.d>", b""):
        body = (
            b"Original-Envelope-Id: " + envid + b"\r\n\r\n"
            b"Final-Recipient: rfc822; a@b.c\r\nAction: failed\r\n"
        )
        assert "Message-ID" in unreadable(body, content_type="message/delivery-status")
