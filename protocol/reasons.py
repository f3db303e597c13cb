"""Reason codes: the small, stable set a scan verdict or a token check may carry (ARCHITECTURE §5).

A refusal is data: clients switch on the code, people read the label. The values are part of
the wire contract; adding or renaming one needs a decision record and a protocol spec update.
"""

from enum import StrEnum

__all__ = ["LABELS", "Reason"]


class Reason(StrEnum):
    INVALID = "invalid"
    WRONG_EVENT = "wrong_event"
    REVOKED = "revoked"
    BLOCKED = "blocked"
    ALREADY_REDEEMED = "already_redeemed"
    NOT_ON_LIST = "not_on_list"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


LABELS: dict[Reason, str] = {
    Reason.INVALID: "Unreadable or forged ticket",
    Reason.WRONG_EVENT: "Ticket for another event",
    Reason.REVOKED: "Ticket cancelled or replaced",
    Reason.BLOCKED: "Ticket on hold",
    Reason.ALREADY_REDEEMED: "Already checked in",
    Reason.NOT_ON_LIST: "Not admitted at this list",
    Reason.NOT_YET_VALID: "Not valid yet",
    Reason.EXPIRED: "No longer valid",
}
