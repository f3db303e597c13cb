"""The door staff's TUI driven by textual's pilot, plus text snapshots of the verdict screens.

Two kinds of door behind the app: `RecordingDoor`, a stand-in for the Door API that records each
call and answers from canned data (for the widgets: which call a key makes, what an event
shows), and the real `scanner_client.door.Door` opened offline on a real store loaded from a
signed snapshot (real verdicts, search, undo and status reaching the screen).

Snapshots are the plain text of the status bar and the verdict panel, in
tests/scanner_client/snapshots/; `TESSERA_UPDATE_SNAPSHOTS=1` rewrites them.
"""

from __future__ import annotations

import io
import os
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import msgspec
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from textual.widgets import Input, OptionList, Static

from protocol.messages import Conflict, Counters, EarlierScan, ListCounters, TicketInfo
from protocol.reasons import LABELS, Reason
from protocol.rules import Direction
from protocol.sync import EventEntry, ListEntry
from protocol.token import TicketClaims, sign_ticket_token
from scanner_client import i18n
from scanner_client.door import Door, DoorOptions
from scanner_client.events import (
    ConflictNotice,
    Connection,
    CountersChanged,
    DoorEvent,
    Notice,
    StatusChanged,
    TicketMatch,
    TicketView,
    Undone,
    VerdictShown,
)
from scanner_client.tui import ScannerApp, run_tui
from tests.scanner_client.helpers import T0, World, make_world, paired_home
from ticket_renderer import qr_png

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = T0 + timedelta(hours=1, minutes=42)  # 19:42 UTC, 21:42 in Paris
SIZE = (120, 36)
LIST = ListEntry("LS00000000000001", "Main door", None, 1, False, None, None)
BALCONY = ListEntry("LS00000000000002", "Balcony", None, None, True, None, None)
EVENT = EventEntry("EVT0000001", "Jazz night", T0, None, "Europe/Paris", "Hall")


class Clock:
    """Wall-clock seconds that only move when a test moves them."""

    def __init__(self, at: datetime = NOW) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


def status(**overrides: Any) -> StatusChanged:
    fields: dict[str, Any] = {
        "connection": Connection.LIVE,
        "synced_at": NOW.timestamp() - 12,
        "queued": 0,
        "tickets": 1204,
        "cursor": 100,
        "list_id": LIST.id,
        "list_name": LIST.name,
        "direction": Direction.ENTRY,
    }
    return StatusChanged(**{**fields, **overrides})


CAMILLE = TicketView("TK00000000000001", "K7QH-M2PX", "Camille Martin", "Standard", "A12", 2)


def verdict(**overrides: Any) -> VerdictShown:
    fields: dict[str, Any] = {
        "scan_id": "scan-1",
        "code": CAMILLE.code,
        "list_id": LIST.id,
        "direction": Direction.ENTRY,
        "scanned_at": NOW,
        "accepted": True,
        "reason": None,
        "source": "hub",
        "ticket": CAMILLE,
        "entries": 1,
        "max_entries": 1,
    }
    return VerdictShown(**{**fields, **overrides})


def counters(checked_in: int = 120) -> Counters:
    main = ListCounters(LIST.id, LIST.name, checked_in, checked_in - 20, 1204 - checked_in)
    return Counters(1204, checked_in, checked_in - 20, 1204 - checked_in, [main], [])


class RecordingDoor:
    """The Door API the TUI calls, recording each call; answers come from the fields below.

    Like the real Door it emits a StatusChanged after set_direction and set_list, through
    `sink` (set to the app's `handle_event`).
    """

    def __init__(self, **status_overrides: Any) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.current = status(**status_overrides)
        self.matches = [
            TicketMatch(CAMILLE, "valid", False, 0, False),
            TicketMatch(
                TicketView("TK00000000000002", "P3RT-9XWZ", "Camille Dupont", "VIP", None, 1),
                "valid",
                False,
                1,
                True,
            ),
        ]
        self.sink: Callable[[DoorEvent], None] = lambda event: None

    @property
    def status(self) -> StatusChanged:
        return self.current

    def scan(self, code: str) -> None:
        self.calls.append(("scan", code))

    def check_in(self, ticket_id: str) -> None:
        self.calls.append(("check_in", ticket_id))

    def undo_last(self) -> None:
        self.calls.append(("undo_last",))

    def set_direction(self, direction: Direction) -> None:
        self.calls.append(("set_direction", direction))
        self.current = msgspec.structs.replace(self.current, direction=direction)
        self.sink(self.current)

    def set_list(self, list_id: str) -> None:
        self.calls.append(("set_list", list_id))
        name = {LIST.id: LIST.name, BALCONY.id: BALCONY.name}[list_id]
        self.current = msgspec.structs.replace(self.current, list_id=list_id, list_name=name)
        self.sink(self.current)

    def lists(self) -> list[ListEntry]:
        return [LIST, BALCONY]

    def search(self, text: str, limit: int = 20) -> list[TicketMatch]:
        self.calls.append(("search", text))
        return [m for m in self.matches if text.lower() in (m.ticket.holder_name or "").lower()]

    def counters(self) -> Counters:
        return counters()

    def event(self) -> EventEntry | None:
        return EVENT


