"""Signing in and out of the console: mailed one-time links, passwords, sessions.

A link's GET only shows a confirm button (mail scanners fetch links; a GET consumes nothing);
the POST of that button uses it. The link request answers the same page whatever the address,
and looks the address up only after the answer is sent, so neither the words nor the time of
the answer tell whether it belongs to a user.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from server.campaigns.mail import Address
from server.console import accounts
from server.console.accounts import SignedIn
from server.console.i18n import LANGUAGES, page_language
from server.console.signin_mail import send_signin_mail, signin_url
from server.console.web import (
    SESSION_COOKIE,
    ConsolePageError,
    SignInRequired,
    cookie,
    html_page,
    pre_session_token,
    read_form,
    redirect,
)
from server.db import utcnow
from server.http import DbSession

__all__ = ["SignInController", "Viewer", "ViewerDep", "provide_viewer"]

log = logging.getLogger("tessera.console")
# Where the language form may send the browser back to: a console path, nothing else.
_SAFE_NEXT = re.compile(r"/console/[A-Za-z0-9_\-/]{0,200}")
Lang = FromQuery[str | None]


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a console request and the language its pages are in."""

    signed_in: SignedIn
    lang: str

    @property
    def user(self) -> Any:
        return self.signed_in.user

    @property
    def csrf(self) -> str:
        return self.signed_in.csrf

    @property
    def can_edit(self) -> bool:
        return self.signed_in.role.can_edit

    @property
    def is_admin(self) -> bool:
        return self.signed_in.role is accounts.Role.ADMIN

    def require_edit(self) -> None:
        if not self.can_edit:
            raise ConsolePageError(403, "forbidden", "forbidden_detail")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ConsolePageError(403, "forbidden", "forbidden_detail")


ViewerDep = NamedDependency[Viewer]
"""The signed-in user of a console page (`provide_viewer`), injected as `viewer`."""


def request_language(request: Request[Any, Any, Any], stored: str | None = None) -> str:
    lang = request.query_params.get("lang")
    return page_language(stored, lang, request.headers.get("accept-language"))


async def provide_viewer(request: Request[Any, Any, Any], db_session: DbSession) -> Viewer:
    """The request's live session, or SignInRequired (the page sends the browser to sign in)."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    signed_in = await accounts.find_session(db_session, secret, now=utcnow()) if secret else None
    if signed_in is None:
        raise SignInRequired()
    viewer = Viewer(signed_in, request_language(request, signed_in.user.language))
    request.state.console_viewer = viewer  # the error pages show the navigation too
    return viewer


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _spend_client(request: Request[Any, Any, Any]) -> None:
    wait = request.app.state.console_limits.take_client(_client(request))
    if wait:
        raise ConsolePageError(429, "bad_request", "too_many", seconds=wait)


def _spend_address(request: Request[Any, Any, Any], address: str) -> None:
    wait = request.app.state.console_limits.take_address(address)
    if wait:
        raise ConsolePageError(429, "bad_request", "too_many", seconds=wait)


def _signin_page(
    request: Request[Any, Any, Any], *, status: int = 200, **context: Any
) -> Response[str]:
    token, new_cookie = pre_session_token(request)
    context = {"sent": False, "error": None, "email": ""} | context
    return html_page(
        "signin.html",
        lang=request_language(request),
        status=status,
        cookies=[new_cookie] if new_cookie else [],
        csrf=token,
        viewer=None,
        **context,
    )


async def _mail_link(state: State, address: str, lang: str) -> None:
    """After the answer: a link for the address's user, if it has one, mailed at once."""
    settings = state.settings
    try:
        async with state.database.transaction() as session:
            user = await accounts.find_user_by_email(session, address)
            if user is None:
                return
            secret = await accounts.create_link(session, user, now=utcnow())
            to = Address(user.name, user.email)
            language = user.language or lang
        result = await send_signin_mail(
            settings, to=to, link=signin_url(settings, secret), lang=language
        )
    except Exception:  # the browser already has its answer; the operator gets the trace
        log.exception("console sign-in mail failed")
        return
    if not result.ok:
        log.warning("console sign-in mail not sent: %s", result.reply)


