"""A realistic ticket view, overridable field by field, with a genuine signed token."""

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.ids import EVENT_ID_LENGTH, TICKET_ID_LENGTH, new_id
from protocol.token import TicketClaims, new_key_id, sign_ticket_token
from ticket_renderer import TicketView

TICKET_ID = new_id(TICKET_ID_LENGTH)
TOKEN = sign_ticket_token(
    TicketClaims(jti=TICKET_ID, evt=new_id(EVENT_ID_LENGTH), ver=999),
    Ed25519PrivateKey.generate(),
    new_key_id(),
)


def ticket_view(**overrides: object) -> TicketView:
    values: dict[str, object] = {
        "ticket_id": TICKET_ID,
        "code": "K7QH-M2PX",
        "token": TOKEN,
        "version": 3,
        "event_name": "Concert du printemps",
        # 19:00 UTC is 20:00 in Paris on 14 March 2026 (winter time, UTC+1).
        "starts_at": datetime(2026, 3, 14, 19, 0, tzinfo=UTC),
        "ends_at": datetime(2026, 3, 14, 22, 30, tzinfo=UTC),
        "timezone": "Europe/Paris",
        "venue": "Salle Pleyel, Paris",
        "holder_name": "Camille Martin",
        "ticket_type": "Orchestre",
        "seat": "B12",
        "persons": 2,
        "language": "fr",
        "event_url": "https://tickets.example/t/abc123",
    }
    values.update(overrides)
    return TicketView(**values)  # type: ignore[arg-type]
