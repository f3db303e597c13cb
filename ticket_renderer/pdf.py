"""A printable A4 ticket: event, date in the event's zone, holder and seat, big code and QR.

Any text in a `TicketView` renders without raising. Text is drawn with DejaVu Sans (or
Liberation Sans) when the machine has it, which covers Latin, Greek and Cyrillic; characters the
font lacks (e.g. CJK) and control characters print as ``?``. Without any TTF font the core
Helvetica is used and everything outside Latin-1 prints as ``?``. Long texts are shortened with
``…`` so a ticket always fits one page with its QR.
"""

import io
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

from ticket_renderer.i18n import format_period, t
from ticket_renderer.qr import qr_png
from ticket_renderer.view import TicketView

__all__ = ["render_ticket_pdf"]

_FONT_CANDIDATES = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
)

_MARGIN = 15.0  # mm
_QR_SIZE = 70.0  # mm: ~6 px per module at 150 dpi for a version-10 code, easy to scan
_GAP = 8.0
_MAX_TITLE = 160
_MAX_FIELD = 100
_LATIN_1 = frozenset(range(32, 256))  # what the core Helvetica can encode


@dataclass(frozen=True)
class _Writer:
    """The font family in use and how text is made printable with it."""

    family: str
    printable: Callable[[str], str]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _without_controls(text: str) -> str:
    # Newlines and tabs would break the layout, invisible format characters would print as
    # "?", and lone surrogates cannot be encoded at all.
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category == "Cs":
            out.append("?")
        elif category != "Cf":
            out.append(char)
    return "".join(out)


def _setup_fonts(pdf: FPDF) -> _Writer:
    for index, (regular, bold) in enumerate(_FONT_CANDIDATES):
        family = f"ticket{index}"  # one family per candidate, so a half-loaded one is never reused
        if not (os.path.isfile(regular) and os.path.isfile(bold)):
            continue
        try:
            pdf.add_font(family, "", regular)
            pdf.add_font(family, "B", bold)
        except Exception:  # a broken font file must not cost the guest their ticket
            continue
        regular_font, bold_font = pdf.fonts[family], pdf.fonts[f"{family}B"]
        if isinstance(regular_font, TTFFont) and isinstance(bold_font, TTFFont):
            covered = frozenset(regular_font.cmap) & frozenset(bold_font.cmap)
            return _Writer(family, partial(_replace_missing, covered=covered))
    return _Writer("helvetica", partial(_replace_missing, covered=_LATIN_1))


def _replace_missing(text: str, covered: frozenset[int]) -> str:
    cleaned = _without_controls(text)
    return "".join(char if ord(char) in covered else "?" for char in cleaned)


def _row(pdf: FPDF, w: _Writer, width: float, label: str, value: str) -> None:
    pdf.set_font(w.family, "", 9)
    pdf.set_text_color(110, 110, 110)
    pdf.multi_cell(width, 4.5, w.printable(label), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(w.family, "B", 12)
    pdf.set_text_color(0, 0, 0)
    pdf.multi_cell(
        width, 6, w.printable(_shorten(value, _MAX_FIELD)), new_x=XPos.LEFT, new_y=YPos.NEXT
    )
    pdf.ln(2)


def _header(pdf: FPDF, w: _Writer, view: TicketView) -> None:
    lang = view.language
    pdf.set_font(w.family, "", 10)
    pdf.set_text_color(110, 110, 110)
    pdf.cell(0, 6, w.printable(t(lang, "ticket").upper()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(w.family, "B", 20)
    title = w.printable(_shorten(view.event_name, _MAX_TITLE))
    pdf.multi_cell(0, 9, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font(w.family, "", 12)
    when = format_period(view.starts_at, view.ends_at, view.timezone, lang)
    pdf.multi_cell(0, 6, w.printable(when), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if view.venue:
        venue = w.printable(_shorten(view.venue, _MAX_FIELD))
        pdf.multi_cell(0, 6, venue, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)


def _details(pdf: FPDF, w: _Writer, view: TicketView, width: float) -> None:
    lang = view.language
    if view.holder_name:
        _row(pdf, w, width, t(lang, "holder"), view.holder_name)
    _row(pdf, w, width, t(lang, "ticket_type"), view.ticket_type)
    if view.seat:
        _row(pdf, w, width, t(lang, "seat"), view.seat)
    _row(pdf, w, width, t(lang, "persons"), str(view.persons))
    pdf.set_font(w.family, "", 9)
    pdf.set_text_color(110, 110, 110)
    pdf.cell(width, 4.5, w.printable(t(lang, "code")), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(w.family, "B", 28)
    code = w.printable(_shorten(view.code, 24))
    pdf.cell(width, 13, code, new_x=XPos.LEFT, new_y=YPos.NEXT)


def _qr(pdf: FPDF, token: str, x: float, y: float) -> None:
    try:
        png = qr_png(token)
    except segno.DataOverflowError:
        # Only a token far beyond Tessera's ~210 characters overflows; the code still admits.
        return
    pdf.image(io.BytesIO(png), x=x, y=y, w=_QR_SIZE, h=_QR_SIZE)


def render_ticket_pdf(view: TicketView) -> bytes:
    """The ticket as a one-page A4 PDF in `view.language`; never raises for any text in `view`."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    writer = _setup_fonts(pdf)
    pdf.set_title(writer.printable(_shorten(view.event_name, _MAX_TITLE)))
    pdf.set_creator("Tessera")
    top = pdf.get_y()
    _header(pdf, writer, view)
    block_top = pdf.get_y()
    qr_x = pdf.w - _MARGIN - _QR_SIZE
    _qr(pdf, view.token, qr_x, block_top)
    _details(pdf, writer, view, qr_x - _MARGIN - _GAP)
    pdf.set_y(max(pdf.get_y(), block_top + _QR_SIZE) + 4)
    pdf.set_font(writer.family, "", 11)
    show = writer.printable(t(view.language, "show_code"))
    pdf.cell(0, 6, show, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(writer.family, "", 7)
    pdf.set_text_color(110, 110, 110)
    reference = writer.printable(f"{_shorten(view.ticket_id, 40)} · v{view.version}")
    pdf.cell(0, 5, reference, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(180, 180, 180)
    pdf.rect(_MARGIN - 5, top - 5, pdf.w - 2 * _MARGIN + 10, pdf.get_y() - top + 8)
    return bytes(pdf.output())
