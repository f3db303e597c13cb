"""The door staff's full-screen TUI: one big verdict colour, the door's state always in sight.

Rules:
- Scanner input needs no focus. A USB or Bluetooth barcode scanner types the code and Enter; the
  main screen keeps no focusable widget, so every printable key reaches `DoorScreen.on_key` and
  goes into a buffer (shown small at the bottom) that Enter hands to `door.scan`. The buffer is
  kept until Enter or Esc, never cleared on a timer: a code typed by hand is slow.
- No printable key is ever bound: a token holds letters, digits, `-`, `_` and `.`, so a binding on
  any of them would fire in the middle of a scan. Commands are on F-keys, Esc and ctrl+q only.
- Green fades back to "Ready" after `green_seconds`; amber and red stay until Esc or the next
  verdict, so a refusal is never missed. The terminal bell rings on amber and red (`bell=False`
  turns it off), not on a repeat read of the same code (the staff already heard it).
- A late verdict (the hub disagreeing with one the door decided itself) replaces the screen only
  while that scan is still the one shown; otherwise it becomes a notice, so it cannot be taken
  for the verdict on the guest now at the door.
- Door events arrive on the loop thread (`Door` calls `on_event` synchronously) and are posted as
  messages, so widgets change only inside the app's message loop; events before the app is
  mounted are kept and replayed.
- Times are shown as HH:MM:SS in the event's time zone (`door.event().timezone`; UTC until the
  door knows its event), with the date when it is not the day shown on the clock.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import ClassVar, Protocol

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from protocol.messages import Conflict, Counters, ListCounters
from protocol.reasons import Reason
from protocol.rules import Direction
from protocol.sync import EventEntry, ListEntry
from scanner_client.door import Door, DoorOptions, NotPaired
from scanner_client.events import (
    Colour,
    ConflictNotice,
    Connection,
    CountersChanged,
    DoorEvent,
    Notice,
    StatusChanged,
    TicketMatch,
    Undone,
    VerdictShown,
)
from scanner_client.i18n import number, reason_label, shown, text
from ticket_renderer.i18n import find_zone

__all__ = ["DoorLike", "DoorScreen", "ScannerApp", "run_tui"]

# A real token is ~210 characters; far more is garbage or a stuck key, handed to the door as is
# (it answers `invalid`) rather than growing without bound.
_MAX_BUFFER = 4096
_UNDO_CONFIRM_SECONDS = 5.0
_NOTICE_LINES = 3

_CONNECTION_STYLE = {
    Connection.LIVE: "bold #000000 on #2ecc71",
    Connection.DEGRADED: "bold #000000 on #f0a000",
    Connection.OFFLINE: "bold #ffffff on #d62d20",
    Connection.SYNCING: "bold #ffffff on #2f6fd6",
    Connection.UNPAIRED: "bold #ffffff on #d62d20",
}

# Seven-row glyphs, readable from a few metres where the reason text is not yet.
_GLYPHS = {
    Colour.GREEN: (
        "            ███",
        "           ███ ",
        "          ███  ",
        " ███     ███   ",
        "  ███   ███    ",
        "   ███ ███     ",
        "    █████      ",
    ),
    Colour.AMBER: (
        "      ███      ",
        "      ███      ",
        "      ███      ",
        "      ███      ",
        "      ███      ",
        "               ",
        "      ███      ",
    ),
    Colour.RED: (
        "  ███     ███  ",
        "   ███   ███   ",
        "    ███ ███    ",
        "     █████     ",
        "    ███ ███    ",
        "   ███   ███   ",
        "  ███     ███  ",
    ),
}


class DoorLike(Protocol):
    """What the TUI needs of `scanner_client.door.Door` (a test double may stand in)."""

    @property
    def status(self) -> StatusChanged: ...

    def scan(self, code: str) -> None: ...

    def check_in(self, ticket_id: str) -> None: ...

    def undo_last(self) -> None: ...

    def set_direction(self, direction: Direction) -> None: ...

    def set_list(self, list_id: str) -> None: ...

    def lists(self) -> list[ListEntry]: ...

    def search(self, text: str, limit: int = 20) -> list[TicketMatch]: ...

    def counters(self) -> Counters: ...

    def event(self) -> EventEntry | None: ...


class DoorEventArrived(Message):
    """A `DoorEvent`, carried into the app's message loop."""

    def __init__(self, event: DoorEvent) -> None:
        super().__init__()
        self.event = event


