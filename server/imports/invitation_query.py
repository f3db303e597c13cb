"""The query parameters of an event import (`POST /api/v1/events/{event_id}/imports`), checked
strictly: every unknown, repeated or ill-valued parameter is named in one 422 (Litestar's own
parsing would answer 400, one parameter at a time, and take `1` for `true`). The route and the
console's import page both read them here."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from server.imports.invitations import InvitationOptions
from server.imports.query import DIGEST, read_query

__all__ = ["CHOICES", "DESCRIPTIONS", "REQUIRED", "InvitationQuery", "parse_invitation_query"]

CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("analyze", "commit"),
    "confirm": ("true", "false"),
    "duplicates": ("skip", "update", "keep"),
    "on_error": ("reject_all", "skip_invalid"),
    "report": ("json", "csv"),
}
DESCRIPTIONS = {
    "mode": "`analyze` writes nothing and answers the report (200); `commit` analyses again "
    "and writes every row or none (201)",
    "ticket_type_id": "the ticket type every row books (of this event)",
    "confirm": "`true`: the bookings are confirmed at once, their tickets issued (and mailed "
    "when the event sends tickets automatically); default `false`: pending",
    "duplicates": "rows whose address already holds a booking of the ticket type: `skip` "
    "(default) adds nothing, `update` changes its buyer name and language, `keep` books again",
    "on_error": "`reject_all` (default): one invalid row refuses the commit; `skip_invalid`: "
    "the valid rows are imported",
    "digest": "the analysis's `digest`: a commit of another file or other options is 409 "
    "`analysis_mismatch`",
    "report": "`json` (default) or `csv`: the invalid and duplicate rows with `line` and "
    "`reason`, to fix and upload again",
}
REQUIRED = ("mode", "ticket_type_id")
_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")


@dataclass(frozen=True)
class InvitationQuery:
    mode: Literal["analyze", "commit"]
    options: InvitationOptions
    digest: str | None
    report: Literal["json", "csv"]


def parse_invitation_query(items: Iterable[tuple[str, str]]) -> InvitationQuery:
    """The import's parameters from the query's (name, value) pairs; BodyInvalid naming each
    bad one otherwise."""
    values = read_query(
        items,
        choices=CHOICES,
        patterns={"ticket_type_id": (_ID, "not a ticket type id"), "digest": DIGEST},
        required={name: "required" for name in REQUIRED},
    )
    options = InvitationOptions(
        ticket_type_id=values["ticket_type_id"],
        confirm=values.get("confirm") == "true",
        duplicates=values.get("duplicates", "skip"),  # type: ignore[arg-type]
        on_error=values.get("on_error", "reject_all"),  # type: ignore[arg-type]
    )
    mode = values["mode"]
    return InvitationQuery(mode, options, values.get("digest"), values.get("report", "json"))  # type: ignore[arg-type]
