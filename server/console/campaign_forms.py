"""From the campaign pages' forms to the API's own structs (CampaignCreate, CampaignPatch,
SendIn, TestIn), and the errors of those structs and of the templates back to form fields.

The form names its fields flat (`subject_fr`, `body_en`, `delivery`); the structs nest them
(`content.fr.subject`, `audience.delivery`), and the template checker names them `body.fr`.
`field_of` maps every one of those spellings to the form field it is shown beside.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.campaigns.models import Campaign
from server.campaigns.schemas import ProblemOut
from server.console.forms import FormValues
from server.console.web import Form
from server.errors import FieldError

__all__ = [
    "LANGUAGES",
    "MERGE_FIELDS",
    "draft_values",
    "errors_of",
    "problem_errors",
    "schedule_values",
    "sent_fields",
    "stored_fields",
]

LANGUAGES = ("fr", "en", "de")
_PARTS = ("subject", "body")
# The fields the template engine accepts (server/campaigns/templates.py, docs/campaigns.md §3),
# each with its label key; `ticket` and `ticket_buttons` only where they apply.
MERGE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("{{ guest.name }}", "cmp_f_guest_name", "all"),
    ("{{ guest.first_name }}", "cmp_f_guest_first", "all"),
    ("{{ guest.email }}", "cmp_f_guest_email", "all"),
    ("{{ event.name }}", "cmp_f_event_name", "all"),
    ("{{ event.starts_at }}", "cmp_f_event_start", "all"),
    ("{{ event.venue }}", "cmp_f_event_venue", "all"),
    ("{{ booking.reference }}", "cmp_f_booking_ref", "all"),
    (
        "{% for t in tickets %}{{ t.code }} {{ t.seat }} {{ t.link }}{% endfor %}",
        "cmp_f_tickets",
        "all",
    ),
    ("{{ ticket.code }} {{ ticket.link }}", "cmp_f_ticket", "per_ticket"),
    ("{{ ticket_buttons }}", "cmp_f_buttons", "tickets"),
)


def draft_values(form: Form, languages: list[str], *, creating: bool) -> FormValues:
    """The editor's form as CampaignCreate (creating) or CampaignPatch JSON values."""
    values = FormValues(form)
    values.text("name")
    if creating:
        values.text("kind")
    for name in ("per_ticket", "attach_pdf", "attach_ics"):
        values.flag(name)
    audience: dict[str, Any] = {"delivery": form.get("delivery").strip() or "all"}
    contact_list = form.get("contact_list_id").strip()
    if contact_list:
        audience["contact_list_id"] = contact_list
    types = [v for v in form.all("ticket_type_ids") if v]
    if types:
        audience["ticket_type_ids"] = types
    checked_in = form.get("checked_in").strip()
    if checked_in in ("yes", "no"):
        audience["checked_in"] = checked_in == "yes"
    elif checked_in not in ("", "any"):
        values.errors.append(FieldError("checked_in", "must be one of the choices"))
    values.values["audience"] = audience
    content: dict[str, dict[str, str]] = {}
    for lang in languages:
        subject = form.get(f"subject_{lang}").strip()
        body = form.get(f"body_{lang}").replace("\r\n", "\n")
        if subject or body.strip():
            content[lang] = {"subject": subject, "body": body}
    values.values["content"] = content if content or not creating else None
    return values


def sent_fields(form: Form, languages: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: form.get(name)
        for name in ("name", "kind", "delivery", "checked_in", "contact_list_id")
    }
    fields |= {name: name in form for name in ("per_ticket", "attach_pdf", "attach_ics")}
    fields["ticket_type_ids"] = form.all("ticket_type_ids")
    for lang in languages:
        fields[f"subject_{lang}"] = form.get(f"subject_{lang}")
        fields[f"body_{lang}"] = form.get(f"body_{lang}")
    return fields


def stored_fields(campaign: Campaign) -> dict[str, Any]:
    audience = campaign.audience or {}
    checked = audience.get("checked_in")
    fields: dict[str, Any] = {
        "name": campaign.name,
        "kind": campaign.kind,
        "delivery": audience.get("delivery") or "all",
        "checked_in": "" if checked is None else ("yes" if checked else "no"),
        "contact_list_id": audience.get("contact_list_id") or "",
        "ticket_type_ids": list(audience.get("ticket_type_ids") or []),
        "per_ticket": campaign.per_ticket,
        "attach_pdf": campaign.attach_pdf,
        "attach_ics": campaign.attach_ics,
    }
    for lang, words in campaign.content.items():
        fields[f"subject_{lang}"] = words.get("subject", "")
        fields[f"body_{lang}"] = words.get("body", "")
    return fields


def schedule_values(
    form: Form, zone: str, starts_at: datetime, now: datetime, *, scheduling: bool
) -> tuple[FormValues, list[FieldError]]:
    """The recap's form as SendIn JSON values: now, at `send_at` (the event's wall clock), or
    `remind_hours` before the event `starts_at`. A schedule must lie ahead (the API would send
    a past time at once, which is not what "schedule" asks for) and within two years."""
    values = FormValues(form)
    values.whole("expected_recipients")
    extra: list[FieldError] = []
    if not scheduling:
        return values, extra
    values.local_time("send_at", zone, optional=True)
    hours = form.get("remind_hours").strip()
    if hours:
        if hours.isascii() and hours.isdigit() and len(hours) <= 5:
            values.values["remind_before"] = int(hours) * 3600
            if starts_at - timedelta(hours=int(hours)) <= now:
                extra.append(FieldError("remind_hours", "cmp_future"))
        else:
            values.errors.append(FieldError("remind_hours", "must be a whole number"))
    send_at = values.values.get("send_at")
    if send_at is not None:
        try:
            moment = datetime.fromisoformat(send_at)
            ahead = now < moment < now + timedelta(days=731)
        except (ValueError, OverflowError):
            ahead = False
        if not ahead:
            del values.values["send_at"]
            extra.append(FieldError("send_at", "cmp_future"))
    elif not hours and not any(e["field"] in ("send_at", "remind_hours") for e in values.errors):
        extra.append(FieldError("send_at", "cmp_when_required"))
    return values, extra


def field_of(path: str) -> str:
    """The form field a struct's or the template checker's field path is shown beside."""
    parts = path.split("[", 1)[0].split(".")
    if parts[0] == "content" and len(parts) > 1:
        parts = parts[1:]
    if parts[0] == "remind_before":
        return "remind_hours"
    if parts[0] == "audience":
        return parts[1] if len(parts) > 1 else "audience"
    if len(parts) >= 2 and parts[0] in LANGUAGES and parts[1] in _PARTS:
        return f"{parts[1]}_{parts[0]}"
    if len(parts) >= 2 and parts[0] in _PARTS and parts[1] in LANGUAGES:
        return f"{parts[0]}_{parts[1]}"
    if parts[0] in LANGUAGES:
        return f"subject_{parts[0]}"
    return parts[0]


def errors_of(errors: list[FieldError]) -> dict[str, str]:
    """The first message of each form field."""
    shown: dict[str, str] = {}
    for error in errors:
        shown.setdefault(field_of(error["field"]), error["message"])
    return shown


def problem_errors(problems: list[ProblemOut]) -> list[FieldError]:
    """Template problems as field errors, each with its line when it has one."""
    return [
        FieldError(p.field, f"line {p.line}: {p.message}" if p.line else p.message)
        for p in problems
    ]
