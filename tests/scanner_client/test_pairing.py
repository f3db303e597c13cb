"""Pairing a door: every accepted form of the organiser's code, garbage refused with a message for
people, the credentials stored privately and atomically, and a real pairing against a served hub.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar, post
from litestar.params import JSONBody

from scanner_client import pairing
from scanner_client.home import (
    CREDENTIALS_FILE,
    STORE_FILE,
    Credentials,
    HomeError,
    ensure_home,
    forget,
    load_credentials,
    save_credentials,
    scan_home,
)
from scanner_client.pairing import PairingError, PairingRequest, pair, parse_pairing_input
from server.app import create_app
from server.config import Settings
from tests.factories import create_event
from tests.live import free_port, serve_in_thread

CODE = "K7QH-M2PX-9RTA"
BASE = "https://tickets.example.org"
URI = "tessera-pair:?v=1&url=https%3A%2F%2Ftickets.example.org&code=K7QH-M2PX-9RTA"
PAYLOAD = '{"v":1,"url":"https://tickets.example.org","code":"K7QH-M2PX-9RTA"}'


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- reading the input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "server", "expected"),
    [
        pytest.param(CODE, BASE, (BASE, CODE), id="typed"),
        pytest.param("k7qh m2px 9rta", BASE, (BASE, CODE), id="lower-case-with-blanks"),
        pytest.param("K7QHM2PX9RTA", BASE, (BASE, CODE), id="no-dashes"),
        pytest.param("  K7QH-M2PX-9RTA\n", BASE + "/", (BASE, CODE), id="trailing-slash-newline"),
        pytest.param("K7QH-M2PX-9RTA", "http://127.0.0.1:8000", ("http://127.0.0.1:8000", CODE)),
        pytest.param("k7qh-m2px-9rta", BASE + "/tessera/", (BASE + "/tessera", CODE), id="path"),
        pytest.param("ABCD-EFGH-IJKL", BASE, (BASE, "ABCD-EFGH-1JK1"), id="misread-letters"),
        pytest.param(URI, None, (BASE, CODE), id="uri"),
        pytest.param("TESSERA-PAIR:?v=1&url=https://h.test/&code=k7qhm2px9rta", None,
                     ("https://h.test", CODE), id="uri-any-case-unencoded"),
        pytest.param(URI, "http://10.0.0.2:8000", ("http://10.0.0.2:8000", CODE), id="uri-server"),
        pytest.param(PAYLOAD, None, (BASE, CODE), id="payload"),
        pytest.param(" " + PAYLOAD.replace(",", ", ") + "\n", None, (BASE, CODE), id="spaced"),
        pytest.param(PAYLOAD, "http://10.0.0.2", ("http://10.0.0.2", CODE), id="payload-server"),
        pytest.param('{"v":1,"code":"K7QH-M2PX-9RTA"}', BASE, (BASE, CODE), id="payload-no-url"),
    ],
)  # fmt: skip
def test_every_accepted_form_gives_the_base_url_and_the_canonical_code(text, server, expected):
    assert parse_pairing_input(text, server) == PairingRequest(*expected)


def test_the_forms_the_hub_hands_out_are_read_back():
    """The create-device answer's `pairing_uri` and `pairing_payload`, as the server builds them."""
    from server.checkin.service import NewDevice

    new = NewDevice(device=None, pairing_code=CODE)  # type: ignore[arg-type]
    for text in (new.pairing_uri("http://127.0.0.1:8000"), new.pairing_payload(BASE + "/x")):
        request = parse_pairing_input(text, None)
        assert request.code == CODE
        assert request.base_url in ("http://127.0.0.1:8000", BASE + "/x")