class BellCountingApp(ScannerApp):
    """The app with its terminal bell counted instead of rung."""

    bells = 0

    def bell(self) -> None:
        self.bells += 1


def make_app(door: RecordingDoor | None = None, **options: Any) -> BellCountingApp:
    door = door or RecordingDoor()
    app = BellCountingApp(door, clock=options.pop("clock", Clock()), **options)
    door.sink = app.handle_event
    return app


def a_token() -> str:
    """A real signed ticket token, as a QR code holds it (~210 characters of base64url and dots)."""
    claims = TicketClaims(jti="TK00000000000001", evt="EVT0000001", ver=3, exp=1_970_000_000)
    token = sign_ticket_token(claims, Ed25519PrivateKey.generate(), "KID12345")
    assert 200 <= len(token) <= 230
    return token


def plain(app: ScannerApp, selector: str) -> str:
    widget = app.screen_stack[0].query_one(selector, Static)
    return str(widget.content)


def verdict_colour(app: ScannerApp) -> str:
    classes = app.screen_stack[0].query_one("#verdict", Static).classes
    (colour,) = classes & {"idle", "green", "amber", "red"}
    return colour


def screen_text(app: ScannerApp) -> str:
    """The status bar and the verdict panel as plain text, lines stripped on the right."""
    parts = [
        f"[mode] {plain(app, '#mode')}",
        f"[status]\n{plain(app, '#status')}",
        f"[verdict: {verdict_colour(app)}]\n{plain(app, '#verdict')}",
    ]
    return "\n".join(line.rstrip() for line in "\n".join(parts).splitlines()) + "\n"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("TESSERA_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with TESSERA_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


def notifications(app: ScannerApp) -> list[tuple[str, str]]:
    return [(n.message, n.severity) for n in app._notifications]


# --- scanner input ---------------------------------------------------------------------------


async def test_a_scanned_token_reaches_door_scan_exactly_without_any_focus() -> None:
    door = RecordingDoor()
    app = make_app(door)
    token = a_token()
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is None
        await pilot.press(*token)
        assert plain(app, "#buffer").endswith(token[-40:])
        assert door.calls == []  # no character of a token fires a binding
        await pilot.press("enter")
        assert door.calls == [("scan", token)]
        assert plain(app, "#buffer") == ""


async def test_every_character_of_base64url_and_codes_is_taken_as_input_not_a_command() -> None:
    door = RecordingDoor()
    app = make_app(door)
    alphabet = string.ascii_letters + string.digits + "-_." + "!@#$%^&*()+=[]{};:'\",<>/?|\\~` "
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*alphabet, "enter")
        assert door.calls == [("scan", alphabet.strip())]
        assert len(app.screen_stack) == 1  # no modal opened on the way


async def test_a_code_typed_slowly_by_hand_is_kept_until_enter() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("K", "7", "Q", "H", "wait:1200", "-", "M", "2", "wait:1200")
        await pilot.press("P", "X", "backspace", "X", "enter")
        assert door.calls == [("scan", "K7QH-M2PX")]


async def test_escape_throws_away_a_half_typed_code() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"K7QH", "escape", *"AB12", "enter")
        assert door.calls == [("scan", "AB12")]


async def test_enter_on_an_empty_buffer_scans_nothing() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter", "space", "enter")
        assert door.calls == []


