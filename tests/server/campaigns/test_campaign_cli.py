"""`tessera campaign list|watch`: a campaign's ledger read from the command line while it sends.

Each test runs `python -m server.cli campaign ...` as a subprocess on a SQLite file in tmp_path,
migrated and filled through the service layer; the real outbox (`Outbox.run_once`) sends to a
real aiosmtpd sink in the test's process, batch by batch, while `watch` looks on.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.bookings.schemas import BookingCreate, BookingItemIn, Buyer
from server.bookings.service import create_booking
from server.campaigns import service
from server.campaigns.outbox import Outbox
from server.campaigns.schemas import CampaignCreate, SendIn
from server.campaigns.transport import SmtpMailer
from server.config import Settings
from server.db import Database
from server.db.migrate import migrate
from server.events.schemas import EventCreate, TicketTypeCreate
from server.events.service import create_event, create_ticket_type
from server.keys.service import KeyRing, Keystore, ensure_signing_key
from server.tickets.service import TicketIssuer
from tests.server.campaigns.smtp_sink import SmtpSink

REFUSED = "refused@example.org"  # the sink answers 550 to this recipient
LINE = re.compile(r"\[([#.]{30})\] (\d+)/(\d+) sent, (\d+) failed(?:, (\d+) remaining|: (\w+))$")


@dataclass
class World:
    settings: Settings
    event_id: str
    ticket_type_id: str
    issuer: TicketIssuer
    bookings: int = 0  # each of one ticket, to its own address: one recipient each


def tessera(world: World, *args: str | bytes, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_DATABASE_URL"] = world.settings.database_url
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    options.update(kwargs)
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "server.cli", "campaign", *args], env=env, **options
    )


def finished(world: World, *args: str | bytes) -> tuple[int, str, str]:
    proc = tessera(world, *args)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def world(tmp_path: Path) -> World:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'tessera.db'}",
        keys_dir=str(tmp_path / "keys"),
        base_url="https://tickets.test",
        access_log=False,
        worker="external",
    )
    database = Database(settings.database_url)
    await migrate(database)
    async with database.transaction() as session:
        keyring = KeyRing(Keystore(settings.keys_path))
        await ensure_signing_key(session, keyring.keystore)
        event = await create_event(
            session,
            EventCreate(
                name="Jazz at the Pier", starts_at=datetime(2027, 6, 1, 18, tzinfo=UTC),
                timezone="Europe/Paris",
            ),
        )  # fmt: skip
        ticket_type = await create_ticket_type(session, event.id, TicketTypeCreate(name="Std"))
        issuer = TicketIssuer(await keyring.keys(session), settings.public_base_url)
    await database.dispose()
    return World(settings, event.id, ticket_type.id, issuer)


async def book(world: World, emails: list[str]) -> None:
    database = Database(world.settings.database_url)
    async with database.transaction() as session:
        for n, address in enumerate(emails):
            data = BookingCreate(
                buyer=Buyer(name=f"Guest {n}", email=address),
                items=[BookingItemIn(world.ticket_type_id, 1)],
                confirm=True,
            )
            await create_booking(session, world.event_id, data, world.issuer)
    await database.dispose()
    world.bookings += len(emails)


async def campaign(
    world: World, name: str = "E-tickets", *, send: bool = True, send_at: datetime | None = None
) -> str:
    """A tickets campaign to every booking, confirmed (now or at `send_at`) unless `send` is
    false; its id."""
    database = Database(world.settings.database_url)
    async with database.transaction() as session:
        created = await service.create_campaign(session, world.event_id, CampaignCreate(name=name))
        if send:
            await service.send(
                session,
                created.id,
                SendIn(expected_recipients=world.bookings, send_at=send_at),
                now=datetime.now(UTC),
                settings=world.settings,
            )
    await database.dispose()
    return created.id


async def send_batches(world: World, sink: SmtpSink, batch: int, *, batches: int = 1) -> int:
    database = Database(world.settings.database_url)
    outbox = Outbox(database, world.settings, SmtpMailer(sink.url), batch=batch)
    try:
        return sum([await outbox.run_once() for _ in range(batches)])
    finally:
        await outbox.mailer.close()
        await database.dispose()


async def lines_until(
    proc: subprocess.Popen[bytes], wanted: Callable[[str], bool], seen: list[str]
) -> str:
    """Read `proc`'s stderr line by line (into `seen`) until one is `wanted`."""
    assert proc.stderr is not None
    while True:
        raw = await asyncio.to_thread(proc.stderr.readline)
        assert raw, f"watch ended before the line we wait for: {seen}"
        line = raw.decode().rstrip("\n")
        seen.append(line)
        if wanted(line):
            return line