GARBAGE = [
    pytest.param("", None, "no pairing code", id="empty"),
    pytest.param(" \n\t", BASE, "no pairing code", id="blank"),
    pytest.param("x" * 10_000_000, BASE, "too long", id="10MB"),
    pytest.param("K7QH-\udcff-9RTA", BASE, "UTF-8", id="bad-utf8"),
    pytest.param(CODE, None, "--server", id="typed-without-server"),
    pytest.param("K7QH-M2PX", BASE, "12 letters", id="ticket-code-not-pairing-code"),
    pytest.param("K7QH-M2PX-9RTA-X", BASE, "12 letters", id="too-long-code"),
    pytest.param("K7QH-M2PX-9RT!", BASE, "12 letters", id="bad-character"),
    pytest.param("K7QH-M2PX-9RTÄ", BASE, "12 letters", id="non-ascii"),
    pytest.param(CODE, "ftp://tickets.example.org", "http", id="ftp-server"),
    pytest.param(CODE, "javascript:alert(1)", "http", id="javascript"),
    pytest.param(CODE, "tickets.example.org", "http", id="no-scheme"),
    pytest.param(CODE, "http://", "http", id="no-host"),
    pytest.param(CODE, "http://h.test:99999", "valid", id="bad-port"),
    pytest.param(CODE, "http://h.test:0", "http", id="port-zero"),
    pytest.param(CODE, "http://h.test/?x=1", "base URL", id="query"),
    pytest.param(CODE, "http://h.test/#top", "base URL", id="fragment"),
    pytest.param(CODE, "http://u:p@h.test", "password", id="userinfo"),
    pytest.param(CODE, "http://h.test/\x00", "valid", id="nul"),
    pytest.param(CODE, "http://h .test", "valid", id="blank-in-url"),
    pytest.param(CODE, "http://" + "h" * 3000, "valid", id="huge-url"),
    pytest.param("tessera-pair:", None, "malformed", id="uri-empty"),
    pytest.param("tessera-pair:v=1", None, "malformed", id="uri-no-question-mark"),
    pytest.param("tessera-pair:?", None, "no version", id="uri-empty-query"),
    pytest.param("tessera-pair:?url=https://h.test&code=" + CODE, None, "version", id="uri-no-v"),
    pytest.param("tessera-pair:?v=2&url=https://h.test&code=" + CODE, None, "version 2",
                 id="uri-v2"),
    pytest.param("tessera-pair:?v=1&v=1&url=https://h.test&code=" + CODE, None, "twice",
                 id="uri-twice"),
    pytest.param("tessera-pair:?v=1&url=https://h.test", None, "no code", id="uri-no-code"),
    pytest.param("tessera-pair:?v=1&url=https://h.test&code=", None, "no code", id="uri-blank"),
    pytest.param("tessera-pair:?v=1&code=" + CODE, None, "names no server", id="uri-no-url"),
    pytest.param("tessera-pair:?v=1&url=ftp://h.test&code=" + CODE, None, "http", id="uri-ftp"),
    pytest.param("tessera-pair:?v=1&url=https://h.test&code=" + CODE + "&x=1", None, "unknown",
                 id="uri-unknown-field"),
    pytest.param("tessera-pair:?v=1&url=https://h.test&code=%FF%FE", None, "12 letters",
                 id="uri-percent-bad-utf8"),
    pytest.param("tessera-pair:?" + "a=1&" * 20 + "v=1", None, "malformed", id="uri-many-fields"),
    pytest.param("{", None, "not valid JSON", id="json-truncated"),
    pytest.param(PAYLOAD + "x", None, "not valid JSON", id="json-trailing-garbage"),
    pytest.param("[1]", BASE, "not a pairing code", id="json-array"),  # read as a typed code
    pytest.param('{"url":"https://h.test","code":"' + CODE + '"}', None, "version",
                 id="json-no-v"),
    pytest.param('{"v":"1","url":"https://h.test","code":"' + CODE + '"}', None, "version",
                 id="json-v-string"),
    pytest.param('{"v":true,"url":"https://h.test","code":"' + CODE + '"}', None, "version",
                 id="json-v-true"),
    pytest.param('{"v":1.0,"url":"https://h.test","code":"' + CODE + '"}', None, "version",
                 id="json-v-float"),
    pytest.param('{"v":2,"url":"https://h.test","code":"' + CODE + '"}', None, "version 2",
                 id="json-v2"),
    pytest.param('{"v":' + "9" * 3000 + ',"code":"' + CODE + '"}', BASE, "version 9999",
                 id="json-huge-int"),
    pytest.param('{"v":1,"url":"https://h.test"}', None, "no code", id="json-no-code"),
    pytest.param('{"v":1,"url":"https://h.test","code":12}', None, "not text",
                 id="json-code-int"),
    pytest.param('{"v":1,"url":["x"],"code":"' + CODE + '"}', None, "not text", id="json-url"),
    pytest.param('{"v":1,"url":"https://h.test","code":"' + CODE + '","token":"x"}', None,
                 "unknown", id="json-unknown-field"),
    pytest.param('{"v":1,"url":"file:///etc/passwd","code":"' + CODE + '"}', None, "http",
                 id="json-file-url"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "server", "message"), GARBAGE)
def test_garbage_is_refused_with_a_message_for_people(text, server, message):
    with pytest.raises(PairingError) as refused:
        parse_pairing_input(text, server)
    assert message in str(refused.value)
    assert len(str(refused.value)) < 300  # one readable line, not the input echoed back


