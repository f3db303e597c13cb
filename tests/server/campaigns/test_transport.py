"""Sending mail: SmtpMailer against a real aiosmtpd sink, MaildirMailer on real files.

Each SMTP test starts its own sink on a free 127.0.0.1 port (tests/server/campaigns/smtp_sink.py)
and counts what reached it, and over how many connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from server.campaigns.transport import (
    MaildirMailer,
    SendResult,
    SmtpMailer,
    _parse_smtp_url,
    mailer_for,
    read_mail,
    read_maildir,
    view_mail,
)
from tests.server.campaigns.smtp_sink import SmtpSink, closed_port, self_signed_tls, silent_server

SENDER = "no-reply@tessera.test"


def mail(n: int = 0, *, to: str = "guest@example.test", subject: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Tessera <{SENDER}>"
    message["To"] = to
    message["Subject"] = subject if subject is not None else f"Your tickets ({n})"
    message["Message-ID"] = f"<m{n}@tessera.test>"
    message.set_content(f"Hello, here are your tickets: https://tickets.test/t/{n}\n")
    return message


async def send(mailer: Any, n: int = 0, to: str = "guest@example.test", **kw: Any) -> SendResult:
    result: SendResult = await mailer.send(mail(n, to=to, **kw), sender=SENDER, recipients=[to])
    return result


@pytest.fixture
def sink() -> Iterator[Callable[..., SmtpSink]]:
    started: list[SmtpSink] = []

    def start(**options: Any) -> SmtpSink:
        started.append(SmtpSink(**options).start())
        return started[-1]

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def tls() -> tuple[Any, Any]:
    return self_signed_tls()


# --- the happy path and the pool ---


async def test_200_messages_over_4_reused_connections_all_arrive_once(sink):
    s = sink()
    mailer = SmtpMailer(s.url, connections=4)
    recipients = [f"guest{n}@example.test" for n in range(200)]
    results = await asyncio.gather(*(send(mailer, n, to) for n, to in enumerate(recipients)))
    await mailer.close()
    assert results == [SendResult(ok=True)] * 200
    assert sorted(s.recipients()) == sorted(recipients)
    assert 1 <= s.connections <= 4
    assert {m.message()["Message-ID"] for m in s.messages} == {
        f"<m{n}@tessera.test>" for n in range(200)
    }
    assert all(m.sender == SENDER for m in s.messages)


async def test_one_connection_carries_every_message_in_turn(sink):
    s = sink()
    mailer = SmtpMailer(s.url, connections=1)
    for n in range(20):
        assert await send(mailer, n) == SendResult(ok=True)
    await mailer.close()
    assert (s.connections, len(s.messages)) == (1, 20)


async def test_close_quits_every_connection_and_a_send_after_it_is_a_bug(sink):
    s = sink()
    mailer = SmtpMailer(s.url, connections=3)
    await asyncio.gather(*(send(mailer, n) for n in range(30)))
    opened = s.connections
    await mailer.close()
    assert s.quits == opened
    with pytest.raises(RuntimeError):
        await send(mailer)


async def test_an_idle_connection_the_server_closed_is_replaced_without_a_failure(sink):
    s = sink(idle_timeout=0.3)
    mailer = SmtpMailer(s.url, connections=1)
    assert await send(mailer, 1) == SendResult(ok=True)
    await asyncio.sleep(0.8)  # the sink says 421 and hangs up
    assert await send(mailer, 2) == SendResult(ok=True)
    await mailer.close()
    assert (s.connections, len(s.messages)) == (2, 2)


async def test_a_server_closing_with_421_after_3_messages_loses_none(sink):
    s = sink(per_connection=3)
    mailer = SmtpMailer(s.url, connections=1)
    results = [await send(mailer, n) for n in range(10)]
    await mailer.close()
    assert results == [SendResult(ok=True)] * 10
    assert (len(s.messages), s.connections) == (10, 4)


# --- refusals: permanent and temporary ---


async def test_a_550_for_the_recipient_is_permanent_with_its_reply_and_the_connection_stays(sink):
    s = sink(rcpt_replies={"gone@example.test": "550 5.1.1 no such user"})
    mailer = SmtpMailer(s.url, connections=1)
    result = await send(mailer, 1, "gone@example.test")
    assert result == SendResult(ok=False, permanent=True, reply="550 5.1.1 no such user")
    assert await send(mailer, 2) == SendResult(ok=True)
    await mailer.close()
    assert (s.connections, s.recipients()) == (1, ["guest@example.test"])


async def test_a_451_for_the_recipient_is_temporary(sink):
    s = sink(rcpt_replies={"busy@example.test": "451 4.3.0 try again later"})
    mailer = SmtpMailer(s.url)
    result = await send(mailer, 1, "busy@example.test")
    await mailer.close()
    assert result == SendResult(ok=False, permanent=False, reply="451 4.3.0 try again later")


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("554 5.7.1 rejected as spam", True), ("452 4.3.1 insufficient storage", False)],
)
async def test_a_refused_data_is_classed_by_its_code(sink, reply, permanent):
    s = sink(data_reply=reply)
    mailer = SmtpMailer(s.url)
    result = await send(mailer)
    await mailer.close()
    assert result == SendResult(ok=False, permanent=permanent, reply=reply)
    assert s.messages == []


async def test_refusals_after_n_messages_leave_the_first_n_delivered(sink):
    s = sink(data_reply="451 4.7.1 slow down", data_reply_after=5)
    mailer = SmtpMailer(s.url, connections=1)
    results = [await send(mailer, n) for n in range(8)]
    await mailer.close()
    assert [r.ok for r in results] == [True] * 5 + [False] * 3
    assert {r.permanent for r in results[5:]} == {False}
    assert len(s.messages) == 5 and s.connections == 1  # a refusal is no reason to reconnect


async def test_several_recipients_one_refused_reports_it_and_delivers_to_the_others(sink):
    s = sink(rcpt_replies={"gone@example.test": "550 5.1.1 no such user"})
    mailer = SmtpMailer(s.url)
    to = ["a@example.test", "gone@example.test", "b@example.test"]
    result = await mailer.send(mail(), sender=SENDER, recipients=to)
    await mailer.close()
    assert result == SendResult(
        ok=False, permanent=True, reply="gone@example.test: 550 5.1.1 no such user"
    )
    assert s.recipients() == ["a@example.test", "b@example.test"]


async def test_a_message_larger_than_the_server_takes_is_permanent(sink):
    s = sink(data_size_limit=1024 * 1024)
    mailer = SmtpMailer(s.url)
    big = mail()
    big.set_content("x" * (2 * 1024 * 1024))
    result = await mailer.send(big, sender=SENDER, recipients=["guest@example.test"])
    await mailer.close()
    assert (result.ok, result.permanent, result.reply[:4]) == (False, True, "552 ")


async def test_a_10_mb_message_arrives_whole(sink):
    s = sink()
    mailer = SmtpMailer(s.url)
    big = mail()
    body = "".join(f"line {n:08d} of a long ticket list\n" for n in range(300_000))  # ~10 MB
    big.set_content(body)
    result = await mailer.send(big, sender=SENDER, recipients=["guest@example.test"])
    await mailer.close()
    assert result == SendResult(ok=True)
    assert s.messages[0].message().get_content().replace("\r\n", "\n") == body


async def test_a_server_reply_is_one_line_without_controls_and_cut_to_500(sink):
    s = sink(rcpt_replies={"x@example.test": "550 5.1.1 " + "\x1b[2J" + "y" * 2000})
    mailer = SmtpMailer(s.url)
    result = await send(mailer, to="x@example.test")
    await mailer.close()
    assert result.permanent and len(result.reply) == 500 and "\x1b" not in result.reply
    assert result.reply.startswith("550 5.1.1 [2Jyyy")


# --- broken connections, silence, refusals to connect ---


async def test_a_connection_dropped_mid_message_is_retried_once_on_a_fresh_one(sink):
    s = sink(drop_at={1})
    mailer = SmtpMailer(s.url, connections=1)
    assert await send(mailer, 1) == SendResult(ok=True)
    await mailer.close()
    assert (s.attempts, len(s.messages), s.connections) == (2, 1, 2)


async def test_a_pooled_connection_dropped_mid_message_is_retried_once(sink):
    s = sink(drop_at={3})
    mailer = SmtpMailer(s.url, connections=1)
    results = [await send(mailer, n) for n in range(5)]
    await mailer.close()
    assert results == [SendResult(ok=True)] * 5
    assert (s.attempts, len(s.messages), s.connections) == (6, 5, 2)


async def test_a_second_drop_is_a_temporary_failure_after_exactly_one_retry(sink):
    s = sink(drop_at={1, 2})
    mailer = SmtpMailer(s.url, connections=1)
    result = await send(mailer)
    assert (result.ok, result.permanent) == (False, False)
    assert result.reply.startswith(f"connection to 127.0.0.1:{s.port} lost")
    assert (s.attempts, s.messages) == (2, [])
    assert await send(mailer, 2) == SendResult(ok=True)  # the mailer is still usable
    await mailer.close()


async def test_a_data_never_answered_times_out_and_the_retry_delivers(sink):
    s = sink(hang_at={1})
    mailer = SmtpMailer(s.url, connections=1, timeout=0.5)
    started = time.monotonic()
    assert await send(mailer) == SendResult(ok=True)
    assert time.monotonic() - started < 2.5
    await mailer.close()
    assert (s.attempts, len(s.messages)) == (2, 1)


async def test_a_server_that_never_answers_is_a_temporary_failure_within_the_timeout():
    with silent_server() as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=0.5)
        started = time.monotonic()
        result = await send(mailer)
        elapsed = time.monotonic() - started
        await mailer.close()
    assert result == SendResult(
        ok=False, reply=f"timed out connecting to 127.0.0.1:{port} after 0.5 s"
    )
    assert 0.4 < elapsed < 1.5  # one timeout: a connection that never opened is not retried


async def test_a_refused_connection_is_a_temporary_failure():
    with closed_port() as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        result = await send(mailer)
        await mailer.close()
    assert result == SendResult(ok=False, reply=f"connection refused by 127.0.0.1:{port}")


async def test_a_cancelled_send_leaves_no_half_used_connection_in_the_pool(sink):
    s = sink(hang_at={1})
    mailer = SmtpMailer(s.url, connections=1, timeout=30)
    task = asyncio.create_task(send(mailer, 1))
    assert await asyncio.to_thread(s.data_started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await send(mailer, 2) == SendResult(ok=True)
    await mailer.close()
    assert s.connections == 2


# --- TLS and AUTH ---


async def test_starttls_is_used_when_the_server_offers_it(sink, tls):
    server_tls, client_tls = tls
    s = sink(starttls=server_tls)
    mailer = SmtpMailer(s.url, tls_context=client_tls)
    assert await send(mailer) == SendResult(ok=True)
    await mailer.close()
    assert s.messages[0].tls


async def test_plain_smtp_is_used_when_the_server_offers_no_starttls(sink, tls):
    s = sink()
    mailer = SmtpMailer(s.url, tls_context=tls[1])
    assert await send(mailer) == SendResult(ok=True)
    await mailer.close()
    assert not s.messages[0].tls


async def test_smtps_is_tls_from_the_first_byte(sink, tls):
    server_tls, client_tls = tls
    s = sink(implicit_tls=server_tls)
    assert s.url.startswith("smtps://")
    mailer = SmtpMailer(s.url, tls_context=client_tls)
    assert await send(mailer) == SendResult(ok=True)
    await mailer.close()
    assert s.messages[0].tls


@pytest.mark.parametrize("mode", ["starttls", "implicit_tls"])
async def test_an_untrusted_certificate_is_a_temporary_failure_and_nothing_is_sent(sink, tls, mode):
    s = sink(**{mode: tls[0]})
    mailer = SmtpMailer(s.url)  # the system's CAs do not know the sink's certificate
    result = await send(mailer)
    await mailer.close()
    assert (result.ok, result.permanent) == (False, False)
    assert "certificate verify failed" in result.reply
    assert s.messages == []


async def test_auth_logs_in_with_the_percent_decoded_user_and_password(sink):
    s = sink(auth=("ops@tessera.test", "p:ss w@rd/é"))
    url = f"smtp://ops%40tessera.test:p%3Ass%20w%40rd%2F%C3%A9@127.0.0.1:{s.port}"
    mailer = SmtpMailer(url)
    assert await send(mailer) == SendResult(ok=True)
    await mailer.close()
    assert s.messages[0].login == "ops@tessera.test"


async def test_auth_after_starttls(sink, tls):
    s = sink(auth=("ops", "secret"), starttls=tls[0])
    mailer = SmtpMailer(f"smtp://ops:secret@127.0.0.1:{s.port}", tls_context=tls[1])
    assert await send(mailer) == SendResult(ok=True)
    await mailer.close()
    assert (s.messages[0].tls, s.messages[0].login) == (True, "ops")


async def test_a_wrong_password_is_temporary_and_never_shown(sink):
    s = sink(auth=("ops", "secret"))
    mailer = SmtpMailer(f"smtp://ops:wrong-s3cret@127.0.0.1:{s.port}")
    result = await send(mailer)
    await mailer.close()
    assert (result.ok, result.permanent, result.reply[:4]) == (False, False, "535 ")
    assert "s3cret" not in result.reply and "s3cret" not in repr(mailer)
    assert s.messages == []


async def test_auth_required_but_not_configured_is_temporary_as_it_is_no_fault_of_the_message(
    sink,
):
    s = sink(auth=("ops", "secret"))
    mailer = SmtpMailer(s.url)
    result = await send(mailer)
    await mailer.close()
    assert (result.ok, result.permanent, result.reply[:4]) == (False, False, "530 ")


# --- addresses ---


async def test_a_non_ascii_address_goes_by_smtputf8(sink):
    s = sink(smtputf8=True)
    mailer = SmtpMailer(s.url)
    assert await send(mailer, to="zoë@exämple.test") == SendResult(ok=True)
    await mailer.close()
    assert s.recipients() == ["zoë@exämple.test"]


async def test_a_non_ascii_address_to_a_server_without_smtputf8_is_permanent(sink):
    s = sink(smtputf8=False)
    mailer = SmtpMailer(s.url)
    result = await send(mailer, to="zoë@exämple.test")
    await mailer.close()
    assert (result.ok, result.permanent) == (False, True)
    assert "SMTPUTF8" in result.reply


BAD_ENVELOPES = [
    pytest.param(SENDER, [], ValueError, id="no-recipient"),
    pytest.param(SENDER, [""], ValueError, id="empty-recipient"),
    pytest.param(SENDER, ["guest"], ValueError, id="no-at"),
    pytest.param(SENDER, ["a@b.test\r\nRCPT TO:<x@evil.test>"], ValueError, id="crlf-injection"),
    pytest.param(SENDER, ["a@b.test\x00"], ValueError, id="nul"),
    pytest.param(SENDER, ["a b@c.test"], ValueError, id="space"),
    pytest.param(SENDER, ["a@" + "b" * 10_000_000], ValueError, id="10-mb-address"),
    pytest.param("x@y.test\nRCPT TO:<x@evil.test>", ["a@b.test"], ValueError, id="crlf-sender"),
    pytest.param("", ["a@b.test"], ValueError, id="empty-sender"),
    pytest.param(SENDER, "a@b.test", TypeError, id="bare-string"),
    pytest.param(SENDER, [b"a@b.test"], TypeError, id="bytes"),
]


@pytest.mark.parametrize(("sender", "recipients", "error"), BAD_ENVELOPES)
async def test_an_envelope_no_smtp_command_can_carry_is_a_bug_and_sends_nothing(
    sink, tmp_path, sender, recipients, error
):
    s = sink()
    for mailer in (SmtpMailer(s.url), MaildirMailer(tmp_path / "mail")):
        with pytest.raises(error):
            await mailer.send(mail(), sender=sender, recipients=recipients)
        await mailer.close()
    assert (s.connections, s.messages) == (0, [])
    assert not (tmp_path / "mail").exists()


# --- URLs ---


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mx.example.org", ("mx.example.org", 25, False, None, None, 30.0)),
        ("SMTP://MX.example.org:2525", ("mx.example.org", 2525, False, None, None, 30.0)),
        ("smtps://mx.example.org", ("mx.example.org", 465, True, None, None, 30.0)),
        ("smtps://u:p@[::1]:587/", ("::1", 587, True, "u", "p", 30.0)),
        ("smtp://u%40x:p%3A%2F@relay_1:25?timeout=2.5", ("relay_1", 25, False, "u@x", "p:/", 2.5)),
        ("smtp://u:@h", ("h", 25, False, "u", "", 30.0)),
    ],
)
def test_smtp_urls_name_host_port_tls_credentials_and_timeout(url, expected):
    server = _parse_smtp_url(url, 30.0)
    assert (
        server.hostname,
        server.port,
        server.use_tls,
        server.username,
        server.password,
        server.timeout,
    ) == expected


BAD_URLS = [
    "ftp://mx.example.org",
    "http://mx.example.org",
    "mx.example.org",
    "garbage",
    "",
    "smtp://",
    "smtp:///",
    "smtp://:25",
    "smtp://mx.example.org:0",
    "smtp://mx.example.org:70000",
    "smtp://mx.example.org:99999999999999999999999",
    "smtp://mx.example.org:-1",
    "smtp://mx.example.org:+25",
    "smtp://mx.example.org:\uff12\uff15",  # fullwidth digits
    "smtp://mx.example.org:abc",
    "smtp://mx.example.org/path",
    "smtp://mx.example.org#frag",
    "smtp://mx.example.org?tls=1",
    "smtp://mx.example.org?timeout=0",
    "smtp://mx.example.org?timeout=-1",
    "smtp://mx.example.org?timeout=nan",
    "smtp://mx.example.org?timeout=inf",
    "smtp://mx.example.org?timeout=1e9",
    "smtp://mx.example.org?timeout=1&timeout=2",
    "smtp://mx.example.org?timeout",
    "smtp://user@mx.example.org",
    "smtp://:pass@mx.example.org",
    "smtp://u:%ff@mx.example.org",
    "smtp://u:a%0d%0aRCPT@mx.example.org",
    "smtp://mx example.org",
    "smtp://mx.example.org\r\nRCPT TO:<x@y>",
    "smtp://mx.example.org\x00",
    "smtp://[::1",
    "smtp://exämple.org",
    "smtp://-bad-.example.org",
    "smtp://" + "a" * 10_000_000,
]


@pytest.mark.parametrize("url", BAD_URLS, ids=lambda u: repr(u[:40]))
def test_a_bad_url_is_a_value_error_at_construction(url):
    with pytest.raises(ValueError, match=r"^smtp_url: "):
        SmtpMailer(url)


def test_a_bad_url_is_shown_with_its_password_masked():
    with pytest.raises(ValueError) as caught:
        SmtpMailer("smtp://ops:s3cret@mx.example.org:0")
    assert "s3cret" not in str(caught.value) and "ops:***@mx.example.org" in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        {"connections": 0},
        {"connections": 65},
        {"connections": True},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"timeout": -1},
        {"timeout": 10**9},
    ],
)
def test_bad_pool_options_are_value_errors(options):
    with pytest.raises(ValueError):
        SmtpMailer("smtp://mx.example.org", **options)


def test_mailer_for_picks_smtp_when_a_url_is_set_and_the_maildir_otherwise(tmp_path):
    assert isinstance(mailer_for("smtp://mx.example.org", tmp_path), SmtpMailer)
    for unset in (None, ""):
        mailer = mailer_for(unset, tmp_path / "mail")
        assert isinstance(mailer, MaildirMailer) and mailer.path == tmp_path / "mail"
    with pytest.raises(ValueError):
        mailer_for("ftp://mx.example.org", tmp_path)


# --- the maildir ---


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


async def test_the_maildir_and_its_folders_are_0700_and_each_message_0600(tmp_path, umask):
    root = tmp_path / "var" / "mail"
    mailer = MaildirMailer(root)
    assert not (tmp_path / "var").exists()  # nothing is created before the first send
    for n in range(3):
        assert await send(mailer, n) == SendResult(ok=True)
    assert _mode(tmp_path / "var") == 0o700
    assert [_mode(root / sub) for sub in ("", "tmp", "new", "cur")] == [0o700] * 4
    files = list((root / "new").iterdir())
    assert len(files) == 3 and {_mode(f) for f in files} == {0o600}
    assert list((root / "tmp").iterdir()) == []


async def test_an_existing_readable_maildir_is_made_private(tmp_path, umask):
    root = tmp_path / "mail"
    for sub in ("", "tmp", "new"):  # an older layout, and no cur/
        (root / sub).mkdir(mode=0o755)
        (root / sub).chmod(0o755)
    assert await send(MaildirMailer(root)) == SendResult(ok=True)
    assert [_mode(root / sub) for sub in ("", "tmp", "new", "cur")] == [0o700] * 4


async def test_a_stored_message_is_the_message_with_its_envelope_in_front(tmp_path):
    mailer = MaildirMailer(tmp_path / "mail")
    message = mail(7, subject="Vos billets — Café Zoë 🎫")
    message.add_alternative("<p>Hello <b>Zoë</b></p>", subtype="html")
    result = await mailer.send(message, sender=SENDER, recipients=["a@x.test", "b@x.test"])
    assert result == SendResult(ok=True)
    (stored,) = read_maildir(tmp_path / "mail")
    raw = read_mail(tmp_path / "mail", stored.id)
    parsed = BytesParser(policy=default_policy).parsebytes(raw)
    assert parsed["Return-Path"] == f"<{SENDER}>"
    assert parsed.get_all("Delivered-To") == ["a@x.test", "b@x.test"]
    assert parsed["Subject"] == "Vos billets — Café Zoë 🎫"
    assert parsed["Message-ID"] == "<m7@tessera.test>"
    assert view_mail(raw).html == "<p>Hello <b>Zoë</b></p>\n"
    assert (stored.subject, stored.message_id, stored.from_) == (
        "Vos billets — Café Zoë 🎫",
        "<m7@tessera.test>",
        f"Tessera <{SENDER}>",
    )


async def test_concurrent_sends_each_get_their_own_file(tmp_path):
    mailer = MaildirMailer(tmp_path / "mail")
    results = await asyncio.gather(*(send(mailer, n) for n in range(100)))
    assert results == [SendResult(ok=True)] * 100
    ids = {m.message_id for m in read_maildir(tmp_path / "mail")}
    assert ids == {f"<m{n}@tessera.test>" for n in range(100)}


_WATCHER = """
import json, os, sys
new, stop = sys.argv[1], sys.argv[2]
first = {}
print("ready", flush=True)
done = False
while not done:
    done = os.path.exists(stop)  # one more look after the stop: a file the loop missed counts
    try:
        for entry in os.scandir(new):
            first.setdefault(entry.name, entry.stat().st_size)
    except FileNotFoundError:
        pass