def parsed(line: str) -> tuple[str, int, int, int, int | None, str | None]:
    match = LINE.fullmatch(line)
    assert match, line
    bar, sent, total, failed, remaining, final = match.groups()
    return bar, int(sent), int(total), int(failed), int(remaining) if remaining else None, final


# --- watch ----------------------------------------------------------------------------------


async def test_watch_draws_the_ledger_batch_by_batch_and_exits_0_once_all_is_sent(world):
    await book(world, [f"guest{n}@example.org" for n in range(6)])
    campaign_id = await campaign(world)
    with SmtpSink() as sink:
        proc = tessera(world, "watch", campaign_id, "--interval", "0.05")
        seen: list[str] = []
        try:
            first = await lines_until(proc, lambda _: True, seen)
            assert parsed(first) == ("." * 30, 0, 6, 0, 6, None)
            for batch in (1, 2, 3):
                assert await send_batches(world, sink, 2) == 2
                await lines_until(proc, lambda line, b=batch: f"] {2 * b}/6 sent" in line, seen)
            # The last batch is recorded, then the campaign marked sent: maybe a look between.
            if not seen[-1].endswith(": sent"):
                await lines_until(proc, lambda line: line.endswith(": sent"), seen)
            assert proc.wait(30) == 0
        finally:
            proc.kill()
        assert len(sink.messages) == 6
    assert seen[-1] == f"[{'#' * 30}] 6/6 sent, 0 failed: sent"
    sent_counts = [parsed(line)[1] for line in seen]
    assert sent_counts == sorted(sent_counts)  # the ledger only moves forward
    assert {2, 4} <= set(sent_counts)
    middle = next(line for line in seen if "] 2/6 sent" in line)
    assert parsed(middle) == ("#" * 10 + "." * 20, 2, 6, 0, 4, None)
    assert proc.stdout is not None and proc.stdout.read() == b""  # the bar is on stderr alone


async def test_watch_exits_1_when_a_message_failed_and_says_how_many(world):
    await book(world, ["guest0@example.org", REFUSED, "guest2@example.org"])
    campaign_id = await campaign(world)
    with SmtpSink(rcpt_replies={REFUSED: "550 5.1.1 no such user"}) as sink:
        await send_batches(world, sink, 10)
        await send_batches(world, sink, 10)  # the next look marks the campaign sent
    code, out, err = finished(world, "watch", campaign_id)
    assert (code, out) == (1, "")
    assert err == f"[{'#' * 30}] 2/3 sent, 1 failed: sent\n"


async def test_watch_of_a_cancelled_campaign_exits_1_its_unsent_messages_failed(world):
    await book(world, [f"guest{n}@example.org" for n in range(4)])
    campaign_id = await campaign(world)
    with SmtpSink() as sink:
        await send_batches(world, sink, 1)
    database = Database(world.settings.database_url)
    async with database.transaction() as session:
        await service.cancel(session, campaign_id, now=datetime.now(UTC))
    await database.dispose()
    code, _, err = finished(world, "watch", campaign_id)
    assert code == 1
    assert err == f"[{'#' * 30}] 1/4 sent, 3 failed: cancelled\n"


async def test_watch_waits_through_draft_and_schedule_and_ends_on_missed_with_0(world):
    await book(world, ["guest0@example.org"])
    draft = await campaign(world, "Draft", send=False)
    proc = tessera(world, "watch", draft, "--interval", "0.05")
    seen: list[str] = []
    try:
        await lines_until(proc, lambda line: line == "draft: not sent yet", seen)
        await lines_until(proc, lambda line: line == "draft: not sent yet", seen)
        assert proc.poll() is None  # a draft may still be sent: watch waits
    finally:
        proc.kill()
        proc.wait()

    soon = datetime.now(UTC) + timedelta(minutes=1)
    scheduled = await campaign(world, "Reminder", send_at=soon)
    proc = tessera(world, "watch", scheduled, "--interval", "0.05")
    try:
        line = await lines_until(proc, lambda line: line.startswith("scheduled for "), seen)
        assert line.endswith("(1 recipients at confirmation)")
        database = Database(world.settings.database_url)
        async with database.transaction() as session:
            late = soon + timedelta(hours=2)  # past its grace window of one hour
            await service.fire_due(session, now=late, settings=world.settings)
        await database.dispose()
        assert proc.wait(30) == 0
        assert proc.stderr is not None
        last = proc.stderr.read().decode().splitlines()[-1]
        assert last == "missed: nothing sent (its time passed by more than its grace window)"
    finally:
        proc.kill()


