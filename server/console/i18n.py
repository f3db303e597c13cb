"""The console's words in fr, en and de, and how a page's language is chosen.

One table, each label in the three languages side by side (so a missing translation is a
syntax error, not a blank). A signed-in user's stored choice wins; then `?lang=`, then the
browser's Accept-Language, then English.
"""

from __future__ import annotations

from server.console.labels import bookings, campaigns, doors, imports
from ticket_renderer import pick_language

__all__ = ["LANGUAGES", "LANGUAGE_NAMES", "Labels", "page_language"]

LANGUAGES = ("en", "fr", "de")
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "de": "Deutsch"}

# key: (en, fr, de)
_TABLE: dict[str, tuple[str, str, str]] = {
    "console": ("Tessera console", "Console Tessera", "Tessera-Konsole"),
    "skip": ("Skip to content", "Aller au contenu", "Zum Inhalt springen"),
    "nav": ("Main menu", "Menu principal", "Hauptmenü"),
    "events": ("Events", "Événements", "Veranstaltungen"),
    "tokens": ("API tokens", "Jetons d'API", "API-Tokens"),
    "sign_out": ("Sign out", "Se déconnecter", "Abmelden"),
    "sign_out_all": (
        "Sign out everywhere",
        "Se déconnecter partout",
        "Überall abmelden",
    ),
    "signed_in_as": ("Signed in as", "Connecté en tant que", "Angemeldet als"),
    "language": ("Language", "Langue", "Sprache"),
    "browser_language": ("Browser's language", "Langue du navigateur", "Sprache des Browsers"),
    "save": ("Save", "Enregistrer", "Speichern"),
    "sign_in": ("Sign in", "Connexion", "Anmelden"),
    "sign_in_intro": (
        "Enter your address: we mail you a link that signs you in.",
        "Saisissez votre adresse : nous vous envoyons un lien de connexion.",
        "Geben Sie Ihre Adresse ein: Wir senden Ihnen einen Anmeldelink.",
    ),
    "email": ("Email address", "Adresse e-mail", "E-Mail-Adresse"),
    "password": ("Password", "Mot de passe", "Passwort"),
    "send_link": ("Mail me a sign-in link", "Envoyez-moi un lien", "Link zusenden"),
    "or_password": (
        "Or sign in with your password",
        "Ou connectez-vous avec votre mot de passe",
        "Oder mit Passwort anmelden",
    ),
    "link_sent": (
        "If this address belongs to an organiser, a sign-in link is on its way. It works once,"
        " for 15 minutes.",
        "Si cette adresse est celle d'un organisateur, un lien de connexion est en route. Il"
        " fonctionne une fois, pendant 15 minutes.",
        "Wenn diese Adresse einem Veranstalter gehört, ist ein Anmeldelink unterwegs. Er gilt"
        " einmal, 15 Minuten lang.",
    ),
    "confirm_sign_in": (
        "Confirm to sign in to the console.",
        "Confirmez pour vous connecter à la console.",
        "Bestätigen Sie, um sich bei der Konsole anzumelden.",
    ),
    "link_unusable": (
        "This sign-in link is used, expired or unknown. Ask for a new one.",
        "Ce lien de connexion a déjà servi, a expiré ou est inconnu. Demandez-en un nouveau.",
        "Dieser Anmeldelink wurde benutzt, ist abgelaufen oder unbekannt. Fordern Sie einen"
        " neuen an.",
    ),
    "wrong_password": (
        "This address and password do not sign anybody in.",
        "Cette adresse et ce mot de passe ne correspondent à aucun compte.",
        "Diese Adresse und dieses Passwort passen zu keinem Konto.",
    ),
    "too_many": (
        "Too many attempts. Try again in {seconds} seconds.",
        "Trop de tentatives. Réessayez dans {seconds} secondes.",
        "Zu viele Versuche. Versuchen Sie es in {seconds} Sekunden erneut.",
    ),
    "mail_subject": (
        "Your Tessera sign-in link",
        "Votre lien de connexion Tessera",
        "Ihr Tessera-Anmeldelink",
    ),
    "mail_body": (
        "Hello {name},\n\nopen this link to sign in to the Tessera console (it works once,"
        " for 15 minutes):\n\n{link}\n\nIf you did not ask for it, ignore this mail.",
        "Bonjour {name},\n\nouvrez ce lien pour vous connecter à la console Tessera (il"
        " fonctionne une fois, pendant 15 minutes) :\n\n{link}\n\nSi vous ne l'avez pas"
        " demandé, ignorez ce message.",
        "Hallo {name},\n\nöffnen Sie diesen Link, um sich bei der Tessera-Konsole anzumelden"
        " (er gilt einmal, 15 Minuten lang):\n\n{link}\n\nWenn Sie ihn nicht angefordert haben,"
        " ignorieren Sie diese E-Mail.",
    ),
    "mail_button": ("Sign in", "Se connecter", "Anmelden"),
    "new_event": ("New event", "Nouvel événement", "Neue Veranstaltung"),
    "no_events": (
        "No events yet.",
        "Aucun événement pour l'instant.",
        "Noch keine Veranstaltungen.",
    ),
    "name": ("Name", "Nom", "Name"),
    "starts_at": ("Starts", "Début", "Beginn"),
    "ends_at": ("Ends", "Fin", "Ende"),
    "timezone": ("Time zone", "Fuseau horaire", "Zeitzone"),
    "timezone_hint": (
        "An IANA name such as Europe/Paris; times are the venue's wall-clock times.",
        "Un nom IANA comme Europe/Paris ; les heures sont celles du lieu.",
        "Ein IANA-Name wie Europe/Paris; Zeiten sind Ortszeiten des Veranstaltungsorts.",
    ),
    "venue": ("Venue", "Lieu", "Veranstaltungsort"),
    "brand_colour": ("Brand colour", "Couleur de la marque", "Markenfarbe"),
    "brand_colour_hint": (
        "#RRGGBB, behind white text on the guest page and in mails: dark enough to read (4.5:1).",
        "#RRGGBB, sous du texte blanc sur la page du billet et dans les mails : assez foncée "
        "pour être lue (4,5:1).",
        "#RRGGBB, hinter weißem Text auf der Ticketseite und in Mails: dunkel genug zum Lesen "
        "(4,5:1).",
    ),
    "brand_images": ("Logo and banner", "Logo et bannière", "Logo und Banner"),
    "brand_images_hint": (
        "PNG, JPEG or WebP, at most 1 MB and 4000x4000 pixels; shown on the guest page and in "
        "mails.",
        "PNG, JPEG ou WebP, au plus 1 Mo et 4000x4000 pixels ; affichés sur la page du billet et "
        "dans les mails.",
        "PNG, JPEG oder WebP, höchstens 1 MB und 4000x4000 Pixel; auf der Ticketseite und in Mails "
        "gezeigt.",
    ),
    "brand_logo": ("Logo", "Logo", "Logo"),
    "brand_banner": ("Banner", "Bannière", "Banner"),
    "brand_current": ("Current image", "Image actuelle", "Aktuelles Bild"),
    "brand_none": ("None yet.", "Aucune pour l'instant.", "Noch keines."),
    "brand_upload": ("Upload", "Envoyer", "Hochladen"),
    "brand_remove": ("Remove", "Retirer", "Entfernen"),
    "languages": ("Languages", "Langues", "Sprachen"),
    "create": ("Create", "Créer", "Anlegen"),
    "edit": ("Edit", "Modifier", "Bearbeiten"),
    "edit_event": ("Edit the event", "Modifier l'événement", "Veranstaltung bearbeiten"),
    "ticket_types": ("Ticket types", "Types de billets", "Ticketarten"),
    "new_ticket_type": ("New ticket type", "Nouveau type de billet", "Neue Ticketart"),
    "capacity": ("Capacity", "Capacité", "Kapazität"),
    "capacity_hint": ("Empty: no limit.", "Vide : sans limite.", "Leer: unbegrenzt."),
    "persons": ("Persons per ticket", "Personnes par billet", "Personen pro Ticket"),
    "confirmed": ("Confirmed", "Confirmés", "Bestätigt"),
    "remaining": ("Remaining", "Restants", "Verbleibend"),
    "unlimited": ("unlimited", "illimité", "unbegrenzt"),
    "valid_from": ("Valid from", "Valable dès", "Gültig ab"),
    "valid_until": ("Valid until", "Valable jusqu'au", "Gültig bis"),
    "checkin_lists": ("Check-in lists", "Listes de contrôle", "Einlasslisten"),
    "new_checkin_list": ("New check-in list", "Nouvelle liste de contrôle", "Neue Einlassliste"),
    "max_entries": ("Entries per ticket", "Entrées par billet", "Einlässe pro Ticket"),
    "max_entries_hint": ("Empty: no limit.", "Vide : sans limite.", "Leer: unbegrenzt."),
    "allow_reentry": (
        "Re-entry after an exit",
        "Ré-entrée après une sortie",
        "Wiedereinlass nach Verlassen",
    ),
    "list_types": (
        "Ticket types admitted (none ticked: all)",
        "Types de billets admis (aucun coché : tous)",
        "Zugelassene Ticketarten (keine angekreuzt: alle)",
    ),
    "all_types": ("all", "tous", "alle"),
    "yes": ("yes", "oui", "ja"),
    "no": ("no", "non", "nein"),
    "none": ("none", "aucun", "keine"),
    "fix_errors": (
        "Please correct the fields marked below.",
        "Corrigez les champs signalés ci-dessous.",
        "Bitte korrigieren Sie die markierten Felder.",
    ),
    "read_only_note": (
        "Your account can view but not change.",
        "Votre compte peut consulter mais pas modifier.",
        "Ihr Konto kann ansehen, aber nichts ändern.",
    ),
    "forbidden": ("Not allowed", "Non autorisé", "Nicht erlaubt"),
    "forbidden_detail": (
        "Your role does not allow this.",
        "Votre rôle ne le permet pas.",
        "Ihre Rolle erlaubt das nicht.",
    ),
    "not_found": ("Not found", "Introuvable", "Nicht gefunden"),
    "bad_request": ("This request cannot be used", "Requête inutilisable", "Unbrauchbare Anfrage"),
    "expired_form": (
        "This form expired or came from elsewhere. Reload the page and try again.",
        "Ce formulaire a expiré ou vient d'ailleurs. Rechargez la page et réessayez.",
        "Dieses Formular ist abgelaufen oder stammt von woanders. Laden Sie die Seite neu.",
    ),
    "back": ("Back to the console", "Retour à la console", "Zurück zur Konsole"),
    "previous": ("Previous", "Précédent", "Zurück"),
    "next": ("Next", "Suivant", "Weiter"),
    "token_name": ("Token name", "Nom du jeton", "Token-Name"),
    "read_only_token": (
        "Read-only (refused any change)",
        "Lecture seule (aucune modification)",
        "Nur lesen (keine Änderungen)",
    ),
    "access": ("Access", "Accès", "Zugriff"),
    "full": ("full", "complet", "voll"),
    "read_only": ("read-only", "lecture seule", "nur lesen"),
    "created": ("Created", "Créé", "Erstellt"),
    "revoked": ("Revoked", "Révoqué", "Widerrufen"),
    "revoke": ("Revoke", "Révoquer", "Widerrufen"),
    "new_token": ("New token", "Nouveau jeton", "Neues Token"),
    "token_shown_once": (
        "Copy this token now: it is shown only once.",
        "Copiez ce jeton maintenant : il n'est affiché qu'une fois.",
        "Kopieren Sie dieses Token jetzt: Es wird nur einmal angezeigt.",
    ),
    "no_tokens": ("No tokens.", "Aucun jeton.", "Keine Tokens."),
    "admins_only": (
        "Only administrators create and revoke tokens.",
        "Seuls les administrateurs créent et révoquent les jetons.",
        "Nur Administratoren erstellen und widerrufen Tokens.",
    ),
    "actions": ("Actions", "Actions", "Aktionen"),
    "event_pages": ("Event pages", "Pages de l'événement", "Seiten der Veranstaltung"),
    "nav_overview": ("Overview", "Aperçu", "Übersicht"),
    "nav_dashboard": ("Live dashboard", "Tableau de bord", "Live-Übersicht"),
    "nav_bookings": ("Bookings", "Réservations", "Buchungen"),
    "nav_doors": ("Doors", "Portes", "Eingänge"),
    "nav_campaigns": ("Campaigns", "Campagnes", "Kampagnen"),
    "nav_imports": ("Import guests", "Importer des invités", "Gäste importieren"),
    "nav_exports": ("Exports", "Exports", "Exporte"),
    "contact_lists": ("Contact lists", "Listes de contacts", "Kontaktlisten"),
    "optional": ("optional", "facultatif", "optional"),
    "required": ("required", "obligatoire", "erforderlich"),
}


def _merged(*tables: dict[str, tuple[str, str, str]]) -> dict[str, tuple[str, str, str]]:
    merged: dict[str, tuple[str, str, str]] = {}
    for table in tables:
        twice = merged.keys() & table.keys()
        if twice:
            raise ValueError(f"console labels defined twice: {sorted(twice)}")
        merged.update(table)
    return merged


_TABLE = _merged(_TABLE, bookings.TABLE, doors.TABLE, campaigns.TABLE, imports.TABLE)


class Labels:
    """`L.key` (or `L("key", **values)`) in templates: the label `key` in one language; a
    missing key is an error, never a blank."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._column = LANGUAGES.index(lang)

    def __getattr__(self, key: str) -> str:
        texts = _TABLE.get(key)
        if texts is None:  # in a template, StrictUndefined makes this a render error
            raise AttributeError(f"no console label {key!r}")
        return texts[self._column]

    def __call__(self, key: str, **values: object) -> str:
        return _TABLE[key][self._column].format(**values)


def page_language(stored: str | None, requested: str | None, accept_language: str | None) -> str:
    if stored in LANGUAGES:
        return stored
    return pick_language(accept_language, requested)
