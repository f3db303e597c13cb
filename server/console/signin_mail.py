"""The sign-in link mail: built as campaign mail is (server/campaigns/mail.py), DKIM-signed when
the operator configured it, and sent through the same transport (SMTP or the local maildir).

It is transactional (kind "tickets": no unsubscribe) and goes out at once, not through the
outbox: a link lives 15 minutes, and the outbox's ledger is per campaign and event.
"""

from __future__ import annotations

from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncSession

from server.campaigns.dkim import key_for, sign_bytes
from server.campaigns.mail import Address, Identity, build_message, new_message_id, wire_bytes
from server.campaigns.transport import SendResult, mailer_for
from server.config import Settings
from server.console.accounts import create_link, ensure_user
from server.console.i18n import Labels
from server.db import utcnow

__all__ = ["DEMO_ADMIN_EMAIL", "demo_signin_url", "send_signin_mail", "signin_url"]

DEMO_ADMIN_EMAIL = "admin@example.org"


def signin_url(settings: Settings, secret: str) -> str:
    return f"{settings.public_base_url}/console/sign-in/link/{secret}"


def signin_mail_bytes(settings: Settings, *, to: Address, link: str, lang: str) -> bytes:
    labels = Labels(lang)
    text = labels("mail_body", name=to.name or to.email, link=link)
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n") if link not in p)
    button = f'<p><a href="{escape(link)}">{escape(labels.mail_button)}</a></p>'
    html = f'<!doctype html><html lang="{lang}"><body>{paragraphs}{button}</body></html>'
    domain = settings.platform_sender.rpartition("@")[2] or "localhost"
    message = build_message(
        subject=labels.mail_subject,
        text=text,
        html=html,
        identity=Identity(Address("Tessera", settings.platform_sender), None),
        to=to,
        message_id=new_message_id(domain),
        kind="tickets",
    )
    data = wire_bytes(message)
    key = key_for(settings)
    return data if key is None else sign_bytes(data, key)


async def send_signin_mail(settings: Settings, *, to: Address, link: str, lang: str) -> SendResult:
    """Send the link to `to` now; the transport never raises for delivery trouble."""
    data = signin_mail_bytes(settings, to=to, link=link, lang=lang)
    mailer = mailer_for(settings.smtp_url, settings.maildir)
    try:
        return await mailer.send(data, sender=settings.envelope_sender, recipients=[to.email])
    finally:
        await mailer.close()


async def demo_signin_url(session: AsyncSession, settings: Settings) -> str:
    """A one-time sign-in URL of the demo administrator (created when missing), for
    `make run` to print: the demo has no mailbox to read first."""
    user = await ensure_user(session, email=DEMO_ADMIN_EMAIL, name="Demo Admin", role="admin")
    return signin_url(settings, await create_link(session, user, now=utcnow()))
