"""`tessera-scan`: pair a door, show its state, run it (screen or headless), sync it, unpair it.

Exit codes: 0 done, 1 failed (one line `tessera-scan: ...` on stderr), 2 bad usage (argparse).
`tessera-scan` alone, or followed by options only, is `tessera-scan run`.

Rules:
- A pairing is never lost by accident: `pair` refuses to replace one without `--force`, and a
  failed `pair --force` leaves the old one in place (the new credentials are written only once
  the hub has answered).
- Scans not uploaded yet are never lost by accident either: `unpair`, and `pair` over a store
  left by another pairing, refuse while the store holds any, unless `--force` (and then say how
  many were discarded). A new pairing is always another device (a code pairs an unpaired device
  once), so its old store, whose scans are the other device's, is removed.
- Heavy modules (textual, cv2, the door's engine) are imported by the commands that need them,
  so `pair` and `status` start fast and work without them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from scanner_client.home import (
    Credentials,
    HomeError,
    ensure_home,
    forget,
    forget_store,
    load_credentials,
    save_credentials,
    scan_home,
    store_path,
)
from scanner_client.i18n import shown

__all__ = ["main"]

PROG = "tessera-scan"
_PAIR_HINT = "pair it with `tessera-scan pair CODE_OR_URI`"


class CommandFailed(Exception):
    """The command cannot do what was asked; the message is the one line shown."""


# --- argument parsing -------------------------------------------------------------------------


def _seconds(low: float, high: float, *, low_allowed: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds in [low, high] (or (low, high])."""
    bound = f"{'at least' if low_allowed else 'more than'} {low:g} and at most {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
        if (
            not math.isfinite(value)
            or value > high
            or value < low
            or (value == low and not low_allowed)
        ):
            raise argparse.ArgumentTypeError(f"{text[:40]} is not {bound} seconds")
        return value

    return parse


