"""`tessera-scan` end to end, as a subprocess against a served hub, with its home in tmp_path:
pair, status (text and JSON), unpair; private file modes; nothing lost by accident (an existing
pairing, scans not uploaded yet); one line on stderr and exit 1 for a failure, exit 2 for bad use.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from protocol.rules import Direction
from scanner_client.cli import main
from scanner_client.home import CREDENTIALS_FILE, STORE_FILE
from scanner_client.store import JournalEntry, LocalStore, decode_snapshot
from server.app import create_app
from server.config import Settings
from tests.factories import booking_body, event_body
from tests.live import free_port, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Scan:
    """`tessera-scan` run as a subprocess with its home in `home`."""

    home: Path

    def __call__(self, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "XDG_"))}
        env["TESSERA_SCAN_HOME"] = str(home or self.home)
        return subprocess.run(
            [sys.executable, "-m", "scanner_client.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@dataclass
class Hub:
    base_url: str
    organiser: httpx.Client
    event_id: str
    list_id: str

    def device(self, name: str = "Door 1", event_id: str | None = None) -> dict[str, Any]:
        response = self.organiser.post(
            f"/api/v1/events/{event_id or self.event_id}/devices", json={"name": name}
        )
        return _created(response)


@pytest.fixture
def backend() -> str:
    """A door pairs with any hub; one SQLite database is enough here."""
    return "sqlite"


@pytest.fixture
def scan(tmp_path: Path) -> Scan:
    return Scan(tmp_path / "door-home")


@pytest.fixture
def hub(settings: Settings, organiser_token: str) -> Iterator[Hub]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {organiser_token}"}
    with (
        serve_in_thread(create_app(msgspec.structs.replace(settings, base_url=base)), port),
        httpx.Client(base_url=base, headers=headers, timeout=5) as organiser,
    ):
        event = _created(organiser.post("/api/v1/events", json=event_body(name="Jazz at the Pier")))
        ticket_type = _created(
            organiser.post(f"/api/v1/events/{event['id']}/ticket-types", json={"name": "Standard"})
        )
        booking = booking_body(ticket_type["id"], 3, confirm=True)
        _created(organiser.post(f"/api/v1/events/{event['id']}/bookings", json=booking))
        checkin_list = _created(
            organiser.post(
                f"/api/v1/events/{event['id']}/checkin-lists", json={"name": "Main door"}
            )
        )
        yield Hub(base, organiser, event["id"], checkin_list["id"])


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _one_line_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("tessera-scan: "), done.stderr
    assert message in done.stderr, done.stderr


def _status(scan: Scan) -> dict[str, Any]:
    done = scan("status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _take_snapshot(hub: Hub, home: Path) -> None:
    """What the door's first sync writes: the hub's snapshot in the store, marked synced."""
    creds = json.loads((home / CREDENTIALS_FILE).read_text())
    response = httpx.get(
        f"{hub.base_url}/api/v1/checkin/snapshot",
        headers={"Authorization": f"Bearer {creds['token']}", "Accept-Encoding": "gzip"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    store = LocalStore.open(home / STORE_FILE)
    try:
        store.replace_snapshot(decode_snapshot(response.content), now=time.time())
        store.mark_synced(time.time() - 125)
    finally:
        store.close()


def _queue_scans(home: Path, list_id: str, count: int) -> None:
    """Scans the door decided offline and has not uploaded yet."""
    store = LocalStore.open(home / STORE_FILE)
    try:
        for _ in range(count):
            entry = JournalEntry(
                scan_id=str(uuid.uuid4()),
                code="K7QH-M2PX",
                list_id=list_id,
                direction=Direction.ENTRY,
                scanned_at=datetime.now(UTC),
                ticket_id=None,
                state="queued",
                door_verdict="rejected",
                door_reason="invalid",
            )
            store.journal(entry, now=time.time())
    finally:
        store.close()


# --- pair, status, unpair ---------------------------------------------------------------------


def test_pair_from_the_uri_then_status_then_unpair(hub, scan):
    device = hub.device()

    paired = scan("pair", device["pairing_uri"])

    assert paired.returncode == 0, paired.stderr
    assert device["id"] in paired.stdout and hub.event_id in paired.stdout
    assert hub.base_url in paired.stdout
    assert _mode(scan.home) == 0o700 and _mode(scan.home / CREDENTIALS_FILE) == 0o600
    text = scan("status")
    assert text.returncode == 0, text.stderr
    lines = dict(line.split("  ", 1) for line in text.stdout.splitlines())
    assert {k.strip(): v.strip() for k, v in lines.items()} == {
        "device": device["id"],
        "event": hub.event_id,
        "server": hub.base_url,
        "paired at": lines["paired at"].strip(),
        "list": "none yet",
        "data age": "never synced",
        "cursor": "none",
        "tickets": "0",
        "queued": "0 scans waiting for upload",
    }
    assert lines["paired at"].strip().endswith(" UTC")
    # The values line up in one column.
    assert len({line.index(value.strip()) for line, value in zip(
        text.stdout.splitlines(), lines.values(), strict=True)}) == 1  # fmt: skip
    status = _status(scan)
    assert status["device_id"] == device["id"] and status["server"] == hub.base_url
    assert status["ws_url"] == hub.base_url.replace("http", "ws", 1) + "/ws/scanner"
    assert (status["synced_at"], status["data_age"], status["queued"]) == (None, None, 0)
    assert "token" not in status and "tsd_" not in json.dumps(status)

    unpaired = scan("unpair")

    assert unpaired.returncode == 0, unpaired.stderr
    assert device["id"] in unpaired.stdout
    assert list(scan.home.iterdir()) == []
    _one_line_error(scan("status"), "not paired")


def test_status_shows_the_store_event_list_data_age_and_queue(hub, scan):
    assert scan("pair", hub.device()["pairing_payload"]).returncode == 0
    _take_snapshot(hub, scan.home)
    _queue_scans(scan.home, hub.list_id, 2)

    status = _status(scan)
    text = scan("status").stdout

    assert status["event_name"] == "Jazz at the Pier"
    assert (status["list_id"], status["list_name"]) == (hub.list_id, "Main door")
    assert status["tickets"] == 3 and status["queued"] == 2 and status["scans"] == 2
    assert status["cursor"] is not None and status["cursor"] >= 1
    assert 125 <= status["data_age"] < 185
    assert status["synced_at"].endswith("Z")
    assert f"Jazz at the Pier ({hub.event_id})" not in text  # the id comes first
    assert f"{hub.event_id} (Jazz at the Pier)" in text
    assert f"Main door ({hub.list_id})" in text
    assert "data age   2 min" in text and "queued     2 scans waiting for upload" in text


def test_pair_refuses_to_replace_a_pairing_and_the_refused_code_still_works(hub, scan):
    first, second = hub.device("Door 1"), hub.device("Door 2")
    assert scan("pair", first["pairing_uri"]).returncode == 0

    _one_line_error(scan("pair", second["pairing_uri"]), "already paired as device " + first["id"])
    assert _status(scan)["device_id"] == first["id"]

    forced = scan("pair", "--force", second["pairing_uri"])
    assert forced.returncode == 0, forced.stderr
    assert _status(scan)["device_id"] == second["id"]


def test_pair_after_unpair_needs_no_force(hub, scan):
    assert scan("pair", hub.device("Door 1")["pairing_uri"]).returncode == 0
    assert scan("unpair").returncode == 0
    assert scan("pair", hub.device("Door 2")["pairing_uri"]).returncode == 0


def test_a_used_code_fails_with_the_message_and_keeps_the_old_pairing(hub, scan, tmp_path):
    first, second = hub.device("Door 1"), hub.device("Door 2")
    assert scan("pair", first["pairing_uri"]).returncode == 0
    assert scan("pair", second["pairing_uri"], home=tmp_path / "other").returncode == 0

    used = scan("pair", "--force", second["pairing_uri"])

    _one_line_error(used, "tessera-scan: unknown, used or expired pairing code")
    assert _status(scan)["device_id"] == first["id"]


def test_a_typed_code_needs_the_server_and_pairs_with_it(hub, scan):
    device = hub.device()
    typed = device["pairing_code"].lower().replace("-", " ")

    _one_line_error(scan("pair", typed), "--server")
    assert not scan.home.exists()  # nothing written for a refused input
    done = scan("pair", typed, "--server", hub.base_url + "/")

    assert done.returncode == 0, done.stderr
    assert _status(scan)["server"] == hub.base_url


def test_a_hub_nobody_listens_on_is_named(scan):
    base = f"http://127.0.0.1:{free_port()}"
    _one_line_error(scan("pair", "K7QH-M2PX-9RTA", "--server", base), f"{base}: connection refused")


def test_re_pairing_removes_the_other_devices_store(hub, scan):
    assert scan("pair", hub.device("Door 1")["pairing_uri"]).returncode == 0
    _take_snapshot(hub, scan.home)
    assert (scan.home / STORE_FILE).exists()

    assert scan("pair", "--force", hub.device("Door 2")["pairing_uri"]).returncode == 0

    assert not (scan.home / STORE_FILE).exists()
    assert _status(scan)["tickets"] == 0


def test_queued_scans_block_unpair_unless_forced_and_the_loss_is_counted(hub, scan):
    assert scan("pair", hub.device()["pairing_uri"]).returncode == 0
    _queue_scans(scan.home, hub.list_id, 3)

    _one_line_error(scan("unpair"), "3 scans not uploaded yet would be lost")
    assert _status(scan)["queued"] == 3

    forced = scan("unpair", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "Discarded 3 scans" in forced.stdout
    assert list(scan.home.iterdir()) == []


def test_a_store_left_with_queued_scans_blocks_a_new_pairing_unless_forced(hub, scan):
    """No credentials (lost or removed by hand) but a store whose scans never reached the hub."""
    scan.home.mkdir(mode=0o700)
    _queue_scans(scan.home, hub.list_id, 1)
    device = hub.device()

    _one_line_error(scan("pair", device["pairing_uri"]), "1 scan never uploaded")
    forced = scan("pair", "--force", device["pairing_uri"])

    assert forced.returncode == 0, forced.stderr
    assert "discarded 1 scan never uploaded" in forced.stderr
    assert _status(scan)["queued"] == 0


def test_forcing_over_an_existing_pairing_with_queued_scans_says_what_was_lost(hub, scan):
    assert scan("pair", hub.device("Door 1")["pairing_uri"]).returncode == 0
    _queue_scans(scan.home, hub.list_id, 2)

    _one_line_error(scan("pair", hub.device("Door 2")["pairing_uri"]), "already paired")
    forced = scan("pair", "--force", hub.device("Door 3")["pairing_uri"])

    assert forced.returncode == 0, forced.stderr
    assert "discarded 2 scans never uploaded" in forced.stderr


def test_status_and_unpair_when_not_paired(scan):
    _one_line_error(scan("status"), "not paired")
    _one_line_error(scan("status", "--json"), "not paired")
    done = scan("unpair")
    assert done.returncode == 0 and "nothing to forget" in done.stdout
    _one_line_error(scan(), "not paired")  # `tessera-scan` alone is `run`
    _one_line_error(scan("--headless"), "not paired")


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe", b"[]", b'{"server": 1}', b" " * 10_000_000],
    ids=["empty", "truncated", "bad-utf8", "array", "wrong-type", "10MB"],
)
def test_a_corrupt_device_file_is_one_clear_line_and_unpair_still_forgets_it(scan, content):
    scan.home.mkdir(mode=0o700)
    (scan.home / CREDENTIALS_FILE).write_bytes(content)

    _one_line_error(scan("status"), CREDENTIALS_FILE)
    _one_line_error(scan("pair", "K7QH-M2PX-9RTA", "--server", "http://127.0.0.1:1"), "--force")
    assert scan("unpair").returncode == 0
    assert list(scan.home.iterdir()) == []


def test_a_corrupt_store_blocks_unpair_unless_forced(hub, scan):
    assert scan("pair", hub.device()["pairing_uri"]).returncode == 0
    (scan.home / STORE_FILE).write_bytes(b"not a database" * 100)

    _one_line_error(scan("unpair"), "cannot read the door's store")
    assert scan("unpair", "--force").returncode == 0
    assert list(scan.home.iterdir()) == []


def test_a_home_that_is_a_file_fails_before_the_code_is_spent(hub, scan, tmp_path):
    device = hub.device()
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    _one_line_error(scan("pair", device["pairing_uri"], home=blocker), "Not a directory")

    assert scan("pair", device["pairing_uri"]).returncode == 0  # the code still pairs


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["pair", "status", "unpair", "run", "sync"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"usage: tessera-scan {command}" in capsys.readouterr().out


def test_run_help_lists_its_options(scan):
    done = scan("run", "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--headless", "--list", "--direction", "--debounce", "--answer-timeout",
                   "--camera", "--no-bell", "--lang"):  # fmt: skip
        assert option in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--debounce", "-1"],
        ["run", "--debounce", "61"],
        ["run", "--debounce", "nan"],
        ["run", "--debounce", "inf"],
        ["run", "--debounce", "soon"],
        ["run", "--debounce", "9" * 5000],
        ["run", "--answer-timeout", "0"],
        ["run", "--answer-timeout", "30.5"],
        ["run", "--answer-timeout", "-0"],
        ["run", "--direction", "sideways"],
        ["run", "--camera", "front"],
        ["run", "--camera", "-1"],
        ["run", "--lang", "es"],
        ["--debounce", "61"],
        ["sync", "--timeout", "0"],
        ["sync", "--timeout", "601"],
        ["pair"],
        ["status", "extra"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2(args, capsys):
    assert main(args) == 2
    assert "usage: tessera-scan" in capsys.readouterr().err


def test_bad_usage_exits_2_as_a_process(scan):
    done = scan("run", "--debounce", "61")
    assert done.returncode == 2
    assert "--debounce" in done.stderr and "at most 60" in done.stderr


def test_a_10mb_pairing_argument_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TESSERA_SCAN_HOME", str(tmp_path / "home"))
    assert main(["pair", "x" * 10_000_000, "--server", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tessera-scan: ") and err.count("\n") == 1 and len(err) < 300


def test_pair_and_status_import_neither_textual_nor_the_camera(hub, scan):
    device = hub.device()
    probe = (
        "import sys; from scanner_client.cli import main; "
        f"codes = [main(['pair', {device['pairing_uri']!r}]), main(['status'])]; "
        "assert codes == [0, 0], codes; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'cv2', 'zxingcpp')"
        " or m in ('scanner_client.tui', 'scanner_client.door')); "
        "assert not heavy, heavy"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "XDG_"))}
    env["TESSERA_SCAN_HOME"] = str(scan.home)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
