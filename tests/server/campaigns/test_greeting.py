"""The built-in e-ticket mail greets a guest by first name, and reads naturally without one."""

from __future__ import annotations

import pytest

from server.campaigns.defaults import TICKET_MAIL
from server.campaigns.templates import MessageTemplate, render_message
from tests.server.campaigns.test_templates import fields

GREETINGS = {"fr": "Bonjour", "en": "Hello", "de": "Hallo"}


def first_line(lang: str, guest_name: str | None) -> str:
    words = TICKET_MAIL[lang]
    template = MessageTemplate(words["subject"], words["body"])
    rendered = render_message(template, fields(lang=lang, guest_name=guest_name), kind="tickets")
    return rendered.text.splitlines()[0]


@pytest.mark.parametrize("lang", sorted(GREETINGS))
@pytest.mark.parametrize("name", [None, "", "   "])
def test_no_name_greets_without_a_dangling_space(lang, name):
    assert first_line(lang, name) == f"{GREETINGS[lang]},"


@pytest.mark.parametrize("lang", sorted(GREETINGS))
def test_a_name_is_greeted_by_its_first_word(lang):
    assert first_line(lang, "Camille Martin") == f"{GREETINGS[lang]} Camille,"