print(json.dumps(first))
"""


async def test_a_reader_never_sees_half_a_message(tmp_path):
    """Another process watches new/ in a tight loop while 4 MB messages are written: the size
    it first sees of each file is already its final size."""
    root = tmp_path / "mail"
    mailer = MaildirMailer(root)
    await send(mailer, 0)  # the folders exist before the watcher starts
    stop = tmp_path / "stop"
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WATCHER, str(root / "new"), str(stop), stdout=subprocess.PIPE
    )
    try:
        assert watcher.stdout is not None and await watcher.stdout.readline() == b"ready\n"
        for n in range(1, 11):
            message = mail(n)
            message.set_content("x" * 4_000_000 + f"\nend of message {n}\n")
            assert (await mailer.send(message, sender=SENDER, recipients=["g@x.test"])).ok
        await asyncio.sleep(0.1)
    finally:
        stop.touch()
        out, _ = await asyncio.wait_for(watcher.communicate(), 30)
    first_seen = json.loads(out)
    final = {f.name: f.stat().st_size for f in (root / "new").iterdir()}
    assert len(final) == 11 and set(first_seen) == set(final)
    assert first_seen == final


async def test_a_maildir_that_cannot_be_written_is_a_temporary_failure(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    result = await send(MaildirMailer(tmp_path / "file" / "mail"))
    assert (result.ok, result.permanent) == (False, False)
    assert result.reply.startswith(f"maildir {tmp_path / 'file' / 'mail'}: ")


# --- reading the maildir ---


async def test_read_maildir_lists_new_and_cur_oldest_first_and_skips_dotfiles(tmp_path):
    root = tmp_path / "mail"
    mailer = MaildirMailer(root)
    for n in range(3):
        await send(mailer, n)
    files = sorted((root / "new").iterdir())
    for age, file in zip((30, 10, 20), files, strict=True):
        os.utime(file, (time.time() - age, time.time() - age))
    files[0].rename(root / "cur" / (files[0].name + ":2,S"))  # read by a mail client
    (root / "new" / ".hidden").write_bytes(b"Subject: no\n\n")
    listed = read_maildir(root)
    assert [m.id for m in listed] == [files[0].name, files[2].name, files[1].name]
    assert read_mail(root, files[0].name).endswith(b"tickets.test/t/0\n")


def test_read_maildir_of_nothing_is_empty(tmp_path):
    assert read_maildir(tmp_path / "missing") == []
    (tmp_path / "empty").mkdir()
    assert read_maildir(tmp_path / "empty") == []


GARBAGE_FILES = {
    "empty": b"",
    "random": os.urandom(4096),
    "bad-utf8-headers": b"Subject: \xff\xfe caf\xe9\nFrom: \xc3\x28\nDate: yesterday\n\nbody\n",
    "no-headers": b"just text, no header at all\n" * 100,
    "huge": b"Subject: huge\n\n" + b"y" * 10_000_000,
    "nul": b"Subject: a\x00b\n\n\x00\x00",
    "broken-mime": b"Content-Type: multipart/mixed; boundary=x\nSubject: m\n\n--x\nContent-Type"
    b": text/plain; charset=nonexistent\nContent-Transfer-Encoding: base64\n\n!!!!\n",
    "long-header": b"Subject: " + b"z" * 1_000_000 + b"\n\n",
}


@pytest.mark.parametrize("name", GARBAGE_FILES)
def test_garbage_in_the_maildir_is_listed_and_shown_never_a_crash(tmp_path, name):
    root = tmp_path / "mail"
    (root / "new").mkdir(parents=True)
    (root / "new" / f"123.{name}").write_bytes(GARBAGE_FILES[name])
    (listed,) = read_maildir(root)
    assert listed.id == f"123.{name}"
    for value in (listed.subject, listed.from_, listed.to):
        value.encode("utf-8")  # printable: no surrogates left
    view = view_mail(read_mail(root, listed.id))
    for _, value in view.headers:
        value.encode("utf-8")


def test_read_mail_matches_keys_or_one_prefix_and_never_a_path(tmp_path):
    root = tmp_path / "mail"
    (root / "new").mkdir(parents=True)
    (root / "new" / "111.a").write_bytes(b"Subject: a\n\n")
    (root / "new" / "112.b").write_bytes(b"Subject: b\n\n")
    (tmp_path / "secret").write_bytes(b"not mail")
    assert read_mail(root, "111.a") == b"Subject: a\n\n"
    assert read_mail(root, "112") == b"Subject: b\n\n"
    with pytest.raises(KeyError) as ambiguous:
        read_mail(root, "11")
    assert ambiguous.value.args == ("11", 2)
    for unknown in ("", "999", "../secret", "../../secret", "new/111.a", "111.a\x00"):
        with pytest.raises(KeyError) as caught:
            read_mail(root, unknown)
        assert caught.value.args == (unknown, 0)


# --- delivery status notifications (RFC 3461) ---


async def test_a_server_advertising_dsn_is_asked_for_reports_on_the_message_id(sink):
    s = sink(dsn=True)
    mailer = SmtpMailer(s.url)
    to = "guest+vip=1@example.test"
    message = mail(7, to=to)
    result = await mailer.send(
        message, sender=SENDER, recipients=[to], envelope_id="<m7+x=y@tessera.test>"
    )
    await mailer.close()
    assert result == SendResult(ok=True)
    [received] = s.messages
    # RET=HDRS: a report returns the headers (the Message-ID), never the guest's ticket links.
    assert "RET=HDRS" in received.mail_params
    assert "ENVID=<m7+2Bx+3Dy@tessera.test>" in received.mail_params  # xtext: + and = escaped
    [rcpt] = received.rcpt_params
    assert "NOTIFY=SUCCESS,FAILURE,DELAY" in rcpt
    assert "ORCPT=rfc822;guest+2Bvip+3D1@example.test" in rcpt


async def test_a_server_without_dsn_gets_no_dsn_parameters_and_takes_the_mail(sink):
    s = sink()  # aiosmtpd as it is: it answers 555 to any DSN parameter
    mailer = SmtpMailer(s.url)
    message = mail(8)
    result = await mailer.send(
        message, sender=SENDER, recipients=["guest@example.test"], envelope_id="<m8@tessera.test>"
    )
    await mailer.close()
    assert result == SendResult(ok=True)
    [received] = s.messages
    shown = " ".join(received.mail_params + received.rcpt_params[0])
    for keyword in ("RET=", "ENVID=", "NOTIFY=", "ORCPT="):
        assert keyword not in shown.upper()


async def test_mail_without_an_envelope_id_asks_for_no_reports(sink):
    s = sink(dsn=True)
    mailer = SmtpMailer(s.url)
    assert await send(mailer, 9) == SendResult(ok=True)  # a sign-in link: no row to report on
    await mailer.close()
    [received] = s.messages
    assert not any(p.upper().startswith(("RET=", "ENVID=")) for p in received.mail_params)
    assert received.rcpt_params == ((),)


async def test_an_envelope_id_too_long_for_envid_is_left_out_and_reports_still_asked(sink):
    s = sink(dsn=True)
    mailer = SmtpMailer(s.url)
    long_id = f"<{'a' * 32}@{'sub.' * 20}tessera.test>"  # over RFC 3461's 100 characters
    result = await mailer.send(
        mail(10), sender=SENDER, recipients=["guest@example.test"], envelope_id=long_id
    )
    await mailer.close()
    assert result == SendResult(ok=True)
    [received] = s.messages
    assert "RET=HDRS" in received.mail_params  # the returned Message-ID still names it
    assert not any(p.startswith("ENVID=") for p in received.mail_params)
    assert "NOTIFY=SUCCESS,FAILURE,DELAY" in received.rcpt_params[0]


async def test_several_recipients_each_get_notify_and_their_own_orcpt(sink):
    s = sink(dsn=True)
    mailer = SmtpMailer(s.url)
    to = ["a@example.test", "b@example.test"]
    result = await mailer.send(mail(11), sender=SENDER, recipients=to, envelope_id="<m11@t.test>")
    await mailer.close()
    assert result == SendResult(ok=True)
    [received] = s.messages
    assert [r for r in received.rcpt_params] == [
        ("NOTIFY=SUCCESS,FAILURE,DELAY", "ORCPT=rfc822;a@example.test"),
        ("NOTIFY=SUCCESS,FAILURE,DELAY", "ORCPT=rfc822;b@example.test"),
    ]


async def test_the_maildir_takes_an_envelope_id_and_stores_the_mail_as_before(tmp_path):
    mailer = MaildirMailer(tmp_path / "mail")
    result = await mailer.send(
        mail(12), sender=SENDER, recipients=["guest@example.test"], envelope_id="<m12@t.test>"
    )
    assert result == SendResult(ok=True)
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 1
