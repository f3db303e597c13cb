"""The links inside a sent mail: open pixel, click redirect, unsubscribe (RFC 8058).

Each mail carries its message's random `token`; nothing else identifies the guest. What these
routes may change is the message row (opened, clicked) and the unsubscribe list, never a ticket
or a booking: a mail scanner that follows every link must not consume anything.

  GET  /m/{token}/o.gif           1x1 GIF; records the first open. An open within MACHINE_WINDOW
                                  of the send, or from a known image proxy or link scanner, is
                                  flagged `opened_by_machine` (a later human open clears it).
  GET  /m/{token}/c/{n}           302 to the n-th link of the mail as sent (never to a URL taken
                                  from the request: no open redirect); records the click.
  GET  /m/{token}/unsubscribe     a page with a button (a GET unsubscribes nobody)
  POST /m/{token}/unsubscribe     unsubscribes from the event's news mail; RFC 8058 one-click
                                  clients POST `List-Unsubscribe=One-Click`
Unknown tokens and positions answer 404 alike.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.campaigns.models import Message, Unsubscribe
from server.db import utcnow
from server.errors import NotFound
from server.http import DbSession

__all__ = ["MACHINE_WINDOW", "MailLinkController"]

MACHINE_WINDOW = timedelta(seconds=5)
# Image proxies and link scanners fetch what a mail links to, not people.
_MACHINES = re.compile(
    r"GoogleImageProxy|YahooMailProxy|Microsoft Office|ms-office|Barracuda|Mimecast|"
    r"Proofpoint|bot|crawler|spider|python-requests|curl|wget|HeadlessChrome",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,32}")
_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_STORE = CacheControlHeader(no_store=True)


class MailLinkController(Controller):
    path = "/m"
    tags = ["mail links"]
    include_in_schema = False
    cache_control = _NO_STORE

    @get("/{token:str}/o.gif", summary="Open pixel")
    async def opened(
        self, token: FromPath[str], request: Request, db_session: DbSession
    ) -> Response[bytes]:
        message = await _message(db_session, token)
        now = utcnow()
        machine = _is_machine(request.headers.get("user-agent", "")) or (
            message.sent_at is not None and now - message.sent_at < MACHINE_WINDOW
        )
        if message.opened_at is None:
            message.opened_at = now
            message.opened_by_machine = machine
        elif message.opened_by_machine and not machine:
            message.opened_at = now
            message.opened_by_machine = False
        return Response(_GIF, media_type="image/gif")

    @get("/{token:str}/c/{position:int}", summary="Click redirect", status_code=302)
    async def clicked(
        self, token: FromPath[str], position: FromPath[int], request: Request, db_session: DbSession
    ) -> Response[None]:
        message = await _message(db_session, token)
        if not 0 <= position < len(message.links):
            raise NotFound("link", str(position))
        now = utcnow()
        if not _is_machine(request.headers.get("user-agent", "")):
            message.clicked_at = message.clicked_at or now
            if message.opened_at is None or message.opened_by_machine:
                message.opened_at, message.opened_by_machine = now, False  # a click is an open
        return Response(None, status_code=302, headers={"Location": message.links[position]})

    @get("/{token:str}/unsubscribe", summary="Unsubscribe page")
    async def unsubscribe_page(self, token: FromPath[str], db_session: DbSession) -> Response[str]:
        message = await _message(db_session, token)
        done = await _is_unsubscribed(db_session, message)
        return Response(_page(token, message.to_email, done), media_type="text/html")

    @post("/{token:str}/unsubscribe", summary="Unsubscribe (RFC 8058 one-click)", status_code=200)
    async def unsubscribe(self, token: FromPath[str], db_session: DbSession) -> Response[str]:
        message = await _message(db_session, token)
        values = {
            "event_id": message.event_id,
            "email": message.to_email.lower(),
            "message_id": message.id,
        }
        dialect = db_session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await db_session.execute(
            insert(Unsubscribe).values(**values, created_at=utcnow()).on_conflict_do_nothing()
        )
        return Response(_page(token, message.to_email, True), media_type="text/html")


async def _message(session: AsyncSession, token: str) -> Message:
    if not _TOKEN.fullmatch(token):
        raise NotFound("mail", "?")
    message = await session.scalar(select(Message).where(Message.token == token))
    if message is None:
        raise NotFound("mail", "?")
    return message


async def _is_unsubscribed(session: AsyncSession, message: Message) -> bool:
    return (
        await session.get(Unsubscribe, (message.event_id, message.to_email.lower()))
    ) is not None


def _is_machine(user_agent: str) -> bool:
    return not user_agent or _MACHINES.search(user_agent) is not None


def _page(token: str, email: str, done: bool) -> str:
    address = html.escape(email)
    if done:
        body = (
            f"<p>{address} will get no more news mail from this organiser. "
            "Tickets you bought are still sent.</p>"
        )
    else:
        body = (
            f"<p>Stop news mail from this organiser to {address}?</p>"
            f'<form method="post" action="/m/{html.escape(token)}/unsubscribe">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>Unsubscribe</title>"
        '<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">'
        f"{body}</body></html>"
    )
