"""Labels, dates and language choice in French, English and German."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

import ticket_renderer
from ticket_renderer.i18n import (
    _LABELS,
    SUPPORTED_LANGUAGES,
    find_zone,
    format_datetime,
    format_period,
    pick_language,
    t,
)

SATURDAY_EVENING_PARIS = datetime(2026, 3, 14, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", "samedi 14 mars 2026, 20:00"),
        ("en", "Saturday 14 March 2026, 20:00"),
        ("de", "Samstag, 14. März 2026, 20:00"),
        ("es", "Saturday 14 March 2026, 20:00"),
    ],
)
def test_format_datetime_in_the_event_zone(lang: str, expected: str) -> None:
    assert format_datetime(SATURDAY_EVENING_PARIS, "Europe/Paris", lang) == expected


def test_french_writes_the_first_of_the_month_as_1er() -> None:
    first = datetime(2026, 8, 1, 7, 5, tzinfo=UTC)
    assert format_datetime(first, "Europe/Paris", "fr") == "samedi 1er août 2026, 09:05"


def test_format_datetime_converts_across_zones_and_dates() -> None:
    late = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
    assert format_datetime(late, "Asia/Tokyo", "en") == "Sunday 15 March 2026, 08:30"


def test_naive_datetime_is_wall_time_in_the_zone() -> None:
    naive = datetime(2026, 3, 14, 20, 0)
    assert format_datetime(naive, "Europe/Paris", "en") == "Saturday 14 March 2026, 20:00"


def test_unknown_zone_keeps_the_datetime_own_offset() -> None:
    dt = datetime(2026, 3, 14, 20, 0, tzinfo=timezone(timedelta(hours=1)))
    for bad in ("Nowhere/Atlantis", "", "../etc/passwd", "\x00", "A" * 5000):
        assert find_zone(bad) is None
        assert format_datetime(dt, bad, "en") == "Saturday 14 March 2026, 20:00"


def test_period_on_one_day_shows_the_end_time_only() -> None:
    end = SATURDAY_EVENING_PARIS + timedelta(hours=3)
    assert format_period(SATURDAY_EVENING_PARIS, end, "Europe/Paris", "de") == (
        "Samstag, 14. März 2026, 20:00 \N{EN DASH} 23:00"
    )


def test_period_across_days_shows_both_dates() -> None:
    end = SATURDAY_EVENING_PARIS + timedelta(hours=6)
    assert format_period(SATURDAY_EVENING_PARIS, end, "Europe/Paris", "en") == (
        "Saturday 14 March 2026, 20:00 \N{EN DASH} Sunday 15 March 2026, 02:00"
    )


def test_period_without_end_is_the_start() -> None:
    assert format_period(SATURDAY_EVENING_PARIS, None, "Europe/Paris", "fr") == (
        "samedi 14 mars 2026, 20:00"
    )


def test_every_language_has_every_label() -> None:
    assert SUPPORTED_LANGUAGES == ("fr", "en", "de")
    keys = set(_LABELS["en"])
    for lang in SUPPORTED_LANGUAGES:
        assert set(_LABELS[lang]) == keys
    assert t("fr", "show_code") == "Présentez ce code à l'entrée"
    assert t("de", "holder") == "Inhaber"
    assert t("it", "seat") == "Seat"
    with pytest.raises(KeyError):
        t("en", "no_such_label")


@pytest.mark.parametrize(
    ("header", "requested", "expected"),
    [
        pytest.param("de-DE,de;q=0.9,en;q=0.8", None, "de", id="first-supported"),
        pytest.param("fr-CH, fr;q=0.9, en;q=0.8", None, "fr", id="region-matches-language"),
        pytest.param("en;q=0.5, de;q=0.9", None, "de", id="highest-q-wins-not-position"),
        pytest.param("fr;q=0.8, de;q=0.8", None, "fr", id="ties-keep-header-order"),
        pytest.param("es, it;q=0.9, de;q=0.1", None, "de", id="unsupported-ignored"),
        pytest.param("es, it", None, "en", id="nothing-supported-gives-default"),
        pytest.param("de;q=0, fr;q=0.2", None, "fr", id="q-zero-excludes"),
        pytest.param("de;q=abc, fr;q=0.2", None, "fr", id="malformed-q-ignored"),
        pytest.param("de;q=1.5, fr;q=0.2", None, "fr", id="q-above-one-ignored"),
        pytest.param("*", None, "en", id="wildcard-is-default"),
        pytest.param("", None, "en", id="empty-header"),
        pytest.param(None, None, "en", id="no-header"),
        pytest.param("de", "fr", "fr", id="query-lang-wins"),
        pytest.param("de", "FR", "fr", id="query-lang-case-insensitive"),
        pytest.param("de", "es", "de", id="unsupported-query-lang-falls-back-to-header"),
        pytest.param(None, "", "en", id="empty-query-lang"),
        pytest.param("DE-at;Q=0.7", None, "de", id="case-insensitive-header"),
        pytest.param(",,;;q=,de", None, "de", id="garbage-items-ignored"),
    ],
)
def test_pick_language(header: str | None, requested: str | None, expected: str) -> None:
    assert pick_language(header, requested) == expected


def test_pick_language_uses_the_given_default() -> None:
    assert pick_language("es", None, default="fr") == "fr"
    assert pick_language("*", None, default="de") == "de"


def test_package_exports_are_pinned() -> None:
    assert sorted(ticket_renderer.__all__) == [
        "SUPPORTED_LANGUAGES",
        "TicketView",
        "find_zone",
        "format_datetime",
        "format_period",
        "make_qr",
        "pick_language",
        "qr_png",
        "qr_svg",
        "render_ics",
        "render_ticket_pdf",
        "t",
    ]