async def test_pasted_lines_are_scans_and_the_unterminated_rest_waits_for_enter() -> None:
    door = RecordingDoor()
    app = make_app(door)
    token = a_token()
    async with app.run_test(size=SIZE) as pilot:
        app.screen.post_message(_paste(f"{token}\r\nK7QH-M2PX\nAB"))
        await pilot.pause()
        assert door.calls == [("scan", token), ("scan", "K7QH-M2PX")]
        await pilot.press("C", "enter")
        assert door.calls[-1] == ("scan", "ABC")


async def test_a_10_mb_paste_is_cut_to_a_bounded_code() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.post_message(_paste("A" * 10_000_000 + "\n"))
        await pilot.pause()
        ((call, code),) = door.calls
        assert call == "scan" and 0 < len(code) <= 4096


async def test_control_and_undecodable_characters_never_reach_the_door() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        # What a terminal makes of bad UTF-8 (a replacement or a surrogate escape), NUL, BEL.
        app.screen.post_message(_paste("ok\udcff\x00\x07\ufffd"))
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+x", "tab", "enter")
        ((_, code),) = door.calls
        assert code.startswith("ok")
        assert "\x00" not in code and "\x07" not in code


async def _scan(pilot: Any, code: str) -> None:
    """A scan as a scanner in paste mode sends it (typing 200 keys through the pilot is slow)."""
    pilot.app.screen.post_message(_paste(code + "\r"))
    await pilot.pause()


def _paste(text: str) -> Any:
    from textual import events

    return events.Paste(text)


# --- verdict screens --------------------------------------------------------------------------


VERDICT_SCREENS = [
    pytest.param(verdict(), "green", id="green-accepted"),
    pytest.param(
        verdict(
            accepted=False,
            reason=Reason.ALREADY_REDEEMED,
            first_at=NOW - timedelta(minutes=2),
            first_gate="North",
        ),
        "amber",
        id="amber-already-redeemed-at-gate",
    ),
    pytest.param(
        verdict(
            accepted=False,
            reason=Reason.ALREADY_REDEEMED,
            first_at=NOW - timedelta(days=1),
            first_here=True,
            source="door",
        ),
        "amber",
        id="amber-yesterday-at-this-door-offline",
    ),
    pytest.param(
        [
            verdict(accepted=False, reason=Reason.ALREADY_REDEEMED, source="door"),
            verdict(forced=True, reason=Reason.ALREADY_REDEEMED, entries=2, late=True),
        ],
        "amber",
        id="amber-forced-late",
    ),
    pytest.param(
        verdict(accepted=False, reason=Reason.REVOKED, entries=0), "red", id="red-revoked"
    ),
    pytest.param(
        verdict(accepted=False, reason=Reason.INVALID, ticket=None, code=a_token(), entries=0),
        "red",
        id="red-invalid-token",
    ),
    pytest.param(
        verdict(
            max_entries=None,
            entries=7,
            repeat=True,
            ticket=msgspec.structs.replace(CAMILLE, persons=1, seat=None),
        ),
        "green",
        id="green-unlimited-read-twice",
    ),
    pytest.param(verdict(direction=Direction.EXIT, entries=1), "green", id="green-exit"),
]


@pytest.mark.parametrize(("shown", "colour"), VERDICT_SCREENS)
async def test_verdict_screens(
    shown: VerdictShown | list[VerdictShown], colour: str, request: Any
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        for event in shown if isinstance(shown, list) else [shown]:
            app.handle_event(event)
        await pilot.pause()
        assert verdict_colour(app) == colour
        assert_snapshot(f"verdict-{request.node.callspec.id}", screen_text(app))


async def test_green_fades_back_to_ready() -> None:
    app = make_app(green_seconds=0.2)
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict())
        await pilot.pause()
        assert verdict_colour(app) == "green"
        await pilot.pause(0.4)
        assert verdict_colour(app) == "idle"
        assert plain(app, "#verdict") == "Ready — scan a ticket"
        assert app.bells == 0


async def test_a_refusal_stays_until_escape_and_rings_once() -> None:
    app = make_app(green_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict(accepted=False, reason=Reason.BLOCKED))
        await pilot.pause(0.4)
        assert verdict_colour(app) == "red"
        assert "TICKET ON HOLD" in plain(app, "#verdict")
        assert app.bells == 1
        await pilot.press("escape")
        assert verdict_colour(app) == "idle"


