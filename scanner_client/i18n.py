"""The door's words in French, English and German: reason labels and every string the TUI shows.

Rules:
- Every key exists in all three languages with the same `{fields}` (a test checks both), so a
  language switch can never raise at the door in the middle of an evening.
- English reason labels are `protocol.reasons.LABELS`, the one table people read elsewhere; the
  French and German ones are short door-staff wording, read at a glance from a metre away.
- An unknown language falls back to English; an unknown key or a missing field raises (a bug in
  the caller, not something to hide).
- Numbers group thousands the way each language writes them (`1,204`, `1 204`, `1.204`); no
  system locale is consulted, as the door runs with whatever locale its machine has.
"""

from __future__ import annotations

import re

from protocol.reasons import LABELS, Reason

__all__ = [
    "LANGUAGES",
    "REASONS",
    "TEXTS",
    "number",
    "reason_label",
    "shown",
    "text",
]

LANGUAGES = ("fr", "en", "de")
_FALLBACK = "en"

REASONS: dict[str, dict[Reason, str]] = {
    "en": dict(LABELS),
    "fr": {
        Reason.INVALID: "Billet illisible ou falsifié",
        Reason.WRONG_EVENT: "Billet d'un autre événement",
        Reason.REVOKED: "Billet annulé ou remplacé",
        Reason.BLOCKED: "Billet suspendu",
        Reason.ALREADY_REDEEMED: "Déjà entré",
        Reason.NOT_ON_LIST: "Pas admis à cette entrée",
        Reason.NOT_YET_VALID: "Pas encore valable",
        Reason.EXPIRED: "Plus valable",
    },
    "de": {
        Reason.INVALID: "Ticket unlesbar oder gefälscht",
        Reason.WRONG_EVENT: "Ticket für andere Veranstaltung",
        Reason.REVOKED: "Ticket storniert oder ersetzt",
        Reason.BLOCKED: "Ticket gesperrt",
        Reason.ALREADY_REDEEMED: "Bereits eingecheckt",
        Reason.NOT_ON_LIST: "Hier kein Einlass",
        Reason.NOT_YET_VALID: "Noch nicht gültig",
        Reason.EXPIRED: "Nicht mehr gültig",
    },
}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "connection_live": "live",
        "connection_degraded": "degraded",
        "connection_offline": "offline",
        "connection_syncing": "syncing",
        "connection_unpaired": "unpaired",
        "mode_entry": "ENTRY",
        "mode_exit": "EXIT",
        "ready": "Ready — scan a ticket",
        "accepted": "Accepted",
        "accepted_exit": "Exit recorded",
        "forced": "Let in — check",
        "forced_detail": "the hub's rules say: {reason}",
        "entry_of": "entry {n} of {m}",
        "unlimited": "∞",
        "persons_one": "1 person",
        "persons_other": "{n} persons",
        "seat": "seat {seat}",
        "code": "code {code}",
        "scanned_at": "scanned at {time}",
        "first_scan": "first scan at {time}",
        "first_scan_gate": "first scan at {time} at gate {gate}",
        "first_scan_here": "first scan at {time} at this door",
        "decided_offline": "decided offline",
        "read_twice": "(read twice)",
        "late": "the hub decided differently: {verdict}",
        "late_other": "The hub decided differently on {code}: {verdict}",
        "data_none": "no data yet",
        "data_age_s": "data {n} s old",
        "data_age_min": "data {n} min old",
        "data_age_h": "data {n} h old",
        "data_age_d": "data {n} d old",
        "queued": "{n} queued",
        "tickets_one": "1 ticket",
        "tickets_other": "{n} tickets",
        "list": "list: {name}",
        "no_list": "no list chosen",
        "counters_title": "Counters",
        "counters_all": "All lists",
        "counters_checked_in": "checked in",
        "counters_inside": "inside",
        "counters_remaining": "remaining",
        "counters_door": "counted on this device",
        "search_title": "Find a guest",
        "search_prompt": "Name or code, 3 characters or more",
        "search_short": "Type at least 3 characters",
        "search_none": "No ticket found",
        "search_hint": "↓ choose · Enter check in · Esc close",
        "search_checked_in": "checked in",
        "search_not_checked_in": "not checked in",
        "search_inside": "inside",
        "search_revoked": "cancelled",
        "search_blocked": "on hold",
        "lists_title": "Choose the list",
        "lists_none": "No list on this device",
        "lists_current": "(current)",
        "lists_hint": "↑↓ choose · Enter confirm · Esc close",
        "undo_confirm": "Undo the last scan? Press F5 again to confirm",
        "undo_ok": "Last scan undone",
        "undo_ok_entries": "Last scan undone: {entries} entries now",
        "undo_pending": "Undone on this device; the hub is told once the scan is uploaded",
        "undo_nothing": "Nothing to undo",
        "undo_refused": "The hub refused the undo: {error}",
        "conflict_title": "Conflict",
        "conflict_earlier": (
            "Conflict: {code} ({holder}) let in offline at {gate} {time} "
            "after an entry at {earlier_gate} {earlier_time}"
        ),
        "conflict": "Conflict: {code} ({holder}) let in offline at {gate} {time}: {reason}",
        "gate_unknown": "a door without gate",
        "holder_unknown": "no name",
        "notice_unpaired": "This device is not paired any more: run tessera-scan pair",
        "notice_revoked": "The organiser revoked this device",
        "notice_snapshot_loaded": "Ticket data loaded",
        "notice_no_data": "No tickets on this device yet: waiting for the first sync",
        "notice_unknown_list": "That list is not on this device",
        "notice_snapshot_progress": "Loading ticket data: {detail}",
        "notice_resync": "Reloading ticket data from the hub",
        "notice_hub_error": "The hub answered an error: {detail}",
        "camera_error": "Camera stopped: {detail}",
        "not_paired": "not paired: run tessera-scan pair <pairing code or URI> first",
        "key_mode": "entry/exit",
        "key_list": "list",
        "key_search": "search",
        "key_undo": "undo",
        "key_counters": "counters",
        "key_dismiss": "dismiss",
        "key_quit": "quit",
    },
    "fr": {
        "connection_live": "en ligne",
        "connection_degraded": "ralenti",
        "connection_offline": "hors ligne",
        "connection_syncing": "synchronisation",
        "connection_unpaired": "non appairé",
        "mode_entry": "ENTRÉE",
        "mode_exit": "SORTIE",
        "ready": "Prêt — scannez un billet",
        "accepted": "Accepté",
        "accepted_exit": "Sortie enregistrée",
        "forced": "Entré — à vérifier",
        "forced_detail": "selon les règles du serveur : {reason}",
        "entry_of": "entrée {n} sur {m}",
        "unlimited": "∞",
        "persons_one": "1 personne",
        "persons_other": "{n} personnes",
        "seat": "place {seat}",
        "code": "code {code}",
        "scanned_at": "scanné à {time}",
        "first_scan": "premier scan à {time}",
        "first_scan_gate": "premier scan à {time}, porte {gate}",
        "first_scan_here": "premier scan à {time} à cette porte",
        "decided_offline": "décidé hors ligne",
        "read_twice": "(lu deux fois)",
        "late": "le serveur a décidé autrement : {verdict}",
        "late_other": "Le serveur a décidé autrement pour {code} : {verdict}",
        "data_none": "pas encore de données",
        "data_age_s": "données d'il y a {n} s",
        "data_age_min": "données d'il y a {n} min",
        "data_age_h": "données d'il y a {n} h",
        "data_age_d": "données d'il y a {n} j",
        "queued": "{n} en attente",
        "tickets_one": "1 billet",
        "tickets_other": "{n} billets",
        "list": "liste : {name}",
        "no_list": "aucune liste choisie",
        "counters_title": "Compteurs",
        "counters_all": "Toutes les listes",
        "counters_checked_in": "entrés",
        "counters_inside": "présents",
        "counters_remaining": "attendus",
        "counters_door": "comptés sur cet appareil",
        "search_title": "Chercher un invité",
        "search_prompt": "Nom ou code, 3 caractères ou plus",
        "search_short": "Tapez au moins 3 caractères",
        "search_none": "Aucun billet trouvé",
        "search_hint": "↓ choisir · Entrée valider l'entrée · Échap fermer",
        "search_checked_in": "entré",
        "search_not_checked_in": "pas entré",
        "search_inside": "présent",
        "search_revoked": "annulé",
        "search_blocked": "suspendu",
        "lists_title": "Choisir la liste",
        "lists_none": "Aucune liste sur cet appareil",
        "lists_current": "(actuelle)",
        "lists_hint": "↑↓ choisir · Entrée valider · Échap fermer",
        "undo_confirm": "Annuler le dernier scan ? Appuyez encore sur F5 pour confirmer",
        "undo_ok": "Dernier scan annulé",
        "undo_ok_entries": "Dernier scan annulé : {entries} entrées maintenant",
        "undo_pending": "Annulé sur cet appareil ; le serveur sera prévenu à l'envoi du scan",
        "undo_nothing": "Rien à annuler",
        "undo_refused": "Le serveur a refusé l'annulation : {error}",
        "conflict_title": "Conflit",
        "conflict_earlier": (
            "Conflit : {code} ({holder}) entré hors ligne à {gate} {time} "
            "après une entrée à {earlier_gate} {earlier_time}"
        ),
        "conflict": "Conflit : {code} ({holder}) entré hors ligne à {gate} {time} : {reason}",
        "gate_unknown": "une porte sans nom",
        "holder_unknown": "sans nom",
        "notice_unpaired": "Cet appareil n'est plus appairé : lancez tessera-scan pair",
        "notice_revoked": "L'organisateur a révoqué cet appareil",
        "notice_snapshot_loaded": "Données des billets chargées",
        "notice_no_data": "Pas encore de billets sur cet appareil : attente de la synchronisation",
        "notice_unknown_list": "Cette liste n'est pas sur cet appareil",
        "notice_snapshot_progress": "Chargement des billets : {detail}",
        "notice_resync": "Rechargement des billets depuis le serveur",
        "notice_hub_error": "Le serveur a répondu une erreur : {detail}",
        "camera_error": "Caméra arrêtée : {detail}",
        "not_paired": "non appairé : lancez d'abord tessera-scan pair <code ou URI d'appairage>",
        "key_mode": "entrée/sortie",
        "key_list": "liste",
        "key_search": "chercher",
        "key_undo": "annuler",
        "key_counters": "compteurs",
        "key_dismiss": "effacer",
        "key_quit": "quitter",
    },
    "de": {
        "connection_live": "online",
        "connection_degraded": "verzögert",
        "connection_offline": "offline",
        "connection_syncing": "synchronisiert",
        "connection_unpaired": "nicht gekoppelt",
        "mode_entry": "EINLASS",
        "mode_exit": "AUSLASS",
        "ready": "Bereit — Ticket scannen",
        "accepted": "Gültig",
        "accepted_exit": "Ausgang erfasst",
        "forced": "Eingelassen — prüfen",
        "forced_detail": "laut Server: {reason}",
        "entry_of": "Einlass {n} von {m}",
        "unlimited": "∞",
        "persons_one": "1 Person",
        "persons_other": "{n} Personen",
        "seat": "Platz {seat}",
        "code": "Code {code}",
        "scanned_at": "gescannt um {time}",
        "first_scan": "erster Scan um {time}",
        "first_scan_gate": "erster Scan um {time} an Eingang {gate}",
        "first_scan_here": "erster Scan um {time} an diesem Eingang",
        "decided_offline": "offline entschieden",
        "read_twice": "(doppelt gelesen)",
        "late": "der Server hat anders entschieden: {verdict}",
        "late_other": "Der Server hat bei {code} anders entschieden: {verdict}",
        "data_none": "noch keine Daten",
        "data_age_s": "Daten {n} s alt",
        "data_age_min": "Daten {n} min alt",
        "data_age_h": "Daten {n} h alt",
        "data_age_d": "Daten {n} T alt",
        "queued": "{n} wartend",
        "tickets_one": "1 Ticket",
        "tickets_other": "{n} Tickets",
        "list": "Liste: {name}",
        "no_list": "keine Liste gewählt",
        "counters_title": "Zähler",
        "counters_all": "Alle Listen",
        "counters_checked_in": "eingecheckt",
        "counters_inside": "drinnen",
        "counters_remaining": "erwartet",
        "counters_door": "auf diesem Gerät gezählt",
        "search_title": "Gast suchen",
        "search_prompt": "Name oder Code, mindestens 3 Zeichen",
        "search_short": "Mindestens 3 Zeichen eingeben",
        "search_none": "Kein Ticket gefunden",
        "search_hint": "↓ wählen · Enter einchecken · Esc schließen",
        "search_checked_in": "eingecheckt",
        "search_not_checked_in": "nicht eingecheckt",
        "search_inside": "drinnen",
        "search_revoked": "storniert",
        "search_blocked": "gesperrt",
        "lists_title": "Liste wählen",
        "lists_none": "Keine Liste auf diesem Gerät",
        "lists_current": "(aktuell)",
        "lists_hint": "↑↓ wählen · Enter bestätigen · Esc schließen",
        "undo_confirm": "Letzten Scan zurücknehmen? Zum Bestätigen nochmals F5",
        "undo_ok": "Letzter Scan zurückgenommen",
        "undo_ok_entries": "Letzter Scan zurückgenommen: jetzt {entries} Einlässe",
        "undo_pending": "Auf diesem Gerät zurückgenommen; der Server erfährt es beim Hochladen",
        "undo_nothing": "Nichts zurückzunehmen",
        "undo_refused": "Der Server lehnt die Rücknahme ab: {error}",
        "conflict_title": "Konflikt",
        "conflict_earlier": (
            "Konflikt: {code} ({holder}) offline eingelassen an {gate} {time} "
            "nach einem Einlass an {earlier_gate} {earlier_time}"
        ),
        "conflict": "Konflikt: {code} ({holder}) offline eingelassen an {gate} {time}: {reason}",
        "gate_unknown": "einem Eingang ohne Namen",
        "holder_unknown": "ohne Namen",
        "notice_unpaired": "Dieses Gerät ist nicht mehr gekoppelt: tessera-scan pair ausführen",
        "notice_revoked": "Der Veranstalter hat dieses Gerät gesperrt",
        "notice_snapshot_loaded": "Ticketdaten geladen",
        "notice_no_data": "Noch keine Tickets auf diesem Gerät: warte auf den ersten Abgleich",
        "notice_unknown_list": "Diese Liste ist nicht auf diesem Gerät",
        "notice_snapshot_progress": "Ticketdaten werden geladen: {detail}",
        "notice_resync": "Ticketdaten werden neu vom Server geladen",
        "notice_hub_error": "Der Server meldet einen Fehler: {detail}",
        "camera_error": "Kamera angehalten: {detail}",
        "not_paired": "nicht gekoppelt: zuerst tessera-scan pair <Kopplungscode oder URI>",
        "key_mode": "Einlass/Auslass",
        "key_list": "Liste",
        "key_search": "Suche",
        "key_undo": "zurück",
        "key_counters": "Zähler",
        "key_dismiss": "löschen",
        "key_quit": "beenden",
    },
}

