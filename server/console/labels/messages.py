"""The API's field messages in the console's languages.

The services and the request structs report a bad field in English (`FieldError`, msgspec's
`ValidationError`): that is the API's contract, and what scripts read. The console shows the
same message next to the field in the page's language. `translated(message, lang)` looks the
message up among the exact ones, then among the shapes with values in them (msgspec's "Expected
`str` of length <= 200", "no ticket type 'x' in this event", ...); a message it does not know
stays in English rather than disappearing. `tests/server/console/test_field_messages.py` fails
when a service or struct gains a message that has no translation here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from server.console.labels.problems import SHAPES as PROBLEMS

__all__ = ["translated"]

# English message: (fr, de)
EXACT: dict[str, tuple[str, str]] = {
    "is empty: send the image's bytes as the body": (
        "est vide : choisissez un fichier image",
        "ist leer: wählen Sie eine Bilddatei",
    ),
    "must be a PNG, JPEG or WebP image of at most 4000x4000 pixels": (
        "doit être une image PNG, JPEG ou WebP d'au plus 4000x4000 pixels",
        "muss ein PNG-, JPEG- oder WebP-Bild von höchstens 4000x4000 Pixeln sein",
    ),
    "could not be read: a damaged or truncated image": (
        "illisible : une image abîmée ou tronquée",
        "nicht lesbar: ein beschädigtes oder abgeschnittenes Bild",
    ),
    "required field missing": ("champ obligatoire", "Pflichtfeld"),
    "unknown field": ("champ inconnu", "unbekanntes Feld"),
    "must not contain NUL characters": (
        "ne doit pas contenir de caractère NUL",
        "darf keine NUL-Zeichen enthalten",
    ),
    "does not have the expected format": (
        "n'a pas le format attendu",
        "hat nicht das erwartete Format",
    ),
    "must be a whole number": ("doit être un nombre entier", "muss eine ganze Zahl sein"),
    "must be a date and time": ("doit être une date et une heure", "muss Datum und Uhrzeit sein"),
    "must be one of the choices": (
        "doit être l'un des choix proposés",
        "muss eine der Auswahlmöglichkeiten sein",
    ),
    "must be after starts_at": ("doit être après le début", "muss nach dem Beginn liegen"),
    "ends_at must be after starts_at": (
        "la fin doit être après le début",
        "das Ende muss nach dem Beginn liegen",
    ),
    "must be after valid_from": (
        "doit être après le début de validité",
        "muss nach dem Gültigkeitsbeginn liegen",
    ),
    "must not repeat": ("ne doit pas se répéter", "darf sich nicht wiederholen"),
    "must be a colour written #RRGGBB": (
        "doit être une couleur écrite #RRVVBB",
        "muss eine Farbe der Form #RRGGBB sein",
    ),
    "must be 1 to 200 printable characters": (
        "doit compter de 1 à 200 caractères imprimables",
        "muss 1 bis 200 druckbare Zeichen lang sein",
    ),
    "is longer than 320 characters": (
        "dépasse 320 caractères",
        "ist länger als 320 Zeichen",
    ),
    "more holders than tickets (quantity)": (
        "plus de titulaires que de billets (quantité)",
        "mehr Inhaber als Tickets (Menge)",
    ),
    "at least 1": ("au moins 1", "mindestens 1"),
    "at least one language": ("au moins une langue", "mindestens eine Sprache"),
    "no such ticket type in this event": (
        "ce type de billet n'existe pas dans cet événement",
        "diese Ticketart gibt es in dieser Veranstaltung nicht",
    ),
    "no contact list with that id": (
        "aucune liste de contacts ne porte cet identifiant",
        "keine Kontaktliste mit dieser Kennung",
    ),
    "that list is archived (merged into another)": (
        "cette liste est archivée (fusionnée dans une autre)",
        "diese Liste ist archiviert (in eine andere zusammengeführt)",
    ),
    "must not name the list merged into": (
        "ne doit pas nommer la liste de destination de la fusion",
        "darf nicht die Zielliste der Zusammenführung nennen",
    ),
    "a message campaign needs its words": (
        "une campagne de message a besoin d'un texte",
        "eine Nachrichtenkampagne braucht einen Text",
    ),
    "a contact list holds addresses, not tickets: use kind message": (
        "une liste de contacts contient des adresses, pas des billets : choisissez le type message",
        "eine Kontaktliste enthält Adressen, keine Tickets: wählen Sie die Art Nachricht",
    ),
    "a contact list has no tickets to go per": (
        "une liste de contacts n'a pas de billets : un envoi par billet est impossible",
        "eine Kontaktliste hat keine Tickets: kein Versand pro Ticket möglich",
    ),
    "ticket types, checked-in and delivery filter bookings, not a list": (
        "les types de billet, l'entrée et l'envoi filtrent des réservations, pas une liste",
        "Ticketarten, Einlass und Zustellung filtern Buchungen, keine Liste",
    ),
    "required: the file or the pasted lines": (
        "obligatoire : le fichier ou les lignes collées",
        "erforderlich: die Datei oder die eingefügten Zeilen",
    ),
    "tick the box to confirm": (
        "cochez la case pour confirmer",
        "Kästchen zur Bestätigung ankreuzen",
    ),
    "unknown parameter": ("paramètre inconnu", "unbekannter Parameter"),
    "given more than once": ("donné plus d'une fois", "mehr als einmal angegeben"),
    "Invalid RFC3339 encoded datetime": (
        "date et heure illisibles",
        "unlesbares Datum mit Uhrzeit",
    ),
    "Invalid RFC3339 encoded date": ("date illisible", "unlesbares Datum"),
    "Expected `datetime` with a timezone component": (
        "doit indiquer son fuseau horaire",
        "muss eine Zeitzone angeben",
    ),
    "Number out of range": ("nombre hors limites", "Zahl außerhalb des Bereichs"),
    "not representable in UTC: times must lie between 0001-01-02 and 9999-12-30 (UTC)": (
        "hors calendrier : les dates vont du 0001-01-02 au 9999-12-30 (UTC)",
        "außerhalb des Kalenders: Zeiten liegen zwischen 0001-01-02 und 9999-12-30 (UTC)",
    ),
}

_TYPES = {
    "str": ("un texte", "ein Text"),
    "int": ("un nombre entier", "eine ganze Zahl"),
    "float": ("un nombre", "eine Zahl"),
    "bool": ("oui ou non", "ja oder nein"),
    "array": ("une liste", "eine Liste"),
    "object": ("un objet", "ein Objekt"),
    "datetime": ("une date et une heure", "Datum und Uhrzeit"),
    "date": ("une date", "ein Datum"),
    "null": ("vide", "leer"),
}


def _kind(name: str, column: int) -> str:
    return _TYPES.get(name, (f"`{name}`", f"`{name}`"))[column]


def _length(m: re.Match[str], column: int) -> str:
    n, op, kind = m["n"], m["op"], m["kind"]
    if kind == "str":
        fr = f"{n} caractère(s) au {'moins' if op == '>=' else 'plus'}"
        de = f"{'mindestens' if op == '>=' else 'höchstens'} {n} Zeichen"
    else:
        fr = f"{n} élément(s) au {'moins' if op == '>=' else 'plus'}"
        de = f"{'mindestens' if op == '>=' else 'höchstens'} {n} Einträge"
    return (fr, de)[column]


_BOUND = {
    ">=": ("au moins {n}", "mindestens {n}"),
    "<=": ("au plus {n}", "höchstens {n}"),
    ">": ("plus de {n}", "mehr als {n}"),
    "<": ("moins de {n}", "weniger als {n}"),
}

# (shape, its text in fr and de from the match; column 0 is fr, 1 is de)
_SHAPES: list[tuple[re.Pattern[str], Callable[[re.Match[str], int], str]]] = [
    (
        re.compile(r"Expected `(?P<kind>str|array)` of length (?P<op><=|>=) (?P<n>[0-9]+)"),
        _length,
    ),
    (
        re.compile(r"Expected `(?:int|float)` (?P<op><=|>=|<|>) (?P<n>-?[0-9.]+)"),
        lambda m, c: _BOUND[m["op"]][c].format(n=m["n"]),
    ),
    (
        re.compile(r"Expected `(?P<want>[a-z]+)(?: \| [a-z]+)*`, got `(?P<got>[a-z]+)`"),
        lambda m, c: (f"doit être {_kind(m['want'], 0)}", f"muss {_kind(m['want'], 1)} sein")[c],
    ),
    (
        re.compile(r"Expected `str` matching regex .*"),
        lambda m, c: EXACT["does not have the expected format"][c],
    ),
    (
        re.compile(r"Invalid enum value (?P<value>.*)"),
        lambda m, c: (
            f"valeur non prévue : {m['value']}",
            f"nicht vorgesehener Wert: {m['value']}",
        )[c],
    ),
    (
        re.compile(
            r"(?:no ticket type (?P<a>'.*') in this event"
            r"|no such ticket type in this event: (?P<b>'.*'))"
        ),
        lambda m, c: (
            f"aucun type de billet {m['a'] or m['b']} dans cet événement",
            f"keine Ticketart {m['a'] or m['b']} in dieser Veranstaltung",
        )[c],
    ),
    (
        re.compile(r"not an email address: (?P<value>.*)"),
        lambda m, c: (
            f"pas une adresse e-mail : {m['value']}",
            f"keine E-Mail-Adresse: {m['value']}",
        )[c],
    ),
    (
        re.compile(r"is (?P<n>[0-9]+) bytes, over the (?P<max>[0-9]+) allowed"),
        lambda m, c: (
            f"fait {m['n']} octets, plus que les {m['max']} permis",
            f"hat {m['n']} Bytes, mehr als die erlaubten {m['max']}",
        )[c],
    ),
    (
        re.compile(r"is (?P<w>[0-9]+)x(?P<h>[0-9]+) pixels, over (?P<max>[0-9]+x[0-9]+)"),
        lambda m, c: (
            f"fait {m['w']}x{m['h']} pixels, plus que {m['max']}",
            f"hat {m['w']}x{m['h']} Pixel, mehr als {m['max']}",
        )[c],
    ),
    (
        re.compile(r"unknown time zone (?P<value>.*)"),
        lambda m, c: (
            f"fuseau horaire inconnu : {m['value']}",
            f"unbekannte Zeitzone: {m['value']}",
        )[c],
    ),
    (
        re.compile(r"a booking holds at most (?P<n>[0-9]+) tickets"),
        lambda m, c: (
            f"une réservation compte au plus {m['n']} billets",
            f"eine Buchung umfasst höchstens {m['n']} Tickets",
        )[c],
    ),
    (
        re.compile(r"must be (?P<lo>[0-9]+) to (?P<hi>[0-9]+) characters"),
        lambda m, c: (
            f"doit compter de {m['lo']} à {m['hi']} caractères",
            f"muss {m['lo']} bis {m['hi']} Zeichen lang sein",
        )[c],
    ),
    (
        re.compile(r"names no message Tessera sent: (?P<ids>.*)"),
        lambda m, c: (
            f"ne concerne aucun message envoyé par Tessera : {m['ids']}",
            f"betrifft keine von Tessera gesendete Nachricht: {m['ids']}",
        )[c],
    ),
    (
        re.compile(r"must be one of (?P<values>.+)"),
        lambda m, c: (
            f"doit être l'une des valeurs : {m['values']}",
            f"muss einer dieser Werte sein: {m['values']}",
        )[c],
    ),
    (
        re.compile(
            r"white text on this colour has a contrast of (?P<found>[0-9.]+):1, under the"
            r" (?P<need>[0-9.]+):1 of WCAG AA: choose a darker colour"
        ),
        lambda m, c: (
            f"le texte blanc sur cette couleur a un contraste de {m['found']}:1, sous les"
            f" {m['need']}:1 du WCAG AA : choisissez une couleur plus foncée",
            f"weißer Text auf dieser Farbe hat einen Kontrast von {m['found']}:1, unter den"
            f" {m['need']}:1 von WCAG AA: wählen Sie eine dunklere Farbe",
        )[c],
    ),
]


def translated(message: str, lang: str) -> str:
    """`message` (an API field message, in English) in `lang`; English when unknown."""
    if lang not in ("fr", "de"):
        return message
    column = 0 if lang == "fr" else 1
    exact = EXACT.get(message)
    if exact is not None:
        return exact[column]
    for shape, text in (*_SHAPES, *PROBLEMS):
        found = shape.fullmatch(message)
        if found is not None:
            return text(found, column)
    return message
