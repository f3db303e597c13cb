"""`tessera mail list|show`: the local maildir read from the command line, as a new user does.

Each test runs `python -m server.cli mail ...` in its own working directory (tmp_path), where
the mail was written by MaildirMailer into var/mail, as `tessera serve` writes it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from server.campaigns.transport import MaildirMailer, read_maildir

SUBJECT = "Vos billets — Café Zoë 🎫 Konzert"


def tessera(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "mail", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        timeout=60,
    )


def ticket_mail(
    n: int, subject: str = SUBJECT, *, text: str | None = None, html: bool = True
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Festival <no-reply@tessera.test>"
    message["To"] = "Zoë Müller <zoe@example.test>"
    message["Reply-To"] = "box-office@festival.test"
    message["Subject"] = subject
    message["Date"] = f"Mon, 0{n + 1} Jun 2026 10:00:00 +0200"
    message["Message-ID"] = f"<ticket{n}@tessera.test>"
    message.set_content(text or f"Bonjour Zoë,\n\nvos billets : https://tickets.test/t/{n}\n")
    if html:
        link = f"https://tickets.test/t/{n}"
        message.add_alternative(f'<p>Bonjour Zoë, <a href="{link}">billets</a></p>', subtype="html")
    return message


def write_mail(cwd: Path, *messages: EmailMessage) -> list[str]:
    async def write() -> None:
        mailer = MaildirMailer(cwd / "var" / "mail")
        for message in messages:
            result = await mailer.send(
                message, sender="no-reply@tessera.test", recipients=["zoe@example.test"]
            )
            assert result.ok

    asyncio.run(write())
    return [m.id for m in read_maildir(cwd / "var" / "mail")]


@pytest.mark.parametrize("args", [("list",), ("show", "1234")])
def test_without_a_maildir_both_commands_say_no_mail_yet(tmp_path, args):
    done = tessera(tmp_path, *args)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"no mail yet\n", b"")
    assert not (tmp_path / "var").exists()  # reading creates nothing


def test_list_shows_id_date_to_and_the_decoded_subject_newest_last(tmp_path):
    ids = write_mail(tmp_path, ticket_mail(0), ticket_mail(1, subject="Rappel : J-3"))
    done = tessera(tmp_path, "list")
    assert (done.returncode, done.stderr) == (0, b"")
    header, *rows = done.stdout.decode().splitlines()
    assert header.split() == ["id", "date", "to", "subject"]
    assert [row.split()[0] for row in rows] == ids
    assert rows[0].endswith(SUBJECT) and rows[1].endswith("Rappel : J-3")
    assert "Zoë Müller <zoe@example.test>" in rows[0]


def test_show_prints_the_headers_and_the_plain_text(tmp_path):
    (mail_id,) = write_mail(tmp_path, ticket_mail(0))
    done = tessera(tmp_path, "show", mail_id)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode().splitlines() == [
        "From: Festival <no-reply@tessera.test>",
        "To: Zoë Müller <zoe@example.test>",
        f"Subject: {SUBJECT}",
        "Date: Mon, 01 Jun 2026 10:00:00 +0200",
        "Message-ID: <ticket0@tessera.test>",
        "Reply-To: box-office@festival.test",
        "",
        "Bonjour Zoë,",
        "",
        "vos billets : https://tickets.test/t/0",
    ]


def test_show_html_prints_the_html_part_and_raw_the_message_as_stored(tmp_path):
    (mail_id,) = write_mail(tmp_path, ticket_mail(0))
    html = tessera(tmp_path, "show", "--html", mail_id)
    assert html.returncode == 0
    assert html.stdout.decode().endswith(
        '\n\n<p>Bonjour Zoë, <a href="https://tickets.test/t/0">billets</a></p>\n'
    )
    raw = tessera(tmp_path, "show", "--raw", mail_id)
    (stored,) = (tmp_path / "var" / "mail" / "new").iterdir()
    assert (raw.returncode, raw.stdout) == (0, stored.read_bytes())


def test_show_takes_the_start_of_an_id_if_only_one_id_starts_so(tmp_path):
    first, second = write_mail(tmp_path, ticket_mail(0), ticket_mail(1))
    done = tessera(tmp_path, "show", second[:-3])
    assert done.returncode == 0 and b"Message-ID: <ticket1@tessera.test>" in done.stdout
    common = next(first[:i] for i in range(len(first), 0, -1) if second.startswith(first[:i]))
    done = tessera(tmp_path, "show", common)
    assert (done.returncode, done.stdout) == (1, b"")
    assert (
        done.stderr
        == f"tessera: 2 mails have an id starting {common!r}: give more of it\n".encode()
    )


@pytest.mark.parametrize("unknown", ["1234", "../../etc/passwd", "", "\x1b[2J"])
def test_an_unknown_id_is_one_line_on_stderr_and_exit_1(tmp_path, unknown):
    write_mail(tmp_path, ticket_mail(0))
    done = tessera(tmp_path, "show", unknown)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"tessera: no mail ")
    assert b"\x1b" not in done.stderr


def test_escape_sequences_in_a_subject_or_body_never_reach_the_terminal(tmp_path):
    message = ticket_mail(
        0,
        subject="Billets \x1b]0;pwned\x07\x1b[2J \u202eevil",
        text="line one\n\x1b[31mred\x1b[0m\r\nline three\n",
    )
    (mail_id,) = write_mail(tmp_path, message)
    for args in (("list",), ("show", mail_id)):
        done = tessera(tmp_path, *args)
        assert done.returncode == 0
        assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout
        assert "\u202e".encode() not in done.stdout
    assert "line one\n\ufffd[31mred" in done.stdout.decode()


def test_a_terminal_that_cannot_show_a_name_gets_replacement_characters(tmp_path):
    write_mail(tmp_path, ticket_mail(0))
    done = tessera(tmp_path, "list", PYTHONIOENCODING="ascii")
    assert done.returncode == 0 and b"Caf? Zo?" in done.stdout


def test_list_says_where_new_mail_goes_when_smtp_is_set(tmp_path):
    write_mail(tmp_path, ticket_mail(0))
    done = tessera(tmp_path, "list", TESSERA_SMTP_URL="smtp://mx.example.org")
    assert done.returncode == 0 and done.stdout.count(b"\n") == 2
    assert done.stderr == b"tessera: TESSERA_SMTP_URL is set: new mail goes there, not here\n"


def test_a_message_without_an_html_part_says_so(tmp_path):
    message = ticket_mail(0, html=False)
    (mail_id,) = write_mail(tmp_path, message)
    done = tessera(tmp_path, "show", "--html", mail_id)
    assert done.returncode == 1
    assert done.stderr == b"tessera: this message has no HTML part\n"