def _age_key(seconds: float) -> tuple[str, int]:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "data_age_s", seconds
    if seconds < 3600:
        return "data_age_min", seconds // 60
    if seconds < 86400:
        return "data_age_h", seconds // 3600
    return "data_age_d", seconds // 86400


class DoorScreen(Screen[None]):
    """The main screen: status bar, verdict, counters, notices, scanner buffer and key hints."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "app.toggle_direction", show=False),
        Binding("f3", "app.choose_list", show=False),
        Binding("f4", "app.search", show=False),
        Binding("f5", "app.undo", show=False),
        Binding("f6", "app.toggle_counters", show=False),
        Binding("escape", "app.dismiss", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal(id="statusbar"):
            yield Static(id="mode")
            yield Static(id="status")
        with Horizontal(id="body"):
            yield Static(id="verdict", classes="idle")
            yield Static(id="counters")
        yield Static(id="notices")
        yield Static(id="buffer")
        yield Static(id="keys")

    def on_mount(self) -> None:
        app = self.app
        assert isinstance(app, ScannerApp)
        app.start_screen()

    def on_key(self, event: events.Key) -> None:
        app = self.app
        assert isinstance(app, ScannerApp)
        if event.key == "enter":
            app.submit_buffer()
        elif event.key == "backspace":
            app.type_text(None)
        elif event.is_printable and event.character:
            app.type_text(event.character)
        else:
            return
        event.stop()
        event.prevent_default()

    def on_paste(self, event: events.Paste) -> None:
        # A pasted code (or a scanner in paste mode): each line ending is an Enter.
        app = self.app
        assert isinstance(app, ScannerApp)
        lines = event.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for line in lines[:-1]:
            app.type_text(line)
            app.submit_buffer()
        app.type_text(lines[-1])
        event.stop()


class SearchScreen(ModalScreen[str | None]):
    """Name or code search (3 characters or more); Enter on a result returns its ticket id."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", show=False)]

    def __init__(self, door: DoorLike, lang: str) -> None:
        super().__init__()
        self._door = door
        self._lang = lang

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(text("search_title", self._lang), id="dialog-title")
            yield Input(placeholder=text("search_prompt", self._lang), id="query")
            yield Static(text("search_short", self._lang), id="search-hint")
            yield OptionList(id="results")

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()

    @on(Input.Changed, "#query")
    def _search(self, event: Input.Changed) -> None:
        query = event.value.strip()
        results = self.query_one("#results", OptionList)
        hint = self.query_one("#search-hint", Static)
        results.clear_options()
        if len(query) < 3:
            hint.update(text("search_short", self._lang))
            return
        matches = self._door.search(query)
        results.add_options([Option(self._describe(m), id=m.ticket.id) for m in matches])
        hint.update(text("search_hint" if matches else "search_none", self._lang))

    def _describe(self, match: TicketMatch) -> Content:
        ticket, lang = match.ticket, self._lang
        if match.status == "revoked":
            state, style = text("search_revoked", lang), "bold #ff6b5e"
        elif match.blocked:
            state, style = text("search_blocked", lang), "bold #ff6b5e"
        elif match.inside:
            state, style = text("search_inside", lang), "bold #f0a000"
        elif match.entries:
            state, style = text("search_checked_in", lang), "bold #f0a000"
        else:
            state, style = text("search_not_checked_in", lang), "bold #2ecc71"
        details = [
            shown(ticket.code),
            shown(ticket.ticket_type or ""),
            ticket.seat and text("seat", lang, seat=ticket.seat),
        ]
        return Content.assemble(
            (shown(ticket.holder_name or "") or text("holder_unknown", lang), "bold"),
            "  ",
            " · ".join(d for d in details if d),
            "  ",
            (state, style),
        )

    @on(Input.Submitted, "#query")
    def _to_results(self) -> None:
        results = self.query_one("#results", OptionList)
        if results.option_count:
            results.highlighted = 0
            results.focus()

    def on_key(self, event: events.Key) -> None:
        if event.key == "down" and self.focused is self.query_one("#query", Input):
            self._to_results()
            event.stop()

    @on(OptionList.OptionSelected, "#results")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


