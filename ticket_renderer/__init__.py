"""Pure ticket rendering: QR codes, printable PDF, calendar file and labels in fr, en and de.

No web framework and no database: the server builds a `TicketView` and gets bytes back.
"""

from ticket_renderer.i18n import (
    SUPPORTED_LANGUAGES,
    find_zone,
    format_datetime,
    format_period,
    pick_language,
    t,
)
from ticket_renderer.ics import render_ics
from ticket_renderer.qr import make_qr, qr_png, qr_svg
from ticket_renderer.view import TicketView


def render_ticket_pdf(view: TicketView) -> bytes:
    """The ticket as a one-page A4 PDF (`ticket_renderer.pdf`). fpdf2 is imported on the first
    PDF: 0.3 s of CPU that a `tessera` command rendering none (a listing, an import, a backup)
    never pays. `tessera serve` loads it at startup; the worker, on its first ticket mail."""
    from ticket_renderer.pdf import render_ticket_pdf as render

    return render(view)


__all__ = [
    "SUPPORTED_LANGUAGES",
    "TicketView",
    "find_zone",
    "format_datetime",
    "format_period",
    "make_qr",
    "pick_language",
    "qr_png",
    "qr_svg",
    "render_ics",
    "render_ticket_pdf",
    "t",
]
