"""Reading the files of docker/ as Docker and nginx would, for the tests that stand in for them.

No Docker engine runs on the development machines, so the image and the compose file are checked
by reading (tests/deployment_checks.py) and their topology is started from plain processes
(tests/e2e/test_deployment_topology.py). Both read the files through this module:

- `load_compose`: compose.yaml parsed (PyYAML, anchors and merge keys as Compose has them) with
  `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
  `$VAR` and `$$` substituted from the environment given (Compose reads docker/.env);
- `dockerfile_instructions`: the Dockerfile's instructions with continuation lines joined;
- `nginx_listen_ports`, `nginx_upstream_servers`: what nginx.conf listens on and proxies to;
- `cli_help`: the options, subcommands and positionals `tessera … --help` prints.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DOCKER",
    "CliHelp",
    "ComposeError",
    "cli_help",
    "command_of",
    "dockerfile_env",
    "dockerfile_instructions",
    "environment_of",
    "load_compose",
    "nginx_listen_ports",
    "nginx_upstream_servers",
    "tessera_services",
]

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
TESSERA = Path(sys.executable).with_name("tessera")  # the console script the image runs


class ComposeError(ValueError):
    """compose.yaml cannot be read as Compose would; `str()` says where and why."""


# --- compose.yaml ------------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """`text` with Compose's variable syntax substituted from `env`; ComposeError on a missing
    required variable (`${VAR:?msg}`) or a `$` that starts no variable."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        if match["braced"] is None:
            raise ComposeError(f"a lone $ in {text!r} (write $$ for a dollar sign)")
        braced = _BRACED.fullmatch(match["braced"])
        if braced is None:
            raise ComposeError(f"not a variable: ${{{match['braced']}}} in {text!r}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return arg if unset else str(value)
        if op in ("?", ":?"):
            if unset:
                raise ComposeError(f"{name} is required: {arg or 'not set'}")
            return str(value)
        if op in ("+", ":+"):
            return "" if unset else arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


def load_compose(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """compose.yaml as Compose sees it after substituting `env`."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ComposeError(f"{path.name}: not YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ComposeError(f"{path.name}: no `services` mapping")
    return dict(_interpolated(document, env))


def tessera_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from docker/Dockerfile (the Tessera image), by name."""
    return {
        name: service
        for name, service in compose["services"].items()
        if isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == "docker/Dockerfile"
    }


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, in either of Compose's spellings (mapping or `K=V` list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = [str(item).partition("=") for item in raw]
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else _scalar(value) for key, value in raw.items()}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):  # YAML's true stays "true", as Compose passes it
        return "true" if value else "false"
    return str(value)


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


# --- Dockerfile --------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    joined: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    if pending:
        joined.append(pending)
    result = []
    for text in joined:
        keyword, _, arguments = text.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def dockerfile_env(path: Path) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage (the image that runs)."""
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "FROM":
            env = {}
        elif keyword == "ENV":
            for item in shlex.split(arguments):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ComposeError(f"Dockerfile: ENV {arguments!r}: write ENV KEY=value")
                env[key] = value
    return env


def exec_form(arguments: str) -> list[str] | None:
    """The list of an exec-form instruction (`["tessera", "serve"]`), or None for shell form."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


# --- nginx.conf --------------------------------------------------------------------------------

_LISTEN = re.compile(r"^\s*listen\s+(?:[^;\s]*:)?(\d+)[^;]*;", re.M)
_SERVER = re.compile(r"^\s*server\s+([A-Za-z0-9_.-]+):(\d+)[^;]*;", re.M)


def nginx_listen_ports(text: str) -> list[int]:
    return [int(port) for port in _LISTEN.findall(text)]


def nginx_upstream_servers(text: str) -> list[tuple[str, int]]:
    """The (host, port) of every `server host:port` line of the upstream blocks."""
    return [(host, int(port)) for host, port in _SERVER.findall(text)]


# --- tessera --help ----------------------------------------------------------------------------

_CHOICES = re.compile(r"^  \{([\w,-]+)\}", re.M)
_OPTION = re.compile(r"^  (-[\w-]+(?:, --[\w-]+)?)( [A-Z_{][^\s]*)?", re.M)
_POSITIONAL = re.compile(r"^  ([a-z_][\w-]*)(?:\s{2,}|$)", re.M)


@dataclass(frozen=True)
class CliHelp:
    """What one `tessera … --help` offers: subcommands, options (True: takes a value), and the
    names of its positional arguments, in order."""

    choices: frozenset[str]
    options: dict[str, bool] = field(default_factory=dict)
    positionals: tuple[str, ...] = ()


@functools.cache
def cli_help(path: tuple[str, ...] = ()) -> CliHelp:
    """Parse `tessera PATH… --help` (the installed console script the image's ENTRYPOINT runs)."""
    done = subprocess.run(
        [str(TESSERA), *path, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise ComposeError(f"`tessera {' '.join(path)} --help` failed: {done.stderr.strip()}")
    text = done.stdout
    choices: set[str] = set()
    for match in _CHOICES.finditer(text):
        choices.update(match[1].split(","))
    options: dict[str, bool] = {}
    for match in _OPTION.finditer(text):
        for name in match[1].split(", "):
            options[name] = bool(match[2])
    positionals = tuple(_POSITIONAL.findall(text)) if not choices else ()
    return CliHelp(frozenset(choices), options, positionals)
