"""HTML and JavaScript of the guest pages: Jinja2 with autoescape, from the package's templates.

Rendering is pure: a `GuestTicket`, a language and a nonce go in, text comes out. The QR markup
is cached per token, and a token is unique to one (ticket, version), so a reissue renders anew.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from server.events.schemas import brand_colour
from server.guests.service import GuestState, GuestTicket
from ticket_renderer import SUPPORTED_LANGUAGES, format_period, qr_svg, t

__all__ = ["new_nonce", "render_message", "render_service_worker", "render_ticket_page"]

_env = Environment(
    loader=PackageLoader("server.guests", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_ICONS = {
    GuestState.VALID: "✓",
    GuestState.USED: "!",
    GuestState.REPLACED: "↻",
    GuestState.BLOCKED: "⏸",
    GuestState.CANCELLED: "✕",
}
_LANGUAGE_NAMES = {"fr": "Français", "en": "English", "de": "Deutsch"}


class _Labels:
    """`L.key` in templates: the label `key` in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getattr__(self, key: str) -> str:
        return t(self.lang, key)


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


@lru_cache(maxsize=1024)
def _qr_markup(token: str, label: str) -> Markup:
    """The inline SVG of `token`, announced to screen readers as an image with `label`."""
    svg = qr_svg(token).decode("ascii")
    attributes = f'<svg role="img" aria-label="{escape(label)}" focusable="false" '
    return Markup(svg.replace("<svg ", attributes, 1))


def render_ticket_page(guest: GuestTicket, lang: str, nonce: str) -> str:
    """The e-ticket page of `guest` in `lang`; the QR only in states where it may be used, the
    ticket's details only on its current link (an old link shows the event and its state)."""
    ticket, event, state = guest.ticket, guest.event, guest.state
    labels = _Labels(lang)
    qr = _qr_markup(ticket.token, f"{labels.qr_label} {ticket.code}") if state.shows_qr else None
    details = None
    if guest.is_current_link:
        details = {
            "code": ticket.code,
            "holder_name": ticket.holder_name,
            "ticket_type": guest.ticket_type.name,
            "seat": ticket.seat,
            "persons": guest.ticket_type.persons,
        }
    return _env.get_template("ticket.html").render(
        lang=lang,
        nonce=nonce,
        L=labels,
        base=f"/t/{guest.link}",
        event_name=event.name,
        period=format_period(event.starts_at, event.ends_at, event.timezone, lang),
        venue=event.venue,
        state=state.value,
        state_label=t(lang, f"state_{state.value}"),
        explanation=t(lang, f"explain_{state.value}"),
        icon=_ICONS[state],
        colour=brand_colour(event.branding),
        logo=guest.images.get("logo"),
        banner=guest.images.get("banner"),
        qr=qr,
        details=details,
        languages=[(code, _LANGUAGE_NAMES[code]) for code in SUPPORTED_LANGUAGES],
    )


def render_message(lang: str, nonce: str, title_key: str, text_key: str) -> str:
    """A small page with one heading and one sentence (not found, too many attempts)."""
    return _env.get_template("message.html").render(
        lang=lang, nonce=nonce, title=t(lang, title_key), text=t(lang, text_key)
    )


def render_service_worker(link: str, images: Sequence[str] = ()) -> str:
    """The service worker of one ticket page; `link` is already known to match LINK_PATTERN.
    `images` are the paths of the event's logo and banner, kept for the page offline."""
    return _env.get_template("sw.js").render(page=f"/t/{link}", link=link, images=list(images))
