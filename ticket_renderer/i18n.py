"""Labels and dates for tickets in French, English and German, without system locales.

Servers and scanners run with whatever locale the container has, so day and month names come
from the tables below, never from `strftime`.
"""

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "SUPPORTED_LANGUAGES",
    "find_zone",
    "format_datetime",
    "format_period",
    "pick_language",
    "t",
]

SUPPORTED_LANGUAGES = ("fr", "en", "de")
_FALLBACK = "en"

_LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "ticket": "Billet",
        "your_ticket": "Votre billet",
        "event": "Événement",
        "holder": "Titulaire",
        "seat": "Place",
        "ticket_type": "Type de billet",
        "persons": "Personnes",
        "venue": "Lieu",
        "date": "Date",
        "code": "Code",
        "show_code": "Présentez ce code à l'entrée",
        "download_pdf": "Télécharger le PDF",
        "add_to_calendar": "Ajouter au calendrier",
        "ticket_link": "Votre billet en ligne",
        # Guest page (server/guests): states, explanations and error pages.
        "status": "Statut",
        "details": "Détails",
        "state_valid": "Valable",
        "state_used": "Déjà utilisé",
        "state_replaced": "Remplacé",
        "state_blocked": "En attente",
        "state_cancelled": "Annulé",
        "explain_valid": "Présentez ce code à l'entrée ; l'écran reste allumé.",
        "explain_used": "Ce billet a déjà été scanné à l'entrée.",
        "explain_replaced": "Ce billet a été remplacé. Utilisez le lien le plus récent reçu.",
        "explain_blocked": "Ce billet est suspendu. Contactez l'organisateur.",
        "explain_cancelled": "Ce billet a été annulé et n'est plus valable.",
        "qr_label": "QR code de votre billet, code",
        "language": "Langue",
        "not_found_title": "Billet introuvable",
        "not_found_text": "Ce lien ne mène à aucun billet. Vérifiez qu'il est complet.",
        "too_many_title": "Trop de tentatives",
        "too_many_text": "Veuillez patienter un instant puis réessayer.",
    },
    "en": {
        "ticket": "Ticket",
        "your_ticket": "Your ticket",
        "event": "Event",
        "holder": "Holder",
        "seat": "Seat",
        "ticket_type": "Ticket type",
        "persons": "Persons",
        "venue": "Venue",
        "date": "Date",
        "code": "Code",
        "show_code": "Show this code at the entrance",
        "download_pdf": "Download PDF",
        "add_to_calendar": "Add to calendar",
        "ticket_link": "Your ticket online",
        # Guest page (server/guests): states, explanations and error pages.
        "status": "Status",
        "details": "Details",
        "state_valid": "Valid",
        "state_used": "Already used",
        "state_replaced": "Replaced",
        "state_blocked": "On hold",
        "state_cancelled": "Cancelled",
        "explain_valid": "Show this code at the entrance; the screen stays on.",
        "explain_used": "This ticket has already been scanned at the entrance.",
        "explain_replaced": "This ticket was replaced. Use the newest link you received.",
        "explain_blocked": "This ticket is on hold. Please contact the organiser.",
        "explain_cancelled": "This ticket was cancelled and is no longer valid.",
        "qr_label": "QR code of your ticket, code",
        "language": "Language",
        "not_found_title": "Ticket not found",
        "not_found_text": "This link does not lead to a ticket. Check that it is complete.",
        "too_many_title": "Too many attempts",
        "too_many_text": "Please wait a moment, then try again.",
    },
    "de": {
        "ticket": "Ticket",
        "your_ticket": "Ihr Ticket",
        "event": "Veranstaltung",
        "holder": "Inhaber",
        "seat": "Platz",
        "ticket_type": "Ticketart",
        "persons": "Personen",
        "venue": "Ort",
        "date": "Datum",
        "code": "Code",
        "show_code": "Zeigen Sie diesen Code am Eingang vor",
        "download_pdf": "PDF herunterladen",
        "add_to_calendar": "Zum Kalender hinzufügen",
        "ticket_link": "Ihr Ticket online",
        # Guest page (server/guests): states, explanations and error pages.
        "status": "Status",
        "details": "Angaben",
        "state_valid": "Gültig",
        "state_used": "Bereits verwendet",
        "state_replaced": "Ersetzt",
        "state_blocked": "Gesperrt",
        "state_cancelled": "Storniert",
        "explain_valid": "Zeigen Sie diesen Code am Eingang vor; der Bildschirm bleibt an.",
        "explain_used": "Dieses Ticket wurde am Eingang bereits gescannt.",
        "explain_replaced": "Dieses Ticket wurde ersetzt. Nutzen Sie den neuesten Link.",
        "explain_blocked": "Dieses Ticket ist gesperrt. Bitte wenden Sie sich an den Veranstalter.",
        "explain_cancelled": "Dieses Ticket wurde storniert und ist nicht mehr gültig.",
        "qr_label": "QR-Code Ihres Tickets, Code",
        "language": "Sprache",
        "not_found_title": "Ticket nicht gefunden",
        "not_found_text": "Dieser Link führt zu keinem Ticket. Prüfen Sie, ob er vollständig ist.",
        "too_many_title": "Zu viele Versuche",
        "too_many_text": "Bitte warten Sie einen Moment und versuchen Sie es erneut.",
    },
}