def _camera_index(text: str) -> int:
    if not text.isdigit() or len(text) > 3:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a camera number (0, 1, ...)")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The offline-first door client of Tessera. Without a command: `run`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    pair = sub.add_parser(
        "pair",
        help="pair this door with a device created by the organiser",
        description="Trade the organiser's one-time pairing code for this door's credentials.",
    )
    pair.add_argument(
        "code",
        metavar="CODE_OR_URI",
        help="the code (K7QH-M2PX-9RTA), the tessera-pair: link, or the pairing QR's JSON",
    )
    pair.add_argument("--server", metavar="URL", help="the hub's base URL (needed with a code)")
    pair.add_argument(
        "--force",
        action="store_true",
        help="replace an existing pairing, discarding scans not uploaded yet",
    )

    status = sub.add_parser("status", help="show the pairing and what the door holds")
    status.add_argument("--json", action="store_true", help="one JSON object")

    unpair = sub.add_parser("unpair", help="forget this door's credentials and data")
    unpair.add_argument(
        "--force", action="store_true", help="even if scans are still waiting for upload"
    )

    run = sub.add_parser(
        "run",
        help="scan tickets (the default command)",
        description="Scan tickets on the screen, or headless: one code per line on stdin, "
        "one JSON verdict per line on stdout.",
    )
    run.add_argument("--headless", action="store_true", help="no screen: stdin and stdout")
    run.add_argument("--list", metavar="ID", help="the check-in list (default: the last chosen)")
    run.add_argument("--direction", choices=["entry", "exit"], help="default: entry")
    run.add_argument(
        "--debounce",
        type=_seconds(0, 60, low_allowed=True),
        metavar="SECONDS",
        help="a code read again within this time counts once (default 1.5; 0 turns it off)",
    )
    run.add_argument(
        "--answer-timeout",
        type=_seconds(0, 30, low_allowed=False),
        metavar="SECONDS",
        help="how long to wait for the hub before the door decides itself (default 1.5)",
    )
    run.add_argument(
        "--camera",
        nargs="?",
        const=0,
        type=_camera_index,
        metavar="N",
        help="read QR codes from webcam N (default 0; needs the `camera` extra)",
    )
    run.add_argument("--no-bell", action="store_true", help="no sound on a refusal")
    run.add_argument("--lang", choices=["fr", "en", "de"], help="the screen's language")

    sync = sub.add_parser(
        "sync", help="connect once: take a snapshot if needed, upload queued scans, report"
    )
    sync.add_argument(
        "--timeout",
        type=_seconds(0, 600, low_allowed=False),
        default=30.0,
        metavar="SECONDS",
        help="give up after this long (default 30)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tessera-scan` with `argv` (default: the command line); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "run")
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as done:  # --help (0) or bad usage (2)
        return done.code if isinstance(done.code, int) else 2
    command = _COMMANDS[args.command]
    try:
        return command(args)
    except (CommandFailed, HomeError) as error:
        _fail(str(error))
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        _fail(f"{error.strerror or error}{where}")
    except KeyboardInterrupt:
        return 130
    return 1


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# --- pair / unpair ----------------------------------------------------------------------------


def _pair(args: argparse.Namespace) -> int:
    # Imported here: pairing pulls in httpx, which the other commands do not need.
    from scanner_client.pairing import PairingError

    try:
        return _pair_door(args)
    except PairingError as error:
        raise CommandFailed(str(error)) from error


def _pair_door(args: argparse.Namespace) -> int:
    from scanner_client.pairing import pair, parse_pairing_input

    request = parse_pairing_input(args.code, args.server)  # refuse bad input before the network
    home = scan_home()
    try:
        old = load_credentials(home)
    except HomeError:
        if not args.force:
            raise
        old = None
    if old is not None and not args.force:
        raise CommandFailed(
            f"already paired as device {old.device_id} of event {old.event_id} ({old.server}); "
            "run `tessera-scan unpair` first, or pass --force"
        )
    waiting = _waiting_scans(home, force=args.force)
    if waiting and not args.force:
        raise CommandFailed(
            f"the door's store still holds {_scans(waiting)} never uploaded, from an earlier "
            "pairing; pass --force to discard them"
        )
    ensure_home(home)  # a home we cannot write must fail before the one-time code is spent
    creds = asyncio.run(pair(request))
    same_device = old is not None and (old.device_id, old.event_id) == (
        creds.device_id,
        creds.event_id,
    )
    if not same_device:
        forget_store(home)  # its data and journal belong to the device paired before
    save_credentials(home, creds)
    if waiting and not same_device:
        _fail(f"discarded {_scans(waiting)} never uploaded")
    print("Paired.")
    print(
        _table([("device", creds.device_id), ("event", creds.event_id), ("server", creds.server)])
    )
    return 0


def _unpair(args: argparse.Namespace) -> int:
    home = scan_home()
    try:
        old = load_credentials(home)
        paired = old is not None
    except HomeError:  # a corrupt device.json is exactly what one may want to forget
        old, paired = None, True
    has_store = store_path(home).exists()
    if not paired and not has_store:
        print("not paired: nothing to forget")
        return 0
    waiting = _waiting_scans(home, force=args.force)
    if waiting and not args.force:
        raise CommandFailed(
            f"{_scans(waiting)} not uploaded yet would be lost; run `tessera-scan sync` first, "
            "or pass --force to lose them"
        )
    forget(home)
    who = f"device {old.device_id}" if old else "this door's data"
    print(f"Forgot {who}.")
    if waiting:
        print(f"Discarded {_scans(waiting)} never uploaded.")
    if old:
        print(f"The hub still knows the device: an organiser may revoke it ({old.server}).")
    return 0


def _waiting_scans(home: Path, *, force: bool) -> int:
    """Own scans in the store not yet confirmed by the hub (0 without a store).

    An unreadable store counts as nothing waiting under `force`, else it is an error: what
    cannot be read cannot be shown to be safe to throw away.
    """
    try:
        facts = _store_facts(home)
    except CommandFailed:
        if force:
            return 0
        raise
    return 0 if facts is None else int(facts.queued)


def _store_facts(home: Path) -> Any:
    """The store's `StoreFacts`, or None when the door has no store yet."""
    path = store_path(home)
    if not path.exists():
        return None  # LocalStore.open would create one
    from scanner_client.store import LocalStore

    try:
        store = LocalStore.open(path)
    except (sqlite3.Error, RuntimeError, OSError) as error:
        raise CommandFailed(f"cannot read the door's store {path}: {error}") from error
    try:
        return store.facts()
    except (sqlite3.Error, RuntimeError, ValueError, msgspec.DecodeError) as error:
        raise CommandFailed(f"cannot read the door's store {path}: {error}") from error
    finally:
        store.close()


def _scans(count: int) -> str:
    return f"{count} scan{'' if count == 1 else 's'}"


# --- status -----------------------------------------------------------------------------------


class _Status(msgspec.Struct, frozen=True, kw_only=True):
    """`status --json`: the pairing and what the door holds (never the token)."""

    device_id: str
    event_id: str
    event_name: str | None
    server: str
    ws_url: str
    paired_at: datetime
    list_id: str | None
    list_name: str | None
    synced_at: datetime | None
    data_age: float | None  # seconds since the last word from the hub's change log
    cursor: int | None
    tickets: int
    queued: int  # own scans waiting for upload
    scans: int  # own scans in all


def _status(args: argparse.Namespace) -> int:
    home = scan_home()
    creds = load_credentials(home)
    if creds is None:
        raise CommandFailed(f"not paired; {_PAIR_HINT}")
    status = _status_of(creds, _store_facts(home), now=time.time())
    if args.json:
        sys.stdout.write(msgspec.json.encode(status).decode() + "\n")
    else:
        print(_status_text(status))
    return 0


def _status_of(creds: Credentials, facts: Any, *, now: float) -> _Status:
    list_id = list_name = synced_at = age = cursor = event_name = None
    tickets = queued = scans = 0
    if facts is not None:
        names = dict(facts.lists)
        # As the door does: the list last chosen here, else the event's first.
        list_id = facts.list_id or (facts.lists[0][0] if facts.lists else None)
        list_name = names.get(list_id) if list_id else None
        if facts.synced_at is not None:
            synced_at = datetime.fromtimestamp(facts.synced_at, UTC)
            age = max(0.0, now - facts.synced_at)
        cursor, tickets, queued, scans = facts.cursor, facts.tickets, facts.queued, facts.journal
        event_name = facts.event_name
    return _Status(
        device_id=creds.device_id,
        event_id=creds.event_id,
        event_name=event_name,
        server=creds.server,
        ws_url=creds.ws_url,
        paired_at=creds.paired_at.astimezone(UTC),
        list_id=list_id,
        list_name=list_name,
        synced_at=synced_at,
        data_age=age,
        cursor=cursor,
        tickets=tickets,
        queued=queued,
        scans=scans,
    )


def _status_text(s: _Status) -> str:
    event = f"{s.event_id} ({s.event_name})" if s.event_name else s.event_id
    if s.list_id is None:
        checkin_list = "none yet"
    else:
        checkin_list = f"{s.list_name} ({s.list_id})" if s.list_name else s.list_id
    return _table(
        [
            ("device", s.device_id),
            ("event", event),
            ("server", s.server),
            ("paired at", _when(s.paired_at)),
            ("list", checkin_list),
            ("data age", "never synced" if s.data_age is None else _age(s.data_age)),
            ("cursor", "none" if s.cursor is None else str(s.cursor)),
            ("tickets", str(s.tickets)),
            ("queued", f"{_scans(s.queued)} waiting for upload"),
        ]
    )


def _table(rows: list[tuple[str, str]]) -> str:
    """Aligned `key  value` lines; values (names from the hub) made safe for a terminal."""
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key.ljust(width)}  {shown(value)}" for key, value in rows)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