async def test_the_next_scan_replaces_a_refusal() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict(accepted=False, reason=Reason.EXPIRED))
        app.handle_event(verdict(scan_id="scan-2", accepted=False, reason=Reason.ALREADY_REDEEMED))
        await pilot.pause()
        assert verdict_colour(app) == "amber"
        assert app.bells == 2


async def test_no_bell_with_bell_off_nor_on_a_repeat_read() -> None:
    quiet = make_app(bell=False)
    async with quiet.run_test(size=SIZE) as pilot:
        quiet.handle_event(verdict(accepted=False, reason=Reason.REVOKED))
        await pilot.pause()
        assert verdict_colour(quiet) == "red" and quiet.bells == 0
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict(accepted=False, reason=Reason.REVOKED, repeat=True))
        await pilot.pause()
        assert verdict_colour(app) == "red" and app.bells == 0


async def test_a_late_verdict_for_an_earlier_guest_is_a_notice_not_the_screen() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict(scan_id="scan-1", source="door"))
        app.handle_event(verdict(scan_id="scan-2", code="P3RT-9XWZ", source="door"))
        app.handle_event(
            verdict(scan_id="scan-1", accepted=False, reason=Reason.REVOKED, late=True)
        )
        await pilot.pause()
        assert verdict_colour(app) == "green"
        assert app.notices()[-1].endswith(
            "The hub decided differently on K7QH-M2PX: Ticket cancelled or replaced"
        )


async def test_events_sent_before_the_app_runs_are_shown_once_it_does() -> None:
    app = make_app()
    app.handle_event(verdict(accepted=False, reason=Reason.WRONG_EVENT))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert verdict_colour(app) == "red"
        assert "TICKET FOR ANOTHER EVENT" in plain(app, "#verdict")


# --- status bar -------------------------------------------------------------------------------


@pytest.mark.parametrize("connection", list(Connection))
async def test_status_bar_for_each_connection(connection: Connection) -> None:
    door = RecordingDoor(connection=connection, queued=3)
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert_snapshot(f"status-{connection.value}", screen_text(app))


async def test_the_data_age_counts_up_every_second() -> None:
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        assert "data 12 s old" in plain(app, "#status")
        clock.now += 50
        await pilot.pause(1.2)
        assert "data 1 min old" in plain(app, "#status")
        clock.now += 7200
        await pilot.pause(1.2)
        assert "data 2 h old" in plain(app, "#status")


async def test_a_status_event_updates_the_bar() -> None:
    app = make_app(RecordingDoor(synced_at=None))
    async with app.run_test(size=SIZE) as pilot:
        assert "no data yet" in plain(app, "#status")
        app.handle_event(status(connection=Connection.OFFLINE, queued=12345, tickets=1))
        await pilot.pause()
        text = plain(app, "#status")
        assert " offline " in text and "12,345 queued" in text and "1 ticket" in text


async def test_f2_toggles_entry_and_exit_and_the_mode_stays_visible() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        assert plain(app, "#mode") == "ENTRY"
        await pilot.press("f2")
        assert door.calls == [("set_direction", Direction.EXIT)]
        assert plain(app, "#mode") == "EXIT"
        await pilot.press("f2")
        assert plain(app, "#mode") == "ENTRY"


async def test_f3_chooses_the_list() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        options = app.screen.query_one("#lists", OptionList)
        assert [str(options.get_option_at_index(i).prompt) for i in range(2)] == [
            "Main door (current)",
            "Balcony",
        ]
        await pilot.press("down", "enter")
        assert door.calls == [("set_list", BALCONY.id)]
        assert "list: Balcony" in plain(app, "#status")
        await pilot.press("f3", "escape")
        assert door.calls == [("set_list", BALCONY.id)]
        assert len(app.screen_stack) == 1


# --- search, undo, counters, notices ----------------------------------------------------------


async def test_search_waits_for_three_characters_then_checks_in_the_chosen_ticket() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        assert isinstance(app.focused, Input)
        await pilot.press("c", "a")
        assert door.calls == []
        assert "at least 3" in str(app.screen.query_one("#search-hint", Static).content)
        await pilot.press("m")
        assert door.calls == [("search", "cam")]
        results = app.screen.query_one("#results", OptionList)
        rows = [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]
        assert rows == [
            "Camille Martin  K7QH-M2PX · Standard · seat A12  not checked in",
            "Camille Dupont  P3RT-9XWZ · VIP  inside",
        ]
        await pilot.press("down", "down", "enter")
        assert door.calls[-1] == ("check_in", "TK00000000000002")
        assert len(app.screen_stack) == 1


