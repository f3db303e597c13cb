"""The guests' self-service "send me my tickets again": rules, form, limits, lookup, page.

A guest types an address; every confirmed booking bought with it (case-insensitive) whose event
has not ended, of one event when the page was opened for one, gets its e-ticket mail queued
again through `campaigns.service.resend_booking`: a ledger row like any resend, mailed to the
address the booking holds (never to the text typed), at most MAX_BOOKINGS of them, soonest
event first. An event with no end counts as running until NO_END_GRACE after its start.

Rules that keep the page from telling who booked:
  - The answer is the same page, byte for byte, whether the address booked or not: no echo of
    the address, no nonce (the CSP names the style by its hash), no count.
  - The lookup and the queueing run after the answer is sent (the route's background task),
    so neither the answer's time nor an error of theirs depends on the address.
  - Limits (per process, like every limiter here): every request for an address costs one
    token of that address's bucket (3, refilled at 3 an hour: one guest's inbox cannot be
    flooded, nor its bookings probed), keyed by a keyed hash so memory never holds addresses;
    every POST costs its client one token (a burst of 10, then 10 an hour), so a typo
    corrected at once costs nothing but a token of each.

Nothing here imports Litestar: the routes (`resend_routes.py`) parse the HTTP and call this.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.bookings.models import Booking, BookingStatus
from server.campaigns.mail import MailError, check_address
from server.campaigns.service import resend_booking
from server.config import Settings
from server.events.models import Event
from server.ratelimit import TokenBuckets
from ticket_renderer import SUPPORTED_LANGUAGES, t

__all__ = [
    "MAX_BOOKINGS",
    "MAX_FORM_BYTES",
    "NO_END_GRACE",
    "SLUG_PATTERN",
    "FormError",
    "RenderedPage",
    "ResendLimits",
    "find_bookings",
    "find_event_name",
    "parse_form",
    "queue_resends",
    "render_resend_page",
]

MAX_BOOKINGS = 10
MAX_FORM_BYTES = 4096  # `email=` and 254 characters, percent-encoded three times over, fit
NO_END_GRACE = timedelta(days=1)
# What `events.service._slugify` makes (60 characters, a suffix on collision), with slack.
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
_FORM_TYPE = "application/x-www-form-urlencoded"


# --- the form ---------------------------------------------------------------------------------


class FormError(Exception):
    """A refused POST: `status` 400 (malformed), 413 (too large), 415 (not a form) or 422 (no
    usable address: the form is shown again with its message and `email`, what was typed)."""

    def __init__(self, status: int, code: str, detail: str, *, email: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.email = email


def parse_form(content_type: str | None, body: bytes) -> str:
    """The address of a form body `email=…`, normalised (domain in lower-case punycode).

    Refuses, by FormError: another media type or charset than urlencoded UTF-8 (415), more than
    MAX_FORM_BYTES (413), bytes outside ASCII, bad percent-encoded UTF-8, a field other than
    one `email` (400), and an empty or invalid address, line breaks and controls included (422).
    """
    media_type, _, params = (content_type or "").partition(";")
    if media_type.strip().lower() != _FORM_TYPE:
        raise FormError(415, "unsupported_media_type", f"send the form as {_FORM_TYPE}")
    charset = _charset(params)
    if charset not in (None, "utf-8", "utf8"):
        raise FormError(415, "unsupported_media_type", "the form's charset must be UTF-8")
    if len(body) > MAX_FORM_BYTES:
        raise FormError(413, "body_too_large", f"the form is at most {MAX_FORM_BYTES} bytes")
    try:
        # A urlencoded body is ASCII; a browser percent-encodes everything else.
        fields = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            encoding="utf-8",
            errors="strict",
            max_num_fields=2,
        )
    except UnicodeDecodeError:
        raise FormError(400, "bad_encoding", "the form is not valid UTF-8") from None
    except ValueError:
        raise FormError(400, "malformed_form", "the form is not name=value pairs") from None
    names = [name for name, _ in fields]
    if any(name != "email" for name in names) or len(names) > 1:
        raise FormError(400, "malformed_form", "the form has one field: email")
    return _address(fields[0][1] if fields else "")


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _address(value: str) -> str:
    # Only the blanks a browser would strip; a line break inside stays and is refused.
    value = value.strip(" \t")
    # Shown again in the field (escaped there), controls and line breaks as spaces.
    typed = " ".join("".join(" " if _is_control(ch) else ch for ch in value).split())[:254]
    if not value or any(_is_control(ch) for ch in value):
        raise FormError(422, "invalid_email", "not an email address", email=typed)
    try:
        return check_address(value)
    except MailError:
        raise FormError(422, "invalid_email", "not an email address", email=typed) from None


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


# --- limits -----------------------------------------------------------------------------------


class ResendLimits:
    """The two budgets of the page, per process; `clock` is monotonic seconds (tests pass one).

    Each `take_*` spends one token and answers 0, or the whole seconds to wait (spending none).
    """

    def __init__(
        self,
        *,
        per_address: TokenBuckets | None = None,
        per_client: TokenBuckets | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # `is None`, not `or`: an empty TokenBuckets is falsy (it has a length).
        if per_address is None:
            per_address = TokenBuckets(rate=3 / 3600, burst=3)
        if per_client is None:
            per_client = TokenBuckets(rate=10 / 3600, burst=10)
        self.per_address, self.per_client = per_address, per_client
        self.clock = clock
        # A fresh key per process: the hashes mean nothing outside it, and buckets live here.
        self._key = secrets.token_bytes(32)

    def take_client(self, client: str) -> int:
        return self.per_client.take(client, self.clock())

    def take_address(self, address: str) -> int:
        digest = hmac.new(self._key, address.lower().encode(), hashlib.sha256).hexdigest()
        return self.per_address.take(digest, self.clock())


# --- lookup and queueing ----------------------------------------------------------------------


async def find_event_name(session: AsyncSession, slug: str) -> str | None:
    """The name of the event called `slug`, or None (also for a malformed slug)."""
    if not SLUG_PATTERN.fullmatch(slug):
        return None
    return await session.scalar(select(Event.name).where(Event.slug == slug))


async def find_bookings(
    session: AsyncSession,
    address: str,
    *,
    event_slug: str | None,
    now: datetime,
    limit: int = MAX_BOOKINGS,
) -> list[str]:
    """Ids of the confirmed bookings bought with `address` whose event has not ended (of the
    event `event_slug` when given), soonest event first, at most `limit`."""
    # The stored address is as the organiser typed it: compare in lower case, with the domain
    # as typed and as punycode (an address given with a Unicode domain).
    wanted = {address.lower()}
    local, _, domain = address.rpartition("@")
    with contextlib.suppress(UnicodeError):
        wanted.add(f"{local}@{domain.encode('ascii').decode('idna')}".lower())
    running = or_(
        Event.ends_at >= now,
        and_(Event.ends_at.is_(None), Event.starts_at >= now - NO_END_GRACE),
    )
    query = (
        select(Booking.id)
        .join(Event, Event.id == Booking.event_id)
        .where(
            func.lower(Booking.buyer_email).in_(sorted(wanted)),
            Booking.status == BookingStatus.CONFIRMED,
            running,
        )
        .order_by(Event.starts_at, Booking.created_at, Booking.id)
        .limit(limit)
    )
    if event_slug is not None:
        query = query.where(Event.slug == event_slug)
    return list(await session.scalars(query))


async def queue_resends(
    session: AsyncSession,
    address: str,
    *,
    event_slug: str | None,
    now: datetime,
    settings: Settings,
) -> int:
    """Queue the e-ticket mail of every booking `find_bookings` names, each to its buyer's own
    address; how many were queued (for the log, never for the guest)."""
    ids = await find_bookings(session, address, event_slug=event_slug, now=now)
    for booking_id in ids:
        await resend_booking(session, booking_id, None, settings)
    return len(ids)


# --- the page ---------------------------------------------------------------------------------

_env = Environment(
    loader=PackageLoader("server.guests", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_NONE = "'none'"
_LANGUAGE_NAMES = {"fr": "Français", "en": "English", "de": "Deutsch"}
PageState = Literal["form", "invalid", "sent", "too_many", "no_event"]

_LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Renvoyer mes billets",
        "intro": (
            "Saisissez l'adresse e-mail utilisée pour la réservation : "
            "nous y renverrons vos billets."
        ),
        "email": "Adresse e-mail",
        "email_hint": "Par exemple nom@exemple.fr",
        "submit": "Envoyer mes billets",
        "invalid": "Saisissez une adresse e-mail valable, par exemple nom@exemple.fr.",
        "sent_title": "Consultez votre boîte de réception",
        "sent_text": (
            "Si des billets ont été réservés avec cette adresse, nous venons de les renvoyer. "
            "Consultez votre boîte de réception."
        ),
        "sent_hint": (
            "Le message peut mettre quelques minutes ; "
            "pensez à regarder dans les courriers indésirables."
        ),
        "again": "Essayer une autre adresse",
        "too_many_text": "Trop de demandes pour le moment. Réessayez dans {minutes} min.",
        "no_event_title": "Événement introuvable",
        "no_event_text": "Ce lien ne mène à aucun événement. Vérifiez qu'il est complet.",
    },
    "en": {
        "title": "Send me my tickets again",
        "intro": "Type the email address you booked with: we will send your tickets to it again.",
        "email": "Email address",
        "email_hint": "For example name@example.org",
        "submit": "Send my tickets",
        "invalid": "Enter a valid email address, for example name@example.org.",
        "sent_title": "Check your inbox",
        "sent_text": (
            "If tickets were booked with this address, we have sent them again. Check your inbox."
        ),
        "sent_hint": "The mail can take a few minutes; look in your spam folder too.",
        "again": "Use another address",
        "too_many_text": "Too many requests for now. Try again in {minutes} min.",
        "no_event_title": "Event not found",
        "no_event_text": "This link does not lead to an event. Check that it is complete.",
    },
    "de": {
        "title": "Meine Tickets erneut senden",
        "intro": (
            "Geben Sie die E-Mail-Adresse ein, mit der Sie gebucht haben: "
            "Wir senden Ihre Tickets erneut dorthin."
        ),
        "email": "E-Mail-Adresse",
        "email_hint": "Zum Beispiel name@beispiel.de",
        "submit": "Meine Tickets senden",
        "invalid": "Geben Sie eine gültige E-Mail-Adresse ein, zum Beispiel name@beispiel.de.",
        "sent_title": "Sehen Sie in Ihrem Posteingang nach",
        "sent_text": (
            "Falls mit dieser Adresse Tickets gebucht wurden, haben wir sie erneut gesendet. "
            "Sehen Sie in Ihrem Posteingang nach."
        ),
        "sent_hint": "Die E-Mail kann einige Minuten brauchen; sehen Sie auch im Spam-Ordner nach.",
        "again": "Andere Adresse verwenden",
        "too_many_text": "Zu viele Anfragen. Versuchen Sie es in {minutes} Min. erneut.",
        "no_event_title": "Veranstaltung nicht gefunden",
        "no_event_text": (
            "Dieser Link führt zu keiner Veranstaltung. Prüfen Sie, ob er vollständig ist."
        ),
    },
}


@dataclass(frozen=True)
class RenderedPage:
    html: str
    csp: str  # names the page's one style element by its hash: no nonce, so equal pages are equal


def render_resend_page(
    lang: str,
    state: PageState,
    *,
    event_slug: str | None = None,
    event_name: str | None = None,
    email: str = "",
    retry_after: int = 0,
) -> RenderedPage:
    """The page in `lang` (one of SUPPORTED_LANGUAGES) in `state`: the form (again, with the
    message and the typed `email`, when `invalid`), the answer `sent`, `too_many` (wait
    `retry_after` seconds) or `no_event`. Depends on nothing else, so it is deterministic."""
    labels = _LABELS[lang]
    query = {"lang": lang, **({"event": event_slug} if event_slug else {})}
    html = _env.get_template("resend.html").render(
        lang=lang,
        state=state,
        L=labels,
        tessera_too_many=t(lang, "too_many_title"),
        language_label=t(lang, "language"),
        event_name=event_name,
        email=email,
        action="/resend?" + urlencode(query),
        too_many_text=labels["too_many_text"].format(minutes=max(1, -(-retry_after // 60))),
        languages=[
            (code, _LANGUAGE_NAMES[code], "/resend?" + urlencode({**query, "lang": code}))
            for code in SUPPORTED_LANGUAGES
        ],
    )
    return RenderedPage(html, _csp(tuple(_STYLE.findall(html))))


@lru_cache(maxsize=8)
def _csp(styles: tuple[str, ...]) -> str:
    digests = (base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in styles)
    hashes = " ".join(f"'sha256-{d}'" for d in digests)
    return (
        f"default-src 'none'; style-src {hashes or _NONE}; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
