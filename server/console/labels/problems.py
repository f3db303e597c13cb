"""The services' refusals (409, 404, 403) in the console's languages.

A refusal's `detail` is the API's English text, and stays so in problem+json. The console shows it
above a form (`Refused.problem`), beside a field (`attempt(field=)`) or on its error page, in the
page's language: `messages.translated` looks a message up here after the field messages. Each
shape is the English detail with its values as named groups; a value that is a state or a kind of
resource is itself translated (`_word`), any other value (an id, an address, a time) is kept as it
is. `tests/server/console/test_field_messages.py` fails when a service gains a refusal with no
text here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["SHAPES"]

# What a state or a resource is called, by the noun it goes with: (fr, de).
_BOOKING = {
    "pending": ("en attente", "ausstehend"),
    "confirmed": ("confirmée", "bestätigt"),
    "cancelled": ("annulée", "storniert"),
}
_CAMPAIGN = {
    "draft": ("en brouillon", "ein Entwurf"),
    "scheduled": ("programmée", "geplant"),
    "sending": ("en cours d'envoi", "im Versand"),
    "sent": ("envoyée", "gesendet"),
    "cancelled": ("annulée", "abgebrochen"),
    "missed": ("manquée", "verpasst"),
}
_MESSAGE = {
    "queued": ("en file d'attente", "in der Warteschlange"),
    "sending": ("en cours d'envoi", "im Versand"),
    "sent": ("envoyé", "gesendet"),
    "delivered": ("distribué", "zugestellt"),
    "failed": ("en échec", "fehlgeschlagen"),
    "bounced": ("rejeté", "zurückgewiesen"),
}
_TICKET_ACTION = {
    "reissued": ("réémis", "neu ausgestellt"),
    "blocked": ("bloqué", "gesperrt"),
    "unblocked": ("débloqué", "entsperrt"),
}
_DEVICE = {
    "revoked": ("révoqué", "widerrufen"),
    "already paired": ("déjà appairé", "bereits gekoppelt"),
}
_RESOURCE = {
    "booking": ("réservation", "Buchung"),
    "branding image": ("image de marque", "Markenbild"),
    "campaign": ("campagne", "Kampagne"),
    "check-in list": ("liste de contrôle", "Einlassliste"),
    "contact list": ("liste de contacts", "Kontaktliste"),
    "contact": ("contact", "Kontakt"),
    "device": ("appareil", "Gerät"),
    "event": ("événement", "Veranstaltung"),
    "export": ("export", "Export"),
    "link": ("lien", "Link"),
    "mail": ("e-mail", "E-Mail"),
    "message": ("message", "Nachricht"),
    "page": ("page", "Seite"),
    "pairing code of device": ("code d'appairage de l'appareil", "Kopplungscode des Geräts"),
    "recipient of the campaign": ("destinataire de la campagne", "Empfänger der Kampagne"),
    "scan": ("scan", "Scan"),
    "signing key": ("clé de signature", "Signaturschlüssel"),
    "ticket type": ("type de billet", "Ticketart"),
    "ticket": ("billet", "Ticket"),
    "token": ("jeton", "Token"),
}


def _word(table: dict[str, tuple[str, str]], value: str, column: int) -> str:
    """`value` in the page's language, or as it is when the table does not know it."""
    found = table.get(value)
    return found[column] if found is not None else value


_Text = Callable[[re.Match[str], int], str]


def _texts(fr: str, de: str, **words: dict[str, tuple[str, str]]) -> _Text:
    """The French or German text, its `{name}`s filled from the match (translated by `words`)."""

    def text(m: re.Match[str], column: int) -> str:
        values = {
            name: _word(words[name], value, column) if name in words else value
            for name, value in m.groupdict().items()
        }
        return (fr, de)[column].format(**values)

    return text


