"""The console's HTTP edge: pages rendered with Jinja2, forms read strictly, cookies, CSRF.

Every unsafe request is checked in this order, each step answering before the next runs:
  1. cross-site: a `Sec-Fetch-Site` other than same-origin / none, or an `Origin` that is not
     this service's → 403 page;
  2. the body: at most MAX_FORM_BYTES, `application/x-www-form-urlencoded`, UTF-8 → 413 / 415 /
     400 page;
  3. the CSRF token of the hidden `csrf` field against the session's (signed in) or the
     pre-session cookie's (the sign-in forms, against login CSRF) → 403 page.
Pages carry no script at all, and a CSP that would refuse one.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Request, Response
from litestar.datastructures import Cookie

from server.console.i18n import LANGUAGE_NAMES, LANGUAGES, Labels
from server.console.labels.messages import translated

__all__ = [
    "CSP",
    "MAX_FORM_BYTES",
    "PRE_COOKIE",
    "SESSION_COOKIE",
    "ConsolePageError",
    "Form",
    "SignInRequired",
    "check_same_site",
    "html_page",
    "read_form",
    "redirect",
]

SESSION_COOKIE = "tessera_console"
PRE_COOKIE = "tessera_console_pre"  # the sign-in forms' CSRF token (double submit)
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
STATIC = Path(__file__).parent / "static"

_env = Environment(
    loader=PackageLoader("server.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class ConsolePageError(Exception):
    """Answer with the error page: `status`, a heading label and a detail label."""

    def __init__(self, status: int, title: str, detail: str, **values: object) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.values = values


class SignInRequired(Exception):
    """No live session: a page sends the browser to the sign-in page (303)."""


class Form:
    """A decoded urlencoded form: `get` the first value of a field, `all` of them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def __contains__(self, name: str) -> bool:
        return name in self._values


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


def check_same_site(request: Request[Any, Any, Any]) -> None:
    """Raise the 403 page unless the browser says the form came from this site (or says
    nothing: curl). `Origin: null` passes only with a same-origin `Sec-Fetch-Site`."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        raise ConsolePageError(403, "forbidden", "expired_form")
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin.strip() == "null" and site is not None:
        return
    ours = {_origin(request.app.state.settings.public_base_url), _origin(str(request.base_url))}
    if _origin(origin.strip()) not in ours - {""}:
        raise ConsolePageError(403, "forbidden", "expired_form")


async def _read_body(request: Request[Any, Any, Any]) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise ConsolePageError(413, "bad_request", "bad_request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise ConsolePageError(413, "bad_request", "bad_request")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request[Any, Any, Any], csrf: str | None) -> Form:
    """The request's form, after the checks of the module docstring; `csrf` is the token the
    hidden field must hold (None: the pre-session cookie's)."""
    check_same_site(request)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise ConsolePageError(415, "bad_request", "bad_request")
    body = await _read_body(request)
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise ConsolePageError(400, "bad_request", "bad_request") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise ConsolePageError(400, "bad_request", "bad_request")
    form = Form(pairs)
    expected = csrf if csrf is not None else request.cookies.get(PRE_COOKIE, "")
    given = form.get("csrf")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ConsolePageError(403, "forbidden", "expired_form")
    return form


def is_https(request: Request[Any, Any, Any]) -> bool:
    return request.app.state.settings.public_base_url.startswith("https://")


def cookie(request: Request[Any, Any, Any], name: str, value: str, max_age: int) -> Cookie:
    """A console cookie: HttpOnly, SameSite=Lax, path /console, Secure on an https base URL."""
    return Cookie(
        key=name,
        value=value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def pre_session_token(request: Request[Any, Any, Any]) -> tuple[str, Cookie | None]:
    """The sign-in forms' CSRF token: the browser's pre-session cookie, or a new one to set."""
    current = request.cookies.get(PRE_COOKIE, "")
    if (
        20 <= len(current) <= 100
        and current.isascii()
        and current.replace("-", "").replace("_", "").isalnum()
    ):
        return current, None
    token = secrets.token_urlsafe(32)
    return token, cookie(request, PRE_COOKIE, token, 86400)


def html_page(
    template: str,
    *,
    lang: str,
    status: int = 200,
    cookies: list[Cookie] | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """The page `template` rendered in `lang`, with the console's security headers. Its
    `errors` (field: the API's message) and `problem` (a refusal of the whole form) are shown
    in `lang` (labels/messages.py, labels/problems.py)."""
    errors = context.get("errors")
    if isinstance(errors, Mapping) and lang != "en":
        context["errors"] = {
            field: translated(text, lang) if isinstance(text, str) else text
            for field, text in errors.items()
        }
    problem = context.get("problem")
    if isinstance(problem, str) and lang != "en":
        context["problem"] = translated(problem, lang)
    body = _env.get_template(template).render(
        lang=lang,
        L=Labels(lang),
        languages=LANGUAGES,
        language_names=LANGUAGE_NAMES,
        **context,
    )
    return Response(
        body,
        status_code=status,
        media_type="text/html",
        headers={**SECURITY_HEADERS, **(headers or {})},
        cookies=cookies or [],
    )


def redirect(location: str, *, cookies: list[Cookie] | None = None) -> Response[str]:
    """303 See Other to a console path (after a form: the browser GETs it)."""
    return Response(
        "",
        status_code=303,
        media_type="text/html",
        headers={**SECURITY_HEADERS, "Location": location},
        cookies=cookies or [],
    )
