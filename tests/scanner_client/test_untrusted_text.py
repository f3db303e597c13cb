"""Names, seats and codes come from buyers, organisers and scanners: none of their control
characters may reach the door's terminal (escape sequences retitle, recolour or hide text)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from protocol.sync import ListEntry, TicketEntry
from scanner_client.door import Door, DoorOptions
from scanner_client.events import DoorEvent
from scanner_client.i18n import shown
from scanner_client.tui import ScannerApp
from tests.scanner_client.helpers import make_world, paired_home

EVIL = "\x1b]0;owned\x07\x1b[2J\x1b[31mEve\x9b1m\u202eevil\x7f"


def evil_world():
    world = make_world(2)
    t = world.snapshot.tickets[0]
    world.snapshot.tickets[0] = TicketEntry(
        t.id, t.code, t.ticket_type_id, EVIL, EVIL, 1, "valid", False
    )
    entry = world.snapshot.lists[0]
    world.snapshot.lists[0] = ListEntry(entry.id, EVIL, None, 1, False, None, None)
    return world


def test_shown_replaces_every_control_and_bidi_override():
    assert shown(EVIL) == "\ufffd]0;owned\ufffd\ufffd[2J\ufffd[31mEve\ufffd1m\ufffdevil\ufffd"
    assert shown("Élodie Müller, B12 ✓") == "Élodie Müller, B12 ✓"


async def test_the_verdict_screen_shows_no_control_character(tmp_path: Path) -> None:
    world = evil_world()
    home = paired_home(tmp_path, world)
    app: ScannerApp | None = None

    def on_event(event: DoorEvent) -> None:
        if app is not None:
            app.handle_event(event)

    door = Door(home, DoorOptions(), on_event=on_event)
    app = ScannerApp(door, bell=False, lang="en")
    async with app.run_test(size=(110, 34)) as pilot:
        await door.start(connect=False)
        await pilot.pause(0.1)
        app.type_text(world.ticket(0).code)
        await pilot.press("enter")
        await pilot.pause(0.3)
        screen = app.export_screenshot()
        assert "owned" in screen and "evil" in screen  # the text is there...
        for char in ("\x1b", "\x07", "\x9b", "\u202e", "\x7f"):  # ...its controls are not
            assert char not in screen, repr(char)
    await door.stop()


def test_status_prints_no_control_character(tmp_path: Path) -> None:
    home = paired_home(tmp_path, evil_world())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_SCAN_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "scanner_client.cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "owned" in done.stdout
    assert not any(char in done.stdout for char in ("\x1b", "\x07", "\x9b", "\u202e"))
