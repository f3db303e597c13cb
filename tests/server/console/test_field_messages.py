"""The API's field messages shown in the console's languages: every message a service or a
request struct can put on a field has its French and German text, msgspec's own messages
included, and a French page shows them in French."""

from __future__ import annotations

import ast
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import pytest

from server.console.i18n import _TABLE
from server.console.labels.messages import translated
from tests.server.console.helpers import make_user, sign_in

SERVER = Path(__file__).parents[3] / "server"
_PREFIX = re.compile(r"^[a-z_][a-z_.]*: ")  # "timezone: ..." names its field (schemas.Rule)


def _sample(node: ast.expr) -> str | None:
    """The message a literal or f-string gives, each value in it replaced by a sample."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
            else:
                assert isinstance(part, ast.FormattedValue)
                parts.append("'7'" if part.conversion == ord("r") else "7")
        return "".join(parts)
    return None


def _field_messages() -> dict[str, str]:
    """Every literal message of a `FieldError` in server/, and of a ValueError raised by a
    request struct's rules (the schemas modules): message -> where."""
    found: dict[str, str] = {}
    for path in SERVER.rglob("*.py"):
        is_schemas = path.name == "schemas.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "FieldError" and len(node.args) >= 2:
                message = _sample(node.args[1])
            elif name == "ValueError" and is_schemas and node.args:
                message = _sample(node.args[0])
                message = message and _PREFIX.sub("", message, count=1)
            else:
                continue
            if message is None or message in _TABLE or message in ("7", "7: 7"):
                continue  # a console label (translated already), or a message passed on
            found.setdefault(message, f"{path.relative_to(SERVER.parent)}:{node.lineno}")
    return found


def test_the_scan_finds_the_messages_it_should():
    messages = _field_messages()
    assert "required field missing" in messages  # validation.py
    assert "must be after valid_from" in messages  # schemas.py, its field prefix taken off
    assert "no ticket type '7' in this event" in messages  # an f-string
    assert len(messages) > 25


@pytest.mark.parametrize(("message", "where"), sorted(_field_messages().items()))
def test_every_field_message_of_the_api_is_translated(message, where):
    for lang in ("fr", "de"):
        assert translated(message, lang) != message, f"{where}: no {lang} text for {message!r}"
    assert translated(message, "en") == message


class _Shapes(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=5, pattern="^[a-z]+$")] = "a"
    number: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    above: Annotated[int, msgspec.Meta(gt=0)] = 1
    choice: Literal["x", "y"] = "x"
    moment: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    items: Annotated[list[int], msgspec.Meta(min_length=1, max_length=2)] = []


