"""What the campaign pages show: the editor, the recap and the preview, rendered from a
campaign and (after a refused form) what was sent with its errors; and the campaign looked up
under its own event's path only (another event's campaign is not found there).

The preview page frames the mail's HTML from its own URL (campaigns_pages.py, `preview_mail`),
whose answer alone allows the inline styles the mail's layout needs, and nothing else: no
script, no foreign image, a unique origin (`sandbox`), framable by the console only. The page
itself keeps the console's CSP, plus `frame-src 'self'` for that frame.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec
from litestar import Response
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from server.campaigns import service
from server.campaigns.models import Campaign
from server.campaigns.schemas import PreviewIn
from server.config import Settings
from server.console.campaign_forms import (
    MERGE_FIELDS,
    errors_of,
    problem_errors,
    sent_fields,
    stored_fields,
)
from server.console.forms import Refused
from server.console.i18n import Labels
from server.console.signin import Viewer
from server.console.web import CSP, ConsolePageError, Form, html_page, redirect
from server.contacts import service as contacts
from server.errors import BodyInvalid, FieldError
from server.events import service as events
from server.events.models import Event
from server.validation import decode_json_body

__all__ = [
    "MAIL_FRAME_HEADERS",
    "after_save",
    "base",
    "editor",
    "labelled",
    "mail_frame_headers",
    "preview_in",
    "preview_page",
    "recap",
    "refusal",
]

PICKABLE = 20  # recipients offered in the preview's select
PREVIEW_PAGE_CSP = f"{CSP}; frame-src 'self'"
MAIL_FRAME_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def mail_frame_headers(settings: Settings) -> dict[str, str]:
    """MAIL_FRAME_HEADERS letting the frame load the mail's images (logo, banner), which the
    mail names by absolute URL on the public base URL, not always this page's origin."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.public_base_url))
    csp = MAIL_FRAME_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self';", f"img-src 'self' {origin};"
    )
    return {**MAIL_FRAME_HEADERS, "Content-Security-Policy": csp}


def refusal(refused: Refused) -> dict[str, Any]:
    """A refusal as the keywords of these pages (`errors`, `problem`, `status`)."""
    return {"errors": refused.errors, "problem": refused.problem, "status": refused.status}


def base(event_id: str, campaign_id: str | None = None) -> str:
    root = f"/console/events/{event_id}/campaigns"
    return f"{root}/{campaign_id}" if campaign_id else root


def labelled(viewer: Viewer, errors: list[FieldError]) -> dict[str, str]:
    """Form errors by field; messages that are label keys are shown in the viewer's words."""
    labels = Labels(viewer.lang)
    return {k: labels(v) if v.startswith("cmp_") else v for k, v in errors_of(errors).items()}


async def editor(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    campaign: Campaign | None,
    *,
    form: Form | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
    status: int = 200,
    saved: bool = False,
) -> Response[str]:
    types = await events.list_ticket_types(session, event.id)
    lists, _ = await contacts.list_lists(session, archived=False, limit=200, offset=0)
    if form is not None:
        fields = sent_fields(form, list(event.languages))
    elif campaign is not None:
        fields = stored_fields(campaign)
    else:
        fields = {"kind": "tickets", "delivery": "all", "checked_in": "", "ticket_type_ids": []}
    return html_page(
        "campaign_form.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"{base(event.id, campaign.id)}/edit" if campaign else f"{base(event.id)}/new",
        event=event,
        campaign=campaign,
        fields=fields,
        ticket_types=types,
        contact_lists=lists,
        merge_fields=MERGE_FIELDS,
        errors=labelled(viewer, errors or []),
        problem=problem,
        saved=saved,
    )


async def recap(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    campaign: Campaign,
    *,
    form: Form | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response[str]:
    count = len(await service.recipients_now(session, campaign))  # the count send() compares
    return html_page(
        "campaign_recap.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"{base(event.id, campaign.id)}/recap",
        event=event,
        campaign=campaign,
        count=count,
        problems=service.problems(campaign),
        sent=form,
        errors=labelled(viewer, errors or []),
        problem=problem,
    )


def preview_in(recipient: str | None, language: str | None) -> PreviewIn:
    body = {"booking_id": recipient or None, "language": language or None}
    try:
        return decode_json_body(msgspec.json.encode(body), PreviewIn)
    except BodyInvalid:
        raise ConsolePageError(400, "bad_request", "bad_request") from None


async def after_save(
    session: AsyncSession, viewer: Viewer, event: Event, campaign: Campaign
) -> Response[str]:
    """Saved: back to the campaign, or to the editor with its template problems (422)."""
    found = service.problems(campaign)
    if not found:
        return redirect(f"{base(event.id, campaign.id)}?saved=1")
    labels = Labels(viewer.lang)
    return await editor(
        session,
        viewer,
        event,
        campaign,
        errors=problem_errors(found),
        problem=labels.cmp_problems,
        status=422,
    )


async def preview_page(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    campaign: Campaign,
    state: State,
    recipient: str | None,
    language: str | None,
    *,
    tested: str | None = None,
    form: Form | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response[str]:
    wanted = preview_in(recipient, language)
    found = service.problems(campaign)
    shown = None
    if not found:
        shown = await service.preview(session, campaign.id, wanted, state.settings)
    recipients = await service.recipients_now(session, campaign)
    choices: dict[str, str] = {}
    for r in recipients:
        if r.booking_id and len(choices) < PICKABLE:
            choices.setdefault(r.booking_id, f"{r.to_name or ''} <{r.to_email}>".strip())
    query = urlencode({k: v for k, v in (("recipient", recipient), ("language", language)) if v})
    return html_page(
        "campaign_preview.html",
        lang=viewer.lang,
        status=status,
        viewer=viewer,
        section="events",
        here=f"{base(event.id, campaign.id)}/preview",
        headers={"Content-Security-Policy": PREVIEW_PAGE_CSP},
        event=event,
        campaign=campaign,
        problems=found,
        shown=shown,
        choices=choices,
        recipient=wanted.booking_id or "",
        language=wanted.language or "",
        frame=f"{base(event.id, campaign.id)}/preview/mail?{query}",
        tested=tested if tested and len(tested) <= 320 else None,
        sent=form,
        errors=labelled(viewer, errors or []),
        problem=problem,
    )
