"""The printable ticket: one page, its QR decodes at 150 dpi, any text renders."""

from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ticket_renderer.pdf
from tests.ticket_renderer.factories import TOKEN, ticket_view
from ticket_renderer import render_ticket_pdf
from ticket_renderer.view import TicketView


def rasterise(pdf: bytes, dpi: int = 150) -> list[str]:
    """The texts of the barcodes found on each page, rendered at `dpi`."""
    document = pdfium.PdfDocument(pdf)
    try:
        texts = []
        for page in document:
            image = page.render(scale=dpi / 72).to_pil()
            texts.extend(barcode.text for barcode in zxingcpp.read_barcodes(image))
        return texts
    finally:
        document.close()


def page_text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return "".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def page_count(pdf: bytes) -> int:
    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def test_pdf_qr_decodes_to_the_token_at_150_dpi() -> None:
    pdf = render_ticket_pdf(ticket_view())
    assert pdf.startswith(b"%PDF-")
    assert rasterise(pdf) == [TOKEN]
    assert page_count(pdf) == 1


def test_pdf_shows_event_date_in_the_event_zone_and_details_in_french() -> None:
    text = page_text(render_ticket_pdf(ticket_view()))
    for expected in (
        "Concert du printemps",
        "samedi 14 mars 2026, 20:00 \N{EN DASH} 23:30",
        "Salle Pleyel, Paris",
        "Camille Martin",
        "Orchestre",
        "B12",
        "K7QH-M2PX",
        "Présentez ce code à l'entrée",
    ):
        assert expected in text


def test_pdf_uses_the_view_language() -> None:
    text = page_text(render_ticket_pdf(ticket_view(language="de")))
    assert "Samstag, 14. März 2026, 20:00" in text
    assert "Zeigen Sie diesen Code am Eingang vor" in text


def test_pdf_with_non_latin_names_renders_and_still_decodes() -> None:
    view = ticket_view(holder_name="Zoë Łukasz 王小明", event_name="Фестиваль 音楽祭 🎉")
    pdf = render_ticket_pdf(view)
    assert rasterise(pdf) == [TOKEN]
    text = page_text(pdf)
    assert "Zoë Łukasz" in text
    assert "Фестиваль" in text


def test_pdf_without_any_ttf_font_falls_back_to_helvetica_and_question_marks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    monkeypatch.setattr(ticket_renderer.pdf, "_FONT_CANDIDATES", ((str(broken), str(broken)),))
    pdf = render_ticket_pdf(ticket_view(holder_name="Zoë Łukasz 王", event_name="Fête\tà Köln"))
    assert rasterise(pdf) == [TOKEN]
    text = page_text(pdf)
    assert "Zoë ?ukasz ?" in text
    assert "Fête à Köln" in text


def test_pdf_without_optional_fields_renders() -> None:
    view = ticket_view(ends_at=None, venue=None, holder_name=None, seat=None, event_url=None)
    assert rasterise(render_ticket_pdf(view)) == [TOKEN]


def test_pdf_with_overlong_texts_stays_on_one_page_with_its_qr() -> None:
    view = ticket_view(event_name="Très long titre " * 200, holder_name="X" * 5000, venue="V" * 900)
    pdf = render_ticket_pdf(view)
    assert page_count(pdf) == 1
    assert rasterise(pdf) == [TOKEN]


def test_pdf_with_unknown_zone_and_oversized_token_still_renders() -> None:
    pdf = render_ticket_pdf(ticket_view(timezone="Mars/Olympus_Mons", token="x" * 5000))
    assert page_count(pdf) == 1


_any_text = st.text(max_size=300)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_name=_any_text,
    holder_name=st.none() | _any_text,
    venue=st.none() | _any_text,
    seat=st.none() | _any_text,
    ticket_type=_any_text,
    code=_any_text,
    timezone=_any_text,
    language=_any_text,
    ticket_id=_any_text,
)
def test_pdf_never_raises_for_any_text(**fields: str | None) -> None:
    view: TicketView = ticket_view(**fields)
    assert render_ticket_pdf(view).startswith(b"%PDF-")