@pytest.mark.parametrize(
    "body",
    [
        '{"text": ""}',
        '{"text": "abcdefg"}',
        '{"text": "AB"}',
        '{"text": null}',
        '{"number": 0}',
        '{"number": 11}',
        '{"number": "x"}',
        '{"number": 99999999999999999999999999}',
        '{"number": 1e400}',
        '{"above": -3}',
        '{"choice": "z"}',
        '{"moment": "2020-01-01T00:00:00"}',
        '{"moment": "garbage"}',
        '{"items": []}',
        '{"items": [1, 2, 3]}',
    ],
)
def test_msgspecs_own_messages_are_translated(body):
    """Read from msgspec itself, so a change of its wording fails here, not on a page."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(body, type=_Shapes)
    message = str(caught.value).partition(" - at `")[0]
    for lang in ("fr", "de"):
        assert translated(message, lang) != message, (lang, message)


def test_values_in_a_message_are_kept():
    assert translated("Expected `str` of length <= 200", "fr") == "200 caractère(s) au plus"
    assert translated("Expected `int` >= 1", "de") == "mindestens 1"
    assert (
        translated("no ticket type 'vip' in this event", "fr")
        == "aucun type de billet 'vip' dans cet événement"
    )
    assert translated("something new", "de") == "something new"  # unknown: English, not blank


EVENT = {
    "name": "Nuit blanche",
    "timezone": "Europe/Paris",
    "starts_at": "2031-06-14T20:00",
    "ends_at": "2031-06-15T02:00",
    "languages": ["fr"],
}


@pytest.fixture
async def admin(client, settings):
    await make_user(settings)
    return await sign_in(client, settings)


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("fr", ["1 caractère(s) au moins", "fuseau horaire inconnu : &#39;Mars/Olympus&#39;"]),
        ("de", ["mindestens 1 Zeichen", "unbekannte Zeitzone: &#39;Mars/Olympus&#39;"]),
        ("en", ["Expected `str` of length &gt;= 1", "unknown time zone &#39;Mars/Olympus&#39;"]),
    ],
)
async def test_a_form_shows_its_errors_in_the_pages_language(client, admin, lang, words):
    await client.post("/console/language", data={"csrf": admin, "language": lang})
    response = await client.post(
        "/console/events",
        data={
            "csrf": admin,
            "name": "",
            "timezone": "Mars/Olympus",
            "starts_at": "2031-06-14T20:00",
            "ends_at": "2031-06-14T23:00",
            "languages": ["fr"],
        },
    )
    assert response.status_code == 422
    for word in words:
        assert word in response.text, (lang, word)
    backwards = EVENT | {"csrf": admin, "ends_at": "2031-06-14T19:00"}
    response = await client.post("/console/events", data=backwards)
    assert response.status_code == 422
    assert {"fr": "doit être après le début", "de": "muss nach dem Beginn liegen"}.get(
        lang, "after starts_at"
    ) in response.text


# --- refusals: a Conflict's detail above a form or beside a field, a NotFound's on its page ---

_REFUSALS = {"SheetFull"}  # shown on the export page, though not a Conflict


def _refusal_classes() -> set[str]:
    """Conflict and every class below it in server/, and the other refusals a page shows."""
    family = {"Conflict"}
    trees = [ast.parse(path.read_text()) for path in SERVER.rglob("*.py")]
    grew = True
    while grew:
        grew = False
        for tree in trees:
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ClassDef)
                    and node.name not in family
                    and any(getattr(base, "id", None) in family for base in node.bases)
                ):
                    family.add(node.name)
                    grew = True
    return family | _REFUSALS


def _refusal_details() -> dict[str, str]:
    """Every literal detail of a refusal raised in server/ (values replaced by samples), and
    the "no <resource> with id '7'" of every NotFound: message -> where."""
    classes = _refusal_classes()
    found: dict[str, str] = {}
    for path in SERVER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in classes:
                message = _sample(node.args[0])
            elif name == "NotFound" and isinstance(node.args[0], ast.Constant):
                message = f"no {node.args[0].value} with id '7'"
            else:
                continue
            if message is not None:
                found.setdefault(message, f"{path.relative_to(SERVER.parent)}:{node.lineno}")
    return found


def test_the_scan_finds_the_refusals_it_should():
    details = _refusal_details()
    assert "a rejected scan changed nothing: there is nothing to annul" in details
    assert "the campaign has 7 recipients now, not 7" in details  # an f-string
    assert "no booking with id '7'" in details  # NotFound's own text
    assert len(details) > 40


@pytest.mark.parametrize(("message", "where"), sorted(_refusal_details().items()))
def test_every_refusal_is_translated(message, where):
    for lang in ("fr", "de"):
        assert translated(message, lang) != message, f"{where}: no {lang} text for {message!r}"
    assert translated(message, "en") == message


@pytest.mark.parametrize(
    ("message", "fr", "de"),
    [
        ("booking is cancelled", "la réservation est annulée", "die Buchung ist storniert"),
        (
            "a campaign that is sent cannot be edited",
            "une campagne envoyée ne peut plus être modifiée",
            "eine Kampagne im Status „gesendet“ kann nicht mehr bearbeitet werden",
        ),
        (
            "no ticket type with id 'TT9'",
            "type de billet introuvable (identifiant 'TT9')",
            "Ticketart nicht gefunden (Kennung 'TT9')",
        ),
        (
            "event EV1 was archived 2027-01-02T03:04:05+00:00: its doors are closed and it"
            " takes no more scans",
            "l'événement EV1 a été archivé le 2027-01-02T03:04:05+00:00 : ses portes sont"
            " fermées et il ne prend plus de scans",
            "die Veranstaltung EV1 wurde am 2027-01-02T03:04:05+00:00 archiviert: ihre Eingänge"
            " sind zu, sie nimmt keine Scans mehr an",
        ),
        ("booking is weird", "la réservation est weird", "die Buchung ist weird"),  # unknown state
    ],
)
def test_a_refusals_values_and_states(message, fr, de):
    assert translated(message, "fr") == fr
    assert translated(message, "de") == de


async def test_a_refusal_and_a_missing_page_in_the_pages_language(client, admin, organiser_token):
    await client.post("/console/language", data={"csrf": admin, "language": "fr"})
    made = await client.post("/console/events", data=EVENT | {"csrf": admin})
    event_id = made.headers["location"].rsplit("/", 1)[1]
    headers = {"Authorization": f"Bearer {organiser_token}"}
    kind = await client.post(
        f"/api/v1/events/{event_id}/ticket-types", json={"name": "Standard"}, headers=headers
    )
    type_id = kind.json()["id"]
    booking = await client.post(
        f"/api/v1/events/{event_id}/bookings",
        json={
            "buyer": {"name": "Zoé", "email": "zoe@example.org", "language": "fr"},
            "items": [{"ticket_type_id": type_id, "quantity": 2}],
            "confirm": True,
        },
        headers=headers,
    )
    assert booking.status_code == 201
    refused = await client.post(
        f"/console/events/{event_id}/ticket-types/{type_id}/edit",
        data={"csrf": admin, "name": "Standard", "capacity": "1"},
    )
    assert refused.status_code == 409
    assert "la capacité 1 est inférieure aux 2 billets confirmés" in refused.text
    missing = await client.get(f"/console/events/{event_id}/bookings/NOPE")
    assert missing.status_code == 404
    assert "réservation introuvable (identifiant &#39;NOPE&#39;)" in missing.text
