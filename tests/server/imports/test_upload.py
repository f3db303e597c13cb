"""Reading an import body over HTTP: multipart file, pasted text, the size limit, media types."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient, TestClient

from server.config import Settings
from server.imports.upload import Upload, _file_part, read_upload
from server.problems import EXCEPTION_HANDLERS

LIMIT = 64 * 1024
PROBLEM = "application/problem+json"


@post("/upload", request_max_body_size=None)
async def upload_echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
    upload = await read_upload(request, request.app.state.settings)
    return {
        "size": len(upload.data),
        "head": upload.data[:40].decode("latin-1"),
        "filename": upload.filename,
        "content_type": upload.content_type,
    }


def _app() -> Litestar:
    app = Litestar(
        [upload_echo],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=1024,  # the app's JSON limit, far below the import limit
    )
    app.state.settings = Settings(import_max_bytes=LIMIT)
    return app


@pytest.fixture
async def client():
    async with AsyncTestClient(_app()) as test_client:
        yield test_client


async def test_a_multipart_file_is_read_with_its_name_and_type(client):
    data = "email;langue\nzoë@exemple.ch;fr\n".encode("cp1252") + b"x" * 4000
    response = await client.post(
        "/upload",
        files={"file": ("invités.csv", data, "text/csv; charset=windows-1252")},
        data={"comment": "ignored"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "size": len(data),
        "head": data[:40].decode("latin-1"),
        "filename": "invités.csv",
        "content_type": "text/csv",
    }


async def test_a_multipart_field_without_a_file_name_is_pasted_text(client):
    response = await client.post("/upload", files={"file": (None, b"a@exemple.ch;3\n")})
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "text/plain"
    assert response.json()["filename"] is None


async def test_binary_bytes_in_a_multipart_part_are_not_decoded(client):
    data = bytes(range(256)) * 4
    response = await client.post("/upload", files={"file": ("x.png", data, "image/png")})
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 1024


@pytest.mark.parametrize("media_type", ["text/plain", "text/csv", "text/plain; charset=utf-8"])
async def test_a_text_body_is_pasted_lines(client, media_type):
    body = b"mel@yahoo.fr\nami@exemple.ch;3\n"
    response = await client.post("/upload", content=body, headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text
    assert response.json()["size"] == len(body)
    assert response.json()["filename"] is None
    assert response.json()["content_type"] == media_type.split(";")[0]


async def test_a_body_at_the_limit_is_read(client):
    body = b"a" * LIMIT
    response = await client.post("/upload", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201
    assert response.json()["size"] == LIMIT


async def test_a_body_over_the_limit_is_413_naming_it(client):
    body = b"a" * (LIMIT + 1)
    response = await client.post("/upload", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "65536 bytes (64 KiB)" in response.json()["detail"]


async def test_a_multipart_file_over_the_limit_is_413(client):
    files = {"file": ("big.csv", b"x" * (LIMIT * 2), "text/csv")}
    response = await client.post("/upload", files=files)
    assert response.status_code == 413
    assert "65536" in response.json()["detail"]


def test_a_body_without_content_length_is_cut_at_the_limit():
    def chunks():  # a generator body: sent chunked, without Content-Length
        for _ in range(100):
            yield b"y" * 4096

    with TestClient(_app()) as sync_client:  # the async client cannot send a generator body
        response = sync_client.post(
            "/upload", content=chunks(), headers={"Content-Type": "text/plain"}
        )
    assert response.request.headers.get("content-length") is None
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/octet-stream",
        "image/png",
        "",
        "multipart/mixed; boundary=x",
    ],
)
async def test_other_media_types_are_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/upload", content=b"a@b.ch", headers=headers)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


async def test_a_multipart_body_without_the_file_field_is_422(client):
    response = await client.post("/upload", files={"other": ("x.csv", b"a@b.ch", "text/csv")})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "file", "message": "required: the file or the pasted lines"}
    ]


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage", b"--BOUNDARY\r\nContent-Disposition: form-data; name=file\r\n\r\nabc"],
)
async def test_a_broken_multipart_body_is_400(client, body):
    headers = {"Content-Type": "multipart/form-data; boundary=BOUNDARY"}
    response = await client.post("/upload", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_body"


async def test_a_multipart_content_type_without_boundary_is_400(client):
    headers = {"Content-Type": "multipart/form-data"}
    response = await client.post("/upload", content=b"x", headers=headers)
    assert response.status_code == 400


@post("/strict", request_max_body_size=2048)
async def strict_route(request: Request[Any, Any, Any]) -> dict[str, Any]:
    upload = await read_upload(request, request.app.state.settings)
    return {"size": len(upload.data)}


def test_a_route_with_a_lower_limit_of_its_own_names_that_limit():
    app = Litestar([strict_route], exception_handlers=EXCEPTION_HANDLERS)
    app.state.settings = Settings(import_max_bytes=LIMIT)

    def chunks():
        yield b"z" * 4096

    with TestClient(app) as sync_client:
        headers = {"Content-Type": "text/plain"}
        response = sync_client.post("/strict", content=chunks(), headers=headers)
        assert response.status_code == 413
        assert "at most 2048 bytes" in response.json()["detail"]
        assert sync_client.post("/strict", content=b"a@b.ch", headers=headers).status_code == 201


def _multipart(boundary: bytes, data: bytes, filename: str) -> bytes:
    return (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="note"\r\n\r\n'
        b"before\r\n"
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename.encode() + b'"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + data + b"\r\n"
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="after"\r\n\r\n'
        b"x\r\n"
        b"--" + boundary + b"--\r\n"
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=3000) | st.just(b"\r\n--BOUNDAR\r\n-BOUNDARY\r\n--BOUNDARZ"),  # near misses
    st.lists(st.integers(1, 4000), max_size=20),
)
def test_a_multipart_body_in_any_chunks_gives_the_same_file(data, cuts):
    """The body arrives however the network splits it, down to a byte at a time."""
    body = _multipart(b"BOUNDARY", data, "invités.csv")
    points = sorted({min(cut, len(body)) for cut in cuts} | {0, len(body)})

    async def chunks():
        for start, end in itertools.pairwise(points):
            yield body[start:end]

    upload = asyncio.run(_file_part(chunks(), "BOUNDARY"))
    assert upload == Upload(data, "invités.csv", "text/csv")


def test_a_multipart_body_byte_by_byte_gives_the_same_file():
    data = "email;nom\r\nzoë@exemple.ch;Zoë\r\n".encode()
    body = _multipart(b"b0undary", data, "g.csv")

    async def chunks():
        for index in range(len(body)):
            yield body[index : index + 1]

    assert asyncio.run(_file_part(chunks(), "b0undary")).data == data
