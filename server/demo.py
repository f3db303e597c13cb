"""`tessera demo`: an idempotent demo event with confirmed bookings, two doors to pair, and a demo
organiser token.

Every run gives each demo door that is not paired yet (nor revoked) a fresh one-time pairing
code: codes are stored hashed, so the one printed last time cannot be shown again, and printing
a new one is the only way to hand out a working command. The previous code stops working.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.service import create_token, find_active_token
from server.bookings.models import Booking
from server.bookings.routes import booking_out
from server.bookings.schemas import BookingCreate, BookingItemIn, BookingOut, Buyer, Holder
from server.bookings.service import create_booking
from server.checkin.models import CheckinList, Device
from server.checkin.schemas import CheckinListCreate, DeviceCreate
from server.checkin.service import create_device, create_list, new_pairing_code
from server.config import Settings
from server.console.signin_mail import demo_signin_url
from server.db import Database, utcnow
from server.events.models import Event, TicketType
from server.events.schemas import EventCreate, TicketTypeCreate
from server.events.service import create_event, create_ticket_type
from server.keys.service import KeyRing, Keystore, ensure_signing_key
from server.tickets.service import TicketIssuer, tickets_by_booking

__all__ = ["DEMO_DOORS", "DEMO_SLUG", "seed_demo"]

DEMO_SLUG = "tessera-demo-night"
DEMO_TOKEN_FILE = Path("var/demo-token")
DEMO_BOOKINGS = [
    ("demo-1", Buyer(name="Camille Martin", email="camille@example.org", language="fr"), 2),
    ("demo-2", Buyer(name="Jonas Weber", email="jonas@example.org", language="de"), 1),
    ("demo-3", Buyer(name="Ada Lovelace", email="ada@example.org", language="en"), 3),
]
DEMO_DOORS = [("Door North", "North"), ("Door South", "South")]  # (device name, gate)


@dataclass(frozen=True)
class _DemoDoor:
    name: str
    state: str  # unpaired | paired | revoked
    pairing_uri: str | None  # a fresh one while unpaired


async def seed_demo(database: Database, settings: Settings) -> None:
    """Create what is missing of the demo, then print its token, docs URL and bookings."""
    keyring = KeyRing(Keystore(settings.keys_path))
    async with database.transaction() as session:
        await ensure_signing_key(session, keyring.keystore)
        event = await session.scalar(select(Event).where(Event.slug == DEMO_SLUG))
        if event is None:
            event = await create_event(session, _demo_event())
            event.slug = DEMO_SLUG
        ticket_type = await session.scalar(
            select(TicketType).where(TicketType.event_id == event.id).limit(1)
        )
        if ticket_type is None:
            ticket_type = await create_ticket_type(
                session, event.id, TicketTypeCreate(name="Standard", capacity=500)
            )
        issuer = TicketIssuer(await keyring.keys(session), settings.public_base_url)
        for ref, buyer, quantity in DEMO_BOOKINGS:
            exists = await session.scalar(
                select(Booking.id).where(Booking.event_id == event.id, Booking.external_ref == ref)
            )
            if exists is None:
                holders = [Holder(seat=f"A{n + 1}") for n in range(quantity)]
                item = BookingItemIn(ticket_type.id, quantity, holders)
                data = BookingCreate(buyer=buyer, items=[item], external_ref=ref, confirm=True)
                await create_booking(session, event.id, data, issuer)
        checkin_list = await session.scalar(
            select(CheckinList).where(CheckinList.event_id == event.id).limit(1)
        )
        if checkin_list is None:
            checkin_list = await create_list(
                session, event.id, CheckinListCreate(name="Main entrance")
            )
        doors = await _demo_doors(session, event.id, settings.public_base_url)
        token = await _demo_token(session)
        console_url = await demo_signin_url(session, settings)
        bookings = list(
            await session.scalars(
                select(Booking).where(Booking.event_id == event.id).order_by(Booking.created_at)
            )
        )
        tickets = await tickets_by_booking(session, [b.id for b in bookings])
        shown = [booking_out(b, tickets[b.id], issuer) for b in bookings]
    # Printed once committed, so what is shown exists.
    _print_demo(settings, event, checkin_list.id, token, shown, doors, console_url)


def _demo_event() -> EventCreate:
    start = (datetime.now(UTC) + timedelta(days=30)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    return EventCreate(
        name="Tessera Demo Night",
        starts_at=start,
        ends_at=start + timedelta(hours=5),
        timezone="Europe/Paris",
        venue="Salle Pleyel, 252 rue du Faubourg Saint-Honoré, Paris",
        languages=["fr", "en", "de"],
    )


async def _demo_doors(session: AsyncSession, event_id: str, base_url: str) -> list[_DemoDoor]:
    """The demo doors, created if missing; each unpaired one with a fresh pairing code."""
    now = utcnow()
    doors = []
    for name, gate in DEMO_DOORS:
        device = await session.scalar(
            select(Device)
            .where(Device.event_id == event_id, Device.name == name)
            .order_by(Device.created_at, Device.id)
            .limit(1)
        )
        if device is None:
            new = await create_device(
                session, event_id, DeviceCreate(name=name, gate=gate), now=now
            )
        elif device.revoked_at is not None:
            doors.append(_DemoDoor(name, "revoked", None))
            continue
        elif device.paired_at is not None:
            doors.append(_DemoDoor(name, "paired", None))
            continue
        else:
            new = await new_pairing_code(session, device.id, now=now)
        doors.append(_DemoDoor(name, "unpaired", new.pairing_uri(base_url)))
    return doors


async def _demo_token(session: AsyncSession) -> str:
    """The demo organiser token, kept in var/demo-token (0600) so a second run reuses it."""
    _make_private()
    secret = _read_demo_token()
    if secret and await find_active_token(session, secret) is not None:
        return secret
    _, secret = await create_token(session, "demo")
    _write_demo_token(secret)
    return secret


def _read_demo_token() -> str | None:
    try:
        return DEMO_TOKEN_FILE.read_text().strip()
    except FileNotFoundError:
        return None


def _write_demo_token(secret: str) -> None:
    descriptor = os.open(DEMO_TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")


def _make_private() -> None:
    """var/ 0700 and the token 0600, also when an older version left them readable by others:
    var/ is Tessera's own directory (the SQLite files live there too)."""
    DEMO_TOKEN_FILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    DEMO_TOKEN_FILE.parent.chmod(0o700)
    with contextlib.suppress(FileNotFoundError):
        DEMO_TOKEN_FILE.chmod(0o600)


