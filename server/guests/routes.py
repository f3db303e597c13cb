"""The guest's e-ticket page and files under `/t/{link}`: no authentication, the link is the secret.

Every answer is private and unindexed. An unknown link gets the same plain 404 page whether or
not it ever existed, and costs its client one token of the guessing budget; when the budget is
spent every link answers 429 for that client until it refills (a valid link costs nothing, but
it cannot be told apart from a guess while the client is locked out: otherwise a locked-out
guesser would still learn which guesses hit).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery

from server.guests import pages
from server.guests.service import GuestTicket, find_by_link, ticket_view
from server.problems import problem
from ticket_renderer import pick_language, qr_png, qr_svg, render_ics, render_ticket_pdf

__all__ = ["GUEST_SECURITY_HEADERS", "GuestController"]

GUEST_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    # The page and its files carry the link and the QR token; the service worker keeps its own
    # offline copy (the Cache API does not read this header).
    "Cache-Control": "no-store",
}
HTML = "text/html"  # Litestar appends "; charset=utf-8" to text types
Lang = FromQuery[str | None]


def _csp(nonce: str) -> str:
    return (
        f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; worker-src 'self'; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


def _language(request: Request[Any, Any, Any], lang: str | None) -> str:
    return pick_language(request.headers.get("accept-language"), lang)


def _html(body: str, status: int, nonce: str, **headers: str) -> Response[str]:
    return Response(
        body,
        status_code=status,
        media_type=HTML,
        headers={**GUEST_SECURITY_HEADERS, "Content-Security-Policy": _csp(nonce), **headers},
    )


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def _lookup(request: Request[Any, Any, Any], link: str, lang: str) -> GuestTicket | Response:
    """The ticket behind `link`, or the 404 / 429 page to answer instead."""
    limiter = request.app.state.guest_limiter
    client, now = _client(request), time.monotonic()
    wait = limiter.blocked(client, now)
    if wait == 0:
        async with request.app.state.database.transaction(read_only=True) as session:
            guest = await find_by_link(session, link)
        if guest is not None:
            return guest
        wait = limiter.take(client, now)
        if wait == 0:
            nonce = pages.new_nonce()
            body = pages.render_message(lang, nonce, "not_found_title", "not_found_text")
            return _html(body, 404, nonce)
    nonce = pages.new_nonce()
    body = pages.render_message(lang, nonce, "too_many_title", "too_many_text")
    return _html(body, 429, nonce, **{"Retry-After": str(wait)})


def _file(content: bytes, media_type: str, filename: str | None = None) -> Response[bytes]:
    headers = dict(GUEST_SECURITY_HEADERS)
    if filename is not None:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(content, media_type=media_type, headers=headers)


def _unusable(guest: GuestTicket) -> Response[Any] | None:
    """410 for a cancelled or replaced ticket's files, 423 while it is on hold (reversible, so
    not 410, which caches treat as permanent); None when the files may be served."""
    state = guest.state
    if state.shows_qr:
        return None
    status, code = (423, "ticket_blocked") if state.value == "blocked" else (410, "ticket_gone")
    response = problem(
        status, code, f"this ticket is {state.value}: its QR and files are not available"
    )
    response.headers.update({**GUEST_SECURITY_HEADERS, "Cache-Control": "no-store"})
    return response


class GuestController(Controller):
    path = "/t"
    tags = ["guests"]

    @get("/{link:str}", summary="The guest's e-ticket page (HTML)")
    async def page(self, request: Request, link: FromPath[str], lang: Lang = None) -> Response:
        language = _language(request, lang)
        found = await _lookup(request, link, language)
        if isinstance(found, Response):
            return found
        nonce = pages.new_nonce()
        return _html(pages.render_ticket_page(found, language, nonce), 200, nonce)

    @get("/{link:str}/sw.js", summary="The page's service worker (offline copy)")
    async def service_worker(self, request: Request, link: FromPath[str]) -> Response:
        found = await _lookup(request, link, _language(request, None))
        if isinstance(found, Response):
            return found
        return Response(
            pages.render_service_worker(link, sorted(found.images.values())),
            media_type="text/javascript",
            headers={**GUEST_SECURITY_HEADERS, "Service-Worker-Allowed": f"/t/{link}"},
        )

    @get("/{link:str}/qr.svg", summary="The ticket's QR code (SVG)")
    async def qr_svg_file(self, request: Request, link: FromPath[str]) -> Response:
        found = await _lookup(request, link, _language(request, None))
        if isinstance(found, Response):
            return found
        return _unusable(found) or _file(qr_svg(found.ticket.token), "image/svg+xml")

    @get("/{link:str}/qr.png", summary="The ticket's QR code (PNG)")
    async def qr_png_file(self, request: Request, link: FromPath[str]) -> Response:
        found = await _lookup(request, link, _language(request, None))
        if isinstance(found, Response):
            return found
        return _unusable(found) or _file(qr_png(found.ticket.token), "image/png")

    @get("/{link:str}/ticket.pdf", summary="The printable ticket (PDF)")
    async def pdf(self, request: Request, link: FromPath[str], lang: Lang = None) -> Response:
        language = _language(request, lang)
        found = await _lookup(request, link, language)
        if isinstance(found, Response):
            return found
        refused = _unusable(found)
        if refused is not None:
            return refused
        view = ticket_view(found, language, _page_url(request, link))
        # Rendering takes tens of milliseconds (font parsing): off the event loop, so the
        # doors' websockets on this instance never wait for a guest's PDF.
        pdf = await asyncio.to_thread(render_ticket_pdf, view)
        return _file(pdf, "application/pdf", f"ticket-{found.ticket.code}.pdf")

    @get("/{link:str}/event.ics", summary="The event for a calendar (iCalendar)")
    async def ics(self, request: Request, link: FromPath[str], lang: Lang = None) -> Response:
        language = _language(request, lang)
        found = await _lookup(request, link, language)
        if isinstance(found, Response):
            return found
        refused = _unusable(found)
        if refused is not None:
            return refused
        view = ticket_view(found, language, _page_url(request, link))
        name = f"event-{found.ticket.code}.ics"
        return _file(render_ics(view), "text/calendar", name)


def _page_url(request: Request[Any, Any, Any], link: str) -> str:
    return f"{request.app.state.settings.public_base_url}/t/{link}"
