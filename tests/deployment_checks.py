"""What docker/ promises, checked against Tessera itself: each function returns the problems found,
one sentence each, so that a test shows them all at once (and an empty list means none).

- `compose_problems`: every command of a Tessera service parses with `tessera … --help`'s
  subcommands, options and positionals; every TESSERA_* variable (the image's ENV, the service's
  environment, tessera.env.example) is a `Settings` field and the service's whole environment
  starts `Settings.from_env`; the instances listen on the ports nginx.conf proxies to and nginx
  listens on the port compose publishes; keys and mail are on volumes; migrations run before
  every instance and the worker; the proxy's address is the one trusted; every variable is
  explained in docs/deployment.md.
- `dockerfile_problems`: multi-stage on a slim base, a non-root user, no secret in ENV, the
  HEALTHCHECK on /readyz, the data directories as volumes, every COPY source let in by
  .dockerignore and the keystore, var/ and env files kept out.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from server.config import ENV_PREFIX, Settings, SettingsError
from tests.deployment import (
    ComposeError,
    cli_help,
    command_of,
    dockerfile_env,
    dockerfile_instructions,
    environment_of,
    exec_form,
    load_compose,
    nginx_listen_ports,
    nginx_upstream_servers,
    tessera_services,
)

__all__ = ["SAMPLE_ENV", "command_problem", "compose_problems", "dockerfile_problems"]

# What an operator puts in docker/.env (env.example leaves the password for them to choose).
SAMPLE_ENV = {"POSTGRES_PASSWORD": "s3cret-Pa55word", "TESSERA_BASE_URL": "https://tickets.test"}
_FIELDS = set(Settings.__struct_fields__)


def command_problem(command: list[str]) -> str | None:
    """Why `tessera COMMAND…` would not parse, judged by each level's `--help`; None: it does."""
    path: list[str] = []
    level = cli_help(())
    positionals = list(level.positionals)
    tokens = iter(command)
    for token in tokens:
        shown = " ".join(["tessera", *path])
        if token.startswith("-"):
            name, has_value, _ = token.partition("=")
            if name not in level.options:
                return f"`{shown}` has no option {name} (`{shown} --help`)"
            if level.options[name] and not has_value and next(tokens, None) is None:
                return f"`{shown} {name}` needs a value"
        elif level.choices:
            if token not in level.choices:
                listed = ", ".join(sorted(level.choices))
                return f"`{shown} {token}` is no command (`{shown} --help` lists {listed})"
            path.append(token)
            level = cli_help(tuple(path))
            positionals = list(level.positionals)
        elif positionals:
            positionals.pop(0)
        else:
            return f"`{shown}` takes no argument {token!r}"
    shown = " ".join(["tessera", *path])
    if level.choices:
        return f"`{shown}` needs a subcommand ({', '.join(sorted(level.choices))})"
    if positionals:
        return f"`{shown}` needs its {' '.join(positionals)}"
    return None


def settings_problems(where: str, env: Mapping[str, str]) -> list[str]:
    """Unknown TESSERA_* names, else the one line Settings.from_env stops a start with."""
    unknown = [
        f"{where}: {name}: no such setting (server/config.py Settings)"
        for name in env
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() not in _FIELDS
    ]
    if unknown:
        return unknown
    try:
        Settings.from_env(env)
    except SettingsError as exc:
        return [f"{where}: {exc}"]
    return []


def _mounts(service: Mapping[str, Any]) -> dict[str, bool]:
    """Container path -> read-only, for each of the service's volumes (short syntax)."""
    mounts: dict[str, bool] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[str(volume["target"])] = bool(volume.get("read_only"))
            continue
        parts = str(volume).split(":")
        if len(parts) >= 2:
            mounts[parts[1]] = len(parts) > 2 and "ro" in parts[2].split(",")
    return mounts


def _on_volume(path: str, mounts: Iterable[str]) -> bool:
    target = PurePosixPath(path)
    return any(target == PurePosixPath(m) or PurePosixPath(m) in target.parents for m in mounts)


def _depends(service: Mapping[str, Any], other: str, condition: str) -> bool:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return False  # the short form waits for nothing but the start
    return (depends.get(other) or {}).get("condition") == condition


def _role(service: Mapping[str, Any]) -> str:
    command = command_of(service)
    return command[0] if command else "serve"  # the image's CMD


def _listen_port(service: Mapping[str, Any], env: Mapping[str, str]) -> int:
    command = command_of(service)
    for index, token in enumerate(command):
        if token == "--port" and index + 1 < len(command):
            return int(command[index + 1])
        if token.startswith("--port="):
            return int(token.partition("=")[2])
    return int(env.get("TESSERA_PORT", Settings().port))