# Monday first, as `datetime.weekday()` counts.
_DAYS = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
}
_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
}
_DASH = " \N{EN DASH} "

# RFC 9110 qvalue: 0 to 1 with at most three decimals.
_QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


def _language(lang: str) -> str:
    return lang if lang in _LABELS else _FALLBACK


def t(lang: str, key: str) -> str:
    """The label `key` in `lang`, in English for an unsupported language.

    Raises KeyError for an unknown key: that is a bug in the caller, not a missing translation.
    """
    return _LABELS[_language(lang)][key]


def find_zone(name: str) -> ZoneInfo | None:
    """The IANA zone called `name`, or None when the name is unknown or malformed."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _to_local(dt: datetime, tz: str) -> datetime:
    zone: tzinfo | None = find_zone(tz)
    if dt.tzinfo is None:
        # A naive time is read as wall time in the event's zone (UTC if that is unknown).
        return dt.replace(tzinfo=zone or UTC)
    # An unknown zone keeps the datetime's own offset rather than failing a ticket.
    return dt.astimezone(zone) if zone is not None else dt


def _format_date(local: datetime, lang: str) -> str:
    day_name = _DAYS[lang][local.weekday()]
    month = _MONTHS[lang][local.month - 1]
    if lang == "fr":
        day = "1er" if local.day == 1 else str(local.day)
        return f"{day_name} {day} {month} {local.year}"
    if lang == "de":
        return f"{day_name}, {local.day}. {month} {local.year}"
    return f"{day_name} {local.day} {month} {local.year}"


def format_datetime(dt: datetime, tz: str, lang: str) -> str:
    """`dt` as wall time in zone `tz`, e.g. ``samedi 14 mars 2026, 20:00`` in French.

    English gives ``Saturday 14 March 2026, 20:00``, German ``Samstag, 14. März 2026, 20:00``;
    other languages fall back to English.
    """
    local = _to_local(dt, tz)
    return f"{_format_date(local, _language(lang))}, {local:%H:%M}"


def format_period(start: datetime, end: datetime | None, tz: str, lang: str) -> str:
    """Start and end in zone `tz`: ``…, 20:00 - 23:00`` on one day, both dates across days.

    The separator is an en dash.
    """
    if end is None:
        return format_datetime(start, tz, lang)
    local_start, local_end = _to_local(start, tz), _to_local(end, tz)
    if local_start.date() == local_end.date():
        return f"{format_datetime(start, tz, lang)}{_DASH}{local_end:%H:%M}"
    return f"{format_datetime(start, tz, lang)}{_DASH}{format_datetime(end, tz, lang)}"


def _supported(tag: str | None) -> str | None:
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    return primary if primary in SUPPORTED_LANGUAGES else None


def _quality(params: str) -> float:
    """The q of one Accept-Language item's parameters: 1 when absent, 0 when malformed."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            return float(value) if _QVALUE.fullmatch(value) else 0.0
    return 1.0


def pick_language(
    accept_language_header: str | None, requested: str | None, default: str = "en"
) -> str:
    """The language to render in: `requested` (``?lang=``) if supported, else the best match.

    Accept-Language items are ranked by q-value, then by position; ``fr-CH`` matches ``fr``,
    ``*`` matches `default`, q=0 excludes; nothing supported gives `default`.
    """
    chosen = _supported(requested)
    if chosen is not None:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language_header or "").split(",")):
        tag, _, params = item.partition(";")
        quality = _quality(params)
        language = default if tag.strip() == "*" else _supported(tag)
        if quality > 0 and language is not None:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else default