# How each language groups thousands; French uses a narrow no-break space (U+202F).
_THOUSANDS = {"en": ",", "fr": "\u202f", "de": "."}


def _language(lang: str) -> str:
    return lang if lang in LANGUAGES else _FALLBACK


def reason_label(reason: Reason, lang: str) -> str:
    """What door staff read for `reason`, in `lang` (English for an unknown language)."""
    return REASONS[_language(lang)][reason]


def text(key: str, lang: str, **fields: object) -> str:
    """The UI string `key` in `lang` with `fields` filled in (string fields made `shown`).

    Raises KeyError for an unknown key or a missing field.
    """
    safe = {k: shown(v) if isinstance(v, str) else v for k, v in fields.items()}
    return TEXTS[_language(lang)][key].format(**safe)


# C0 and C1 controls, DEL, and the bidirectional overrides and isolates (U+202A-202E,
# U+2066-2069) that can make a line read otherwise than it is.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(value: str) -> str:
    """`value` safe to put on a terminal: names, seats and codes come from the hub, a buyer or
    a scanner, and an escape sequence in them must not reach the door's terminal."""
    return _UNSHOWABLE.sub("\ufffd", value)


def number(n: int, lang: str) -> str:
    """`n` with thousands grouped as `lang` writes them."""
    return f"{n:,}".replace(",", _THOUSANDS[_language(lang)])
