"""Where a door's data lives: its credentials (`device.json`) and its local store (`door.db`).

Rules:
- The home is `TESSERA_SCAN_HOME`, else `$XDG_DATA_HOME/tessera-scan`, else
  `~/.local/share/tessera-scan` (ARCHITECTURE §11). It is 0700 and `device.json` is 0600: the
  token is the device's only credential, and the store holds guests' names.
- `device.json` is replaced atomically (temp file in the same directory, fsync, rename), so a
  crash leaves the old pairing or the new one, never half of either.
- A corrupt `device.json` is an error with a way out (`HomeError`), never "not paired": silently
  treating it as absent would let a `pair` throw away a store with scans still to upload.
- Forgetting removes the credentials and the store (its `-wal`/`-shm` too); it is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated

import msgspec

__all__ = [
    "CREDENTIALS_FILE",
    "STORE_FILE",
    "Credentials",
    "HomeError",
    "ensure_home",
    "forget",
    "forget_store",
    "load_credentials",
    "save_credentials",
    "scan_home",
    "store_path",
]

CREDENTIALS_FILE = "device.json"
STORE_FILE = "door.db"
_STORE_FILES = (STORE_FILE, STORE_FILE + "-wal", STORE_FILE + "-shm")
# A real device.json is a few hundred bytes; anything far larger is not one.
_MAX_CREDENTIALS_BYTES = 64 * 1024
_REPAIR = "pair again with `tessera-scan pair --force CODE_OR_URI`"

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
_Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class HomeError(Exception):
    """The device's home or its credentials cannot be used; the message is for people."""


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What pairing gave the device: where the hub is, who the device is, and its token."""

    server: _Text  # the hub's base URL, without a trailing slash
    ws_url: _Text
    device_id: _Text
    event_id: _Text
    token: _Text
    paired_at: _Aware


def scan_home(env: Mapping[str, str] = os.environ) -> Path:
    """The door's home directory (not created): see the module rules for the order."""
    if env.get("TESSERA_SCAN_HOME"):
        return Path(env["TESSERA_SCAN_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "tessera-scan"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".local" / "share" / "tessera-scan"


def ensure_home(path: Path) -> Path:
    """Create the home (and its parents) if needed and make it 0700; returns `path`.

    Raises HomeError when it cannot be created or is not a directory.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask, and an older home may be readable by others.
        path.chmod(0o700)
    except FileExistsError as error:
        raise HomeError(f"{path} exists and is not a directory") from error
    except OSError as error:
        raise HomeError(f"cannot use {path} as the door's home: {error.strerror}") from error
    return path


def store_path(home: Path) -> Path:
    """Where the door's local store lives in `home`."""
    return home / STORE_FILE


def load_credentials(home: Path) -> Credentials | None:
    """The device's credentials, or None when it is not paired.

    Raises HomeError for a file that cannot be read or is not valid credentials.
    """
    path = home / CREDENTIALS_FILE
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_CREDENTIALS_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise HomeError(f"cannot read {path}: {error.strerror}") from error
    if len(data) > _MAX_CREDENTIALS_BYTES:
        raise HomeError(f"{path} is not the door's credentials (too large); {_REPAIR}")
    try:
        return msgspec.json.decode(data, type=Credentials)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise HomeError(f"{path} is corrupt ({error}); {_REPAIR}") from error


def save_credentials(home: Path, creds: Credentials) -> None:
    """Write `device.json` (0600) atomically, creating the home (0700) if needed."""
    ensure_home(home)
    target = home / CREDENTIALS_FILE
    # mkstemp creates the file 0600 whatever the umask, so the token is never readable by others,
    # not even for the moment before a chmod.
    descriptor, temp_name = tempfile.mkstemp(dir=home, prefix=".device.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(msgspec.json.encode(creds) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(home)  # the rename itself survives a power cut only once the dir is synced


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse to open a directory
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def forget_store(home: Path) -> None:
    """Remove the local store (and its WAL files); nothing happens when there is none."""
    for name in _STORE_FILES:
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()


def forget(home: Path) -> None:
    """Forget the device: remove its credentials and its local store. Idempotent."""
    # The credentials go first: a crash half way leaves a door that is not paired, never a
    # paired door with a store that was partly removed.
    with contextlib.suppress(FileNotFoundError):
        (home / CREDENTIALS_FILE).unlink()
    forget_store(home)