async def test_search_escape_checks_in_nobody() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4", *"zzz", "escape")
        assert door.calls == [("search", "zzz")]
        assert "No ticket found" not in plain(app, "#verdict")
        assert len(app.screen_stack) == 1


async def test_undo_needs_a_second_f5_and_shows_the_outcome() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict(accepted=False, reason=Reason.NOT_ON_LIST))
        await pilot.press("f5")
        assert door.calls == []
        assert any("Press F5 again" in message for message, _ in notifications(app))
        await pilot.press("f5")
        assert door.calls == [("undo_last",)]
        app.handle_event(Undone(scan_id="scan-1", ok=True, entries=0))
        app.handle_event(Undone(scan_id="scan-2", ok=True, pending=True))
        app.handle_event(Undone(scan_id="scan-3", ok=False, error="forbidden"))
        app.handle_event(Undone(scan_id="", ok=False, error="nothing_to_undo"))
        await pilot.pause()
        assert [line[10:] for line in app.notices()] == [
            "Last scan undone: 0 entries now",
            "Undone on this device; the hub is told once the scan is uploaded",
            "The hub refused the undo: forbidden",
            "Nothing to undo",
        ]
        assert verdict_colour(app) == "idle"  # the undone scan left the screen


async def test_a_scan_between_two_f5_presses_cancels_the_undo() -> None:
    door = RecordingDoor()
    app = make_app(door)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5", "A", "enter", "f5")
        assert door.calls == [("scan", "A")]


async def test_counters_follow_the_hub_and_f6_hides_them() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert "counted on this device" in plain(app, "#counters")
        app.handle_event(CountersChanged(counters(checked_in=2**40), "hub"))
        await pilot.pause()
        text = plain(app, "#counters")
        assert "1,099,511,627,776" in text and "counted on this device" not in text
        await pilot.press("f6")
        assert not app.screen_stack[0].query_one("#counters", Static).display
        await pilot.press("f6")
        assert app.screen_stack[0].query_one("#counters", Static).display


CONFLICT = Conflict(
    scan_id="scan-9",
    ticket=TicketInfo("TK00000000000001", "K7QH-M2PX", "Camille Martin", "Standard", "A12", 2),
    reason=Reason.ALREADY_REDEEMED,
    device="DEV0000000000002",
    gate="South",
    scanned_at=datetime(2031, 6, 14, 17, 42, tzinfo=UTC),
    earlier=EarlierScan("scan-3", "DEV0000000000001", "North", datetime(2031, 6, 14, 17, 40)),
)


async def test_a_conflict_from_the_hub_is_a_warning_and_a_notice_line() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(ConflictNotice(CONFLICT, own=False))
        app.handle_event(
            ConflictNotice(
                msgspec.structs.replace(CONFLICT, earlier=None, gate=None, ticket=None), own=True
            )
        )
        await pilot.pause()
        line = (
            "Conflict: K7QH-M2PX (Camille Martin) let in offline at South 19:42:00 "
            "after an entry at North 19:40:00"
        )
        assert (line, "warning") in notifications(app)
        assert app.notices()[0].endswith(line)
        assert app.notices()[1].endswith(
            "Conflict: scan-9 (no name) let in offline at a door without gate 19:42:00: "
            "Already checked in"
        )
        assert line in plain(app, "#notices")


async def test_notices_are_translated_and_progress_takes_one_line() -> None:
    app = make_app(lang="de")
    async with app.run_test(size=SIZE) as pilot:
        for detail in ("0.5 MB", "1.0 MB", "1.5 MB"):
            app.handle_event(Notice("snapshot_progress", detail))
        app.handle_event(Notice("snapshot_loaded", "1204 tickets, seq 100"))
        app.handle_event(Notice("something_new", "a detail"))
        await pilot.pause()
        assert [line[10:] for line in app.notices()] == [
            "Ticketdaten werden geladen: 1.5 MB",
            "Ticketdaten geladen",
            "a detail",
        ]