def _print_demo(
    settings: Settings,
    event: Event,
    list_id: str,
    token: str,
    bookings: list[BookingOut],
    doors: list[_DemoDoor],
    console_url: str,
) -> None:
    base = settings.public_base_url
    auth = f"-H 'Authorization: Bearer {token}'"
    lines = [
        "",
        "Tessera demo",
        f"  API docs        {base}/schema",
        f"  console         {console_url}  (one-time sign-in, 15 minutes)",
        f"  organiser token {token}",
        f"  demo event      {event.name} ({event.id})",
        f"  check-in list   Main entrance ({list_id})",
        f"  try             curl {auth} {base}/api/v1/events",
        f"  add a door      curl {auth} -H 'Content-Type: application/json' "
        f'-d \'{{"name":"Door 1","gate":"North"}}\' {base}/api/v1/events/{event.id}/devices',
    ]
    for door in doors:
        if door.pairing_uri is None:
            lines.append(f"  door            {door.name} ({door.state})")
        else:  # the comment names the door and keeps the line a valid shell command
            command = f"tessera-scan pair {shlex.quote(door.pairing_uri)}"
            lines.append(f"  pair a door     {command}  # {door.name}")
    for booking in bookings:
        lines.append(f"  booking {booking.reference} {booking.buyer.name} ({booking.status})")
        lines += [f"    ticket {t.code}  {t.link}" for t in booking.tickets]
    print("\n".join([*lines, ""]))