class ListScreen(ModalScreen[str | None]):
    """The door's check-in lists; Enter returns the chosen list's id."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", show=False)]

    def __init__(self, lists: list[ListEntry], current: str | None, lang: str) -> None:
        super().__init__()
        self._lists = lists
        self._current = current
        self._lang = lang

    def compose(self) -> ComposeResult:
        lang = self._lang
        options = [
            Option(
                f"{shown(entry.name)} {text('lists_current', lang)}"
                if entry.id == self._current
                else shown(entry.name),
                id=entry.id,
            )
            for entry in self._lists
        ]
        with Vertical(id="dialog"):
            yield Label(text("lists_title", lang), id="dialog-title")
            hint = "lists_hint" if options else "lists_none"
            yield Static(text(hint, lang), id="lists-hint")
            yield OptionList(*options, id="lists")

    def on_mount(self) -> None:
        lists = self.query_one("#lists", OptionList)
        ids = [entry.id for entry in self._lists]
        lists.highlighted = ids.index(self._current) if self._current in ids else 0
        lists.focus()

    @on(OptionList.OptionSelected, "#lists")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


class ScannerApp(App[int]):
    """The door's TUI over a `DoorLike` (the real `Door`, or a test double).

    `camera` is a camera index, or a video file or stream URL (`OpenCVCamera` takes both);
    `clock` gives wall-clock seconds (data age, dates); `green_seconds` is how long green stays.
    """

    CSS = """
    DoorScreen { layout: vertical; }
    #statusbar { height: 3; background: $panel; }
    #mode {
        width: auto; min-width: 14; height: 3; padding: 1 3;
        text-style: bold; content-align: center middle;
        background: #e8e8e8; color: #000000;
    }
    #mode.exit { background: #8e44ad; color: #ffffff; }
    #status { width: 1fr; height: 3; padding: 0 2; }
    #body { height: 1fr; }
    #verdict {
        width: 1fr; height: 1fr; padding: 1 2;
        content-align: center middle; text-align: center;
    }
    #verdict.idle { background: $surface; color: $text-muted; }
    #verdict.green { background: #17803a; color: #ffffff; }
    #verdict.amber { background: #e89c0c; color: #000000; }
    #verdict.red { background: #c0231c; color: #ffffff; }
    #counters { width: 34; height: 1fr; padding: 1 2; background: $panel; }
    #counters.hidden { display: none; }
    #notices { height: 3; padding: 0 1; color: $text-muted; }
    #buffer { height: 1; padding: 0 1; color: $text-muted; }
    #keys { height: 1; padding: 0 1; background: $primary-background; }
    SearchScreen, ListScreen { align: center middle; }
    #dialog {
        width: 90%; max-width: 110; height: 80%; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    #dialog-title { text-style: bold; padding-bottom: 1; }
    #results, #lists { height: 1fr; }
    """
    TITLE = "tessera-scan"
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        door: DoorLike,
        *,
        bell: bool = True,
        lang: str = "en",
        camera: int | str | None = None,
        clock: Callable[[], float] = time.time,
        green_seconds: float = 3.0,
    ) -> None:
        super().__init__()
        self.door = door
        self.lang = lang
        self._ring = bell
        self._camera = camera
        self._clock = clock
        self._green_seconds = green_seconds
        self._started = False
        self._pending: list[DoorEvent] = []
        self._buffer = ""
        self._status: StatusChanged | None = None
        self._counters: tuple[Counters, str] | None = None
        self._shown: VerdictShown | None = None
        self._last_scan: str | None = None
        self._fade: Timer | None = None
        self._undo_armed_until = 0.0
        self._notices: deque[str] = deque(maxlen=50)
        self._last_notice: str | None = None
        self._zone: tzinfo = UTC
        self._event: EventEntry | None = None
        self._camera_stop = asyncio.Event()
        self._screen = DoorScreen()

    # -- events from the door ------------------------------------------------------------------

    def handle_event(self, event: DoorEvent) -> None:
        """The Door's `on_event`: call on the app's loop thread, before or after it is mounted."""
        if self._started:
            self.post_message(DoorEventArrived(event))
        else:
            self._pending.append(event)

    def get_default_screen(self) -> Screen[None]:
        return self._screen

    def start_screen(self) -> None:
        """Fill the main screen once it is mounted, then let the door's events in."""
        self._status = self.door.status
        self._counters = (self.door.counters(), "door")
        self._refresh_zone()
        self._render_status()
        self._render_counters()
        self._show_idle()
        self._render_notices()
        self._render_buffer()
        self._render_keys()
        self.set_interval(1.0, self._render_status)
        if self._camera is not None:
            self.run_worker(self._read_camera(self._camera), name="camera", exit_on_error=False)
        self._started = True
        pending, self._pending = self._pending, []
        for event in pending:
            self.post_message(DoorEventArrived(event))

    def on_unmount(self) -> None:
        self._camera_stop.set()

    @on(DoorEventArrived)
    def _apply(self, message: DoorEventArrived) -> None:
        event = message.event
        if isinstance(event, VerdictShown):
            self._show_verdict(event)
        elif isinstance(event, StatusChanged):
            self._status = event
            self._refresh_zone()  # a snapshot may have brought the event, or changed it
            self._render_status()
            self._render_counters()  # the list may have changed
        elif isinstance(event, CountersChanged):
            self._counters = (event.counters, event.source)
            self._render_counters()
        elif isinstance(event, ConflictNotice):
            line = self._conflict_line(event.conflict)
            self._add_notice(line)
            self.notify(
                line, title=text("conflict_title", self.lang), severity="warning", timeout=60
            )
        elif isinstance(event, Undone):
            self._show_undone(event)
        elif isinstance(event, Notice):
            if event.code == "snapshot_loaded":  # it may bring the event's time zone
                self._refresh_zone()
            self._show_notice(event)

    # -- scanner input -------------------------------------------------------------------------

    def type_text(self, chars: str | None) -> None:
        """Add `chars` to the scanner buffer; None deletes its last character."""
        if chars is None:
            self._buffer = self._buffer[:-1]
        else:
            # Control characters and undecodable bytes (surrogate escapes) are no part of a code.
            room = _MAX_BUFFER - len(self._buffer)
            kept = "".join(c for c in chars[: 2 * room] if c.isprintable())
            self._buffer += kept[:room]
        self._render_buffer()

    def submit_buffer(self) -> None:
        """Hand the buffer to `door.scan` (Enter); an empty buffer is ignored."""
        code, self._buffer = self._buffer.strip(), ""
        self._render_buffer()
        if code:
            self._undo_armed_until = 0.0
            self.door.scan(code)

    # -- actions (bound on DoorScreen to F-keys and Esc) -----------------------------------------

    def action_toggle_direction(self) -> None:
        current = self._status.direction if self._status else self.door.status.direction
        self.door.set_direction(Direction.EXIT if current == Direction.ENTRY else Direction.ENTRY)

    def action_choose_list(self) -> None:
        current = self._status.list_id if self._status else None

        def chosen(list_id: str | None) -> None:
            if list_id is not None and list_id != current:
                self.door.set_list(list_id)

        self.push_screen(ListScreen(self.door.lists(), current, self.lang), chosen)

    def action_search(self) -> None:
        def chosen(ticket_id: str | None) -> None:
            if ticket_id is not None:
                self.door.check_in(ticket_id)

        self.push_screen(SearchScreen(self.door, self.lang), chosen)

    def action_undo(self) -> None:
        now = self._clock()
        if now < self._undo_armed_until:
            self._undo_armed_until = 0.0
            self.door.undo_last()
            return
        self._undo_armed_until = now + _UNDO_CONFIRM_SECONDS
        self.notify(text("undo_confirm", self.lang), timeout=_UNDO_CONFIRM_SECONDS)

    def action_toggle_counters(self) -> None:
        self._screen.query_one("#counters", Static).toggle_class("hidden")

    def action_dismiss(self) -> None:
        self._buffer = ""
        self._undo_armed_until = 0.0
        self._render_buffer()
        self._show_idle()

    # -- verdict -------------------------------------------------------------------------------

    def _show_verdict(self, verdict: VerdictShown) -> None:
        if verdict.late and verdict.scan_id != self._last_scan:
            # The guest of that scan is gone; keep the screen for the one now at the door.
            line = text("late_other", self.lang, code=verdict.code, verdict=self._word(verdict))
            self._add_notice(line)
            self.notify(line, severity="warning", timeout=30)
            return
        self._last_scan = verdict.scan_id
        self._shown = verdict
        self._undo_armed_until = 0.0
        if self._fade is not None:
            self._fade.stop()
            self._fade = None
        colour = verdict.colour
        panel = self._verdict_panel()
        panel.set_classes(colour.value)
        panel.update(self._verdict_content(verdict))
        if colour == Colour.GREEN:
            self._fade = self.set_timer(self._green_seconds, self._show_idle)
        elif self._ring and not verdict.repeat:
            self.bell()

    def _verdict_panel(self) -> Static:
        return self._screen.query_one("#verdict", Static)

    def _word(self, verdict: VerdictShown) -> str:
        """The verdict's headline: accepted, let in but check, or the reason."""
        if verdict.accepted and verdict.forced:
            return text("forced", self.lang)
        if verdict.accepted:
            exit_ = verdict.direction == Direction.EXIT
            return text("accepted_exit" if exit_ else "accepted", self.lang)
        # A refusal without a reason would be an engine bug: say "invalid" rather than nothing.
        return reason_label(verdict.reason or Reason.INVALID, self.lang)

    def _verdict_content(self, verdict: VerdictShown) -> Content:
        """Glyph, headline and why; the guest; the scan's own facts: groups a blank line apart."""
        lang = self.lang
        glyph = [Content(row) for row in _GLYPHS[verdict.colour]]
        headline = [Content.styled(self._word(verdict).upper(), "bold")]
        if verdict.accepted and verdict.forced and verdict.reason is not None:
            reason = reason_label(verdict.reason, lang)
            headline.append(Content(text("forced_detail", lang, reason=reason)))
        if verdict.first_at is not None:
            at = self._time(verdict.first_at)
            if verdict.first_here:
                first = text("first_scan_here", lang, time=at)
            elif verdict.first_gate is not None:
                first = text("first_scan_gate", lang, time=at, gate=verdict.first_gate)
            else:
                first = text("first_scan", lang, time=at)
            headline.append(Content(first))
        ticket = verdict.ticket
        facts = [
            text("code", lang, code=ticket.code if ticket else _short(verdict.code)),
            text("scanned_at", lang, time=self._time(verdict.scanned_at)),
        ]
        if verdict.source == "door":
            facts.append(text("decided_offline", lang))
        if verdict.repeat:
            facts.append(text("read_twice", lang))
        footer = [Content.styled(" · ".join(facts), "dim")]
        if verdict.late:
            late = text("late", lang, verdict=self._word(verdict))
            footer.append(Content.styled(late, "bold reverse"))
        groups = [glyph, headline, self._guest_lines(verdict), footer]
        return Content("\n\n").join(Content("\n").join(group) for group in groups if group)

    def _guest_lines(self, verdict: VerdictShown) -> list[Content]:
        """Holder; type, seat and persons; entry n of m (entries only)."""
        lang, ticket, lines = self.lang, verdict.ticket, []
        if ticket is not None:
            if ticket.holder_name:
                lines.append(Content.styled(shown(ticket.holder_name), "bold"))
            persons = (
                text("persons_one", lang)
                if ticket.persons == 1
                else text("persons_other", lang, n=number(ticket.persons, lang))
            )
            seat = ticket.seat and text("seat", lang, seat=ticket.seat)
            kind = shown(ticket.ticket_type) if ticket.ticket_type else None
            lines.append(Content(" · ".join(p for p in (kind, seat, persons) if p)))
        if verdict.direction == Direction.ENTRY and (verdict.accepted or verdict.entries):
            limit = verdict.max_entries
            m = text("unlimited", lang) if limit is None else number(limit, lang)
            lines.append(Content(text("entry_of", lang, n=number(verdict.entries, lang), m=m)))
        return lines

    def _show_idle(self) -> None:
        if self._fade is not None:
            self._fade.stop()
            self._fade = None
        self._shown = None
        panel = self._verdict_panel()
        panel.set_classes("idle")
        panel.update(Content.styled(text("ready", self.lang), "bold"))

    # -- status bar, counters, notices ---------------------------------------------------------

    def _refresh_zone(self) -> None:
        self._event = self.door.event()
        zone = find_zone(self._event.timezone) if self._event is not None else None
        self._zone = zone or UTC

    def _time(self, at: datetime) -> str:
        local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(self._zone)
        today = datetime.fromtimestamp(self._clock(), self._zone).date()
        return f"{local:%H:%M:%S}" if local.date() == today else f"{local:%Y-%m-%d %H:%M:%S}"

    def _status_content(self) -> tuple[Content, Content]:
        """The mode badge and the status text, as shown now."""
        status, lang = self._status or self.door.status, self.lang
        mode = text("mode_exit" if status.direction == Direction.EXIT else "mode_entry", lang)
        if status.synced_at is None:
            age = text("data_none", lang)
        else:
            key, n = _age_key(self._clock() - status.synced_at)
            age = text(key, lang, n=n)
        tickets = (
            text("tickets_one", lang)
            if status.tickets == 1
            else text("tickets_other", lang, n=number(status.tickets, lang))
        )
        word = text(f"connection_{status.connection.value}", lang)
        listed = (
            text("list", lang, name=status.list_name) if status.list_name else text("no_list", lang)
        )
        line1 = Content.assemble(
            (f" {word} ", _CONNECTION_STYLE[status.connection]),
            "   ",
            age,
            "   ",
            (text("queued", lang, n=number(status.queued, lang)), "bold" if status.queued else ""),
            "   ",
            tickets,
        )
        event = self._event
        line2 = Content.assemble((listed, "bold"), f"   {shown(event.name)}" if event else "")
        return Content(mode), Content("\n").join([line1, line2])

    def _render_status(self) -> None:
        screen = self._screen
        mode, status = self._status_content()
        badge = screen.query_one("#mode", Static)
        badge.update(mode)
        direction = (self._status or self.door.status).direction
        badge.set_class(direction == Direction.EXIT, "exit")
        screen.query_one("#status", Static).update(status)

    def _render_counters(self) -> None:
        lang = self.lang
        panel = self._screen.query_one("#counters", Static)
        if self._counters is None:
            return
        counters, source = self._counters
        current = self._status.list_id if self._status else None
        lines: list[Content] = [Content.styled(text("counters_title", lang), "bold underline")]
        for entry in counters.lists:
            if entry.list_id == current:
                lines += _counter_block(shown(entry.name), entry, lang)
        lines += _counter_block(text("counters_all", lang), counters, lang)
        if source == "door":
            lines += [Content(""), Content.styled(text("counters_door", lang), "dim italic")]
        panel.update(Content("\n").join(lines))

    def _conflict_line(self, conflict: Conflict) -> str:
        lang, ticket = self.lang, conflict.ticket
        code = ticket.code if ticket else conflict.scan_id
        holder = (ticket.holder_name if ticket else None) or text("holder_unknown", lang)
        gate = conflict.gate or text("gate_unknown", lang)
        at = self._time(conflict.scanned_at)
        if conflict.earlier is None:
            reason = reason_label(conflict.reason, lang)
            return text(
                "conflict", lang, code=code, holder=holder, gate=gate, time=at, reason=reason
            )
        earlier = conflict.earlier
        return text(
            "conflict_earlier",
            lang,
            code=code,
            holder=holder,
            gate=gate,
            time=at,
            earlier_gate=earlier.gate or text("gate_unknown", lang),
            earlier_time=self._time(earlier.at),
        )

    def _show_undone(self, undone: Undone) -> None:
        lang = self.lang
        if undone.error == "nothing_to_undo":
            line = text("undo_nothing", lang)
        elif not undone.ok:
            line = text("undo_refused", lang, error=undone.error or "?")
        elif undone.pending:
            line = text("undo_pending", lang)
        elif undone.entries is not None:
            line = text("undo_ok_entries", lang, entries=number(undone.entries, lang))
        else:
            line = text("undo_ok", lang)
        self._add_notice(line)
        self.notify(line, severity="information" if undone.ok else "error", timeout=10)
        if undone.ok and self._shown is not None and self._shown.scan_id == undone.scan_id:
            self._show_idle()

    def _show_notice(self, notice: Notice) -> None:
        key = f"notice_{notice.code}"
        try:
            line = text(key, self.lang, detail=notice.detail)
        except KeyError:
            line = shown(notice.detail or notice.code)
        # Progress of a snapshot download comes every half megabyte: one log line, no toasts.
        progress = notice.code == "snapshot_progress"
        self._add_notice(line, replace=progress and self._last_notice == "snapshot_progress")
        self._last_notice = notice.code
        if progress or notice.code == "resync":
            return
        serious = notice.code in {"unpaired", "revoked", "hub_error", "no_data", "unknown_list"}
        self.notify(line, severity="error" if serious else "information", timeout=15)

    def _add_notice(self, line: str, *, replace: bool = False) -> None:
        at = datetime.fromtimestamp(self._clock(), self._zone)
        if not replace:
            self._last_notice = None
        if replace and self._notices:
            self._notices.pop()
        self._notices.append(f"{at:%H:%M:%S}  {line}")
        self._render_notices()

    def notices(self) -> list[str]:
        """The notices log, oldest first."""
        return list(self._notices)

    def _render_notices(self) -> None:
        recent = list(self._notices)[-_NOTICE_LINES:]
        self._screen.query_one("#notices", Static).update(Content("\n".join(recent)))

    def _render_buffer(self) -> None:
        widget = self._screen.query_one("#buffer", Static)
        width = max(10, self.size.width - 6)
        typed = self._buffer if len(self._buffer) <= width else "…" + self._buffer[-width + 1 :]
        widget.update(Content(f"> {typed}" if typed else ""), layout=False)

    def _render_keys(self) -> None:
        lang = self.lang
        keys = [
            ("F2", "key_mode"),
            ("F3", "key_list"),
            ("F4", "key_search"),
            ("F5", "key_undo"),
            ("F6", "key_counters"),
            ("Esc", "key_dismiss"),
            ("^Q", "key_quit"),
        ]
        parts: list[tuple[str, str] | str] = []
        for key, label in keys:
            parts += [(f" {key} ", "bold reverse"), f" {text(label, lang)}  "]
        self._screen.query_one("#keys", Static).update(Content.assemble(*parts))

    # -- camera --------------------------------------------------------------------------------

    async def _read_camera(self, camera: int | str) -> None:
        """Worker: decode camera frames; each code goes to `door.scan` on the loop thread."""
        from scanner_client.camera import OpenCVCamera, read_codes

        try:
            # Opening a webcam blocks for a second or two: not on the loop.
            source = await asyncio.to_thread(OpenCVCamera, camera)
        except Exception as error:  # CameraUnavailable, or the extra missing
            self._camera_failed(error)
            return
        try:
            await read_codes(source, self.door.scan, stop=self._camera_stop)
        except Exception as error:  # a camera failing must not take the door down
            self._camera_failed(error)
        finally:
            await asyncio.to_thread(source.close)

    def _camera_failed(self, error: Exception) -> None:
        detail = str(error) or type(error).__name__
        self._add_notice(text("camera_error", self.lang, detail=detail))