async def test_on_a_terminal_watch_redraws_one_line_in_place(world):
    await book(world, ["guest0@example.org", "guest1@example.org"])
    campaign_id = await campaign(world)
    main, secondary = pty.openpty()
    tty.setraw(secondary)  # no output processing: each \n arrives as written, not as \r\n
    proc = tessera(world, "watch", campaign_id, "--interval", "0.05", stderr=secondary)
    os.close(secondary)
    drawn = b""
    try:
        while b"0/2 sent" not in drawn:
            drawn += await asyncio.to_thread(os.read, main, 4096)
        with SmtpSink() as sink:
            await send_batches(world, sink, 2, batches=2)
        assert proc.wait(30) == 0
        while True:
            try:
                chunk = await asyncio.to_thread(os.read, main, 4096)
            except OSError:  # EIO: the other side is closed and all was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        proc.kill()
        os.close(main)
    text = drawn.decode()
    draws = text.split("\r")
    assert draws[0] == "" and len(draws) >= 3  # each look starts over at the line's start
    assert all(d.endswith("\x1b[K") for d in draws[1:-1])  # and clears what was left
    assert draws[-1] == f"[{'#' * 30}] 2/2 sent, 0 failed: sent\x1b[K\n"
    assert "\n" not in "".join(draws[:-1])  # one line, redrawn: no scrolling


# --- list -----------------------------------------------------------------------------------


async def test_list_shows_each_campaign_with_status_and_ledger_counts(world):
    await book(world, ["guest0@example.org", REFUSED, "guest2@example.org"])
    assert finished(world, "list", world.event_id) == (0, "no campaigns yet\n", "")
    draft = await campaign(world, "Draft", send=False)
    done = await campaign(world, "Done")
    with SmtpSink(rcpt_replies={REFUSED: "550 5.1.1 no such user"}) as sink:
        await send_batches(world, sink, 10)
    sending = await campaign(world, "Still sending")
    with SmtpSink() as sink:
        await send_batches(world, sink, 1)  # one of three: two remaining
    code, out, err = finished(world, "list", world.event_id)
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["id", "status", "sent", "failed", "remaining", "created", "name"]
    assert [row.split()[:5] for row in rows] == [
        [draft, "draft", "0", "0", "0"],
        [done, "sent", "2", "1", "0"],
        [sending, "sending", "1", "0", "2"],
    ]
    assert [row.split(maxsplit=7)[7] for row in rows] == ["Draft", "Done", "Still sending"]


async def test_names_with_escape_sequences_never_reach_the_terminal(world):
    # The API refuses control characters in names; rows written before that (or by hand) may
    # still hold them, and `list` prints names straight to a terminal.
    await campaign(world, "\x1b]0;owned\x07\x1b[2J\u202eE-tickets", send=False)
    code, out, _ = finished(world, "list", world.event_id)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert out.splitlines()[1].endswith("\ufffd]0;owned\ufffd\ufffd[2J\ufffdE-tickets")


# --- garbage ----------------------------------------------------------------------------------

GARBAGE_IDS = [
    pytest.param("", id="empty"),
    pytest.param("NOSUCHCAMPAIGN00", id="unknown"),
    pytest.param("9" * 5000, id="huge-int"),
    pytest.param("x" * 100_000, id="100-kB"),
    pytest.param("\x1b[31mred\x1b[0m", id="escape-sequence"),
    pytest.param("a\r\nb", id="cr-lf"),
    pytest.param(b"\xff\xfe\xc3", id="bad-utf8"),
    pytest.param("'; DROP TABLE message; --", id="sql"),
]


@pytest.mark.parametrize("command", ["watch", "list"])
@pytest.mark.parametrize("value", GARBAGE_IDS)
def test_garbage_ids_answer_not_found_on_one_safe_line(world, command, value):
    started = time.monotonic()
    code, out, err = finished(world, command, value)
    assert (code, out) == (1, "")
    resource = "campaign" if command == "watch" else "event"
    assert err.startswith(f"tessera: no {resource} with id ")
    assert err.count("\n") == 1 and err.endswith("\n") and len(err) < 200
    assert not re.search("[\x00-\x1f\x7f]", err.rstrip("\n"))
    assert time.monotonic() - started < 30  # refused, not waited on


@pytest.mark.parametrize(
    "interval", ["0", "-1", "nan", "inf", "1e309", "0.01", "3601", "", "soon", "9" * 5000]
)
def test_bad_intervals_are_refused_before_anything_is_read(world, interval):
    code, out, err = finished(world, "watch", "NOSUCHCAMPAIGN00", "--interval", interval)
    assert (code, out) == (2, "")
    assert "--interval" in err and "Traceback" not in err and len(err) < 1000


def test_watch_without_an_id_shows_usage(world):
    code, _, err = finished(world, "watch")
    assert code == 2 and "campaign_id" in err
