"""Imports every domain's models so that `Base.metadata` is complete (Alembic, tests)."""

from server.auth.models import ApiToken
from server.bookings.models import Booking, BookingItem
from server.branding.models import EventImage
from server.campaigns.models import Campaign, Message, Unsubscribe
from server.changes.models import Change
from server.checkin.models import CheckinList, Device, PresenceRow, ScanRow
from server.console.models import ConsoleSession, ConsoleUser, SignInLink
from server.contacts.models import Contact, ContactList
from server.events.models import Event, TicketType
from server.keys.models import SigningKey
from server.tickets.models import Ticket, TicketLink

__all__ = [
    "ApiToken",
    "Booking",
    "BookingItem",
    "Campaign",
    "Change",
    "CheckinList",
    "ConsoleSession",
    "ConsoleUser",
    "Contact",
    "ContactList",
    "Device",
    "Event",
    "EventImage",
    "Message",
    "PresenceRow",
    "ScanRow",
    "SignInLink",
    "SigningKey",
    "Ticket",
    "TicketLink",
    "TicketType",
    "Unsubscribe",
]
