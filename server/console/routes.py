"""The console's router: its pages, its style sheet, and errors answered as pages.

Every error under `/console` is an HTML page in the viewer's language (a 403 for a read-only
user, a 404 for an unknown event, a 400 for a broken form), never problem+json: a browser
shows it. Only a missing session is no error: the page sends the browser to sign in.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import HTTPException, ValidationException

from server.console.bookings_pages import BookingPages
from server.console.campaigns_pages import CampaignPages
from server.console.contacts_pages import ContactListPages
from server.console.dashboard import DashboardPages
from server.console.doors_pages import DoorPages
from server.console.events_pages import EventPages
from server.console.exports_pages import ExportPages
from server.console.forms import Refused
from server.console.i18n import Labels
from server.console.imports_pages import EventImportPages, ListImportPages
from server.console.labels.messages import translated
from server.console.signin import SignInController, request_language
from server.console.tokens_pages import TokenPages
from server.console.web import STATIC, ConsolePageError, SignInRequired, html_page, redirect
from server.errors import DomainError, Forbidden, NotFound

__all__ = ["console_router"]

log = logging.getLogger("tessera.console")
# One style sheet served: console.css first, then each area's own file (bookings.css, ...).
_CSS = b"\n".join(
    path.read_bytes()
    for path in sorted(STATIC.glob("*.css"), key=lambda p: (p.name != "console.css", p.name))
)


@get("/console/static/console.css", include_in_schema=False)
async def console_css() -> Response[bytes]:
    return Response(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def _viewer(request: Request[Any, Any, Any]) -> Any:
    return getattr(request.state, "console_viewer", None)


def _page(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Response[str]:
    """The error page; `detail`, when it is the API's English text, shown in the viewer's
    language (labels/problems.py)."""
    viewer = _viewer(request)
    lang = viewer.lang if viewer is not None else request_language(request)
    return html_page(
        "error.html",
        lang=lang,
        status=status,
        viewer=viewer,
        title=title,
        detail=translated(detail, lang),
        section="",
    )


def _labelled(request: Request[Any, Any, Any], exc: ConsolePageError) -> Response[str]:
    viewer = _viewer(request)
    lang = viewer.lang if viewer is not None else request_language(request)
    labels = Labels(lang)
    return _page(request, exc.status, labels(exc.title), labels(exc.detail, **exc.values))


def _sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[str]:
    return redirect("/console/sign-in")


def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[str]:
    viewer = _viewer(request)
    labels = Labels(viewer.lang if viewer is not None else request_language(request))
    if isinstance(exc, NotFound):
        return _page(request, 404, labels.not_found, exc.detail)
    if isinstance(exc, Forbidden):
        return _page(request, 403, labels.forbidden, exc.detail)
    return _page(request, 409, labels.bad_request, exc.detail)


def _refused(request: Request[Any, Any, Any], exc: Refused) -> Response[str]:
    """A refusal no form shows (a delete, a cancel): its page, with its status."""
    viewer = _viewer(request)
    lang = viewer.lang if viewer is not None else request_language(request)
    labels = Labels(lang)
    texts = [exc.problem] if exc.problem else [e["message"] for e in exc.errors]
    return _page(
        request, exc.status, labels.bad_request, "; ".join(translated(t, lang) for t in texts)
    )


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    labels = Labels(request_language(request))
    status = exc.status_code if 400 <= exc.status_code < 500 else 500
    if status == 500:
        log.error("console error", exc_info=exc)
    title = labels.not_found if status == 404 else labels.bad_request
    return _page(request, status, title, str(exc.detail))


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[str]:
    labels = Labels(request_language(request))
    return _page(request, 400, labels.bad_request, labels.bad_request)


def console_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            console_css,
            SignInController,
            EventPages,
            TokenPages,
            BookingPages,
            CampaignPages,
            DoorPages,
            DashboardPages,
            EventImportPages,
            ListImportPages,
            ContactListPages,
            ExportPages,
        ],
        exception_handlers={
            ConsolePageError: _labelled,
            SignInRequired: _sign_in,
            DomainError: _domain,
            Refused: _refused,
            ValidationException: _validation,
            HTTPException: _http,
        },
        include_in_schema=False,
    )
