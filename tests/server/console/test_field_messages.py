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
