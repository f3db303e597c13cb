import subprocess
import sys

import pytest

from server.config import Settings, SettingsError, async_database_url


def test_defaults_need_no_environment():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite")
    assert settings.public_base_url == "http://127.0.0.1:8000"


def test_base_url_follows_host_and_port_unless_set():
    assert Settings.from_env({"TESSERA_PORT": "9000"}).public_base_url == "http://127.0.0.1:9000"
    explicit = Settings.from_env({"TESSERA_BASE_URL": "https://tickets.example.org/"})
    assert explicit.public_base_url == "https://tickets.example.org"


def test_trusted_proxies_are_none_by_default_and_read_as_a_list():
    assert Settings.from_env({}).trusted_proxy_list == []
    assert Settings.from_env({"TESSERA_TRUSTED_PROXIES": ""}).trusted_proxy_list == []
    given = {"TESSERA_TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 ,::1"}
    assert Settings.from_env(given).trusted_proxy_list == ["10.0.0.0/8", "127.0.0.1", "::1"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TESSERA_PORT": "eighty"}, "TESSERA_PORT"),
        ({"TESSERA_PORT": "70000"}, "TESSERA_PORT"),
        ({"TESSERA_DATABASE_URL": "mysql://localhost/x"}, "TESSERA_DATABASE_URL"),
        ({"TESSERA_BASE_URL": "ftp://x"}, "TESSERA_BASE_URL"),
        ({"TESSERA_REDIS_URL": "localhost"}, "TESSERA_REDIS_URL"),
        ({"TESSERA_DATABSE_URL": "sqlite:///x"}, "TESSERA_DATABSE_URL"),
        ({"TESSERA_MAX_BODY_BYTES": "12"}, "TESSERA_MAX_BODY_BYTES"),
        ({"TESSERA_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "TESSERA_TRUSTED_PROXIES"),
        ({"TESSERA_TRUSTED_PROXIES": "10.0.0.1,,10.0.0.2"}, "TESSERA_TRUSTED_PROXIES"),
        ({"TESSERA_MAIL_DOMAINS": "festival.fr, not a domain"}, "TESSERA_MAIL_DOMAINS"),
        ({"TESSERA_MAIL_DOMAINS": "festival.fr;asso.org"}, "TESSERA_MAIL_DOMAINS"),
        ({"TESSERA_MAIL_DOMAINS": "x" * 300 + ".org"}, "TESSERA_MAIL_DOMAINS"),
        ({"TESSERA_BOUNCE_ADDRESS": "bounces"}, "TESSERA_BOUNCE_ADDRESS"),
        ({"TESSERA_BOUNCE_ADDRESS": "bounces @example.org"}, "TESSERA_BOUNCE_ADDRESS"),
        ({"TESSERA_BOUNCE_ADDRESS": "b@" + "x" * 400 + ".org"}, "TESSERA_BOUNCE_ADDRESS"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env, named):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.startswith(f"{named}:")
    assert "\n" not in message


def test_verified_mail_domains_are_lowered_and_left_to_the_sender_check_for_the_rest():
    given = {"TESSERA_MAIL_DOMAINS": " Festival.FR, asso.org.,,münster.de "}
    assert Settings.from_env(given).verified_mail_domains == {
        "festival.fr",
        "asso.org.",
        "münster.de",
    }


def test_the_envelope_sender_is_the_bounce_address_else_the_platform_sender():
    assert Settings(base_url="https://tickets.example.org").envelope_sender == (
        "no-reply@tickets.example.org"
    )
    given = {
        "TESSERA_BOUNCE_ADDRESS": "bounces@tickets.example.org",
        "TESSERA_MAIL_FROM": "t@x.org",
    }
    settings = Settings.from_env(given)
    assert (settings.envelope_sender, settings.platform_sender) == (
        "bounces@tickets.example.org",
        "t@x.org",
    )
    assert Settings.from_env({"TESSERA_BOUNCE_ADDRESS": ""}).envelope_sender == "no-reply@127.0.0.1"


def test_the_door_clients_variables_are_not_the_servers():
    """A door and a server may share a shell: TESSERA_SCAN_HOME belongs to `tessera-scan`."""
    assert Settings.from_env({"TESSERA_SCAN_HOME": "/srv/door"}) == Settings.from_env({})


def test_the_command_refuses_to_start_with_a_bad_variable(tmp_path):
    env = {"TESSERA_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["tessera: TESSERA_PORT: Expected `int`, got `str`"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///var/t.db", "sqlite+aiosqlite:///var/t.db"),
        ("sqlite+aiosqlite:///var/t.db", "sqlite+aiosqlite:///var/t.db"),
        ("postgresql://h/db", "postgresql+asyncpg://h/db"),
        ("postgres://h/db", "postgresql+asyncpg://h/db"),
    ],
)
def test_plain_database_urls_get_their_async_driver(given, expected):
    assert async_database_url(given) == expected


@pytest.mark.parametrize(
    ("given", "days"),
    [("7d", 7), ("1h", 1 / 24), ("36h", 1.5), ("2w", 14), ("3650d", 3650), (" 7D ", 7)],
)
def test_the_change_retention_is_a_number_and_a_unit(given, days):
    period = Settings.from_env({"TESSERA_CHANGE_RETENTION": given}).change_retention_period
    assert period is not None and period.total_seconds() == pytest.approx(days * 86400)
    assert Settings.from_env({}).change_retention == "7d"
    assert Settings.from_env({"TESSERA_CHANGE_RETENTION": "never"}).change_retention_period is None


@pytest.mark.parametrize(
    "given",
    [
        "",
        "-1d",
        "0s",
        "3599s",
        "3651d",
        "1.5d",
        "7",
        "d",
        "7 d",
        "P7D",
        "\u0661d",  # an Arabic-Indic digit
        "7y",
        "\x00",
        "9" * 10_000_000,
        "99999999999999999999d",
    ],
)
def test_a_bad_change_retention_is_one_short_line(given):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"TESSERA_CHANGE_RETENTION": given})
    line = str(refused.value)
    assert line.startswith("TESSERA_CHANGE_RETENTION: expected") and len(line) < 200
