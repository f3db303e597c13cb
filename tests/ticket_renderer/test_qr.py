"""QR codes decode back to the exact token, stay small, and are made once per token."""

import io
import xml.etree.ElementTree as ET

import zxingcpp
from PIL import Image

from tests.ticket_renderer.factories import TOKEN
from ticket_renderer.qr import make_qr, qr_png, qr_svg


def decode_all(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def test_png_decodes_back_to_the_exact_token() -> None:
    image = Image.open(io.BytesIO(qr_png(TOKEN)))
    assert decode_all(image) == [TOKEN]


def test_small_png_still_decodes() -> None:
    image = Image.open(io.BytesIO(qr_png(TOKEN, scale=3)))
    assert decode_all(image) == [TOKEN]


def test_png_has_a_four_module_quiet_zone() -> None:
    qr = make_qr(TOKEN)
    image = Image.open(io.BytesIO(qr_png(TOKEN, scale=8)))
    assert image.size == ((qr.version * 4 + 17 + 8) * 8,) * 2
    corner = image.convert("L").crop((0, 0, 32, 32))
    assert corner.getextrema() == (255, 255)


def test_token_gets_version_10_or_less_at_level_m_with_the_fixed_mask() -> None:
    qr = make_qr(TOKEN)
    assert qr.version <= 10
    assert qr.error == "M"
    assert qr.mask == 0


def test_qr_is_cached_per_token() -> None:
    assert make_qr(TOKEN) is make_qr(TOKEN)
    assert qr_png(TOKEN) is qr_png(TOKEN)
    assert qr_svg(TOKEN) is qr_svg(TOKEN)


def test_svg_is_well_formed_and_scales_with_a_viewbox() -> None:
    svg = qr_svg(TOKEN, scale=4)
    assert not svg.startswith(b"<?xml")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    size = (make_qr(TOKEN).version * 4 + 17 + 8) * 4
    assert root.attrib["viewBox"] == f"0 0 {size} {size}"
    assert root.attrib["width"] == root.attrib["height"] == str(size)