# (shape of the English detail, its French and German text)
SHAPES: list[tuple[re.Pattern[str], _Text]] = [
    (
        re.compile(r"no (?P<resource>[a-z -]+?) with id (?P<id>'.*')"),
        _texts(
            "{resource} introuvable (identifiant {id})",
            "{resource} nicht gefunden (Kennung {id})",
            resource=_RESOURCE,
        ),
    ),
    (
        re.compile(r"a campaign that is (?P<state>\S+) cannot be edited"),
        _texts(
            "une campagne {state} ne peut plus être modifiée",
            "eine Kampagne im Status „{state}“ kann nicht mehr bearbeitet werden",
            state=_CAMPAIGN,
        ),
    ),
    (
        re.compile(r"the campaign is already (?P<state>\S+)"),
        _texts(
            "la campagne est déjà {state}",
            "die Kampagne ist bereits {state}",
            state=_CAMPAIGN,
        ),
    ),
    (
        re.compile(r"the campaign has (?P<now>[0-9]+) recipients now, not (?P<seen>-?[0-9]+)"),
        _texts(
            "la campagne compte maintenant {now} destinataires, et non {seen}",
            "die Kampagne hat jetzt {now} Empfänger, nicht {seen}",
        ),
    ),
    (
        re.compile(r"a revoked ticket cannot be sent"),
        _texts(
            "un billet révoqué ne peut pas être envoyé",
            "ein widerrufenes Ticket wird nicht gesendet",
        ),
    ),
    (
        re.compile(r"a (?P<state>\S+) booking has no tickets to send"),
        _texts(
            "une réservation {state} n'a pas de billets à envoyer",
            "eine Buchung im Status „{state}“ hat keine Tickets zum Senden",
            state=_BOOKING,
        ),
    ),
    (
        re.compile(r"booking is (?P<state>\S+)"),
        _texts(
            "la réservation est {state}",
            "die Buchung ist {state}",
            state=_BOOKING,
        ),
    ),
    (
        re.compile(r"a (?P<state>\S+) message cannot bounce"),
        _texts(
            "un message {state} ne peut pas être rejeté",
            "eine Nachricht im Status „{state}“ kann nicht zurückgewiesen werden",
            state=_MESSAGE,
        ),
    ),
    (
        re.compile(r"a (?P<state>\S+) message is not sent yet: report it again later"),
        _texts(
            "un message {state} n'est pas encore parti : signalez-le plus tard",
            "eine Nachricht im Status „{state}“ ist noch nicht gesendet: später erneut melden",
            state=_MESSAGE,
        ),
    ),
    (
        re.compile(r"a user with the address (?P<email>'.*') exists"),
        _texts(
            "un utilisateur avec l'adresse {email} existe déjà",
            "ein Benutzer mit der Adresse {email} existiert bereits",
        ),
    ),
    (
        re.compile(r"(?P<email>'.*') is in the list already"),
        _texts("{email} est déjà dans la liste", "{email} ist bereits in der Liste"),
    ),
    (
        re.compile(
            r"capacity (?P<capacity>-?[0-9]+) is below the (?P<confirmed>[0-9]+) tickets confirmed"
        ),
        _texts(
            "la capacité {capacity} est inférieure aux {confirmed} billets confirmés",
            "die Kapazität {capacity} liegt unter den {confirmed} bestätigten Tickets",
        ),
    ),
    (
        re.compile(
            r"not enough places left in ticket type (?P<type>.+): (?P<asked>[0-9]+) asked,"
            r" (?P<left>[0-9]+|None) remaining"
        ),
        _texts(
            "plus assez de places dans le type de billet {type} : {asked} demandées,"
            " {left} restantes",
            "nicht genug Plätze in der Ticketart {type}: {asked} verlangt, {left} übrig",
        ),
    ),
    (
        re.compile(
            r"the import asks (?P<asked>[0-9]+) tickets of ticket type (?P<type>.+),"
            r" (?P<left>[0-9]+|None) remain: nothing was imported"
        ),
        _texts(
            "l'import demande {asked} billets du type de billet {type}, il en reste {left} :"
            " rien n'a été importé",
            "der Import verlangt {asked} Tickets der Ticketart {type}, {left} sind übrig:"
            " nichts wurde importiert",
        ),
    ),
    (
        re.compile(r"external_ref (?P<ref>'.*') is already used by booking (?P<booking>.+)"),
        _texts(
            "la référence externe {ref} est déjà celle de la réservation {booking}",
            "die externe Referenz {ref} gehört bereits zur Buchung {booking}",
        ),
    ),
    (
        re.compile(
            r"contact list (?P<list>'.*') was merged into (?P<into>'.*')(?: already)?"
            r" and is read-only"
        ),
        _texts(
            "la liste de contacts {list} a été fusionnée dans {into} et ne peut plus être modifiée",
            "die Kontaktliste {list} wurde in {into} zusammengeführt und ist schreibgeschützt",
        ),
    ),
    (
        re.compile(r"the file or the options differ from the analysis: analyse again"),
        _texts(
            "le fichier ou les options diffèrent de l'analyse : analysez à nouveau",
            "Datei oder Optionen weichen von der Analyse ab: bitte erneut analysieren",
        ),
    ),
    (
        re.compile(r"ticket (?P<ticket>.+) is revoked and cannot be (?P<action>\S+)"),
        _texts(
            "le billet {ticket} est révoqué et ne peut pas être {action}",
            "das Ticket {ticket} ist widerrufen und kann nicht {action} werden",
            action=_TICKET_ACTION,
        ),
    ),
    (
        re.compile(
            r"device (?P<device>'.*') is (?P<state>.+):"
            r" it takes no new pairing code"
        ),
        _texts(
            "l'appareil {device} est {state} : il ne prend plus de code d'appairage",
            "das Gerät {device} ist {state}: es nimmt keinen neuen Kopplungscode an",
            state=_DEVICE,
        ),
    ),
    (
        re.compile(r"a rejected scan changed nothing: there is nothing to annul"),
        _texts(
            "un scan refusé n'a rien changé : il n'y a rien à annuler",
            "ein abgelehnter Scan hat nichts geändert: es gibt nichts zu annullieren",
        ),
    ),
    (
        re.compile(r"several devices used scan_id (?P<scan>'.*'): name one with \?device_id="),
        _texts(
            "plusieurs appareils ont utilisé le scan {scan} : précisez lequel avec ?device_id=",
            "mehrere Geräte haben den Scan {scan} verwendet: eines mit ?device_id= angeben",
        ),
    ),
    (
        re.compile(
            r"cursor (?P<cursor>-?[0-9]+) (?:cannot be followed|is older than the change log"
            r" kept): load the snapshot, then follow its seq"
        ),
        _texts(
            "le curseur {cursor} ne peut plus être suivi : chargez l'instantané,"
            " puis suivez son seq",
            "dem Cursor {cursor} kann nicht mehr gefolgt werden: Snapshot laden,"
            " dann seinem seq folgen",
        ),
    ),
    (
        re.compile(
            r"event (?P<event>.+) has not ended yet \(it ends (?P<at>.+)\): archive it once it"
            r" is over"
        ),
        _texts(
            "l'événement {event} n'est pas encore terminé (il finit {at}) : archivez-le ensuite",
            "die Veranstaltung {event} ist noch nicht vorbei (Ende {at}): danach archivieren",
        ),
    ),
    (
        re.compile(
            r"event (?P<event>\S+) was archived (?P<at>\S+?)"
            r"(?P<doors>: its doors are closed and it takes no more scans)?"
        ),
        lambda m, c: (
            f"l'événement {m['event']} a été archivé le {m['at']}"
            + (" : ses portes sont fermées et il ne prend plus de scans" if m["doors"] else ""),
            f"die Veranstaltung {m['event']} wurde am {m['at']} archiviert"
            + (": ihre Eingänge sind zu, sie nimmt keine Scans mehr an" if m["doors"] else ""),
        )[c],
    ),
    (
        re.compile(r"no signing key: run `tessera keys rotate`"),
        _texts(
            "aucune clé de signature : lancez `tessera keys rotate`",
            "kein Signaturschlüssel: `tessera keys rotate` ausführen",
        ),
    ),
    (
        re.compile(r"this is the last key able to sign: run `tessera keys rotate` first"),
        _texts(
            "c'est la dernière clé capable de signer : lancez d'abord `tessera keys rotate`",
            "das ist der letzte Schlüssel, der signieren kann:"
            " zuerst `tessera keys rotate` ausführen",
        ),
    ),
    (
        re.compile(
            r"one XLSX sheet holds (?P<rows>[0-9,]+) rows after its header; export as CSV instead"
        ),
        _texts(
            "une feuille XLSX contient au plus {rows} lignes après l'en-tête : exportez en CSV",
            "ein XLSX-Blatt fasst {rows} Zeilen nach der Kopfzeile: als CSV exportieren",
        ),
    ),
]
