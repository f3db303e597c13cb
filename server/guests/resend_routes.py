"""`GET /resend` and `POST /resend`: the guests' "send me my tickets again" page over HTTP.

The rules live in `resend.py`; here is the order a POST is checked in, each step answering
before the next one runs (nothing is queued unless every step passed):

  1. cross-site: a `Sec-Fetch-Site` other than same-origin / none, or an `Origin` that is not
     this service's → 403 (`_is_same_site`). No cookie is involved, so this is all the CSRF
     defence a form that only queues a mail needs; a client sending neither header (curl) is
     let through.
  2. the client's budget (every POST costs one token) → 429 with Retry-After.
  3. `?event=`: unknown → 404 page (events are public; this says nothing about bookings).
  4. the body: at most MAX_FORM_BYTES read, urlencoded UTF-8, one `email` → 400 / 413 / 415,
     or the form again with its message (422) for an unusable address.
  5. the address's budget (every request for it costs one token) → 429 with Retry-After.
  6. the answer, the same for every address; the lookup and queueing run after it is sent.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from litestar import MediaType, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import FromQuery

from server.db import utcnow
from server.guests.resend import (
    MAX_FORM_BYTES,
    FormError,
    RenderedPage,
    find_event_name,
    parse_form,
    queue_resends,
    render_resend_page,
)
from server.guests.routes import GUEST_SECURITY_HEADERS
from server.problems import problem
from ticket_renderer import pick_language

__all__ = ["resend_page", "resend_submit"]

log = logging.getLogger("tessera.guests.resend")
Query = FromQuery[str | None]
_SAME_SITE = ("same-origin", "none")  # `none`: typed or bookmarked, not sent by another page
_DEFAULT_PORTS = {"http": 80, "https": 443}


@get(
    "/resend",
    tags=["guests"],
    media_type=MediaType.HTML,
    summary="The guests' page to have their e-tickets mailed again (HTML)",
)
async def resend_page(
    request: Request[Any, Any, Any], lang: Query = None, event: Query = None
) -> Response[str]:
    """One email field and a button, in the guest's language (`?lang=` or Accept-Language);
    `?event=SLUG` limits the resend to that event."""
    language = pick_language(request.headers.get("accept-language"), lang)
    name = None
    if event is not None:
        name = await _event_name(request.app.state, event)
        if name is None:
            return _html(render_resend_page(language, "no_event"), 404)
    page = render_resend_page(language, "form", event_slug=event, event_name=name)
    return _html(page, 200)


@post(
    "/resend",
    tags=["guests"],
    status_code=200,
    media_type=MediaType.HTML,
    summary="Mail again the e-tickets booked with an address (form: email)",
)
async def resend_submit(
    request: Request[Any, Any, Any], lang: Query = None, event: Query = None
) -> Response[Any]:
    """Form `email=…` (application/x-www-form-urlencoded): mails again the e-tickets of the
    address's confirmed bookings whose event has not ended, and answers the same page whatever
    the address. Limited per address and per client (429 with Retry-After)."""
    state = request.app.state
    language = pick_language(request.headers.get("accept-language"), lang)
    if not _is_same_site(request):
        return _problem(403, "cross_site", "this form can only be sent from its own page")
    wait = state.resend_limiter.take_client(request.client.host if request.client else "unknown")
    if wait:
        return _too_many(language, event, wait)
    name = None
    if event is not None:
        name = await _event_name(state, event)
        if name is None:
            return _html(render_resend_page(language, "no_event"), 404)
    try:
        address = parse_form(request.headers.get("content-type"), await _read_body(request))
    except FormError as exc:
        if exc.status != 422:
            return _problem(exc.status, exc.code, exc.detail)
        page = render_resend_page(
            language, "invalid", event_slug=event, event_name=name, email=exc.email
        )
        return _html(page, 422)
    wait = state.resend_limiter.take_address(address)
    if wait:
        return _too_many(language, event, wait)
    page = render_resend_page(language, "sent", event_slug=event, event_name=name)
    return _html(page, 200, background=BackgroundTask(_queue, state, address, event))


async def _queue(state: State, address: str, event_slug: str | None) -> None:
    """After the answer: find and queue (never the address in the log: it is personal data)."""
    try:
        async with state.database.transaction() as session:
            queued = await queue_resends(
                session, address, event_slug=event_slug, now=utcnow(), settings=state.settings
            )
    except Exception:  # the guest already has the answer; the operator gets the trace
        log.exception("self-service resend failed")
        return
    outbox = state.get("outbox")
    if queued and outbox is not None:
        outbox.wake()


async def _event_name(state: State, slug: str) -> str | None:
    async with state.database.transaction(read_only=True) as session:
        return await find_event_name(session, slug)


async def _read_body(request: Request[Any, Any, Any]) -> bytes:
    """The body, refused past MAX_FORM_BYTES before more is read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise FormError(413, "body_too_large", f"the form is at most {MAX_FORM_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormError(413, "body_too_large", f"the form is at most {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _is_same_site(request: Request[Any, Any, Any]) -> bool:
    """Whether the browser says the form came from this site (or says nothing at all).

    `Sec-Fetch-Site` decides when sent; then `Origin` must be ours, except `null`, which a
    browser sends for its own page's form too when the referrer policy withholds the origin.
    Without `Sec-Fetch-Site`, `null` (a sandboxed frame, a redirect from elsewhere) is refused.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in _SAME_SITE:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin.strip() == "null":
        return site is not None
    ours = {_origin(request.app.state.settings.public_base_url), _origin(str(request.base_url))}
    return _origin(origin.strip()) in ours - {""}


def _html(page: RenderedPage, status: int, **extra: Any) -> Response[str]:
    # `same-origin`, not the guest pages' `no-referrer`: with no-referrer a browser sends
    # `Origin: null` for the page's own form. Nothing secret is in this page's address.
    headers = {
        **GUEST_SECURITY_HEADERS,
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": page.csp,
    }
    headers.update(extra.pop("headers", {}))
    return Response(page.html, status_code=status, media_type="text/html", headers=headers, **extra)


def _too_many(language: str, event: str | None, wait: int) -> Response[str]:
    page = render_resend_page(language, "too_many", event_slug=event, retry_after=wait)
    return _html(page, 429, headers={"Retry-After": str(wait)})


def _problem(status: int, code: str, detail: str) -> Response[Any]:
    response = problem(status, code, detail)
    response.headers.update(GUEST_SECURITY_HEADERS)
    return response
