"""QR codes of ticket tokens, made once per token and cached.

Level M without error boosting keeps a Tessera token at version 10 or below (ARCHITECTURE §4).
The mask is fixed: segno's automatic choice scores all eight masks and costs 12-18 ms, a
fixed one ~3 ms, and every mask is equally valid to a reader.
"""

import io
from functools import lru_cache

import segno

__all__ = ["QR_BORDER", "QR_ERROR", "QR_MASK", "make_qr", "qr_png", "qr_svg"]

QR_ERROR = "m"
QR_MASK = 0
QR_BORDER = 4  # the quiet zone the QR specification asks for, in modules

# Each ticket version renders a handful of times (mail, guest page, PDF), then never again.
_CACHE_SIZE = 1024


@lru_cache(maxsize=_CACHE_SIZE)
def make_qr(token: str) -> segno.QRCode:
    """The QR code of `token`: level M, no boost, fixed mask, smallest version that fits."""
    return segno.make(token, error=QR_ERROR, boost_error=False, mask=QR_MASK, micro=False)


@lru_cache(maxsize=_CACHE_SIZE)
def qr_svg(token: str, *, scale: int = 8) -> bytes:
    """The QR of `token` as a standalone SVG with a viewBox: `scale` px per module, no XML decl."""
    qr = make_qr(token)
    out = io.BytesIO()
    # omitsize writes a viewBox instead of width/height; the size is put back so the image
    # has an intrinsic size yet still scales with CSS.
    qr.save(
        out, kind="svg", scale=scale, border=QR_BORDER, xmldecl=False, svgns=True, omitsize=True
    )
    width, height = qr.symbol_size(scale=scale, border=QR_BORDER)
    return out.getvalue().replace(b"<svg ", f'<svg width="{width}" height="{height}" '.encode(), 1)


@lru_cache(maxsize=_CACHE_SIZE)
def qr_png(token: str, *, scale: int = 8) -> bytes:
    """The QR of `token` as a black-on-white PNG: `scale` px per module, 4-module quiet zone."""
    out = io.BytesIO()
    make_qr(token).save(out, kind="png", scale=scale, border=QR_BORDER)
    return out.getvalue()
