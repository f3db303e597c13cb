"""The redeem fast path (server/checkin/fast_redeem.py): an ordinary redeem answered without
Litestar's request machinery is the same answer Litestar gives; anything else is Litestar's."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from server.checkin.fast_redeem import FastRedeem
from tests.conftest import problem_of
from tests.server.checkin.helpers import venue

REDEEM = "/api/v1/checkin/redeem"
# Accepted by the route's strict body decoder, but not by the fast path: Litestar answers it.
VIA_LITESTAR = "application/vnd.tessera+json"


def _fast(app: Any) -> FastRedeem:
    fast = app.asgi_handler.handler  # inside ObserveRequests (server/app.py)
    assert isinstance(fast, FastRedeem)
    return fast


def _headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "x-request-id"}


async def _post(api: Any, token: str, body: bytes, content_type: str, **extra: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type, **extra}
    return await api.post(REDEEM, content=body, headers=headers)


def _body(code: str, list_id: str, scan_id: str) -> bytes:
    return f'{{"scan_id":"{scan_id}","code":"{code}","list_id":"{list_id}"}}'.encode()


async def test_an_ordinary_redeem_is_answered_by_the_fast_path_as_litestar_answers_it(api, app):
    v = await venue(api, 2)
    fast, before = _fast(app), _fast(app).answered
    body = _body(v.tickets[0]["token"], v.list_id, "s-1")
    first = await _post(api, v.door.token, body, "application/json")
    assert fast.answered == before + 1
    again = await _post(api, v.door.token, body, VIA_LITESTAR)  # the stored result, by Litestar
    assert fast.answered == before + 1
    assert first.status_code == again.status_code == 200
    assert first.json()["verdict"] == "accepted"
    assert first.content == again.content
    assert _headers(first) == _headers(again)
    assert first.headers["x-request-id"] != again.headers["x-request-id"]
    # a refusal with a first scan (a datetime in it) encodes the same both ways
    refused = _body(v.tickets[0]["code"], v.list_id, "s-2")
    fast_refusal = await _post(api, v.door.token, refused, "application/json; charset=utf-8")
    slow_refusal = await _post(api, v.door.token, refused, VIA_LITESTAR)
    assert fast_refusal.json()["reason"] == "already_redeemed"
    assert fast_refusal.json()["first_scan"]["at"]
    assert fast_refusal.content == slow_refusal.content
    assert fast.answered == before + 2


async def test_a_writer_refusal_on_the_fast_path_is_the_error_maps_answer(api, app):
    v = await venue(api)
    body = _body(v.tickets[0]["code"], v.list_id, str(uuid.uuid4()))
    fast, before = _fast(app), _fast(app).answered
    unknown = await _post(api, "tsd_nobody", body, "application/json")
    via_litestar = await _post(api, "tsd_nobody", body, VIA_LITESTAR)
    assert fast.answered == before
    assert unknown.status_code == via_litestar.status_code == 401
    a, b = problem_of(unknown), problem_of(via_litestar)
    assert {k: v for k, v in a.items() if k != "request_id"} == {
        k: v for k, v in b.items() if k != "request_id"
    }


async def test_the_scan_a_writer_refused_is_not_decided_again_by_the_route(api, app):
    """The route raises what the writer raised: the batch ran once, not twice."""
    v = await venue(api)
    writer = app.state.redeem_writer
    calls: list[str] = []
    real = writer.redeem

    async def counted(token: str, item: Any) -> Any:
        calls.append(item.scan_id)
        return await real(token, item)

    writer.redeem = counted
    try:
        body = _body(v.tickets[0]["code"], v.list_id, "once")
        response = await _post(api, "tsd_unknown", body, "application/json")
    finally:
        del writer.redeem
    assert response.status_code == 401
    assert calls == ["once"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(b'{"scan_id":"x"', "application/json", 400, id="truncated-json"),
        pytest.param(
            b'{"scan_id":"x","code":"A","list_id":"l"}garbage',
            "application/json",
            400,
            id="trailing-garbage",
        ),
        pytest.param(
            b'{"scan_id":1,"code":"A","list_id":"l"}', "application/json", 422, id="wrong-type"
        ),
        pytest.param(
            b'{"scan_id":"x","code":"A","list_id":"l","extra":1}',
            "application/json",
            422,
            id="unknown-field",
        ),
        pytest.param(b'{"scan_id":"x","code":"A","list_id":"l"}', "text/plain", 415, id="not-json"),
        pytest.param(b"", "application/json", 400, id="empty"),
        pytest.param(b"\xff\xfe", "application/json", 400, id="not-utf8"),
    ],
)
async def test_garbage_goes_to_litestar_and_gets_its_refusal(api, app, body, content_type, status):
    v = await venue(api)
    fast, before = _fast(app), _fast(app).answered
    response = await _post(api, v.door.token, body, content_type)
    assert response.status_code == status, response.text
    problem_of(response)
    assert fast.answered == before


async def test_a_body_over_the_limit_is_refused_with_413(api, app, settings):
    v = await venue(api)
    before = _fast(app).answered
    code = "A" * (settings.max_body_bytes + 10)
    response = await _post(api, v.door.token, _body(code, v.list_id, "big"), "application/json")
    assert response.status_code == 413
    assert _fast(app).answered == before


async def test_a_chunked_redeem_without_length_is_answered_by_litestar(live, door):
    """A real socket: `Transfer-Encoding: chunked`, no Content-Length; Litestar reads it."""
    body = _body(door.tickets[0]["code"], door.list_id, "chunked")
    head = _head(live, door.token(), "Transfer-Encoding: chunked")
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    before = _fast(live.app).answered
    status, answer = await _exchange(live, [head + chunked])
    assert status == 200
    assert b'"verdict":"accepted"' in answer
    assert _fast(live.app).answered == before


async def test_a_body_in_two_tcp_writes_is_answered_by_the_fast_path(live, door):
    body = _body(door.tickets[0]["code"], door.list_id, "split")
    head = _head(live, door.token(), f"Content-Length: {len(body)}")
    before = _fast(live.app).answered
    status, answer = await _exchange(live, [head + body[:7], body[7:]])
    assert status == 200
    assert b'"verdict":"accepted"' in answer
    assert _fast(live.app).answered == before + 1


def _head(live: Any, token: str, framing: str) -> bytes:
    host = live.base_url.removeprefix("http://")
    lines = [f"POST {REDEEM} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"Authorization: Bearer {token}", framing, "", ""]
    return "\r\n".join(lines).encode()


async def _exchange(live: Any, writes: list[bytes]) -> tuple[int, bytes]:
    """Send `writes` on one connection, a moment apart; the answer's status and body."""
    host, _, port = live.base_url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for data in writes:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(0.05)
        status_line = await asyncio.wait_for(reader.readline(), 5)
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answer = await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()
    return int(status_line.split()[1]), answer


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic abc", "Bearer ", "bearer  "],
    ids=["none", "basic", "empty-bearer", "blank"],
)
async def test_no_bearer_token_is_a_401_from_litestar(api, app, authorization):
    v = await venue(api)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = _body(v.tickets[0]["code"], v.list_id, "nobody")
    api.headers.pop("Authorization", None)
    response = await api.post(REDEEM, content=body, headers=headers)
    assert response.status_code == 401
    problem_of(response)


class TestAccessLog:
    @pytest.fixture
    def settings(self, settings):  # the test settings, with the access log on (as served)
        return settings.replace(access_log=True)

    async def test_a_fast_redeem_and_a_refused_one_each_log_one_access_line(self, api, app, caplog):
        v = await venue(api)
        caplog.set_level(logging.INFO, logger="tessera.access")
        caplog.clear()
        before = _fast(app).answered
        body = _body(v.tickets[0]["code"], v.list_id, "logged")
        accepted = await _post(api, v.door.token, body, "application/json")
        refused = await _post(api, "tsd_nobody", body, "application/json")
        assert (accepted.status_code, refused.status_code) == (200, 401)
        assert _fast(app).answered == before + 1
        lines = [r for r in caplog.records if r.name == "tessera.access"]
        assert [(r.path, r.status) for r in lines] == [(REDEEM, 200), (REDEEM, 401)]
        assert lines[0].request_id == accepted.headers["x-request-id"]
        assert lines[0].duration_ms >= 0
