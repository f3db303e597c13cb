"""Settings: every `TESSERA_*` variable is read here and nowhere else (ARCHITECTURE §11).

A bad value stops the start with one line naming the variable; `create_app(settings)` receives the
result, and tests build their own.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "ENV_PREFIX",
    "Settings",
    "SettingsError",
    "async_database_url",
    "parse_retention",
    "split_host_port",
]

ENV_PREFIX = "TESSERA_"
# The door client's own variables (TESSERA_SCAN_HOME): a door and a server may share a shell.
SCANNER_ENV_PREFIX = "TESSERA_SCAN_"

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class SettingsError(ValueError):
    """A setting that cannot start the service; `str()` is the one line shown to the operator."""


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    database_url: str = "sqlite+aiosqlite:///var/tessera.db"
    host: str = "127.0.0.1"
    port: Port = 8000
    base_url: str | None = None  # public base of guest links; defaults to http://HOST:PORT
    keys_dir: str = "keys"
    redis_url: str | None = None
    smtp_url: str | None = None
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    # Import uploads (CSV, XLSX, pasted lines): larger bodies get 413 naming this limit.
    import_max_bytes: Annotated[int, msgspec.Meta(gt=0)] = 20 * 1024 * 1024
    access_log: bool = True
    # Peers whose X-Forwarded-For / -Proto headers are believed (comma-separated addresses or
    # CIDRs); none by default, so a rotated header never passes for another client.
    trusted_proxies: str | None = None
    # Campaign mail: the platform's sender (default no-reply@ the base URL's host), the domains
    # the operator verified for organisers' own From addresses (comma-separated), and where the
    # outbox runs: in each `tessera serve` (embedded) or in `tessera worker` processes.
    mail_from: str | None = None
    mail_domains: str | None = None
    # The envelope sender (MAIL FROM, Return-Path) of every mail: where delivery reports and
    # bounces go, e.g. a mailbox piped to `tessera mail report -`. Unset or empty: MAIL_FROM.
    bounce_address: str | None = None
    worker: Literal["embedded", "external"] = "embedded"
    mail_dir: str = "var/mail"  # the local maildir, when TESSERA_SMTP_URL is unset
    # How long a worker's claim on a message lasts: a worker that died (SIGKILL, power) leaves
    # its messages to be sent again by another after this many seconds.
    outbox_lease: Annotated[int, msgspec.Meta(ge=1, le=86400)] = 120
    # DKIM signing of every outgoing mail: the operator's RSA private key (a PEM file only its
    # owner may read, as the keystore's), the selector its public key is published under
    # (`SELECTOR._domainkey.DOMAIN`) and the d= domain. All three or none; empty counts as unset.
    dkim_key_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    # Prometheus metrics (docs/metrics.md): on by default at /metrics on the app's port behind an
    # organiser token; METRICS_ADDRESS=HOST:PORT serves them on that separate listener instead
    # (no token: bind it where only Prometheus reaches); METRICS=false turns them off.
    metrics: bool = True
    metrics_address: str | None = None
    metrics_token_required: bool = True
    # How long the change log of a finished event is kept (server/changes/retention.py): a
    # number and a unit (s, m, h, d, w), at least 1h, at most 3650d; `never` keeps it forever.
    change_retention: str = "7d"

    def __post_init__(self) -> None:
        _check_database_url(self.database_url)
        if self.trusted_proxies:  # empty means none, as unset does
            _check_networks("trusted_proxies", self.trusted_proxies)
        if self.base_url is not None:
            _check_http_url("base_url", self.base_url)
        for name in ("redis_url", "smtp_url"):
            value = getattr(self, name)
            if value is not None and not urlsplit(value).scheme:
                raise ValueError(f"{name}: not a URL: {value!r}")
        _check_dkim(self)
        if self.mail_domains:
            _check_mail_domains(self.mail_domains)
        if self.bounce_address:
            _check_bounce_address(self.bounce_address)
        if self.metrics_address:  # empty means unset, as for the DKIM settings
            _check_metrics_address(self)
        try:
            parse_retention(self.change_retention)
        except ValueError as exc:
            raise ValueError(f"change_retention: {exc}") from None

    @property
    def change_retention_period(self) -> timedelta | None:
        """The change log's retention; None when it is kept forever."""
        return parse_retention(self.change_retention)

    @property
    def public_base_url(self) -> str:
        """The base of every absolute link Tessera hands out, without a trailing slash."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies as uvicorn's `forwarded_allow_ips` takes them (empty: trust none)."""
        return [item.strip() for item in (self.trusted_proxies or "").split(",") if item.strip()]

    @property
    def platform_sender(self) -> str:
        """The address campaign mail is sent from when an organiser's own domain may not be."""
        if self.mail_from:
            return self.mail_from
        host = urlsplit(self.public_base_url).hostname or "localhost"
        return f"no-reply@{host}"

    @property
    def envelope_sender(self) -> str:
        """MAIL FROM of every mail: where delivery reports go (BOUNCE_ADDRESS, else the
        platform's sender)."""
        return self.bounce_address or self.platform_sender

    @property
    def verified_mail_domains(self) -> frozenset[str]:
        names = (self.mail_domains or "").split(",")
        return frozenset(name.strip().lower() for name in names if name.strip())

    @property
    def maildir(self) -> Path:
        """Where mail goes without TESSERA_SMTP_URL (`tessera mail` reads it)."""
        return Path(self.mail_dir)

    @property
    def keys_path(self) -> Path:
        return Path(self.keys_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `TESSERA_*` variables; raises SettingsError naming the first bad one."""
        env = os.environ if env is None else env
        raw = {
            k[len(ENV_PREFIX) :].lower(): v
            for k, v in env.items()
            if k.startswith(ENV_PREFIX) and not k.startswith(SCANNER_ENV_PREFIX)
        }
        known = set(cls.__struct_fields__)
        for key in raw:
            if key not in known:
                raise SettingsError(f"{ENV_PREFIX}{key.upper()}: unknown setting")
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None

    def replace(self, **changes: object) -> Settings:
        return msgspec.structs.replace(self, **changes)


def _one_line(exc: msgspec.ValidationError) -> str:
    """Name the variable in msgspec's message: "Expected `int`, got `str` - at `$.port`"."""
    text = str(exc)
    if " - at `$." in text:
        message, _, where = text.rpartition(" - at `$.")
        name = where.rstrip("`").split(".")[0].split("[")[0]
        return f"{ENV_PREFIX}{name.upper()}: {message}"
    # __post_init__ failures read "name: message"
    name, sep, message = text.partition(": ")
    if sep and name in Settings.__struct_fields__:
        return f"{ENV_PREFIX}{name.upper()}: {message}"
    return f"{ENV_PREFIX}*: {text}"


_DKIM = ("dkim_key_file", "dkim_selector", "dkim_domain")


def _check_dkim(settings: Settings) -> None:
    """All three DKIM settings or none; when set, the key must sign (server/campaigns/dkim.py)."""
    given = [name for name in _DKIM if getattr(settings, name)]
    if not given:
        return
    missing = [name for name in _DKIM if name not in given]
    if missing:
        others = " and ".join(f"{ENV_PREFIX}{name.upper()}" for name in given)
        raise ValueError(f"{missing[0]}: required with {others} (set all three or none)")
    # Imported here: the mail stack (dkimpy, idna) loads only for an operator who signs.
    from server.campaigns.dkim import DkimKeyError, key_for

    try:
        key_for(settings)
    except DkimKeyError as exc:
        raise ValueError(str(exc)) from None


def _check_mail_domains(value: str) -> None:
    """Each of the comma-separated verified domains must be a domain (a typo would silently
    send every organiser's mail from the platform address instead)."""
    from server.campaigns.mail import MailError, check_domain

    for name in value.split(","):
        if not name.strip():
            continue
        try:
            check_domain(name.strip().rstrip("."))
        except MailError as exc:
            raise ValueError(f"mail_domains: {exc.detail}") from None


def _check_bounce_address(value: str) -> None:
    from server.campaigns.mail import MailError, check_address

    try:
        check_address(value)
    except MailError as exc:
        raise ValueError(f"bounce_address: {exc.detail}") from None


_DURATION = re.compile(r"([0-9]{1,7})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RETENTION_MIN = timedelta(hours=1)
_RETENTION_MAX = timedelta(days=3650)


def parse_retention(text: str) -> timedelta | None:
    """`7d`, `36h`, `2w` ... as a duration between 1h and 3650d; `never` is None. Raises
    ValueError saying what is expected."""
    value = text.strip().lower()
    if value == "never":
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        expected = "a number and a unit (s, m, h, d, w) or never"
        raise ValueError(f"expected {expected}, got {text[:40]!r}")
    period = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    if not _RETENTION_MIN <= period <= _RETENTION_MAX:
        raise ValueError(f"expected between 1h and 3650d, got {text[:40]!r}")
    return period


def split_host_port(address: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9100` for IPv6) as its host and port; raises ValueError."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host, int(port)


def _check_metrics_address(settings: Settings) -> None:
    if not settings.metrics:
        raise ValueError("metrics_address: set while TESSERA_METRICS is false")
    try:
        split_host_port(settings.metrics_address or "")
    except ValueError as exc:
        raise ValueError(f"metrics_address: {exc}") from None


def _check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ValueError(f"database_url: expected a sqlite:/// or postgresql:// URL, got {url!r}")


def _check_networks(name: str, value: str) -> None:
    items = [item.strip() for item in value.split(",")]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"{name}: expected comma-separated IP addresses or CIDRs, got {item!r}"
            ) from None


def _check_http_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name}: expected an http(s) URL, got {url!r}")


def async_database_url(url: str) -> str:
    """The SQLAlchemy URL with its async driver; plain `sqlite://`, `postgresql://` are accepted."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return f"sqlite+aiosqlite{sep}{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        return f"postgresql+asyncpg{sep}{rest}"
    return url
