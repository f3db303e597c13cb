"""`tessera-scan run --headless`: codes on stdin, one JSON verdict per line on stdout.

For kiosks, turnstiles and scripts. Each non-empty input line is one code (a barcode scanner in
keyboard mode types the code and Enter). Each verdict is one JSON object on one line, flushed at
once, in the order the verdicts are decided:

  {"type": "verdict", "scan_id": ..., "verdict": "accepted"|"rejected", "reason": null|code,
   "label": "Already checked in", "colour": "green"|"amber"|"red", "source": "hub"|"door",
   "list_id": ..., "direction": "entry"|"exit", "scanned_at": RFC 3339 UTC, "code": ...,
   "ticket": null|{id, code, holder_name, ticket_type, seat, persons}, "entries": n,
   "max_entries": m|null, "first_scan": null|{at, gate, here}, "forced", "repeat", "late"}

A turnstile opens on `"verdict": "accepted"`. `repeat` lines (the same code within the debounce
window) record nothing. `late` lines correct an earlier door-decided line with the hub's word.
Everything else (status, conflicts, notices) goes to stderr as JSON lines with an `event` key.
At start the door waits up to `settle` seconds to catch up with the hub before it reads codes.
At the end of input the door waits for the verdicts still owed, then up to `drain` seconds for
the upload queue to reach the hub (what is left uploads at the next start), and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import msgspec

from protocol.reasons import LABELS
from scanner_client.door import Door, DoorOptions, NotPaired, wait_for_state
from scanner_client.events import (
    ConflictNotice,
    DoorEvent,
    Notice,
    StatusChanged,
    Undone,
    VerdictShown,
)

__all__ = ["run_headless", "verdict_line"]

_encoder = msgspec.json.Encoder()


def verdict_line(verdict: VerdictShown) -> dict[str, Any]:
    """The JSON object printed for a verdict (see the module comment)."""
    first = None
    if verdict.first_at is not None:
        first = {"at": verdict.first_at, "gate": verdict.first_gate, "here": verdict.first_here}
    return {
        "type": "verdict",
        "scan_id": verdict.scan_id,
        "verdict": "accepted" if verdict.accepted else "rejected",
        "reason": verdict.reason,
        "label": LABELS[verdict.reason] if verdict.reason else "Accepted",
        "colour": verdict.colour,
        "source": verdict.source,
        "list_id": verdict.list_id,
        "direction": verdict.direction,
        "scanned_at": verdict.scanned_at,
        "code": verdict.code,
        "ticket": verdict.ticket,
        "entries": verdict.entries,
        "max_entries": verdict.max_entries,
        "first_scan": first,
        "forced": verdict.forced,
        "repeat": verdict.repeat,
        "late": verdict.late,
    }


async def run_headless(
    home: Path,
    options: DoorOptions,
    *,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO = sys.stderr,
    camera: int | None = None,
    drain: float = 10.0,
    settle: float = 3.0,
    connect: bool = True,
) -> int:
    """Scan codes from `stdin` until it ends (or forever with a camera); 0 on success."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def show(event: DoorEvent) -> None:
        if isinstance(event, VerdictShown):
            _write(stdout, verdict_line(event))
        elif isinstance(event, ConflictNotice):
            _write(stderr, {"event": "conflict", "own": event.own, "conflict": event.conflict})
        elif isinstance(event, StatusChanged):
            _write(stderr, {"event": "status", **msgspec.to_builtins(event)})
        elif isinstance(event, Undone):
            _write(stderr, {"event": "undone", **msgspec.to_builtins(event)})
        elif isinstance(event, Notice) and event.code != "snapshot_progress":
            _write(stderr, {"event": "notice", "code": event.code, "detail": event.detail})

    try:
        door = Door(home, options, on_event=show)
    except NotPaired as exc:
        print(f"tessera-scan: {exc}: run `tessera-scan pair CODE` first", file=stderr)
        return 1
    await door.start(connect=connect)
    if connect:  # give the hub a moment, so the first codes piped in are decided online
        await wait_for_state(
            lambda: door.core.is_caught_up or door.core.unpaired or door.attempts > 0, settle
        )
    stop_camera = asyncio.Event()
    camera_task = None
    try:
        if camera is not None:
            from scanner_client.camera import OpenCVCamera, read_codes

            source = await asyncio.to_thread(OpenCVCamera, camera)
            camera_task = asyncio.create_task(read_codes(source, door.scan, stop=stop_camera))
        reader = threading.Thread(
            target=_read_lines, args=(stdin, loop, door.scan, ended), daemon=True
        )
        reader.start()
        await ended.wait()
        if camera_task is not None:
            await camera_task
        await _drain(door, options, drain)
    finally:
        stop_camera.set()
        await door.stop()
    return 0


def _read_lines(
    stdin: TextIO,
    loop: asyncio.AbstractEventLoop,
    scan: Any,
    ended: asyncio.Event,
) -> None:
    """Blocking reads in a thread (works for pipes, files and terminals alike). Bytes that are
    not UTF-8 become U+FFFD: a code misread by a scanner is refused, it never stops the door."""
    lines: Any = getattr(stdin, "buffer", stdin)
    try:
        for line in lines:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            code = text.strip()
            if code:
                loop.call_soon_threadsafe(scan, code)
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(ended.set)


async def _drain(door: Door, options: DoorOptions, drain: float) -> None:
    """Wait for the verdicts still owed, then (connected) for the upload queue to empty."""
    await wait_for_state(lambda: not door.core.awaiting_answers, options.answer_timeout + 1.0)
    if door.core.is_welcomed:
        await wait_for_state(lambda: door.store.queued_count() == 0, drain)


def _write(stream: TextIO, line: dict[str, Any]) -> None:
    stream.write(_encoder.encode(line).decode() + "\n")
    stream.flush()
