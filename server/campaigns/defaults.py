"""The built-in e-ticket mail: what a resend sends, and the starting text of a new tickets campaign.

Organisers edit a campaign's copy; resends of one booking or ticket use these words, in the
guest's language. `{{ ticket_buttons }}` places the e-ticket links (templates.py).
"""

from __future__ import annotations

__all__ = ["TICKET_MAIL"]

TICKET_MAIL: dict[str, dict[str, str]] = {
    "fr": {
        "subject": "Vos billets pour {{ event.name }}",
        "body": (
            "Bonjour{% if guest.first_name %} {{ guest.first_name }}{% endif %},\n\n"
            "voici vos billets pour {{ event.name }}, le {{ event.starts_at }}"
            "{% if event.venue %} ({{ event.venue }}){% endif %}.\n\n"
            "{{ ticket_buttons }}\n\n"
            "Ouvrez chaque billet sur votre téléphone et présentez son code QR à l'entrée. "
            "La page reste disponible sans réseau une fois ouverte.\n\n"
            "À bientôt !"
        ),
    },
    "en": {
        "subject": "Your tickets for {{ event.name }}",
        "body": (
            "Hello{% if guest.first_name %} {{ guest.first_name }}{% endif %},\n\n"
            "here are your tickets for {{ event.name }} on {{ event.starts_at }}"
            "{% if event.venue %} ({{ event.venue }}){% endif %}.\n\n"
            "{{ ticket_buttons }}\n\n"
            "Open each ticket on your phone and show its QR code at the door. "
            "Once opened, the page keeps working without a network.\n\n"
            "See you soon!"
        ),
    },
    "de": {
        "subject": "Ihre Tickets für {{ event.name }}",
        "body": (
            "Hallo{% if guest.first_name %} {{ guest.first_name }}{% endif %},\n\n"
            "hier sind Ihre Tickets für {{ event.name }} am {{ event.starts_at }}"
            "{% if event.venue %} ({{ event.venue }}){% endif %}.\n\n"
            "{{ ticket_buttons }}\n\n"
            "Öffnen Sie jedes Ticket auf Ihrem Telefon und zeigen Sie den QR-Code am Eingang. "
            "Einmal geöffnet, funktioniert die Seite auch ohne Netz.\n\n"
            "Bis bald!"
        ),
    },
}