# --- languages --------------------------------------------------------------------------------


async def test_french_door() -> None:
    door = RecordingDoor(connection=Connection.OFFLINE)
    app = make_app(door, lang="fr")
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(
            verdict(
                accepted=False,
                reason=Reason.ALREADY_REDEEMED,
                first_at=NOW - timedelta(minutes=2),
                first_gate="Nord",
                source="door",
            )
        )
        await pilot.pause()
        assert_snapshot("verdict-fr-amber", screen_text(app))
        assert "F2  entrée/sortie" in plain(app, "#keys")


async def test_german_door() -> None:
    door = RecordingDoor(connection=Connection.DEGRADED, direction=Direction.EXIT)
    app = make_app(door, lang="de")
    async with app.run_test(size=SIZE) as pilot:
        app.handle_event(verdict(accepted=False, reason=Reason.NOT_YET_VALID))
        await pilot.pause()
        assert_snapshot("verdict-de-red", screen_text(app))


def test_every_text_exists_in_every_language_with_the_same_fields() -> None:
    def fields(template: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    english = i18n.TEXTS["en"]
    for lang in i18n.LANGUAGES:
        assert i18n.TEXTS[lang].keys() == english.keys(), lang
        for key, template in i18n.TEXTS[lang].items():
            assert fields(template) == fields(english[key]), (lang, key)
            assert template.strip(), (lang, key)


def test_every_reason_has_a_label_in_every_language_and_english_is_the_protocols() -> None:
    assert {r: i18n.reason_label(r, "en") for r in Reason} == LABELS
    for lang in i18n.LANGUAGES:
        labels = [i18n.reason_label(r, lang) for r in Reason]
        assert len(set(labels)) == len(Reason), lang  # no two reasons read alike
    assert i18n.reason_label(Reason.ALREADY_REDEEMED, "fr") == "Déjà entré"
    assert i18n.reason_label(Reason.ALREADY_REDEEMED, "de") == "Bereits eingecheckt"


def test_text_fills_fields_falls_back_to_english_and_refuses_unknown_keys() -> None:
    assert i18n.text("entry_of", "fr", n=1, m=2) == "entrée 1 sur 2"
    assert i18n.text("entry_of", "xx", n=1, m="∞") == "entry 1 of ∞"
    assert i18n.text("entry_of", "", n=1, m="∞") == "entry 1 of ∞"
    with pytest.raises(KeyError):
        i18n.text("no_such_key", "en")
    with pytest.raises(KeyError):
        i18n.text("entry_of", "en", n=1)


def test_numbers_group_thousands_as_each_language_writes_them() -> None:
    assert [i18n.number(1204, lang) for lang in ("en", "fr", "de")] == [
        "1,204",
        "1\u202f204",
        "1.204",
    ]
    assert i18n.number(0, "en") == "0"
    assert i18n.number(10**30, "de") == "1" + ".000" * 10


# --- the real Door, offline, on a real store --------------------------------------------------


async def _real_door(
    tmp_path: Path, clock: Clock, *, world: World | None = None, camera: str | None = None
) -> tuple[BellCountingApp, Door, World]:
    made = world or make_world(5)
    home = paired_home(tmp_path, made)
    app: ScannerApp | None = None

    def on_event(event: DoorEvent) -> None:
        assert app is not None
        app.handle_event(event)

    door = Door(home, DoorOptions(debounce=1.5), on_event=on_event, clock=clock)
    app = BellCountingApp(door, clock=clock, camera=camera)
    await door.start(connect=False)
    return app, door, made


async def test_real_door_offline_verdicts_reach_the_screen(tmp_path: Path) -> None:
    clock = Clock()
    app, door, made = await _real_door(tmp_path, clock)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            status_text = plain(app, "#status")
            assert " offline " in status_text and "5 tickets" in status_text
            assert "list: Main door" in status_text and "Jazz night" in status_text
            token = made.token(0)
            await pilot.press(*token, "enter")
            await pilot.pause()
            assert verdict_colour(app) == "green"
            shown = plain(app, "#verdict")
            assert "ACCEPTED" in shown and "Guest 0" in shown and "decided offline" in shown
            assert "entry 1 of 1" in shown and "scanned at 21:42:00" in shown  # Paris time
            assert "1 queued" in plain(app, "#status")

            clock.now += 0.5  # read twice by the scanner: the same verdict, nothing recorded
            await _scan(pilot, token)
            await pilot.pause()
            assert "(read twice)" in plain(app, "#verdict")

            clock.now += 60  # the same ticket a minute later: already in, first entry here
            await _scan(pilot, token)
            await pilot.pause()
            assert verdict_colour(app) == "amber"
            shown = plain(app, "#verdict")
            assert "ALREADY CHECKED IN" in shown
            assert "first scan at 21:42:00 at this door" in shown
            assert app.bells == 1

            await pilot.press(*"not-a-ticket", "enter")
            await pilot.pause()
            assert verdict_colour(app) == "red"
            assert "UNREADABLE OR FORGED TICKET" in plain(app, "#verdict")
    finally:
        await door.stop()


async def test_real_door_search_check_in_undo_and_exit(tmp_path: Path) -> None:
    clock = Clock()
    app, door, made = await _real_door(tmp_path, clock)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4", *"Guest 3")
            results = app.screen.query_one("#results", OptionList)
            assert results.option_count == 1
            assert "Guest 3" in str(results.get_option_at_index(0).prompt)
            await pilot.press("enter", "enter")
            await pilot.pause()
            assert verdict_colour(app) == "green"
            assert "Guest 3" in plain(app, "#verdict")
            assert door.counters().checked_in == 1

            await pilot.press("f5", "f5")
            await pilot.pause()
            assert app.notices()[-1].endswith(
                "Undone on this device; the hub is told once the scan is uploaded"
            )
            assert door.counters().checked_in == 0

            await pilot.press("f2")
            await pilot.pause()
            assert plain(app, "#mode") == "EXIT"
            clock.now += 5
            await _scan(pilot, made.token(1))
            await pilot.pause()
            assert "EXIT RECORDED" in plain(app, "#verdict")
    finally:
        await door.stop()


async def test_real_door_without_data_says_so(tmp_path: Path) -> None:
    home = paired_home(tmp_path)  # paired, but no snapshot yet
    app: ScannerApp | None = None

    def on_event(event: DoorEvent) -> None:
        assert app is not None
        app.handle_event(event)

    clock = Clock()
    door = Door(home, DoorOptions(), on_event=on_event, clock=clock)
    app = ScannerApp(door, clock=clock)
    await door.start(connect=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert "no data yet" in plain(app, "#status")
            assert "0 tickets" in plain(app, "#status")
            await pilot.press(*"K7QH-M2PX", "enter")
            await pilot.pause()
            assert "No tickets on this device yet" in app.notices()[-1]
            assert verdict_colour(app) == "idle"
    finally:
        await door.stop()


def _video_of(token: str, path: Path) -> Path:
    """A recorded webcam: blank frames, then the ticket's QR on a desk, then blank again."""
    background = Image.new("RGB", (1280, 720), (118, 128, 140))
    shot = background.copy()
    shot.paste(Image.open(io.BytesIO(qr_png(token))).convert("RGB"), (400, 100))
    frames = [background] * 3 + [shot] * 6 + [background] * 3
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (1280, 720))
    for frame in frames:
        writer.write(cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


async def test_real_door_reads_a_ticket_from_the_camera(tmp_path: Path) -> None:
    clock = Clock()
    made = make_world(5)
    video = _video_of(made.token(4), tmp_path / "door.avi")
    app, door, _ = await _real_door(tmp_path, clock, world=made, camera=str(video))
    try:
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if verdict_colour(app) != "idle":
                    break
            assert verdict_colour(app) == "green"
            assert "Guest 4" in plain(app, "#verdict")
            assert door.counters().checked_in == 1  # one QR in view is one scan
    finally:
        await door.stop()


async def test_a_missing_camera_is_a_notice_and_the_door_keeps_working() -> None:
    door = RecordingDoor()
    app = make_app(door, camera=99)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.notices():
                break
        assert app.notices()[-1].endswith("Camera stopped: no camera 99")
        await pilot.press("A", "enter")
        assert door.calls == [("scan", "A")]


def test_run_tui_on_an_unpaired_home_says_how_to_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_tui(tmp_path / "nobody", DoorOptions()) == 1
    assert "not paired: run tessera-scan pair" in capsys.readouterr().err