def _service_problems(name: str, service: dict[str, Any], env: dict[str, str]) -> list[str]:
    where = f"service {name}"
    found = [f"{where}: {p}" for p in [command_problem(command_of(service))] if p]
    found += settings_problems(where, env)
    mounts = _mounts(service)
    role = _role(service)
    healthcheck_off = bool((service.get("healthcheck") or {}).get("disable"))
    if role == "serve":
        keys = env.get("TESSERA_KEYS_DIR", Settings().keys_dir)
        if not _on_volume(keys, mounts):
            found.append(f"{where}: the keystore {keys} is on no volume (its keys would be lost)")
        if healthcheck_off:
            found.append(f"{where}: an instance must keep the image's HEALTHCHECK on /readyz")
        if not _depends(service, "redis", "service_healthy"):
            found.append(f"{where}: starts before Redis is healthy")
    elif not healthcheck_off:
        found.append(f"{where}: `tessera {role}` serves no /readyz: set healthcheck.disable")
    if role == "worker" and not env.get("TESSERA_SMTP_URL"):
        maildir = env.get("TESSERA_MAIL_DIR", Settings().mail_dir)
        if not _on_volume(maildir, mounts):
            found.append(f"{where}: the maildir {maildir} is on no volume")
    if role == "migrate":
        if not _depends(service, "postgres", "service_healthy"):
            found.append(f"{where}: runs before PostgreSQL is healthy")
    elif not _depends(service, "migrate", "service_completed_successfully"):
        found.append(f"{where}: may start before `tessera migrate` completed")
    return found


def _proxy_problems(compose: dict[str, Any], docker: Path, ports: dict[str, int]) -> list[str]:
    proxies = {n: s for n, s in compose["services"].items() if "nginx" in str(s.get("image", ""))}
    if len(proxies) != 1:
        return [f"expected one nginx proxy service, found {sorted(proxies)}"]
    name, proxy = next(iter(proxies.items()))
    text = (docker / "nginx.conf").read_text()
    found = []
    if _mounts(proxy).get("/etc/nginx/nginx.conf") is not True:
        found.append(f"service {name}: mount ./nginx.conf read-only on /etc/nginx/nginx.conf")
    listen = nginx_listen_ports(text)
    for published in proxy.get("ports") or []:
        container = int(str(published).rsplit(":", 1)[-1].split("/")[0])
        if container not in listen:
            found.append(f"service {name}: publishes {container}, nginx.conf listens on {listen}")
    upstream = dict(nginx_upstream_servers(text))
    if upstream != ports:
        found.append(f"nginx.conf proxies to {upstream}, the instances listen on {ports}")
    for instance in ports:
        if not _depends(proxy, instance, "service_healthy"):
            found.append(f"service {name}: starts before {instance} is healthy")
    return found


def _trust_problems(compose: dict[str, Any], envs: dict[str, dict[str, str]]) -> list[str]:
    addresses = set()
    for service in compose["services"].values():
        if "nginx" in str(service.get("image", "")):
            networks = service.get("networks") or {}
            if isinstance(networks, dict):
                addresses |= {n.get("ipv4_address") for n in networks.values() if n}
    found = []
    for name, env in envs.items():
        trusted = set(Settings.from_env({"TESSERA_TRUSTED_PROXIES": "", **env}).trusted_proxy_list)
        if trusted != addresses - {None}:
            found.append(
                f"service {name}: TESSERA_TRUSTED_PROXIES {sorted(trusted)} is not the proxy's "
                f"fixed address {sorted(a for a in addresses if a)}"
            )
        for variable, wanted in (("TESSERA_DATABASE_URL", "postgres"), ("TESSERA_REDIS_URL", "")):
            host = urlsplit(env.get(variable, "")).hostname
            if host not in compose["services"] or (wanted and host != wanted):
                found.append(f"service {name}: {variable} names no service of this file: {host}")
    return found


def _documented_problems(names: Iterable[str], docs: Path) -> list[str]:
    text = docs.read_text() if docs.exists() else ""
    return [
        f"{docs.name} does not explain {name}" for name in sorted(set(names)) if name not in text
    ]


def _example_names(path: Path) -> dict[str, str]:
    """KEY=value lines of an env example, the commented-out ones too."""
    pairs = {}
    for line in path.read_text().splitlines():
        text = line.lstrip("# ").strip()
        key, sep, value = text.partition("=")
        if sep and key.isupper() and key.replace("_", "").isalnum():
            pairs[key] = value
    return pairs