@pytest.mark.parametrize("whole", [URI, PAYLOAD])
def test_every_prefix_and_every_trailing_garbage_is_a_request_or_a_pairing_error(whole):
    for end in range(len(whole) + 1):
        for text in (whole[:end], whole + whole[end:], whole[:end] + "\x00"):
            try:
                request = parse_pairing_input(text, None)
            except PairingError:
                continue
            assert request.code == CODE  # only a complete code gets through


@hypothesis_settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), server=st.none() | st.text(max_size=60))
def test_any_text_is_a_request_or_a_pairing_error(text, server):
    try:
        request = parse_pairing_input(text, server)
    except PairingError:
        return
    assert len(request.code) == 14
    assert request.base_url.startswith(("http://", "https://"))


# --- the door's home --------------------------------------------------------------------------


def _creds(**overrides: Any) -> Credentials:
    fields: dict[str, Any] = {
        "server": "http://127.0.0.1:8000",
        "ws_url": "ws://127.0.0.1:8000/ws/scanner",
        "device_id": "H2C8H2C8H2C8H2C8",
        "event_id": "Q4W1Q4W1Q4",
        "token": "tsd_secret",
        "paired_at": datetime(2031, 6, 14, 18, 0, tzinfo=UTC),
    }
    return Credentials(**(fields | overrides))


def test_the_home_is_the_override_else_xdg_else_local_share():
    assert scan_home({"TESSERA_SCAN_HOME": "/srv/door", "XDG_DATA_HOME": "/x"}) == Path("/srv/door")
    assert scan_home({"XDG_DATA_HOME": "/data", "HOME": "/home/a"}) == Path("/data/tessera-scan")
    # A relative XDG_DATA_HOME is invalid by the XDG spec and ignored; empty means unset.
    for xdg in ("relative/dir", ""):
        assert scan_home({"XDG_DATA_HOME": xdg, "HOME": "/home/a"}) == Path(
            "/home/a/.local/share/tessera-scan"
        )
    assert scan_home({"TESSERA_SCAN_HOME": "", "HOME": "/home/b"}) == Path(
        "/home/b/.local/share/tessera-scan"
    )


def test_ensure_home_creates_parents_and_makes_an_old_home_private(tmp_path):
    previous = os.umask(0o022)
    try:
        home = ensure_home(tmp_path / "a" / "b" / "door")
        assert home.is_dir() and _mode(home) == 0o700
        home.chmod(0o755)
        ensure_home(home)
        assert _mode(home) == 0o700
    finally:
        os.umask(previous)
    (tmp_path / "file").write_text("")
    with pytest.raises(HomeError, match="not a directory"):
        ensure_home(tmp_path / "file")


def test_credentials_round_trip_0600_and_atomically(tmp_path):
    home = tmp_path / "door"
    assert load_credentials(home) is None
    previous = os.umask(0)  # even a permissive umask leaves the token private
    try:
        save_credentials(home, _creds())
    finally:
        os.umask(previous)
    assert load_credentials(home) == _creds()
    assert _mode(home) == 0o700 and _mode(home / CREDENTIALS_FILE) == 0o600
    save_credentials(home, _creds(device_id="OTHER"))
    assert load_credentials(home) == _creds(device_id="OTHER")
    assert sorted(p.name for p in home.iterdir()) == [CREDENTIALS_FILE]  # no temp file left


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"\xff\xfe{}", id="bad-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b" " * 10_000_000, id="10MB"),
        pytest.param(b'{"server":"x"}', id="missing-fields"),
        pytest.param(msgspec.json.encode(_creds()).replace(b"Z", b""), id="naive-time"),
        pytest.param(msgspec.json.encode(_creds())[:-1] + b',"extra":1}', id="unknown-field"),
        pytest.param(msgspec.json.encode(_creds()).replace(b'"tsd_secret"', b"1" * 5000),
                     id="huge-int-token"),
    ],
)  # fmt: skip
def test_a_corrupt_credentials_file_is_a_clear_error_not_unpaired(tmp_path, content):
    (tmp_path / CREDENTIALS_FILE).write_bytes(content)
    with pytest.raises(HomeError) as refused:
        load_credentials(tmp_path)
    assert CREDENTIALS_FILE in str(refused.value) and "--force" in str(refused.value)


def test_forget_removes_credentials_and_store_and_is_idempotent(tmp_path):
    save_credentials(tmp_path, _creds())
    names = [STORE_FILE, STORE_FILE + "-wal", STORE_FILE + "-shm"]
    for name in [*names, "other.txt"]:
        (tmp_path / name).write_bytes(b"x")
    forget(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]
    forget(tmp_path)
    forget(tmp_path / "never-created")


