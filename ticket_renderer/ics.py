"""A calendar file for one ticket: one VEVENT in the event's own time zone (RFC 5545).

The UID is the ticket's, so importing a later download updates the same calendar entry. Times
are written as wall time with a TZID and a VTIMEZONE covering the event, so calendars show the
event at its local time wherever the guest is. An unknown zone name falls back to UTC times.
Without an end (or with one not after the start), the entry lasts `DEFAULT_DURATION`: a
zero-length entry (what RFC 5545 implies) is hard to see in most calendars.
"""

import unicodedata
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event

from ticket_renderer.i18n import find_zone, format_period, t
from ticket_renderer.view import TicketView

__all__ = ["DEFAULT_DURATION", "render_ics"]

DEFAULT_DURATION = timedelta(hours=2)
PRODID = "-//Tessera//Tessera tickets//EN"


def _text(value: str) -> str:
    # Control characters other than newline are not allowed in iCalendar TEXT values.
    return "".join(
        char if char == "\n" or unicodedata.category(char) not in ("Cc", "Cs") else " "
        for char in value
    )


def _local(dt: datetime, tz: str) -> datetime:
    zone = find_zone(tz) or UTC
    return dt.replace(tzinfo=zone) if dt.tzinfo is None else dt.astimezone(zone)


def _description(view: TicketView) -> str:
    lang = view.language
    lines = [
        format_period(view.starts_at, view.ends_at, view.timezone, lang),
        f"{t(lang, 'code')}: {view.code}",
        f"{t(lang, 'ticket_type')}: {view.ticket_type}",
    ]
    if view.holder_name:
        lines.append(f"{t(lang, 'holder')}: {view.holder_name}")
    if view.seat:
        lines.append(f"{t(lang, 'seat')}: {view.seat}")
    lines.append(f"{t(lang, 'persons')}: {view.persons}")
    if view.event_url:
        lines.append(f"{t(lang, 'ticket_link')}: {view.event_url}")
    return _text("\n".join(lines))


def _event(view: TicketView, uid_domain: str, dtstamp: datetime) -> Event:
    start = _local(view.starts_at, view.timezone)
    end = _local(view.ends_at, view.timezone) if view.ends_at else None
    if end is None or end <= start:
        end = start + DEFAULT_DURATION
    event = Event()
    event.add("uid", f"{view.ticket_id}@{uid_domain}")
    event.add("dtstamp", dtstamp.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", _text(view.event_name))
    if view.venue:
        event.add("location", _text(view.venue))
    event.add("description", _description(view))
    if view.event_url:
        event.add("url", _text(view.event_url))
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event


def render_ics(
    view: TicketView, *, uid_domain: str = "tessera", dtstamp: datetime | None = None
) -> bytes:
    """The ticket's event as an iCalendar file (METHOD:PUBLISH, one VEVENT, its VTIMEZONE).

    `dtstamp` is when the file is produced (an aware datetime; now in UTC when omitted).
    """
    event = _event(view, uid_domain, dtstamp or datetime.now(UTC))
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    # A VTIMEZONE spanning a year either side is enough for the event and keeps the file small.
    start = event.decoded("dtstart").date()
    end = event.decoded("dtend").date()
    calendar.add_missing_timezones(
        first_date=date(max(start.year - 1, 1), 1, 1),
        last_date=date(min(end.year + 2, 9999), 1, 1),
    )
    data: bytes = calendar.to_ical()
    return data
