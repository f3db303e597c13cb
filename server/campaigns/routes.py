"""Campaign HTTP API (organiser) and the guest-facing mail links: open pixel, click, unsubscribe."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import FromPath, FromQuery, JSONBody

from server.campaigns import service
from server.campaigns.models import Campaign, Message
from server.campaigns.reports import parse_report
from server.campaigns.schemas import (
    BounceIn,
    CampaignCreate,
    CampaignOut,
    CampaignPatch,
    MessageOut,
    PreviewIn,
    PreviewOut,
    ReportOut,
    ReportRecipientOut,
    ResendIn,
    SendIn,
    TestIn,
)
from server.db import utcnow
from server.errors import UnsupportedMediaType
from server.http import (
    Body,
    DbSession,
    Limit,
    Offset,
    Page,
    created,
    organiser_guard,
    page,
    wake_outbox,
)

__all__ = ["CampaignController", "campaign_out", "message_out"]

StatusFilter = Literal["queued", "sending", "sent", "delivered", "failed", "bounced"]
# The bodies a delivery report may come as (docs/organiser-api.md): the whole mail, or the
# report itself; `multipart/report` needs its boundary parameter.
REPORT_TYPES = ("message/rfc822", "message/delivery-status", "multipart/report")


class CampaignController(Controller):
    path = "/api/v1"
    tags = ["campaigns"]
    guards = [organiser_guard]
    security = [{"organiser": []}]
    # Previews and messages carry guests' ticket links: no cache may keep a copy.
    cache_control = CacheControlHeader(no_store=True)

    @post(
        "/events/{event_id:str}/campaigns",
        dto=Body[CampaignCreate],
        return_dto=None,
        summary="Create a draft campaign",
    )
    async def create_campaign(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        data: JSONBody[CampaignCreate],
        db_session: DbSession,
    ) -> Response[CampaignOut]:
        campaign = await service.create_campaign(db_session, event_id, data)
        body = await campaign_out(db_session, campaign)
        return created(body, request, f"/api/v1/campaigns/{campaign.id}")

    @get("/events/{event_id:str}/campaigns", summary="List an event's campaigns")
    async def list_campaigns(
        self, event_id: FromPath[str], db_session: DbSession, limit: Limit = 50, offset: Offset = 0
    ) -> Page[CampaignOut]:
        rows, total = await service.list_campaigns(db_session, event_id, limit=limit, offset=offset)
        return page([await campaign_out(db_session, c) for c in rows], total, limit, offset)

    @get("/campaigns/{campaign_id:str}", summary="Read a campaign with its counts and problems")
    async def get_campaign(self, campaign_id: FromPath[str], db_session: DbSession) -> CampaignOut:
        return await campaign_out(db_session, await service.get_campaign(db_session, campaign_id))

    @patch(
        "/campaigns/{campaign_id:str}",
        dto=Body[CampaignPatch],
        return_dto=None,
        summary="Edit a draft campaign",
    )
    async def update_campaign(
        self, campaign_id: FromPath[str], data: JSONBody[CampaignPatch], db_session: DbSession
    ) -> CampaignOut:
        campaign = await service.update_campaign(db_session, campaign_id, data)
        return await campaign_out(db_session, campaign)

    @post(
        "/campaigns/{campaign_id:str}/preview",
        dto=Body[PreviewIn],
        return_dto=None,
        status_code=200,
        summary="The mail as a chosen recipient (or the first, or sample data) would get it",
    )
    async def preview(
        self,
        campaign_id: FromPath[str],
        data: JSONBody[PreviewIn],
        db_session: DbSession,
        state: State,
    ) -> PreviewOut:
        return await service.preview(db_session, campaign_id, data, state.settings)

    @post(
        "/campaigns/{campaign_id:str}/test",
        dto=Body[TestIn],
        return_dto=None,
        status_code=202,
        summary="Send a test to any address: marked [TEST], counted nowhere",
    )
    async def send_test(
        self,
        campaign_id: FromPath[str],
        data: JSONBody[TestIn],
        db_session: DbSession,
        state: State,
    ) -> Response[MessageOut]:
        message = await service.send_test(db_session, campaign_id, data, state.settings)
        return Response(message_out(message), status_code=202, background=wake_outbox(state))

    @post(
        "/campaigns/{campaign_id:str}/send",
        dto=Body[SendIn],
        return_dto=None,
        status_code=202,
        summary="Send now or at `send_at`, if `expected_recipients` is the count now",
    )
    async def send(
        self,
        campaign_id: FromPath[str],
        data: JSONBody[SendIn],
        db_session: DbSession,
        state: State,
    ) -> Response[CampaignOut]:
        campaign = await service.send(
            db_session, campaign_id, data, now=utcnow(), settings=state.settings
        )
        body = await campaign_out(db_session, campaign)
        return Response(body, status_code=202, background=wake_outbox(state))

    @post("/campaigns/{campaign_id:str}/cancel", status_code=200, summary="Cancel a campaign")
    async def cancel(self, campaign_id: FromPath[str], db_session: DbSession) -> CampaignOut:
        campaign = await service.cancel(db_session, campaign_id, now=utcnow())
        return await campaign_out(db_session, campaign)

    @get("/campaigns/{campaign_id:str}/messages", summary="The campaign's messages and statuses")
    async def list_messages(
        self,
        campaign_id: FromPath[str],
        db_session: DbSession,
        status: FromQuery[StatusFilter | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[MessageOut]:
        rows, total = await service.list_messages(
            db_session, campaign_id, status=status, limit=limit, offset=offset
        )
        return page([message_out(m) for m in rows], total, limit, offset)

    @post(
        "/messages/bounces",
        dto=Body[BounceIn],
        return_dto=None,
        status_code=200,
        summary="Report a bounce (a delivery status notification) for a sent mail by Message-ID",
    )
    async def bounce(self, data: JSONBody[BounceIn], db_session: DbSession) -> MessageOut:
        return message_out(await service.record_bounce(db_session, data.message_id, data.reply))

    @post(
        "/messages/reports",
        status_code=200,
        summary="Record a delivery status notification (RFC 3464) as received: the whole mail"
        " (message/rfc822) or its message/delivery-status part",
    )
    async def report(self, request: Request[Any, Any, Any], db_session: DbSession) -> ReportOut:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() not in REPORT_TYPES:
            raise UnsupportedMediaType(
                "expected Content-Type " + ", ".join(REPORT_TYPES), content_type=content_type[:100]
            )
        parsed = parse_report(await request.body(), content_type=content_type)
        recorded = await service.record_report(db_session, parsed)
        return ReportOut(
            message=message_out(recorded.message),
            changed=recorded.changed,
            found_by=recorded.found_by,  # type: ignore[arg-type]
            recipients=[
                ReportRecipientOut(r.action, r.status, r.diagnostic, r.final_recipient)
                for r in parsed.recipients
            ],
        )

    @get("/bookings/{booking_id:str}/messages", summary="Every mail sent for a booking")
    async def booking_messages(
        self,
        booking_id: FromPath[str],
        db_session: DbSession,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[MessageOut]:
        rows, total = await service.booking_messages(
            db_session, booking_id, limit=limit, offset=offset
        )
        return page([message_out(m) for m in rows], total, limit, offset)

    @post(
        "/bookings/{booking_id:str}/resend",
        dto=Body[ResendIn],
        return_dto=None,
        status_code=202,
        summary="Mail a booking's e-tickets again (optionally to a corrected address)",
    )
    async def resend_booking(
        self,
        booking_id: FromPath[str],
        data: JSONBody[ResendIn],
        db_session: DbSession,
        state: State,
    ) -> Response[MessageOut]:
        message = await service.resend_booking(db_session, booking_id, data.to, state.settings)
        return Response(message_out(message), status_code=202, background=wake_outbox(state))

    @post(
        "/tickets/{ticket_id:str}/resend",
        dto=Body[ResendIn],
        return_dto=None,
        status_code=202,
        summary="Mail one e-ticket again (optionally to a corrected address)",
    )
    async def resend_ticket(
        self,
        ticket_id: FromPath[str],
        data: JSONBody[ResendIn],
        db_session: DbSession,
        state: State,
    ) -> Response[MessageOut]:
        message = await service.resend_ticket(db_session, ticket_id, data.to, state.settings)
        return Response(message_out(message), status_code=202, background=wake_outbox(state))


async def campaign_out(session: DbSession, campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        event_id=campaign.event_id,
        name=campaign.name,
        kind=campaign.kind,
        per_ticket=campaign.per_ticket,
        audience=dict(campaign.audience),
        content={lang: dict(words) for lang, words in campaign.content.items()},
        attach_pdf=campaign.attach_pdf,
        attach_ics=campaign.attach_ics,
        status=campaign.status,
        send_at=campaign.send_at,
        remind_before=campaign.remind_before,
        grace_seconds=campaign.grace_seconds,
        recipients=campaign.recipients,
        created_at=campaign.created_at,
        confirmed_at=campaign.confirmed_at,
        finished_at=campaign.finished_at,
        counts=await service.counts(session, campaign.id),
        problems=service.problems(campaign),
    )


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        campaign_id=message.campaign_id,
        source=message.source,
        booking_id=message.booking_id,
        ticket_id=message.ticket_id,
        to=message.to_email,
        language=message.language,
        message_id=message.message_id,
        status=message.status,
        attempts=message.attempts,
        last_reply=message.last_reply,
        created_at=message.created_at,
        sent_at=message.sent_at,
        opened_at=message.opened_at,
        opened_by_machine=message.opened_by_machine,
        clicked_at=message.clicked_at,
    )