# --- pairing against a real hub ---------------------------------------------------------------


@pytest.fixture
def backend() -> str:
    """A door pairs with any hub; one SQLite database is enough here."""
    return "sqlite"


@pytest.fixture
def hub(settings: Settings) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(msgspec.structs.replace(settings, base_url=base)), port):
        yield base


@pytest.fixture
async def organiser(hub: str, organiser_token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {organiser_token}"}
    async with httpx.AsyncClient(base_url=hub, headers=headers, timeout=5) as client:
        yield client


async def _new_device(organiser: httpx.AsyncClient, name: str = "Door 1") -> dict[str, Any]:
    event = await create_event(organiser)
    response = await organiser.post(
        f"/api/v1/events/{event['id']}/devices", json={"name": name, "gate": "North"}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_pairing_with_the_uri_gives_credentials_that_open_the_device_api(hub, organiser):
    device = await _new_device(organiser)
    moment = datetime(2031, 6, 14, 18, 0, tzinfo=UTC)

    creds = await pair(parse_pairing_input(device["pairing_uri"], None), now=moment)

    assert creds.server == hub
    assert (creds.device_id, creds.event_id) == (device["id"], device["event_id"])
    assert creds.ws_url == hub.replace("http", "ws", 1) + "/ws/scanner"
    assert creds.token.startswith("tsd_") and creds.paired_at == moment
    headers = {"Authorization": f"Bearer {creds.token}"}
    async with httpx.AsyncClient(base_url=hub, headers=headers, timeout=5) as door:
        changes = await door.get("/api/v1/checkin/changes?since=0")
    assert changes.status_code == 200, changes.text


async def test_the_typed_code_and_the_payload_pair_too(hub, organiser):
    typed = await _new_device(organiser, "Door A")
    shown = await _new_device(organiser, "Door B")
    lower = typed["pairing_code"].lower().replace("-", " ")
    async with httpx.AsyncClient() as client:  # a client of the caller's is used as given
        first = await pair(parse_pairing_input(lower, hub + "/"), client=client)
    second = await pair(parse_pairing_input(shown["pairing_payload"], None))
    assert (first.device_id, second.device_id) == (typed["id"], shown["id"])


async def test_a_used_code_is_refused_as_unknown_used_or_expired(hub, organiser):
    device = await _new_device(organiser)
    request = parse_pairing_input(device["pairing_uri"], None)
    await pair(request)
    with pytest.raises(PairingError, match=r"^unknown, used or expired pairing code$"):
        await pair(request)


async def test_too_many_failed_codes_are_refused_with_the_wait(hub):
    request = PairingRequest(hub, "0000-0000-0000")
    for _ in range(10):
        with pytest.raises(PairingError, match="unknown, used or expired"):
            await pair(request)
    with pytest.raises(PairingError, match=r"too many failed pairing attempts.*try again in \d+ s"):
        await pair(request)


async def test_another_refusal_shows_the_problem_detail(hub):
    """A base URL one level off reaches no pairing route: the hub's 404 problem is shown."""
    with pytest.raises(PairingError) as refused:
        await pair(PairingRequest(hub + "/tessera", CODE))
    assert f"the server {hub}/tessera refused to pair (HTTP 404)" in str(refused.value)


async def test_a_server_nobody_listens_on_is_named_as_refusing():
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PairingError, match=f"cannot reach the server {base}: connection refused"):
        await pair(PairingRequest(base, CODE))


async def test_a_server_that_never_answers_times_out_naming_it(monkeypatch):
    """A socket that accepts connections (the kernel's backlog) but never answers."""
    monkeypatch.setattr(pairing, "PAIR_TIMEOUT", 0.3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(PairingError, match=f"the server {base} did not answer within 0.3 s"):
            await pair(PairingRequest(base, CODE))


@post("/api/v1/devices/pair", status_code=200)
async def _odd_pairing(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """A server that is not a Tessera hub: 200 with the wrong body (ws_url an http URL)."""
    return {"device_id": "D", "token": "t", "event_id": "E", "ws_url": "http://x/ws"}


@post("/not-json/api/v1/devices/pair", status_code=200, media_type="text/plain")
async def _not_json(data: JSONBody[dict[str, Any]]) -> str:
    return "<html>hello</html>"


async def test_an_odd_200_answer_is_refused_not_stored():
    with serve_in_thread(Litestar([_odd_pairing, _not_json])) as (port, _):
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(PairingError, match="not ws"):
            await pair(PairingRequest(base, CODE))
        with pytest.raises(PairingError, match="something unexpected"):
            await pair(PairingRequest(base + "/not-json", CODE))
