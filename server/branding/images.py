"""Checking and re-encoding an uploaded logo or banner with Pillow.

An upload is never stored as sent: it is decoded, its size checked before the pixels are read
(a small file may claim 100 000 x 100 000 pixels), and encoded anew in its own format. What is
kept are pixels alone: no EXIF, no comments, no trailing bytes of a polyglot. SVG (a script
carrier) is not an image format here.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from server.errors import BodyInvalid, FieldError

__all__ = ["KINDS", "MAX_BYTES", "MAX_SIDE", "CleanImage", "clean_image"]

KINDS = ("logo", "banner")
MAX_BYTES = 1_000_000
MAX_SIDE = 4000
_TYPES = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
}


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _refuse(message: str) -> BodyInvalid:
    return BodyInvalid([FieldError("image", message)])


def clean_image(raw: bytes) -> CleanImage:
    """`raw` decoded and re-encoded; raises BodyInvalid ("image") for anything else."""
    if not raw:
        raise _refuse("is empty: send the image's bytes as the body")
    if len(raw) > MAX_BYTES:
        raise _refuse(f"is {len(raw)} bytes, over the {MAX_BYTES} allowed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=list(_TYPES))
            kind = _TYPES[str(image.format)]
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE:
                raise _refuse(f"is {width}x{height} pixels, over {MAX_SIDE}x{MAX_SIDE}")
            image.load()  # the whole image: a truncated file fails here
    except BodyInvalid:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse("must be a PNG, JPEG or WebP image of at most 4000x4000 pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise _refuse("could not be read: a damaged or truncated image") from None
    return CleanImage(_encode(image, str(image.format)), kind[0], kind[1], width, height)


def _encode(image: Image.Image, fmt: str) -> bytes:
    """The pixels of `image` in `fmt`, and nothing else of the file."""
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    out = io.BytesIO()
    options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {"optimize": True}
    image.save(out, format=fmt, **options)
    return out.getvalue()
