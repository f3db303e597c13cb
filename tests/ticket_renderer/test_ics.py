"""The calendar file: stable UID, local wall time with its VTIMEZONE, the code in the text."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from tests.ticket_renderer.factories import TICKET_ID, ticket_view
from ticket_renderer import render_ics
from ticket_renderer.ics import DEFAULT_DURATION

STAMP = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


def parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def only_event(calendar: Calendar):  # type: ignore[no-untyped-def]
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def test_calendar_is_a_published_ical_with_one_event() -> None:
    calendar = parse(render_ics(ticket_view(), dtstamp=STAMP))
    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "PUBLISH"
    assert "Tessera" in str(calendar["PRODID"])
    event = only_event(calendar)
    assert str(event["SUMMARY"]) == "Concert du printemps"
    assert str(event["LOCATION"]) == "Salle Pleyel, Paris"
    assert str(event["URL"]) == "https://tickets.example/t/abc123"
    assert event.decoded("DTSTAMP") == STAMP


def test_uid_is_stable_per_ticket_across_renders() -> None:
    first = only_event(parse(render_ics(ticket_view(), dtstamp=STAMP)))
    second = only_event(parse(render_ics(ticket_view(version=4))))
    assert str(first["UID"]) == str(second["UID"]) == f"{TICKET_ID}@tessera"
    other = only_event(parse(render_ics(ticket_view(), uid_domain="tickets.example")))
    assert str(other["UID"]) == f"{TICKET_ID}@tickets.example"


def test_start_is_paris_wall_time_with_tzid_and_vtimezone() -> None:
    data = render_ics(ticket_view(), dtstamp=STAMP)
    assert b"DTSTART;TZID=Europe/Paris:20260314T200000" in data
    assert b"DTEND;TZID=Europe/Paris:20260314T233000" in data
    calendar = parse(data)
    event = only_event(calendar)
    start = event.decoded("DTSTART")
    assert start == datetime(2026, 3, 14, 20, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]


def test_summer_event_gets_summer_offset() -> None:
    view = ticket_view(starts_at=datetime(2026, 7, 1, 18, 0, tzinfo=UTC), ends_at=None)
    data = render_ics(view, dtstamp=STAMP)
    assert b"DTSTART;TZID=Europe/Paris:20260701T200000" in data


def test_missing_end_lasts_the_default_duration() -> None:
    event = only_event(parse(render_ics(ticket_view(ends_at=None), dtstamp=STAMP)))
    assert event.decoded("DTEND") - event.decoded("DTSTART") == DEFAULT_DURATION
    assert timedelta(hours=2) == DEFAULT_DURATION


def test_end_before_start_is_replaced_by_the_default_duration() -> None:
    view = ticket_view(ends_at=datetime(2026, 3, 14, 18, 0, tzinfo=UTC))
    event = only_event(parse(render_ics(view, dtstamp=STAMP)))
    assert event.decoded("DTEND") - event.decoded("DTSTART") == DEFAULT_DURATION


def test_description_holds_code_details_and_link_in_the_view_language() -> None:
    event = only_event(parse(render_ics(ticket_view(language="en"), dtstamp=STAMP)))
    description = str(event["DESCRIPTION"])
    assert "Saturday 14 March 2026, 20:00" in description
    assert "Code: K7QH-M2PX" in description
    assert "Holder: Camille Martin" in description
    assert "Seat: B12" in description
    assert "Persons: 2" in description
    assert "https://tickets.example/t/abc123" in description


def test_optional_fields_are_left_out() -> None:
    view = ticket_view(venue=None, event_url=None, holder_name=None, seat=None)
    event = only_event(parse(render_ics(view, dtstamp=STAMP)))
    assert "LOCATION" not in event
    assert "URL" not in event


def test_unknown_zone_falls_back_to_utc_times() -> None:
    data = render_ics(ticket_view(timezone="Nowhere/Atlantis"), dtstamp=STAMP)
    assert b"DTSTART:20260314T190000Z" in data
    assert b"VTIMEZONE" not in data


def test_control_characters_and_non_latin_text_survive_a_round_trip() -> None:
    view = ticket_view(event_name="Fête\x00 王 ; a, b", holder_name="Zoë\nŁukasz")
    event = only_event(parse(render_ics(view, dtstamp=STAMP)))
    assert str(event["SUMMARY"]) == "Fête  王 ; a, b"
    assert "Zoë\nŁukasz" in str(event["DESCRIPTION"])