def _short(code: str) -> str:
    code = shown(code)  # what a scanner read may hold control characters (GS1 codes do)
    return code if len(code) <= 24 else code[:20] + "…"


def _counter_block(title: str, counts: ListCounters | Counters, lang: str) -> list[Content]:
    rows = [
        ("counters_checked_in", counts.checked_in),
        ("counters_inside", counts.inside),
        ("counters_remaining", counts.remaining),
    ]
    block = [Content(""), Content.styled(title, "bold")]
    for key, value in rows:
        label = text(key, lang)
        block.append(Content(f"  {label:<14}{number(value, lang):>10}"))
    return block


def run_tui(
    home: Path,
    options: DoorOptions,
    *,
    bell: bool = True,
    lang: str = "en",
    camera: int | None = None,
) -> int:
    """Run the TUI on the real `Door` of `home` until the staff quit; the process exit code.

    Not paired: prints how to pair on stderr and returns 1.
    """
    return asyncio.run(_run(home, options, bell=bell, lang=lang, camera=camera))


async def _run(
    home: Path, options: DoorOptions, *, bell: bool, lang: str, camera: int | None
) -> int:
    app: ScannerApp | None = None

    def on_event(event: DoorEvent) -> None:
        if app is not None:
            app.handle_event(event)

    try:
        door = Door(home, options, on_event=on_event)
    except NotPaired:
        print(text("not_paired", lang), file=sys.stderr)
        return 1
    app = ScannerApp(door, bell=bell, lang=lang, camera=camera)
    try:
        await door.start()
        await app.run_async()
    finally:
        await door.stop()
    return app.return_code or 0
