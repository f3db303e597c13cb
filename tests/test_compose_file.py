"""docker/compose.yaml and docker/Dockerfile agree with `tessera --help` and Settings.

No Docker engine runs here, so these read the files (tests/deployment_checks.py says what is
checked). Each check is shown to bite: a copy of docker/ with one mistake made in it (a garbage
variable, an unknown subcommand or option, a port nginx does not proxy to, ...) must fail it,
naming the mistake.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deployment import DOCKER, ROOT, interpolate
from tests.deployment_checks import command_problem, compose_problems, dockerfile_problems

DOCS = ROOT / "docs" / "deployment.md"


def test_the_compose_file_passes_every_check():
    assert compose_problems(DOCKER, DOCS) == []


def test_the_dockerfile_and_dockerignore_pass_every_check():
    assert dockerfile_problems(DOCKER, ROOT) == []


def _copy(tmp_path: Path) -> Path:
    """A copy of the repository's docker/ and .dockerignore to make one mistake in."""
    shutil.copytree(DOCKER, tmp_path / "docker")
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    return tmp_path / "docker"


def _mistake(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path.name}: update this test"
    path.write_text(text.replace(old, new))


COMPOSE_MISTAKES = [
    pytest.param(
        "    TESSERA_WORKER: external\n",
        "    TESSERA_WORKER: external\n    TESSERA_GARBAGE: yes\n",
        "TESSERA_GARBAGE: no such setting",
        id="garbage-variable",
    ),
    pytest.param(
        "    TESSERA_WORKER: external\n",
        "    TESSERA_WORKER: sometimes\n",
        "service tessera-a: TESSERA_WORKER: Invalid enum value 'sometimes'",
        id="bad-value",
    ),
    pytest.param(
        'command: ["worker"]',
        'command: ["wroker"]',
        "`tessera wroker` is no command",
        id="unknown-subcommand",
    ),
    pytest.param(
        'command: ["worker"]',
        'command: ["keys", "rotat"]',
        "`tessera keys rotat` is no command",
        id="unknown-nested-subcommand",
    ),
    pytest.param(
        'command: ["migrate"]',
        'command: ["migrate", "--force"]',
        "`tessera migrate` has no option --force",
        id="unknown-option",
    ),
    pytest.param(
        'command: ["migrate"]',
        'command: ["keys"]',
        "`tessera keys` needs a subcommand",
        id="no-subcommand",
    ),
    pytest.param(
        'command: ["worker"]',
        'command: ["worker", "now"]',
        "`tessera worker` takes no argument 'now'",
        id="stray-argument",
    ),
    pytest.param(
        '    command: ["serve"]\n    volumes:\n      - keys:/var/lib/tessera/keys:ro\n',
        '    command: ["serve", "--port", "eighty"]\n'
        "    volumes:\n      - keys:/var/lib/tessera/keys:ro\n",
        "service tessera-b: `--port` takes a number",
        id="port-not-a-number",
    ),
    pytest.param(
        'TESSERA_PORT: "8000"',
        'TESSERA_PORT: "8001"',
        "nginx.conf proxies to {'tessera-a': 8000, 'tessera-b': 8000}, the instances listen on "
        "{'tessera-a': 8001, 'tessera-b': 8001}",
        id="port-nginx-does-not-proxy-to",
    ),
    pytest.param(
        '      - "${TESSERA_HTTP_PORT:-8080}:8080"\n',
        '      - "${TESSERA_HTTP_PORT:-8080}:80"\n',
        "publishes 80, nginx.conf listens on [8080]",
        id="published-port-nginx-does-not-listen-on",
    ),
    pytest.param(
        "      - keys:/var/lib/tessera/keys:ro\n",
        "      - keys:/srv/keys:ro\n",
        "service tessera-b: the keystore /var/lib/tessera/keys is on no volume",
        id="keystore-off-the-volume",
    ),
    pytest.param(
        "      - mail:/var/lib/tessera/var\n",
        "",
        "service worker: the maildir /var/lib/tessera/var/mail is on no volume",
        id="maildir-off-the-volume",
    ),
    pytest.param(
        "      tessera-a:\n        condition: service_healthy\n\n  # The campaign",
        "\n  # The campaign",
        "",  # tessera-b no longer waits for A: allowed, its own dependencies still hold
        id="b-without-a-still-fine",
    ),
    pytest.param(
        '    command: ["worker"]\n    healthcheck:\n      disable: true\n',
        '    command: ["worker"]\n',
        "service worker: `tessera worker` serves no /readyz",
        id="worker-with-the-http-healthcheck",
    ),
    pytest.param(
        "    TESSERA_TRUSTED_PROXIES: 172.30.0.10\n",
        "    TESSERA_TRUSTED_PROXIES: 0.0.0.0/0\n",
        "is not the proxy's fixed address",
        id="trusting-everyone",
    ),
    pytest.param(
        "@postgres:5432/tessera",
        "@db:5432/tessera",
        "TESSERA_DATABASE_URL names no service of this file: db",
        id="database-host-unknown",
    ),
    pytest.param(
        "# TESSERA_OUTBOX_LEASE=120",
        "# TESSERA_OUTBOX_LEAS=120",
        "tessera.env.example: TESSERA_OUTBOX_LEAS: no such setting",
        id="garbage-in-the-env-example",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), COMPOSE_MISTAKES)
