"""Labels of the doors, pairing and live dashboard pages."""

TABLE: dict[str, tuple[str, str, str]] = {
    # doors
    "doors_title": ("Doors", "Portes", "Eingänge"),
    "doors_intro": (
        "Each handheld at a door is a device: create it here, then scan its pairing QR with the"
        " door app.",
        "Chaque terminal de contrôle est un appareil : créez-le ici, puis scannez son QR"
        " d'appairage avec l'application de contrôle.",
        "Jedes Kontrollgerät ist ein Gerät: Legen Sie es hier an und scannen Sie dann seinen"
        " Kopplungs-QR-Code mit der Einlass-App.",
    ),
    "doors_devices": ("Devices", "Appareils", "Geräte"),
    "doors_no_devices": ("No device yet.", "Aucun appareil pour l'instant.", "Noch kein Gerät."),
    "doors_gate": ("Gate", "Entrée", "Eingang"),
    "doors_gate_hint": (
        "Optional: where it stands, e.g. North gate.",
        "Facultatif : où il se trouve, par ex. Entrée nord.",
        "Optional: wo es steht, z. B. Nordeingang.",
    ),
    "doors_state": ("State", "État", "Status"),
    "doors_last_seen": ("Last scan", "Dernier scan", "Letzter Scan"),
    "doors_new": ("New device", "Nouvel appareil", "Neues Gerät"),
    "doors_create": (
        "Create and show its pairing code",
        "Créer et afficher son code d'appairage",
        "Anlegen und Kopplungscode zeigen",
    ),
    "doors_new_code": ("New pairing code", "Nouveau code d'appairage", "Neuer Kopplungscode"),
    "doors_new_code_for": (
        "New pairing code for {name}",
        "Nouveau code d'appairage pour {name}",
        "Neuer Kopplungscode für {name}",
    ),
    "doors_revoke": ("Revoke", "Révoquer", "Sperren"),
    "doors_revoke_for": ("Revoke {name}", "Révoquer {name}", "{name} sperren"),
    "doors_revoke_title": (
        "Revoke the device {name}?",
        "Révoquer l'appareil {name} ?",
        "Gerät {name} sperren?",
    ),
    "doors_revoke_text": (
        "Its token is refused at once and its connection is closed; it cannot scan any more."
        " This cannot be undone: pair a new device instead.",
        "Son jeton est refusé immédiatement et sa connexion fermée ; il ne peut plus scanner."
        " C'est définitif : appairez plutôt un nouvel appareil.",
        "Sein Token wird sofort abgelehnt und seine Verbindung geschlossen; es kann nicht mehr"
        " scannen. Das ist endgültig: koppeln Sie stattdessen ein neues Gerät.",
    ),
    "doors_revoke_confirm": ("Revoke this device", "Révoquer cet appareil", "Dieses Gerät sperren"),
    "doors_cancel": ("Cancel", "Annuler", "Abbrechen"),
    "doors_pairing_title": ("Pair {name}", "Appairer {name}", "{name} koppeln"),
    "doors_pairing_intro": (
        "On the handheld, scan this QR code with the door app (tessera-scan pair), or type the"
        " code.",
        "Sur le terminal, scannez ce QR code avec l'application de contrôle (tessera-scan pair),"
        " ou tapez le code.",
        "Scannen Sie diesen QR-Code auf dem Gerät mit der Einlass-App (tessera-scan pair) oder"
        " tippen Sie den Code ein.",
    ),
    "doors_code": ("Pairing code", "Code d'appairage", "Kopplungscode"),
    "doors_expires": ("Valid until", "Valable jusqu'au", "Gültig bis"),
    "doors_once": (
        "This code is shown only now and pairs one device once.",
        "Ce code n'est affiché que maintenant et n'appaire qu'un appareil, une fois.",
        "Dieser Code wird nur jetzt gezeigt und koppelt ein Gerät, einmal.",
    ),
    "doors_qr_alt": (
        "Pairing QR code of {name}",
        "QR code d'appairage de {name}",
        "Kopplungs-QR-Code von {name}",
    ),
    "doors_done": ("Done", "Terminé", "Fertig"),
    "doors_shown_for": (
        "This page shows the code for 10 minutes, in this browser only; a reload shows it again.",
        "Cette page affiche le code pendant 10 minutes, dans ce navigateur seulement ; la"
        " recharger l'affiche à nouveau.",
        "Diese Seite zeigt den Code 10 Minuten lang, nur in diesem Browser; neu laden zeigt ihn"
        " wieder.",
    ),
    "doors_now_paired": (
        "{name} is paired: its code is used.",
        "{name} est appairé : son code a servi.",
        "{name} ist gekoppelt: sein Code ist verbraucht.",
    ),
    "doors_now_revoked": (
        "{name} is revoked.",
        "{name} est révoqué.",
        "{name} ist gesperrt.",
    ),
    "doors_code_hidden": (
        "Its pairing code is not shown here: it is shown for 10 minutes, only in the browser that"
        " asked for it. A new code replaces the previous one.",
        "Son code d'appairage n'est pas affiché ici : il ne l'est que 10 minutes, dans le"
        " navigateur qui l'a demandé. Un nouveau code remplace le précédent.",
        "Sein Kopplungscode wird hier nicht gezeigt: nur 10 Minuten lang, in dem Browser, der ihn"
        " angefordert hat. Ein neuer Code ersetzt den vorherigen.",
    ),
    # dashboard
    "dash_title": ("Live dashboard", "Tableau de bord en direct", "Live-Übersicht"),
    "dash_total": ("Admissions", "Entrées prévues", "Einlässe gesamt"),
    "dash_checked_in": ("Checked in", "Entrés", "Eingelassen"),
    "dash_inside": ("Inside", "Présents", "Drinnen"),
    "dash_remaining": ("Still to come", "Restant à venir", "Noch erwartet"),
    "dash_per_list": ("Per check-in list", "Par liste de contrôle", "Pro Einlassliste"),
    "dash_per_gate": ("Per gate", "Par entrée", "Pro Eingang"),
    "dash_list": ("List", "Liste", "Liste"),
    "dash_gate": ("Gate", "Entrée", "Eingang"),
    "dash_feed": ("Latest scans", "Derniers scans", "Letzte Scans"),
    "dash_conflicts": (
        "Conflicts: entries forced offline",
        "Conflits : entrées forcées hors ligne",
        "Konflikte: offline erzwungene Einlässe",
    ),
    "dash_time": ("Time", "Heure", "Zeit"),
    "dash_device": ("Device", "Appareil", "Gerät"),
    "dash_code": ("Ticket code", "Code du billet", "Ticketcode"),
    "dash_holder": ("Holder", "Titulaire", "Inhaber"),
    "dash_verdict": ("Verdict", "Verdict", "Ergebnis"),
    "dash_devices": ("Devices", "Appareils", "Geräte"),
    "dash_state": ("State", "État", "Status"),
    "dash_last_scan": ("Last scan", "Dernier scan", "Letzter Scan"),
    "dash_accepted": ("Admitted", "Admis", "Eingelassen"),
    "dash_annulled": ("Admitted, then annulled", "Admis, puis annulé", "Eingelassen, storniert"),
    "dash_rejected": ("Refused: {reason}", "Refusé : {reason}", "Abgewiesen: {reason}"),
    "dash_forced": (
        "Let in offline, would be refused: {reason}",
        "Entré hors ligne, serait refusé : {reason}",
        "Offline eingelassen, wäre abgewiesen: {reason}",
    ),
    "dash_state_live": ("Connected", "Connecté", "Verbunden"),
    "dash_state_offline": ("Offline", "Hors ligne", "Offline"),
    "dash_state_unpaired": ("Not paired", "Non appairé", "Nicht gekoppelt"),
    "dash_state_revoked": ("Revoked", "Révoqué", "Gesperrt"),
    "dash_no_scans": ("No scan yet.", "Aucun scan pour l'instant.", "Noch kein Scan."),
    "dash_no_conflicts": ("No conflict.", "Aucun conflit.", "Kein Konflikt."),
    "dash_refresh_note": (
        "This page reloads itself every 10 seconds.",
        "Cette page se recharge toutes les 10 secondes.",
        "Diese Seite lädt sich alle 10 Sekunden neu.",
    ),
}