# --- run / sync -------------------------------------------------------------------------------


def _paired_home() -> tuple[Path, Credentials]:
    home = scan_home()
    creds = load_credentials(home)
    if creds is None:
        raise CommandFailed(f"not paired; {_PAIR_HINT}")
    return home, creds


def _door_options(args: argparse.Namespace) -> Any:
    from protocol.rules import Direction
    from scanner_client.door import DoorOptions

    given: dict[str, Any] = {}
    if args.list is not None:
        given["list_id"] = args.list
    if args.direction is not None:
        given["direction"] = Direction(args.direction)
    if args.debounce is not None:
        given["debounce"] = args.debounce
    if args.answer_timeout is not None:
        given["answer_timeout"] = args.answer_timeout
    return DoorOptions(**given)  # what is not given keeps the door's defaults


def _run(args: argparse.Namespace) -> int:
    home, _ = _paired_home()
    from scanner_client.door import NotPaired

    options = _door_options(args)
    try:
        if args.headless:
            from scanner_client.headless import run_headless

            extra: dict[str, Any] = {} if args.camera is None else {"camera": args.camera}
            done = asyncio.run(
                run_headless(home, options, stdin=sys.stdin, stdout=sys.stdout, **extra)
            )
        else:
            from scanner_client.tui import run_tui

            screen: dict[str, Any] = {} if args.lang is None else {"lang": args.lang}
            done = run_tui(home, options, bell=not args.no_bell, camera=args.camera, **screen)
    except NotPaired as error:
        raise CommandFailed(f"not paired ({error}); {_PAIR_HINT}") from error
    return done if isinstance(done, int) else 0


def _sync(args: argparse.Namespace) -> int:
    home, creds = _paired_home()
    from scanner_client.door import NotPaired, sync_once

    try:
        report = asyncio.run(sync_once(home, timeout=args.timeout))
    except NotPaired as error:
        raise CommandFailed(f"not paired ({error}); {_PAIR_HINT}") from error
    print(
        _table(
            [
                ("connected", "yes" if report.connected else "no"),
                ("uploaded", _scans(report.uploaded)),
                ("queued", f"{_scans(report.queued)} waiting for upload"),
                ("cursor", "none" if report.cursor is None else str(report.cursor)),
                ("tickets", str(report.tickets)),
            ]
        )
    )
    if not report.connected:
        raise CommandFailed(f"could not sync with {creds.server} within {args.timeout:g} s")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "pair": _pair,
    "status": _status,
    "unpair": _unpair,
    "run": _run,
    "sync": _sync,
}


if __name__ == "__main__":
    raise SystemExit(main())