async def _start_session(
    request: Request[Any, Any, Any], db_session: DbSession, user: Any
) -> Response[str]:
    secret, _ = await accounts.create_session(db_session, user, now=utcnow())
    max_age = int(accounts.SESSION_LIFETIME.total_seconds())
    return redirect("/console/events", cookies=[cookie(request, SESSION_COOKIE, secret, max_age)])


def _ended(request: Request[Any, Any, Any]) -> Response[str]:
    return redirect("/console/sign-in", cookies=[cookie(request, SESSION_COOKIE, "", 0)])


class SignInController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/")
    async def home(self) -> Response[str]:
        return redirect("/console/events")

    @get("/sign-in")
    async def sign_in_page(
        self, request: Request[Any, Any, Any], lang: Lang = None
    ) -> Response[str]:
        return _signin_page(request)

    @post("/sign-in", status_code=200)
    async def request_link(self, request: Request[Any, Any, Any]) -> Response[str]:
        """Form `email`: mail a sign-in link if the address is a user's; the same page anyway."""
        form = await read_form(request, None)
        _spend_client(request)
        address = form.get("email").strip()
        if not address or len(address) > 320:
            return _signin_page(request, status=422, email=address[:320], error="email")
        _spend_address(request, address)
        lang = request_language(request)
        task = BackgroundTask(_mail_link, request.app.state, address, lang)
        response = _signin_page(request, sent=True)
        response.background = task
        return response

    @get("/sign-in/link/{secret:str}")
    async def link_page(
        self, request: Request[Any, Any, Any], secret: FromPath[str]
    ) -> Response[str]:
        """The confirm button of a mailed link; nothing is used until it is pressed."""
        token, new_cookie = pre_session_token(request)
        return html_page(
            "signin_link.html",
            lang=request_language(request),
            cookies=[new_cookie] if new_cookie else [],
            headers={"Referrer-Policy": "no-referrer"},
            csrf=token,
            secret=secret[:200],
            viewer=None,
        )

    @post("/sign-in/link", status_code=303)
    async def use_link(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        form = await read_form(request, None)
        _spend_client(request)
        user = await accounts.consume_link(db_session, form.get("secret"), now=utcnow())
        if user is None:
            raise ConsolePageError(400, "sign_in", "link_unusable")
        return await _start_session(request, db_session, user)

    @post("/sign-in/password", status_code=303)
    async def use_password(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        form = await read_form(request, None)
        _spend_client(request)
        address = form.get("email").strip()[:320]
        _spend_address(request, address)
        user = await accounts.check_password(db_session, address, form.get("password"))
        if user is None:
            return _signin_page(request, status=400, email=address, error="password")
        return await _start_session(request, db_session, user)

    @post("/sign-out", status_code=303)
    async def sign_out(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        viewer = await provide_viewer(request, db_session)
        await read_form(request, viewer.csrf)
        await accounts.end_session(db_session, viewer.signed_in.session_id)
        return _ended(request)

    @post("/sign-out-everywhere", status_code=303)
    async def sign_out_everywhere(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        viewer = await provide_viewer(request, db_session)
        await read_form(request, viewer.csrf)
        await accounts.end_all_sessions(db_session, viewer.user.id)
        return _ended(request)

    @post("/language", status_code=303)
    async def choose_language(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        """Form `language` (en, fr, de, or empty for the browser's): kept on the user."""
        viewer = await provide_viewer(request, db_session)
        form = await read_form(request, viewer.csrf)
        choice = form.get("language")
        if choice and choice not in LANGUAGES:
            raise ConsolePageError(422, "bad_request", "bad_request")
        await accounts.set_language(db_session, viewer.user.id, choice or None)
        back = form.get("next")
        return redirect(back if _SAFE_NEXT.fullmatch(back) else "/console/events")
