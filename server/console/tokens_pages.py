"""The API tokens page: list (never a secret), create (its secret shown once), revoke.

Tokens are for scripts and carry full API access (or read-only), so only administrators create
and revoke them; the other roles see the list. Same service as `tessera token` (server/auth).
"""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath

from server.auth import service as tokens
from server.console.signin import Viewer, ViewerDep, provide_viewer
from server.console.web import html_page, read_form, redirect
from server.errors import FieldError, NotFound
from server.http import DbSession

__all__ = ["TokenPages"]


async def _page(
    db_session: DbSession,
    viewer: Viewer,
    *,
    status: int = 200,
    secret: str | None = None,
    errors: dict[str, str] | None = None,
    name: str = "",
) -> Response[str]:
    return html_page(
        "tokens.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="tokens",
        here="/console/tokens",
        tokens=await tokens.list_tokens(db_session),
        secret=secret,
        errors=errors or {},
        name=name,
        problem=None,
    )


def _name_error(name: str) -> FieldError | None:
    if not name or len(name) > 200 or not name.isprintable():
        return FieldError("name", "must be 1 to 200 printable characters")
    return None


class TokenPages(Controller):
    path = "/console/tokens"
    include_in_schema = False
    dependencies: ClassVar[dict[str, Provide]] = {"viewer": Provide(provide_viewer)}

    @get("/")
    async def list_page(self, viewer: ViewerDep, db_session: DbSession) -> Response[str]:
        return await _page(db_session, viewer)

    @post("/", status_code=200)
    async def create(
        self, request: Request[Any, Any, Any], viewer: ViewerDep, db_session: DbSession
    ) -> Response[str]:
        """The new token's secret is in this answer only (stored hashed, never shown again)."""
        form = await read_form(request, viewer.csrf)
        viewer.require_admin()
        name = form.get("name").strip()
        error = _name_error(name)
        if error is not None:
            errors = {error["field"]: error["message"]}
            return await _page(db_session, viewer, status=422, errors=errors, name=name[:200])
        read_only = form.get("read_only") == "1"
        _, secret = await tokens.create_token(db_session, name, read_only=read_only)
        return await _page(db_session, viewer, status=201, secret=secret)

    @post("/{token_id:str}/revoke", status_code=303)
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        token_id: FromPath[str],
        viewer: ViewerDep,
        db_session: DbSession,
    ) -> Response[str]:
        await read_form(request, viewer.csrf)
        viewer.require_admin()
        known = {t.id: t for t in await tokens.list_tokens(db_session)}
        if token_id not in known:  # by id only: the CLI's "by name" is not what a button means
            raise NotFound("token", token_id[:40])
        if known[token_id].revoked_at is None:  # a second press (back button) changes nothing
            await tokens.revoke_token(db_session, token_id)
        return redirect("/console/tokens")
