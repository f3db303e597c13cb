"""Campaign request and answer bodies (ARCHITECTURE §10), decoded strictly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from server.schemas import AwareDatetime, Id, Language, Name

__all__ = [
    "AudienceIn",
    "BounceIn",
    "CampaignCreate",
    "CampaignOut",
    "CampaignPatch",
    "Counts",
    "Delivery",
    "MessageOut",
    "PreviewIn",
    "PreviewOut",
    "ProblemOut",
    "ReportOut",
    "ReportRecipientOut",
    "ResendIn",
    "SendIn",
    "TestIn",
    "Words",
]

Kind = Literal["tickets", "message"]
Delivery = Literal["all", "never_sent", "failed", "not_received"]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=65536)]
EmailText = Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=366 * 24 * 3600)]


class _Body(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Words(_Body):
    subject: Subject
    body: Body


class AudienceIn(_Body):
    ticket_type_ids: Annotated[list[Id], msgspec.Meta(max_length=200)] | None = None
    checked_in: bool | None = None
    delivery: Delivery = "all"
    # A `message` campaign to a contact list instead of the event's bookings (the booking
    # filters above do not apply to it).
    contact_list_id: Id | None = None


class CampaignCreate(_Body):
    name: Name
    kind: Kind = "tickets"
    per_ticket: bool = False  # one message per ticket holder instead of one per booking
    audience: AudienceIn = msgspec.field(default_factory=AudienceIn)
    # Words per language; a tickets campaign without any gets the built-in e-ticket mail.
    content: dict[Language, Words] | None = None
    attach_pdf: bool = False
    attach_ics: bool = False


class CampaignPatch(_Body):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    per_ticket: bool | msgspec.UnsetType = msgspec.UNSET
    audience: AudienceIn | msgspec.UnsetType = msgspec.UNSET
    content: dict[Language, Words] | msgspec.UnsetType = msgspec.UNSET
    attach_pdf: bool | msgspec.UnsetType = msgspec.UNSET
    attach_ics: bool | msgspec.UnsetType = msgspec.UNSET


class SendIn(_Body):
    # The recap the organiser confirmed: refused (409) unless it equals the count now.
    expected_recipients: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
    send_at: AwareDatetime | None = None  # later; else now
    remind_before: Seconds | None = None  # a reminder: the event's start minus this
    grace_seconds: Seconds = 3600  # a schedule missed by more than this is marked missed


class TestIn(_Body):
    to: EmailText
    booking_id: Id | None = None  # whose data fills the merge fields; sample data if none
    language: Language | None = None


class PreviewIn(_Body):
    booking_id: Id | None = None
    ticket_id: Id | None = None
    language: Language | None = None


class ResendIn(_Body):
    to: EmailText | None = None  # a corrected address; the buyer's (or holder's) otherwise


class BounceIn(_Body):
    # The Message-ID of the mail that bounced, as the delivery status notification quotes it.
    message_id: Annotated[str, msgspec.Meta(min_length=3, max_length=200)]
    reply: Annotated[str, msgspec.Meta(max_length=1000)] = ""  # the remote server's words


class ProblemOut(msgspec.Struct, frozen=True):
    field: str
    line: int | None
    message: str


class PreviewOut(msgspec.Struct, frozen=True):
    subject: str
    html: str
    text: str
    language: str
    to: str | None


class Counts(msgspec.Struct, frozen=True):
    total: int
    queued: int
    sending: int
    sent: int  # accepted, and no delivery report about it yet
    delivered: int  # reported delivered (RFC 3464 DSN), not bounced since
    failed: int
    bounced: int
    opened: int
    clicked: int
    opened_and_clicked: int
    opened_by_machine: int  # loaded by an image proxy or a scanner: not counted in `opened`
    remaining: int


class CampaignOut(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    name: str
    kind: str
    per_ticket: bool
    audience: dict[str, object]
    content: dict[str, dict[str, str]]
    attach_pdf: bool
    attach_ics: bool
    status: str
    send_at: datetime | None
    remind_before: int | None
    grace_seconds: int
    recipients: int | None  # the count confirmed at send
    created_at: datetime
    confirmed_at: datetime | None
    finished_at: datetime | None
    counts: Counts
    problems: list[ProblemOut]  # template problems: a campaign with any cannot be sent


class MessageOut(msgspec.Struct, frozen=True):
    id: str
    campaign_id: str | None
    source: str
    booking_id: str | None
    ticket_id: str | None
    to: str
    language: str
    message_id: str
    status: str
    attempts: int
    last_reply: str | None
    created_at: datetime
    sent_at: datetime | None
    opened_at: datetime | None
    opened_by_machine: bool
    clicked_at: datetime | None


class ReportRecipientOut(msgspec.Struct, frozen=True):
    action: str  # delivered | failed | delayed | relayed | expanded
    status: str  # "5.1.1", or ""
    diagnostic: str
    final_recipient: str


class ReportOut(msgspec.Struct, frozen=True):
    """What a delivery report did: the message it is about, as it is now."""

    message: MessageOut
    changed: bool  # false for a repeat, or a report the state rules ignore
    found_by: Literal["envelope_id", "message_id"]
    recipients: list[ReportRecipientOut]