def compose_problems(docker: Path, docs: Path, env: Mapping[str, str] = SAMPLE_ENV) -> list[str]:
    """Every problem of docker/compose.yaml (with docker/.env holding `env`), see the module."""
    try:
        compose = load_compose(docker / "compose.yaml", env)
        image_env = dockerfile_env(docker / "Dockerfile")
    except ComposeError as exc:
        return [str(exc)]
    services = tessera_services(compose)
    roles = [_role(s) for s in services.values()]
    found = []
    if roles.count("migrate") != 1 or roles.count("serve") < 2 or "worker" not in roles:
        found.append(f"want one migrate, two serve or more and a worker; commands are {roles}")
    examples = _example_names(docker / "tessera.env.example")
    found += [
        f"tessera.env.example: {name}: no such setting"
        for name in examples
        if name[len(ENV_PREFIX) :].lower() not in _FIELDS
    ]
    envs = {
        name: {k: v for k, v in {**image_env, **environment_of(s)}.items() if k.startswith("TESS")}
        for name, s in services.items()
    }
    ports = {}
    for name, service in services.items():
        problems = _service_problems(name, service, envs[name])
        if _role(service) == "serve" and not problems:
            try:
                ports[name] = _listen_port(service, envs[name])
            except ValueError:
                problems.append(f"service {name}: `--port` takes a number: {command_of(service)}")
        found += problems
    if not found:
        found += _proxy_problems(compose, docker, ports)
        found += _trust_problems(compose, envs)
    used = {k for e in envs.values() for k in e} | set(examples)
    used |= set(_example_names(docker / "env.example"))
    used |= set(_INTERPOLATED.findall((docker / "compose.yaml").read_text()))
    return found + _documented_problems(used, docs)


_INTERPOLATED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "SMTP_URL", "DKIM")


def _dockerignore_allows(root: Path, source: str) -> bool:
    """Whether the build context holds `source` under root/.dockerignore (last match wins)."""
    allowed = True
    for line in (root / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        matches = fnmatch.fnmatch(source, pattern) or source.startswith(pattern + "/")
        if matches:
            allowed = negate
    return allowed


def dockerfile_problems(docker: Path, root: Path) -> list[str]:
    """Every problem of docker/Dockerfile and .dockerignore, see the module."""
    steps = dockerfile_instructions(docker / "Dockerfile")
    args = {a.partition("=")[0]: a.partition("=")[2] for k, a in steps if k == "ARG"}
    bases = [
        a.split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
        for k, a in steps
        if k == "FROM"
    ]
    found = []
    if len(bases) < 2 or not all("slim" in base for base in bases):
        found.append(f"want a multi-stage build on slim bases, FROM {bases}")
    last = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    final = steps[last:]
    users = [a for k, a in final if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        found.append(f"the image runs as root (USER {users[-1] if users else 'unset'})")
    env = dockerfile_env(docker / "Dockerfile")
    found += [
        f"Dockerfile: ENV {k}: a secret baked into the image"
        for k in env
        if any(w in k for w in _SECRET_WORDS)
    ]
    tessera_env = {k: v for k, v in env.items() if k.startswith("TESS")}
    bad_settings = settings_problems("Dockerfile ENV", tessera_env)
    if bad_settings:
        return found + bad_settings
    checks = [a for k, a in final if k == "HEALTHCHECK"]
    if not checks or "healthcheck.py" not in checks[-1]:
        found.append("no HEALTHCHECK running docker/healthcheck.py")
    elif "/readyz" not in (docker / "healthcheck.py").read_text():
        found.append("docker/healthcheck.py does not ask /readyz")
    volumes = [v for k, a in final if k == "VOLUME" for v in (exec_form(a) or a.split())]
    settings = Settings.from_env(tessera_env)
    database = urlsplit(settings.database_url).path.removeprefix("/")
    for path in (settings.keys_dir, settings.mail_dir, str(PurePosixPath(database).parent)):
        if not _on_volume(path, volumes):
            found.append(f"Dockerfile: {path} is on no VOLUME")
    exposed = [int(p.split("/")[0]) for k, a in final if k == "EXPOSE" for p in a.split()]
    if settings.port not in exposed:
        found.append(f"Dockerfile: EXPOSE {exposed}, TESSERA_PORT is {settings.port}")
    entry = [exec_form(a) for k, a in final if k == "ENTRYPOINT"]
    command = [exec_form(a) for k, a in final if k == "CMD"]
    if not entry or entry[-1] != ["tessera"]:
        found.append(f'ENTRYPOINT must be ["tessera"], is {entry[-1] if entry else None}')
    elif command and (problem := command_problem(command[-1] or [])):
        found.append(f"Dockerfile CMD: {problem}")
    for keyword, arguments in steps:
        parts = arguments.split()
        if keyword != "COPY" or any(p.startswith("--from") for p in parts):
            continue
        for source in [p for p in parts[:-1] if not p.startswith("--")]:
            if not _dockerignore_allows(root, source):
                found.append(f"COPY {source}: .dockerignore keeps it out of the build context")
    for kept_out in ("keys/k1.pem", "var/tessera.db", "docker/.env", "docker/tessera.env", ".venv"):
        if _dockerignore_allows(root, kept_out):
            found.append(f".dockerignore lets {kept_out} into the build context")
    return found
