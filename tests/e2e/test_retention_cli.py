"""`tessera prune [--dry-run]` and `tessera event archive EVENT --to DIR` as an operator runs
them, on a scratch SQLite database whose demo event is moved into the past."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.cli_home import Tessera, copy_home, tessera_in


@pytest.fixture
def tessera(demo_home_template: Path, tmp_path: Path) -> Tessera:
    return tessera_in(copy_home(demo_home_template, tmp_path))


def _age_the_demo(tmp_path: Path) -> tuple[str, int]:
    """Move the demo event and its change log to 2020; its id and its number of changes."""
    with sqlite3.connect(tmp_path / "var" / "tessera.db") as db:
        old = "2020-01-01 00:00:00.000000"
        db.execute("UPDATE event SET starts_at = ?, ends_at = ?", (old, old))
        db.execute('UPDATE "change" SET created_at = ?', (old,))
        (event_id,) = db.execute("SELECT id FROM event").fetchone()
        (count,) = db.execute('SELECT count(*) FROM "change"').fetchone()
    return event_id, count


def test_prune_reports_then_removes_what_retention_allows(tessera, tmp_path):
    nothing = tessera("prune").stdout
    assert "removed 0 changes of 0 events" in nothing and "retention 7d" in nothing
    event_id, count = _age_the_demo(tmp_path)
    dry = tessera("prune", "--dry-run").stdout
    assert f"{event_id}  Tessera Demo Night: would remove {count} changes" in dry
    assert f"would remove {count} changes of 1 event" in dry
    with sqlite3.connect(tmp_path / "var" / "tessera.db") as db:
        assert db.execute('SELECT count(*) FROM "change"').fetchone() == (count,)
    done = tessera("prune").stdout
    assert f"removed {count} changes of 1 event" in done
    with sqlite3.connect(tmp_path / "var" / "tessera.db") as db:
        assert db.execute('SELECT count(*) FROM "change"').fetchone() == (0,)
        assert db.execute("SELECT change_floor = change_seq FROM event").fetchone() == (1,)
    assert "removed 0 changes of 0 events" in tessera("prune").stdout
    never = tessera("prune", TESSERA_CHANGE_RETENTION="never").stdout
    assert "never: nothing removed" in never


@pytest.mark.parametrize(
    "value", ["-1d", "0s", "59m", "3651d", "1.5d", "7 days", "P7D", "", "9" * 10_000, "7d\x01"]
)
def test_a_bad_retention_stops_with_one_line_naming_it(tessera, value):
    done = tessera("prune", ok=False, TESSERA_CHANGE_RETENTION=value)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tessera: TESSERA_CHANGE_RETENTION: expected")
    assert len(lines[0]) < 200


@pytest.mark.parametrize("args", [["--dry-run=yes"], ["extra"], ["--retention", "1d"], ["-x"]])
def test_prune_refuses_unknown_arguments(tessera, args):
    done = tessera("prune", *args, ok=False)
    assert done.returncode == 2 and "usage: tessera" in done.stderr and done.stdout == ""


def test_archive_writes_private_files_then_refuses_a_second_time(tessera, tmp_path):
    event_id, _ = _age_the_demo(tmp_path)
    done = tessera("event", "archive", event_id, "--to", "out/demo")
    assert f"{event_id} archived; 2 devices revoked" in done.stdout
    folder = tmp_path / "out" / "demo"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(p.name for p in folder.iterdir())
    assert [re.sub(r"^.*-", "", name) for name in files] == [
        "archive.json",
        "bookings.csv",
        "checkins.csv",
        "tickets.csv",
    ]
    assert all(stat.S_IMODE((folder / name).stat().st_mode) == 0o600 for name in files)
    again = tessera("event", "archive", event_id, "--to", "out/again", ok=False)
    assert again.returncode == 1 and "was archived" in again.stderr
    assert not (tmp_path / "out" / "again").exists()


@pytest.mark.parametrize(
    ("event", "to", "says"),
    [
        ("NOSUCHEVNT", "out", "no event with id"),
        ("x" * 100_000, "out", "no event with id"),
        ("", "out", "no event with id"),
        ("DEMO", "var/tessera.db", "cannot write"),
        ("DEMO", "/proc/forbidden", "cannot write"),
    ],
)
def test_archive_refuses_bad_arguments_with_one_line(tessera, tmp_path, event, to, says):
    if event == "DEMO":
        event, _ = _age_the_demo(tmp_path)
    done = tessera("event", "archive", event, "--to", to, ok=False)
    assert done.returncode == 1
    assert says in done.stderr.lower() and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_archive_of_an_event_still_running_is_refused(tessera, tmp_path):
    with sqlite3.connect(tmp_path / "var" / "tessera.db") as db:
        (event_id,) = db.execute("SELECT id FROM event").fetchone()
        db.execute("UPDATE event SET ends_at = '2999-01-01 00:00:00.000000'")
    done = tessera("event", "archive", event_id, "--to", "out", ok=False)
    assert done.returncode == 1 and "has not ended yet" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_restore_moves_every_log_past_the_seqs_handed_out_before(tessera, tmp_path):
    """Seqs handed out after the backup are lost with it and never handed out again: every
    event's head and floor move RESTORE_JUMP on, so an old cursor gets snapshot_required."""
    from server.changes.retention import RESTORE_JUMP

    tessera("backup", "b.db")
    with sqlite3.connect(tmp_path / "var" / "tessera.db") as db:
        (head,) = db.execute("SELECT change_seq FROM event").fetchone()
    restored = f"sqlite:///{tmp_path}/restored/tessera.db"
    done = tessera("restore", "b.db", TESSERA_DATABASE_URL=restored)
    assert "doors load a new snapshot" in done.stderr and done.stdout.count("\n") == 1
    with sqlite3.connect(tmp_path / "restored" / "tessera.db") as db:
        row = db.execute("SELECT change_seq, change_floor FROM event").fetchone()
        seqs = [seq for (seq,) in db.execute('SELECT seq FROM "change" ORDER BY seq')]
    assert row == (head + RESTORE_JUMP, head + RESTORE_JUMP)
    assert seqs == list(range(1, head + 1))  # the rows themselves are as they were


def test_the_worker_prunes_the_change_log_too(tessera, tmp_path):
    _age_the_demo(tmp_path)
    tessera("worker", "--once")
    with sqlite3.connect(tmp_path / "var" / "tessera.db") as db:
        assert db.execute('SELECT count(*) FROM "change"').fetchone() == (0,)
