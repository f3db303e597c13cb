"""Labels of the imports, contact lists and exports pages."""

TABLE: dict[str, tuple[str, str, str]] = {
    # -- imports ---------------------------------------------------------------------------
    "imp_title_event": ("Import guests", "Importer des invités", "Gäste importieren"),
    "imp_title_list": ("Import contacts", "Importer des contacts", "Kontakte importieren"),
    "imp_intro_event": (
        "Each line books tickets for one address. Nothing is written until you have read the"
        " analysis and confirmed it.",
        "Chaque ligne réserve des billets pour une adresse. Rien n'est enregistré avant que vous"
        " ayez lu l'analyse et l'ayez confirmée.",
        "Jede Zeile bucht Tickets für eine Adresse. Nichts wird gespeichert, bevor Sie die"
        " Analyse gelesen und bestätigt haben.",
    ),
    "imp_intro_list": (
        "Each line adds one address to the list. Nothing is written until you have read the"
        " analysis and confirmed it.",
        "Chaque ligne ajoute une adresse à la liste. Rien n'est enregistré avant que vous ayez"
        " lu l'analyse et l'ayez confirmée.",
        "Jede Zeile fügt der Liste eine Adresse hinzu. Nichts wird gespeichert, bevor Sie die"
        " Analyse gelesen und bestätigt haben.",
    ),
    "imp_no_ticket_types": (
        "This event has no ticket type yet: create one first.",
        "Cet événement n'a pas encore de type de billet : créez-en un d'abord.",
        "Diese Veranstaltung hat noch keinen Tickettyp: Legen Sie zuerst einen an.",
    ),
    "imp_source": ("What to import", "Quoi importer", "Was importiert wird"),
    "imp_lines": ("Pasted lines", "Lignes collées", "Eingefügte Zeilen"),
    "imp_lines_hint": (
        "One guest per line: email;quantity (quantity 1 when left out), e.g. anna@example.org;2",
        "Un invité par ligne : e-mail;quantité (1 si omise), p. ex. anna@example.org;2",
        "Ein Gast pro Zeile: E-Mail;Anzahl (1, wenn weggelassen), z. B. anna@example.org;2",
    ),
    "imp_lines_hint_list": (
        "One contact per line: email;language;name (language and name may be left out), e.g."
        " anna@example.org;fr;Anna Muster",
        "Un contact par ligne : e-mail;langue;nom (langue et nom facultatifs), p. ex."
        " anna@example.org;fr;Anna Muster",
        "Ein Kontakt pro Zeile: E-Mail;Sprache;Name (Sprache und Name optional), z. B."
        " anna@example.org;fr;Anna Muster",
    ),
    "imp_file": ("Or a file", "Ou un fichier", "Oder eine Datei"),
    "imp_file_hint": (
        "CSV, TXT, XLSX or XLS: column 1 the address, then language, name or quantity; a"
        " header row is recognised. A file wins over pasted lines.",
        "CSV, TXT, XLSX ou XLS : colonne 1 l'adresse, puis langue, nom ou quantité ; une ligne"
        " d'en-tête est reconnue. Un fichier l'emporte sur les lignes collées.",
        "CSV, TXT, XLSX oder XLS: Spalte 1 die Adresse, dann Sprache, Name oder Anzahl; eine"
        " Kopfzeile wird erkannt. Eine Datei hat Vorrang vor eingefügten Zeilen.",
    ),
    "imp_options": ("Options", "Options", "Optionen"),
    "imp_ticket_type": ("Ticket type booked", "Type de billet réservé", "Gebuchter Tickettyp"),
    "imp_confirm": (
        "Confirm the bookings at once (tickets issued)",
        "Confirmer les réservations tout de suite (billets émis)",
        "Buchungen sofort bestätigen (Tickets ausgestellt)",
    ),
    "imp_confirm_hint": (
        "Otherwise the bookings wait as pending and hold no seat.",
        "Sinon les réservations restent en attente et ne retiennent aucune place.",
        "Sonst bleiben die Buchungen offen und belegen keinen Platz.",
    ),
    "imp_duplicates": (
        "Addresses already there",
        "Adresses déjà présentes",
        "Bereits vorhandene Adressen",
    ),
    "imp_dup_skip_event": (
        "Skip them (importing the same file again adds nothing)",
        "Les ignorer (réimporter le même fichier n'ajoute rien)",
        "Überspringen (dieselbe Datei erneut importieren fügt nichts hinzu)",
    ),
    "imp_dup_update_event": (
        "Update the booking's name and language",
        "Mettre à jour le nom et la langue de la réservation",
        "Name und Sprache der Buchung aktualisieren",
    ),
    "imp_dup_keep_event": (
        "Book again anyway",
        "Réserver quand même à nouveau",
        "Trotzdem erneut buchen",
    ),
    "imp_dup_skip_list": (
        "Keep the contact as it is",
        "Garder le contact tel quel",
        "Kontakt unverändert lassen",
    ),
    "imp_dup_update_list": (
        "Update the contact from the line",
        "Mettre à jour le contact depuis la ligne",
        "Kontakt aus der Zeile aktualisieren",
    ),
    "imp_on_error": (
        "When a line is invalid",
        "Si une ligne est invalide",
        "Wenn eine Zeile ungültig ist",
    ),
    "imp_on_error_reject_all": (
        "Import nothing until every line is fixed",
        "Ne rien importer tant que chaque ligne n'est pas corrigée",
        "Nichts importieren, bis jede Zeile korrigiert ist",
    ),
    "imp_on_error_skip_invalid": (
        "Import the valid lines, leave out the others",
        "Importer les lignes valides, laisser les autres",
        "Gültige Zeilen importieren, die anderen auslassen",
    ),
    "imp_analyze": ("Analyse", "Analyser", "Analysieren"),
    "imp_nothing": (
        "Paste lines or choose a file.",
        "Collez des lignes ou choisissez un fichier.",
        "Fügen Sie Zeilen ein oder wählen Sie eine Datei.",
    ),
    "imp_unreadable": (
        "This file cannot be read ({why}).",
        "Ce fichier est illisible ({why}).",
        "Diese Datei kann nicht gelesen werden ({why}).",
    ),
    "imp_too_large": (
        "This file is larger than an import may be. Split it into smaller files.",
        "Ce fichier dépasse la taille permise pour un import. Découpez-le en fichiers plus petits.",
        "Diese Datei ist größer als für einen Import erlaubt. Teilen Sie sie in kleinere"
        " Dateien auf.",
    ),
    "imp_upload_gone": (
        "This analysis is no longer available (it expires after an hour or once committed)."
        " Analyse the file again.",
        "Cette analyse n'est plus disponible (elle expire après une heure ou une fois"
        " appliquée). Analysez le fichier à nouveau.",
        "Diese Analyse ist nicht mehr verfügbar (sie verfällt nach einer Stunde oder nach dem"
        " Übernehmen). Analysieren Sie die Datei erneut.",
    ),
    "imp_report_title": ("Analysis", "Analyse", "Analyse"),
    "imp_ready": (
        "Nothing has been written yet. Read the analysis, then import.",
        "Rien n'a encore été enregistré. Lisez l'analyse, puis importez.",
        "Noch wurde nichts gespeichert. Lesen Sie die Analyse und importieren Sie dann.",
    ),
    "imp_blocked_import_invalid": (
        "Some lines are invalid: fix them (or choose to leave them out) and analyse again.",
        "Des lignes sont invalides : corrigez-les (ou choisissez de les laisser) et analysez à"
        " nouveau.",
        "Einige Zeilen sind ungültig: Korrigieren Sie sie (oder lassen Sie sie aus) und"
        " analysieren Sie erneut.",
    ),
    "imp_blocked_capacity_exceeded": (
        "This import would sell more tickets than remain: it cannot be imported.",
        "Cet import vendrait plus de billets qu'il n'en reste : il ne peut pas être importé.",
        "Dieser Import würde mehr Tickets vergeben als übrig sind: Er kann nicht importiert"
        " werden.",
    ),
    "imp_capacity_words": (
        "It asks {asked} tickets; {remaining} remain.",
        "Il demande {asked} billets ; il en reste {remaining}.",
        "Er verlangt {asked} Tickets; {remaining} sind übrig.",
    ),
    "imp_capacity_state": (
        "{capacity} seats, {confirmed} confirmed, {remaining} remaining",
        "{capacity} places, {confirmed} confirmées, {remaining} restantes",
        "{capacity} Plätze, {confirmed} bestätigt, {remaining} übrig",
    ),
    "imp_refused_analysis_mismatch": (
        "The file or the options changed since the analysis: nothing was imported. Here is"
        " the analysis of what was sent.",
        "Le fichier ou les options ont changé depuis l'analyse : rien n'a été importé. Voici"
        " l'analyse de ce qui a été envoyé.",
        "Datei oder Optionen haben sich seit der Analyse geändert: Nichts wurde importiert."
        " Hier ist die Analyse des Gesendeten.",
    ),
    "imp_refused_import_invalid": (
        "Some lines are invalid: nothing was imported.",
        "Des lignes sont invalides : rien n'a été importé.",
        "Einige Zeilen sind ungültig: Nichts wurde importiert.",
    ),
    "imp_refused_capacity_exceeded": (
        "Not enough tickets remain: nothing was imported.",
        "Il ne reste pas assez de billets : rien n'a été importé.",
        "Es sind nicht genug Tickets übrig: Nichts wurde importiert.",
    ),
    "imp_summary": ("Summary", "Résumé", "Zusammenfassung"),
    "imp_source_read": ("Read from", "Lu depuis", "Gelesen aus"),
    "imp_pasted": ("pasted lines", "lignes collées", "eingefügte Zeilen"),
    "imp_format_csv": ("CSV", "CSV", "CSV"),
    "imp_format_text": ("text", "texte", "Text"),
    "imp_format_xlsx": ("Excel XLSX", "Excel XLSX", "Excel XLSX"),
    "imp_format_xls": ("Excel XLS", "Excel XLS", "Excel XLS"),
    "imp_format_ods": ("OpenDocument", "OpenDocument", "OpenDocument"),
    "imp_rows_read": ("Lines read", "Lignes lues", "Gelesene Zeilen"),
    "imp_rows_valid": ("Valid", "Valides", "Gültig"),
    "imp_rows_invalid": ("Invalid", "Invalides", "Ungültig"),
    "imp_rows_duplicates": ("Already there", "Déjà présentes", "Bereits vorhanden"),
    "imp_will_create": ("Bookings to create", "Réservations à créer", "Zu erstellende Buchungen"),
    "imp_will_add": ("Contacts to add", "Contacts à ajouter", "Hinzuzufügende Kontakte"),
    "imp_will_update": ("To update", "À mettre à jour", "Zu aktualisieren"),
    "imp_will_skip": ("To skip", "À ignorer", "Zu überspringen"),
    "imp_tickets": ("Tickets", "Billets", "Tickets"),
    "imp_pending": ("pending", "en attente", "offen"),
    "imp_contacts_after": ("Contacts", "Contacts", "Kontakte"),
    "imp_report_csv": (
        "Download the lines to fix (CSV)",
        "Télécharger les lignes à corriger (CSV)",
        "Zu korrigierende Zeilen herunterladen (CSV)",
    ),
    "imp_to_fix": ("Lines to fix", "Lignes à corriger", "Zu korrigierende Zeilen"),
    "imp_line": ("Line", "Ligne", "Zeile"),
    "imp_column": ("Column", "Colonne", "Spalte"),
    "imp_field": ("Field", "Champ", "Feld"),
    "imp_reason": ("Problem", "Problème", "Problem"),
    "imp_value": ("Value", "Valeur", "Wert"),
    "imp_field_email": ("address", "adresse", "Adresse"),
    "imp_field_language": ("language", "langue", "Sprache"),
    "imp_field_quantity": ("quantity", "quantité", "Anzahl"),
    "imp_field_name": ("name", "nom", "Name"),
    "imp_field_row": ("whole line", "ligne entière", "ganze Zeile"),
    "imp_field_header": ("header", "en-tête", "Kopfzeile"),
    "imp_field_attribute": ("column", "colonne", "Spalte"),
    "imp_reason_missing_email": (
        "The address is missing.",
        "L'adresse manque.",
        "Die Adresse fehlt.",
    ),
    "imp_reason_invalid_email": (
        "This is not a valid email address.",
        "Ce n'est pas une adresse e-mail valide.",
        "Das ist keine gültige E-Mail-Adresse.",
    ),
    "imp_reason_unknown_language": (
        "Unknown language: use fr, en or de.",
        "Langue inconnue : utilisez fr, en ou de.",
        "Unbekannte Sprache: Verwenden Sie fr, en oder de.",
    ),
    "imp_reason_not_an_integer": (
        "The quantity must be a whole number.",
        "La quantité doit être un nombre entier.",
        "Die Anzahl muss eine ganze Zahl sein.",
    ),
    "imp_reason_quantity_out_of_range": (
        "The quantity must be between 1 and 1,000.",
        "La quantité doit être entre 1 et 1 000.",
        "Die Anzahl muss zwischen 1 und 1.000 liegen.",
    ),
    "imp_reason_too_long": ("Too long.", "Trop long.", "Zu lang."),
    "imp_reason_control_characters": (
        "Contains invisible control characters.",
        "Contient des caractères de contrôle invisibles.",
        "Enthält unsichtbare Steuerzeichen.",
    ),
    "imp_reason_too_many_columns": (
        "More than 20 columns.",
        "Plus de 20 colonnes.",
        "Mehr als 20 Spalten.",
    ),
    "imp_reason_unnamed_column": (
        "A value in a column without a name in the header.",
        "Une valeur dans une colonne sans nom dans l'en-tête.",
        "Ein Wert in einer Spalte ohne Namen in der Kopfzeile.",
    ),
    "imp_reason_line_too_long": (
        "The line is far too long to be a guest.",
        "La ligne est bien trop longue pour être un invité.",
        "Die Zeile ist viel zu lang für einen Gast.",
    ),
    "imp_reason_field_too_large": (
        "A cell is far too large.",
        "Une cellule est bien trop grande.",
        "Eine Zelle ist viel zu groß.",
    ),
    "imp_reason_malformed_row": (
        "The line cannot be read (quotes?).",
        "La ligne est illisible (guillemets ?).",
        "Die Zeile kann nicht gelesen werden (Anführungszeichen?).",
    ),
    "imp_duplicate_of": ("Same address as", "Même adresse que", "Gleiche Adresse wie"),
    "imp_already_there_event": (
        "a booking already there",
        "une réservation existante",
        "eine bestehende Buchung",
    ),
    "imp_already_there_list": (
        "a contact already in the list",
        "un contact déjà dans la liste",
        "ein Kontakt, der schon in der Liste ist",
    ),
    "imp_line_n": ("line {n}", "la ligne {n}", "Zeile {n}"),
    "imp_action": ("What the import does", "Ce que fait l'import", "Was der Import tut"),
    "imp_action_create": ("adds it", "l'ajoute", "fügt hinzu"),
    "imp_action_skip": ("skips it", "l'ignore", "überspringt"),
    "imp_action_update": ("updates", "met à jour", "aktualisiert"),
    "imp_more_in_csv": (
        "And {n} more: download the CSV.",
        "Et {n} de plus : téléchargez le CSV.",
        "Und {n} weitere: Laden Sie die CSV herunter.",
    ),
    "imp_commit_hint": (
        "The import applies exactly this analysis, all of it or nothing.",
        "L'import applique exactement cette analyse, en entier ou pas du tout.",
        "Der Import übernimmt genau diese Analyse, ganz oder gar nicht.",
    ),
    "imp_commit_event": (
        "Import: create {n} bookings",
        "Importer : créer {n} réservations",
        "Importieren: {n} Buchungen erstellen",
    ),
    "imp_commit_list": (
        "Import: add {n} contacts",
        "Importer : ajouter {n} contacts",
        "Importieren: {n} Kontakte hinzufügen",
    ),
    "imp_start_again": ("Start again", "Recommencer", "Neu beginnen"),
    "imp_done_title": ("Imported", "Importé", "Importiert"),
    "imp_done_counts": (
        "{bookings} bookings created, {tickets} tickets issued.",
        "{bookings} réservations créées, {tickets} billets émis.",
        "{bookings} Buchungen erstellt, {tickets} Tickets ausgestellt.",
    ),
    "imp_done_updated": (
        "{n} existing bookings updated.",
        "{n} réservations existantes mises à jour.",
        "{n} bestehende Buchungen aktualisiert.",
    ),
    "imp_done_mails": (
        "{n} e-ticket mails queued.",
        "{n} e-mails de billets en file d'envoi.",
        "{n} E-Ticket-Mails in der Warteschlange.",
    ),
    "imp_see_bookings": ("See the bookings", "Voir les réservations", "Buchungen ansehen"),
    "imp_again": ("Import more", "Importer d'autres", "Weitere importieren"),
    # -- contact lists -----------------------------------------------------------------------
    "cl_archived": ("archived", "archivées", "archiviert"),
    "cl_show_archived": (
        "Show the archived (merged) lists",
        "Voir les listes archivées (fusionnées)",
        "Archivierte (zusammengeführte) Listen zeigen",
    ),
    "cl_show_active": ("Show the active lists", "Voir les listes actives", "Aktive Listen zeigen"),
    "cl_contacts": ("Contacts", "Contacts", "Kontakte"),
    "cl_updated": ("Last change", "Dernière modification", "Letzte Änderung"),
    "cl_no_lists": ("No contact lists.", "Aucune liste de contacts.", "Keine Kontaktlisten."),
    "cl_new": ("New contact list", "Nouvelle liste de contacts", "Neue Kontaktliste"),
    "cl_back_to_list": ("Back to the list", "Retour à la liste", "Zurück zur Liste"),
    "cl_imported": (
        "{n} contacts added by the import.",
        "{n} contacts ajoutés par l'import.",
        "{n} Kontakte durch den Import hinzugefügt.",
    ),
    "cl_is_archived": (
        "This list was merged and is read-only. Merged into:",
        "Cette liste a été fusionnée et est en lecture seule. Fusionnée dans :",
        "Diese Liste wurde zusammengeführt und ist schreibgeschützt. Zusammengeführt in:",
    ),
    "cl_merge": (
        "Merge other lists into this one",
        "Fusionner d'autres listes dans celle-ci",
        "Andere Listen in diese zusammenführen",
    ),
    "cl_export_csv": ("Export CSV", "Exporter en CSV", "Als CSV exportieren"),
    "cl_export_xlsx": ("Export XLSX", "Exporter en XLSX", "Als XLSX exportieren"),
    "cl_search": (
        "Find an address or name",
        "Chercher une adresse ou un nom",
        "Adresse oder Name suchen",
    ),
    "cl_search_button": ("Search", "Chercher", "Suchen"),
    "cl_attributes": ("Other columns", "Autres colonnes", "Weitere Spalten"),
    "cl_no_contacts": ("No contacts.", "Aucun contact.", "Keine Kontakte."),
    "cl_manage": ("Manage the list", "Gérer la liste", "Liste verwalten"),
    "cl_rename": ("Rename", "Renommer", "Umbenennen"),
    "cl_duplicate": ("Duplicate", "Dupliquer", "Duplizieren"),
    "cl_copy_name": ("Name of the copy", "Nom de la copie", "Name der Kopie"),
    "cl_delete": ("Delete the list", "Supprimer la liste", "Liste löschen"),
    "cl_delete_warning": (
        "The list and its {n} contacts will be deleted. This cannot be undone.",
        "La liste et ses {n} contacts seront supprimés. C'est définitif.",
        "Die Liste und ihre {n} Kontakte werden gelöscht. Das ist endgültig.",
    ),
    "cl_delete_confirm": ("Delete for good", "Supprimer définitivement", "Endgültig löschen"),
    "cl_cancel": ("Cancel", "Annuler", "Abbrechen"),
    "cl_merge_intro": (
        "The contacts of the lists you tick are added to this one; an address in both stays"
        " once, completed where it lacks a name, language or column. The merged lists are"
        " archived (read-only). Preview first: nothing changes until you confirm.",
        "Les contacts des listes cochées sont ajoutés à celle-ci ; une adresse présente des"
        " deux côtés reste une fois, complétée là où il lui manque un nom, une langue ou une"
        " colonne. Les listes fusionnées sont archivées (lecture seule). Prévisualisez"
        " d'abord : rien ne change avant votre confirmation.",
        "Die Kontakte der angekreuzten Listen werden dieser hinzugefügt; eine Adresse in"
        " beiden bleibt einmal und wird ergänzt, wo Name, Sprache oder eine Spalte fehlt. Die"
        " zusammengeführten Listen werden archiviert (schreibgeschützt). Zuerst die Vorschau:"
        " Nichts ändert sich vor Ihrer Bestätigung.",
    ),
    "cl_preview": ("Preview of the merge", "Aperçu de la fusion", "Vorschau der Zusammenführung"),
    "cl_merged_lists": ("Lists merged in", "Listes fusionnées", "Zusammengeführte Listen"),
    "cl_before": ("Contacts now", "Contacts actuellement", "Kontakte jetzt"),
    "cl_added": ("Contacts added", "Contacts ajoutés", "Hinzugefügte Kontakte"),
    "cl_in_both": (
        "Addresses already here",
        "Adresses déjà présentes",
        "Bereits vorhandene Adressen",
    ),
    "cl_completed": ("Contacts completed", "Contacts complétés", "Ergänzte Kontakte"),
    "cl_after": (
        "Contacts after the merge",
        "Contacts après la fusion",
        "Kontakte nach der Zusammenführung",
    ),
    "cl_kept_from": ("Kept from", "Gardé de", "Behalten aus"),
    "cl_completed_from": ("Completed from", "Complété depuis", "Ergänzt aus"),
    "cl_archive_note": (
        "After the merge, the merged lists are archived: still readable, no longer changeable.",
        "Après la fusion, les listes fusionnées sont archivées : lisibles, plus modifiables.",
        "Nach der Zusammenführung werden die Listen archiviert: lesbar, nicht mehr änderbar.",
    ),
    "cl_merge_now": ("Merge now", "Fusionner maintenant", "Jetzt zusammenführen"),
    "cl_merge_which": ("Lists to merge in", "Listes à fusionner", "Zusammenzuführende Listen"),
    "cl_preview_button": (
        "Preview the merge",
        "Prévisualiser la fusion",
        "Vorschau der Zusammenführung",
    ),
    "cl_no_other_lists": (
        "There is no other active list to merge.",
        "Il n'y a pas d'autre liste active à fusionner.",
        "Es gibt keine andere aktive Liste zum Zusammenführen.",
    ),
    # -- exports -------------------------------------------------------------------------------
    "exp_title": ("Exports", "Exports", "Exporte"),
    "exp_intro": (
        "Download the event's data for a spreadsheet. The files hold guests' personal data:"
        " keep them safe. Cells a spreadsheet could run as a formula start with an apostrophe.",
        "Téléchargez les données de l'événement pour un tableur. Les fichiers contiennent des"
        " données personnelles des invités : gardez-les en lieu sûr. Les cellules qu'un tableur"
        " pourrait exécuter comme formule commencent par une apostrophe.",
        "Laden Sie die Daten der Veranstaltung für eine Tabellenkalkulation herunter. Die"
        " Dateien enthalten personenbezogene Daten der Gäste: Bewahren Sie sie sicher auf."
        " Zellen, die als Formel ausgeführt werden könnten, beginnen mit einem Apostroph.",
    ),
    "exp_what": ("Data", "Données", "Daten"),
    "exp_bookings": ("Bookings", "Réservations", "Buchungen"),
    "exp_tickets": ("Tickets", "Billets", "Tickets"),
    "exp_checkins": ("Check-ins", "Entrées", "Check-ins"),
    "exp_bookings_hint": (
        "One line per booking: buyer, status, tickets per type.",
        "Une ligne par réservation : acheteur, statut, billets par type.",
        "Eine Zeile pro Buchung: Käufer, Status, Tickets pro Typ.",
    ),
    "exp_tickets_hint": (
        "One line per ticket: holder, type, state, entered or not.",
        "Une ligne par billet : titulaire, type, état, entré ou non.",
        "Eine Zeile pro Ticket: Inhaber, Typ, Zustand, eingetreten oder nicht.",
    ),
    "exp_checkins_hint": (
        "One line per scan: when, which door, accepted or why not.",
        "Une ligne par scan : quand, quelle porte, accepté ou pourquoi pas.",
        "Eine Zeile pro Scan: wann, welcher Eingang, angenommen oder warum nicht.",
    ),
    "exp_download": ("Download", "Télécharger", "Herunterladen"),
}
