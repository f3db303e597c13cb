"""Read an import's HTTP body: a multipart `file` field, or pasted lines as a text body.

Rules:
- `multipart/form-data`: the part named `file` (its file name and Content-Type are kept; a
  part without a file name is pasted text). Other parts are read past and dropped; a missing
  `file` part is a 422 naming the field, a broken multipart body a 400.
- `text/plain`, `text/csv`, `text/tab-separated-values`: the body is the data (pasted lines,
  or a file sent as it is); no file name.
- Any other media type: 415.
- At most `settings.import_max_bytes` of body: the announced Content-Length is checked before
  anything is read, then the bytes as they arrive, so a client lying about (or not sending)
  its length is cut off at the limit too. Past it: 413 problem+json naming the limit.
  Routes that read an upload set `request_max_body_size=None` (or at least the import limit):
  the app-wide 1 MiB JSON limit would otherwise refuse the body first, with a vaguer message.
- The bytes are not decoded here: the charset of a part or body is only a hint the source
  reader does not need, since it detects the encoding itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from server.config import Settings
from server.errors import BodyInvalid, FieldError, MalformedBody, UnsupportedMediaType

__all__ = ["FILE_FIELD", "TEXT_MEDIA_TYPES", "ImportTooLarge", "Upload", "read_upload"]

FILE_FIELD = "file"
TEXT_MEDIA_TYPES = frozenset({"text/plain", "text/csv", "text/tab-separated-values"})
_MULTIPART = "multipart/form-data"
_MAX_PARTS = 16


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    filename: str | None
    content_type: str | None


class ImportTooLarge(HTTPException):
    """413: the upload is over the import limit (the detail names it)."""

    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            detail=f"an import is at most {limit} bytes ({_human(limit)}); "
            "split the file or raise TESSERA_IMPORT_MAX_BYTES",
            status_code=413,
        )
        self.limit = limit


async def read_upload(request: Request[Any, Any, Any], settings: Settings) -> Upload:
    """The uploaded bytes, their file name and media type; raises the 4xx errors above."""
    limit = settings.import_max_bytes
    content_type = request.headers.get("content-type", "")
    media_type, options = parse_options_header(content_type)
    media_type = media_type.lower()
    if media_type != _MULTIPART and media_type not in TEXT_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"send the file as multipart/form-data (field {FILE_FIELD!r}) or pasted lines as "
            f"text/plain, not {content_type or 'no Content-Type'!r}"
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise ImportTooLarge(limit)
    chunks = _limited(request, limit)
    if media_type in TEXT_MEDIA_TYPES:
        return Upload(b"".join([chunk async for chunk in chunks]), None, media_type)
    boundary = options.get("boundary")
    if not boundary:
        raise MalformedBody("the multipart Content-Type has no boundary")
    return await _file_part(chunks, boundary)


async def _limited(request: Request[Any, Any, Any], limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, refused with ImportTooLarge once more than `limit` bytes came."""
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise ImportTooLarge(limit)
            if chunk:
                yield chunk
    except RequestEntityTooLarge:  # the route's own limit (the detail names the lower one)
        route_limit = request.route_handler.resolve_request_max_body_size()
        raise ImportTooLarge(min(limit, route_limit or limit)) from None


async def _file_part(chunks: AsyncIterator[bytes], boundary: str) -> Upload:
    """The `file` part of a multipart body; the other parts' bytes are dropped as they come."""
    found: Upload | None = None
    data = bytearray()
    segment: MultipartSegment | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=_MAX_PARTS) as parser:
            async for chunk in chunks:
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                    elif event is None:
                        if segment is not None and segment.name == FILE_FIELD and found is None:
                            found = _upload(bytes(data), segment)
                        data.clear()
                    elif segment is not None and segment.name == FILE_FIELD and found is None:
                        data += event
                if parser.closed:
                    break
    except MultipartError as exc:
        raise MalformedBody(f"the multipart body cannot be read: {exc}") from None
    if found is None:
        raise BodyInvalid([FieldError(FILE_FIELD, "required: the file or the pasted lines")])
    return found


def _upload(data: bytes, segment: MultipartSegment) -> Upload:
    if segment.filename:
        media = (segment.content_type or "").split(";", 1)[0].strip().lower() or None
        return Upload(data, segment.filename, media)
    return Upload(data, None, "text/plain")


def _human(limit: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} bytes"
