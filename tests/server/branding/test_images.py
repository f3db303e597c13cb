"""The event's logo and banner over the API: only real PNG, JPEG or WebP images, re-encoded and
served by content hash; garbage is a 4xx problem, never a 5xx."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.conftest import problem_of
from tests.factories import create_event


def picture(fmt: str = "PNG", size: tuple[int, int] = (40, 20), **save: object) -> bytes:
    out = io.BytesIO()
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    Image.new(mode, size, (122, 31, 92)).save(out, format=fmt, **save)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def put(api, event_id: str, kind: str, data: bytes, content_type: str = "image/png"):
    return await api.put(
        f"/api/v1/events/{event_id}/branding/{kind}",
        content=data,
        headers={"Content-Type": content_type},
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_an_image_is_re_encoded_and_served_by_hash(api, client, fmt):
    event = await create_event(api)
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    sent = picture(fmt, exif=exif.tobytes()) + b"<script>alert(1)</script>"
    response = await put(api, event["id"], "logo", sent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["width"] == 40 and body["height"] == 20
    served = await client.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == body["content_type"]
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert b"secret description" not in served.content and b"<script>" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (40, 20)


GARBAGE = [
    pytest.param(b"just some text\n", id="text-called-png"),
    pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
    pytest.param(b"", id="empty"),
    pytest.param(png_claiming(100_000, 100_000), id="png-bomb"),
    pytest.param(png_claiming(4001, 10), id="too-wide"),
    pytest.param(picture("PNG", (300, 300))[:200], id="truncated-png"),
    pytest.param(picture("JPEG", (300, 300))[:300], id="truncated-jpeg"),
    pytest.param(picture("GIF"), id="gif"),
]


@pytest.mark.parametrize("data", GARBAGE)
async def test_garbage_is_422_on_image_and_nothing_is_stored(api, client, data):
    event = await create_event(api)
    response = await put(api, event["id"], "banner", data)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in problem_of(response)["errors"]] == ["image"]
    again = await put(api, event["id"], "banner", picture())
    assert again.status_code == 200  # the refusal left nothing half-written


async def test_a_ten_megabyte_body_is_413(api):
    event = await create_event(api)
    response = await put(api, event["id"], "logo", b"\x89PNG" + b"\0" * 10_000_000)
    assert response.status_code == 413


async def test_unknown_kind_and_event_are_404(api):
    event = await create_event(api)
    assert (await put(api, event["id"], "favicon", picture())).status_code == 404
    assert (await put(api, "NOPE", "logo", picture())).status_code == 404


async def test_another_events_image_name_is_404_and_delete_removes_it(api, client):
    first, second = await create_event(api), await create_event(api)
    url = (await put(api, first["id"], "logo", picture())).json()["url"]
    name = url.rsplit("/", 1)[1]
    assert (await client.get(f"/brand/{second['id']}/{name}")).status_code == 404
    assert (await client.get(url.replace("logo-", "logo-0"))).status_code == 404
    removed = await api.delete(f"/api/v1/events/{first['id']}/branding/logo")
    assert removed.status_code == 204
    assert (await client.get(url)).status_code == 404
    again = await api.delete(f"/api/v1/events/{first['id']}/branding/logo")
    assert again.status_code == 404


async def test_a_read_only_token_cannot_upload_or_remove(api, client, read_only_token):
    event = await create_event(api)
    headers = {"Authorization": f"Bearer {read_only_token}", "Content-Type": "image/png"}
    path = f"/api/v1/events/{event['id']}/branding/logo"
    assert (await client.put(path, content=picture(), headers=headers)).status_code == 403
    assert (await client.delete(path, headers=headers)).status_code == 403
