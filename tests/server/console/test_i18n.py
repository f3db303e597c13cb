"""The console's words: every label in en, fr and de, pages in the language asked for, and the
sign-in mail in the language of the page it was asked from."""

from __future__ import annotations

import pytest

from server.console.i18n import _TABLE, LANGUAGES, Labels, page_language
from tests.server.console.helpers import csrf_of, make_user


def test_every_label_is_in_every_language():
    for key, words in _TABLE.items():
        assert len(words) == len(LANGUAGES), key
        assert all(word.strip() for word in words), key
    assert (
        Labels("de")("too_many", seconds=5)
        == "Zu viele Versuche. Versuchen Sie es in 5 Sekunden erneut."
    )


def test_the_stored_choice_wins_then_the_query_then_the_browser():
    assert page_language("de", "fr", "en") == "de"
    assert page_language(None, "fr", "de") == "fr"
    assert page_language(None, None, "de-CH,fr;q=0.5") == "de"
    assert page_language(None, "xx", "zz") == "en"
    assert page_language("xx", None, None) == "en"


@pytest.mark.parametrize(
    ("query", "header", "lang", "heading"),
    [
        ("", "fr-FR", "fr", "Connexion"),
        ("?lang=de", "fr-FR", "de", "Anmelden"),
        ("?lang=xx", "", "en", "Sign in"),
    ],
)
async def test_the_sign_in_page_speaks_the_visitors_language(client, query, header, lang, heading):
    page = await client.get(f"/console/sign-in{query}", headers={"Accept-Language": header})
    assert f'<html lang="{lang}">' in page.text
    assert f"<h1>{heading}</h1>" in page.text


async def test_the_link_mail_is_in_the_language_of_the_page(client, settings):
    from server.campaigns.transport import read_mail, read_maildir, view_mail

    await make_user(settings)
    page = await client.get("/console/sign-in?lang=de")
    await client.post(
        "/console/sign-in?lang=de", data={"email": "ada@example.org", "csrf": csrf_of(page.text)}
    )
    [mail] = read_maildir(settings.maildir)
    view = view_mail(read_mail(settings.maildir, mail.id))
    assert ("Subject", "Ihr Tessera-Anmeldelink") in view.headers
    assert "15 Minuten" in (view.text or "")
