"""Console forms that carry a file: a strict multipart/form-data reader, and the analysed
uploads kept on the server until their commit.

The reader checks in `read_form`'s order (server/console/web.py), each step answering before
the next runs:
  1. cross-site → 403 page (`check_same_site`);
  2. the body: `multipart/form-data` with a boundary (else 415 / 400), at most the import limit
     (`TESSERA_IMPORT_MAX_BYTES`, as the API's `read_upload`: the announced length first, then
     the bytes as they come) → 413 page; at most 16 parts, headers in UTF-8, text fields of at
     most 64 KiB without NUL (the pasted lines field excepted: it is data, checked by the
     import's reader) → 400 page;
  3. the CSRF token of the `csrf` field → 403 page.

An analysed upload is kept (rather than re-posted by the browser) so that the organiser
uploads a file once and the report page stays small whatever the file's size. It lives in
`<data dir>/console-imports/` (the data dir is the maildir's parent, `var/` by default) in a
0700 directory, as a 0600 file named by 32 random bytes, with its owner (user id), its target
(event or list) and its file name; it expires after an hour and is deleted by its commit. The
commit still analyses it again and checks the analysis's digest, so the options sent with the
commit must be those analysed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from server.config import Settings
from server.console.web import MAX_FORM_BYTES, ConsolePageError, Form, check_same_site

__all__ = [
    "FILE_FIELD",
    "LINES_FIELD",
    "STORE_SECONDS",
    "StoredUpload",
    "UploadForm",
    "delete_upload",
    "load_upload",
    "read_upload_form",
    "store_upload",
]

FILE_FIELD = "file"
LINES_FIELD = "lines"  # the pasted lines: data, so as large as a file may be
_MAX_PARTS = 16
STORE_SECONDS = 3600
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class UploadForm:
    """The text fields of the form, and the file part (None: no file chosen)."""

    fields: Form
    data: bytes | None
    filename: str | None
    content_type: str | None


def _too_large() -> ConsolePageError:
    return ConsolePageError(413, "bad_request", "imp_too_large")


async def _chunks(request: Request[Any, Any, Any], limit: int) -> Any:
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large()
            if chunk:
                yield chunk
    except RequestEntityTooLarge:
        raise _too_large() from None


async def read_upload_form(
    request: Request[Any, Any, Any], csrf: str, settings: Settings
) -> UploadForm:
    """The request's multipart form after the checks of the module docstring."""
    check_same_site(request)
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    if media_type.lower() != "multipart/form-data":
        raise ConsolePageError(415, "bad_request", "bad_request")
    boundary = options.get("boundary")
    if not boundary:
        raise ConsolePageError(400, "bad_request", "bad_request")
    limit = settings.import_max_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large()
    pairs: list[tuple[str, str]] = []
    file: tuple[bytes, str | None, str | None] | None = None
    segment: MultipartSegment | None = None
    data = bytearray()
    try:
        with PushMultipartParser(boundary, max_segment_count=_MAX_PARTS) as parser:
            async for chunk in _chunks(request, limit):
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        data.clear()
                    elif event is None and segment is not None:
                        file = _part(segment, bytes(data), pairs) or file
                        data.clear()
                    elif segment is not None:
                        data += event
                        if segment.name not in (FILE_FIELD, LINES_FIELD) and (
                            len(data) > MAX_FORM_BYTES
                        ):
                            raise ConsolePageError(400, "bad_request", "bad_request")
                if parser.closed:
                    break
    except MultipartError:
        raise ConsolePageError(400, "bad_request", "bad_request") from None
    fields = Form(pairs)
    given = fields.get("csrf")
    if not csrf or not hmac.compare_digest(given.encode(), csrf.encode()):
        raise ConsolePageError(403, "forbidden", "expired_form")
    if file is None:
        return UploadForm(fields, None, None, None)
    return UploadForm(fields, *file)


def _part(
    segment: MultipartSegment, data: bytes, pairs: list[tuple[str, str]]
) -> tuple[bytes, str | None, str | None] | None:
    """Keep a text field in `pairs`, or answer the file part (an empty one is no file)."""
    if segment.name == FILE_FIELD and segment.filename is not None:
        if not data and not segment.filename:
            return None  # the browser's "no file chosen"
        if "\x00" in segment.filename:
            raise ConsolePageError(400, "bad_request", "bad_request")
        media = (segment.content_type or "").split(";", 1)[0].strip().lower() or None
        return data, segment.filename[:200], media
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConsolePageError(400, "bad_request", "bad_request") from None
    if segment.name != LINES_FIELD and ("\x00" in text or "\x00" in segment.name):
        raise ConsolePageError(400, "bad_request", "bad_request")
    pairs.append((segment.name, text))
    return None


# -- analysed uploads kept until their commit ------------------------------------------------


@dataclass(frozen=True)
class StoredUpload:
    token: str
    data: bytes
    filename: str | None
    content_type: str | None


def _directory(settings: Settings) -> Path:
    directory = settings.maildir.parent / "console-imports"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def _purge(directory: Path, now: float) -> None:
    for path in directory.iterdir():
        try:
            if now - path.stat().st_mtime > STORE_SECONDS:
                path.unlink()
        except OSError:
            continue  # another request removed it first


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def store_upload(
    settings: Settings,
    *,
    owner: str,
    target: str,
    data: bytes,
    filename: str | None,
    content_type: str | None,
) -> str:
    """Keep `data` for the commit of `owner` into `target`; answers its token."""
    directory = _directory(settings)
    _purge(directory, time.time())
    token = secrets.token_urlsafe(32)
    meta = {"owner": owner, "target": target, "filename": filename, "type": content_type}
    _write_private(directory / f"{token}.json", json.dumps(meta).encode())
    _write_private(directory / f"{token}.data", data)
    return token


def _paths(settings: Settings, token: str) -> tuple[Path, Path] | None:
    if not (40 <= len(token) <= 50) or not set(token) <= _TOKEN_CHARS:
        return None
    directory = _directory(settings)
    return directory / f"{token}.json", directory / f"{token}.data"


def load_upload(settings: Settings, token: str, *, owner: str, target: str) -> StoredUpload:
    """The upload kept under `token` for this owner and target; the 404 page otherwise (an
    expired, committed, foreign or made-up token)."""
    paths = _paths(settings, token)
    gone = ConsolePageError(404, "not_found", "imp_upload_gone")
    if paths is None:
        raise gone
    meta_path, data_path = paths
    try:
        if time.time() - meta_path.stat().st_mtime > STORE_SECONDS:
            raise gone
        meta = json.loads(meta_path.read_bytes())
        data = data_path.read_bytes()
    except (OSError, ValueError):
        raise gone from None
    if meta.get("owner") != owner or meta.get("target") != target:
        raise gone
    return StoredUpload(token, data, meta.get("filename"), meta.get("type"))


def delete_upload(settings: Settings, token: str) -> None:
    paths = _paths(settings, token)
    for path in paths or ():
        with contextlib.suppress(OSError):
            path.unlink()