def test_a_mistake_in_a_copy_of_the_compose_files_fails_the_check(tmp_path, old, new, expected):
    docker = _copy(tmp_path)
    target = "tessera.env.example" if "OUTBOX_LEAS" in new else "compose.yaml"
    _mistake(docker / target, old, new)
    problems = compose_problems(docker, DOCS)
    if not expected:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_migrations_must_run_before_every_instance(tmp_path):
    docker = _copy(tmp_path)
    compose = docker / "compose.yaml"
    text = compose.read_text()
    cut = "      migrate:\n        condition: service_completed_successfully\n"
    compose.write_text(text.replace(cut, "", 1))  # the first: tessera-a's
    assert "service tessera-a: may start before `tessera migrate` completed" in compose_problems(
        docker, DOCS
    )


def test_a_variable_compose_needs_from_docker_env_is_required(tmp_path):
    problems = compose_problems(DOCKER, DOCS, env={"TESSERA_BASE_URL": "https://tickets.test"})
    assert problems == ["POSTGRES_PASSWORD is required: set POSTGRES_PASSWORD in docker/.env"]


DOCKERFILE_MISTAKES = [
    pytest.param("USER tessera:tessera", "USER root", "the image runs as root", id="root"),
    pytest.param(
        "    TESSERA_PORT=8000 \\\n",
        "    TESSERA_PORT=8000 \\\n    TESSERA_PROT=8000 \\\n",
        "Dockerfile ENV: TESSERA_PROT: no such setting",
        id="garbage-env",
    ),
    pytest.param(
        "    TESSERA_PORT=8000 \\\n",
        "    TESSERA_PORT=8000 \\\n    TESSERA_SMTP_URL=smtp://u:p@mail \\\n",
        "ENV TESSERA_SMTP_URL: a secret baked into the image",
        id="secret-in-env",
    ),
    pytest.param(
        "TESSERA_KEYS_DIR=/var/lib/tessera/keys",
        "TESSERA_KEYS_DIR=/srv/keys",
        "Dockerfile: /srv/keys is on no VOLUME",
        id="keys-off-the-volume",
    ),
    pytest.param("EXPOSE 8000", "EXPOSE 80", "EXPOSE [80], TESSERA_PORT is 8000", id="expose"),
    pytest.param(
        'CMD ["serve"]', 'CMD ["srve"]', "Dockerfile CMD: `tessera srve` is no command", id="cmd"
    ),
    pytest.param(
        "COPY server server",
        "COPY server server\nCOPY keys keys",
        "COPY keys: .dockerignore",
        id="keys-copied",
    ),
    pytest.param(
        "FROM ${PYTHON_IMAGE} AS build", "FROM python:3.11 AS build", "slim bases", id="fat-base"
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), DOCKERFILE_MISTAKES)
def test_a_mistake_in_a_copy_of_the_dockerfile_fails_the_check(tmp_path, old, new, expected):
    docker = _copy(tmp_path)
    _mistake(docker / "Dockerfile", old, new)
    problems = dockerfile_problems(docker, tmp_path)
    assert any(expected in p for p in problems), problems


def test_a_dockerignore_that_lets_the_keystore_in_fails_the_check(tmp_path):
    _copy(tmp_path)
    ignore = tmp_path / ".dockerignore"
    ignore.write_text(ignore.read_text() + "!keys/\n")
    assert ".dockerignore lets keys/k1.pem into the build context" in dockerfile_problems(
        tmp_path / "docker", tmp_path
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${A:+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("$A-$$A", "1-$A"),
    ],
)
def test_compose_interpolation_as_compose_does_it(text, expected):
    assert interpolate(text, {"A": "1", "EMPTY": ""}) == expected


def test_the_real_command_line_parses_what_compose_runs():
    assert command_problem(["serve", "--port", "8000", "--workers=2"]) is None
    assert command_problem(["keys", "retire", "K1"]) is None
    assert command_problem(["serve", "--port"]) == "`tessera serve --port` needs a value"
    assert command_problem(["keys", "retire"]) == "`tessera keys retire` needs its kid"
