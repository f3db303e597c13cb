"""`tessera`: serve, migrate, demo data, organiser tokens, console users and signing keys."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from server.config import Settings, SettingsError

if TYPE_CHECKING:  # the commands import what they use when run: `tessera --help` stays quick
    from datetime import datetime

    from server.campaigns.models import Campaign
    from server.campaigns.schemas import Counts

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"tessera: {exc}", file=sys.stderr)
        return 2
    return int(args.run(settings, args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tessera", description=__doc__)
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the HTTP and websocket service with uvicorn")
    serve.add_argument("--host", help="listen address (default TESSERA_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default TESSERA_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(run=_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_async(_migrate))

    demo = sub.add_parser("demo", help="create the demo event and bookings (idempotent)")
    demo.set_defaults(run=_async(_demo))

    token = sub.add_parser("token", help="organiser API tokens").add_subparsers(title="token")
    create = token.add_parser("create", help="create a token; prints the secret alone on stdout")
    create.add_argument("--name", required=True)
    create.add_argument("--read-only", action="store_true", help="refused any change (403)")
    create.set_defaults(run=_async(_token_create))
    token.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        run=_async(_token_list)
    )
    revoke = token.add_parser("revoke", help="revoke a token by id, or all tokens of a name")
    revoke.add_argument("token")
    revoke.set_defaults(run=_async(_token_revoke))

    user = sub.add_parser("user", help="organiser accounts of the console").add_subparsers(
        title="user"
    )
    user_create = user.add_parser("create", help="create a console user; prints its id")
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--name", required=True)
    user_create.add_argument("--role", required=True, choices=["admin", "editor", "read_only"])
    user_create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a password (one line) from stdin; without it, the user signs in by mailed link",
    )
    user_create.set_defaults(run=_async(_user_create))
    user.add_parser("list", help="list console users").set_defaults(run=_async(_user_list))
    for verb, what in (("disable", "sign-ins and sessions end at once"), ("enable", "again")):
        switch = user.add_parser(verb, help=f"{verb} a console user by address ({what})")
        switch.add_argument("email")
        switch.set_defaults(run=_async(_user_switch), disabled=verb == "disable")

    keys = sub.add_parser("keys", help="ticket signing keys").add_subparsers(title="keys")
    keys.add_parser("list", help="list keys and their state").set_defaults(run=_async(_keys_list))
    keys.add_parser("rotate", help="generate a key that signs from now on").set_defaults(
        run=_async(_keys_rotate)
    )
    retire = keys.add_parser("retire", help="stop accepting tickets signed by KID")
    retire.add_argument("kid")
    retire.set_defaults(run=_async(_keys_retire))

    mail = sub.add_parser(
        "mail", help="read the local maildir (mail sent without TESSERA_SMTP_URL)"
    ).add_subparsers(title="mail")
    mail.add_parser("list", help="list the messages, newest last").set_defaults(run=_mail_list)
    show = mail.add_parser("show", help="print a message's headers and its text")
    show.add_argument("id", help="the id `tessera mail list` shows, or the start of it")
    part = show.add_mutually_exclusive_group()
    part.add_argument("--html", action="store_true", help="print the HTML part instead")
    part.add_argument("--raw", action="store_true", help="print the whole message as stored")
    show.set_defaults(run=_mail_show)
    report = mail.add_parser(
        "report",
        help="record a delivery report (a DSN mail, as an MTA pipes it) in the message ledger;"
        " exit 0 recorded, 65 not a report, 66 no such file, 67 about no message of ours,"
        " 75 not sent yet (try again later)",
    )
    report.add_argument("file", help="the report mail, or - to read it from stdin")
    report.set_defaults(run=_mail_report)

    campaign = sub.add_parser(
        "campaign", help="an event's campaigns and their sending progress"
    ).add_subparsers(title="campaign")
    listed = campaign.add_parser("list", help="the event's campaigns with their ledger counts")
    listed.add_argument("event_id")
    listed.set_defaults(run=_async(_campaign_list))
    watch = campaign.add_parser(
        "watch",
        help="a progress bar on stderr until the campaign is sent, cancelled or missed;"
        " exit 1 if any of its messages failed",
    )
    watch.add_argument("campaign_id")
    watch.add_argument(
        "--interval",
        type=_interval,
        default=1.0,
        help="seconds between two looks at the ledger (default 1)",
    )
    watch.set_defaults(run=_campaign_watch)

    worker = sub.add_parser(
        "worker", help="send campaign mail (the outbox) in this process, until stopped"
    )
    worker.add_argument(
        "--once", action="store_true", help="send what is due now, then exit (cron, tests)"
    )
    worker.set_defaults(run=_worker)

    imports = sub.add_parser(
        "import",
        help="import guests from a file as bookings of a ticket type: analyze (default), then"
        " --commit; exit 1 when the import is refused or would be",
    )
    imports.add_argument("file", help="CSV, TXT (pasted lines email[;quantity]), XLSX, XLS, ODS")
    imports.add_argument("--event", required=True, help="the event id")
    imports.add_argument("--ticket-type", required=True, help="the ticket type every row books")
    imports.add_argument(
        "--confirm", action="store_true", help="confirm the bookings and issue their tickets"
    )
    imports.add_argument(
        "--duplicates",
        choices=("skip", "update", "keep"),
        default="skip",
        help="rows whose address already holds a booking of the ticket type (default skip)",
    )
    imports.add_argument(
        "--on-error",
        choices=("reject_all", "skip_invalid"),
        default="reject_all",
        help="reject_all (default): one invalid row refuses the commit",
    )
    imports.add_argument(
        "--commit", action="store_true", help="write the import (all rows or none)"
    )
    imports.add_argument(
        "--report-csv", metavar="PATH", help="also write the invalid and duplicate rows to PATH"
    )
    imports.set_defaults(run=_import_file)

    backup = sub.add_parser(
        "backup",
        help="write the database to PATH (0600), consistent while serving, checked"
        " (SQLite: online backup; PostgreSQL: pg_dump custom format); not the keystore",
    )
    backup.add_argument("path", help="the backup file (replaced atomically if it exists)")
    backup.set_defaults(run=_backup)
    restore = sub.add_parser(
        "restore",
        help="restore a `tessera backup` file into a new or empty database; then `tessera"
        " migrate`; exit 1 when refused (nothing written)",
    )
    restore.add_argument("path", help="a file written by `tessera backup`")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that already holds data"
    )
    restore.set_defaults(run=_restore)

    prune = sub.add_parser(
        "prune",
        help="remove the change log of events that ended more than TESSERA_CHANGE_RETENTION"
        " ago (default 7d; `tessera serve` and `tessera worker` also do it hourly)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be removed, remove nothing"
    )
    prune.set_defaults(run=_async(_prune))

    event = sub.add_parser("event", help="events").add_subparsers(title="event")
    archive = event.add_parser(
        "archive",
        help="write a finished event's bookings, tickets and check-ins to DIR (0600 files),"
        " then close its doors for good and remove its change log",
    )
    archive.add_argument("event", help="the event id")
    archive.add_argument(
        "--to", required=True, metavar="DIR", help="where the export goes (created 0700)"
    )
    archive.set_defaults(run=_async(_archive))
    return parser


def _async(
    command: Callable[[Any, Settings, argparse.Namespace], Awaitable[int | None]],
) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        async def wrapper() -> int | None:
            from server.db import Database

            database = Database(settings.database_url)
            try:
                return await command(database, settings, args)
            finally:
                await database.dispose()

        try:
            return int(asyncio.run(wrapper()) or 0)
        except Exception as exc:
            from server.errors import DomainError

            if isinstance(exc, DomainError):
                print(f"tessera: {exc.detail}", file=sys.stderr)
                return 1
            raise

    return run


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from server.campaigns.worker import run_worker

    return asyncio.run(run_worker(settings, once=args.once))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from server.logs import configure_logging

    settings = settings.replace(host=args.host or settings.host, port=args.port or settings.port)
    if args.workers > 1 and not settings.redis_url:
        # Each worker process would keep its own in-process fan-out: doors on one worker would
        # not see check-ins taken on another until their room re-read the change log.
        print(
            "tessera: --workers > 1 needs TESSERA_REDIS_URL for fan-out between workers",
            file=sys.stderr,
        )
        return 2
    configure_logging()
    # uvicorn believes X-Forwarded-For from loopback unless told otherwise, so a local proxy
    # passing the header through would let anyone pick the address the rate limits count.
    proxies = settings.trusted_proxy_list
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        workers=args.workers,
        access_log=False,
        log_config=None,
        ws_per_message_deflate=False,
        lifespan="on",
        env_file=None,
    )
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.backup import BackupError, backup_database

    try:
        report = backup_database(settings, Path(args.path))
    except BackupError as exc:
        print(f"tessera: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print(
        f"tessera: the signing keys in {settings.keys_path}/ are not in it: back them up on"
        " their own (docs/backup.md)",
        file=sys.stderr,
    )
    return 0


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.backup import BackupError, restore_database

    try:
        report = restore_database(settings, Path(args.path), force=args.force)
    except BackupError as exc:
        print(f"tessera: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    if report.revision != report.head:  # no change_floor before migration 0009
        print(
            "tessera: after `tessera migrate`, pair the doors again: their cursors may name"
            " changes this backup does not hold (docs/backup.md)",
            file=sys.stderr,
        )
        return 0
    from server.changes.retention import seal_restored_log
    from server.db import Database

    async def seal() -> int:
        database = Database(settings.database_url)
        try:
            return await seal_restored_log(database)
        finally:
            await database.dispose()

    events = asyncio.run(seal())
    print(
        f"tessera: {events} events' change logs moved past every seq handed out before the"
        " restore: doors load a new snapshot when they connect",
        file=sys.stderr,
    )
    return 0


async def _prune(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from server.changes.retention import prune

    retention = settings.change_retention_period
    if retention is None:
        print("tessera prune: TESSERA_CHANGE_RETENTION is never: nothing removed")
        return 0
    started = time.perf_counter()
    done = await prune(database, retention=retention, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for item in done:
        print(
            f"{item.event_id}  {_shown(item.name)}: {verb} {item.removed} changes"
            f" up to seq {item.floor}, {item.kept} kept"
        )
    total = sum(item.removed for item in done)
    seconds = time.perf_counter() - started
    print(
        f"tessera prune: {verb} {total} changes of {len(done)}"
        f" event{'' if len(done) == 1 else 's'} in {seconds:.1f} s"
        f" (retention {settings.change_retention})"
    )
    return 0


async def _archive(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.checkin.fanout import MemoryFanout
    from server.checkin.redis_fanout import RedisFanout
    from server.events.archive import archive_event

    event_id = _checked_id(args.event, "event")
    fanout: Any = RedisFanout(settings.redis_url) if settings.redis_url else MemoryFanout()
    await fanout.start()
    try:
        done = await archive_event(database, fanout, event_id, Path(args.to))
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        where = _shown(args.to)[:200]
        print(f"tessera event archive: cannot write {where}: {reason}", file=sys.stderr)
        return 1
    finally:
        await fanout.stop()
    for path, rows in done.files:
        print(f"{path}  {rows} rows")
    print(
        f"tessera event archive: {event_id} archived; {done.devices_revoked} devices revoked,"
        f" {done.changes_removed} changes removed"
    )
    return 0


async def _migrate(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.db.migrate import migrate

    await migrate(database)
    print(f"migrated {settings.database_url}", file=sys.stderr)


async def _demo(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.demo import seed_demo

    await seed_demo(database, settings)


async def _token_create(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.auth.service import create_token

    async with database.transaction() as session:
        _, secret = await create_token(session, args.name, read_only=args.read_only)
    print(secret)


async def _token_list(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.auth.service import list_tokens

    async with database.transaction(read_only=True) as session:
        tokens = await list_tokens(session)
    print(f"{'id':<17} {'name':<24} {'access':<10} {'created':<20} revoked")
    for t in tokens:
        print(
            f"{t.id:<17} {t.name[:24]:<24} {'read-only' if t.read_only else 'full':<10} "
            f"{t.created_at:%Y-%m-%d %H:%M:%S}  {t.revoked_at or '-'}"
        )


async def _token_revoke(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.auth.service import revoke_token

    async with database.transaction() as session:
        count = await revoke_token(session, args.token)
    print(f"revoked {count} token(s)", file=sys.stderr)


async def _user_create(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from server.console.accounts import create_user
    from server.errors import BodyInvalid

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        async with database.transaction() as session:
            user = await create_user(
                session, email=args.email, name=args.name, role=args.role, password=password
            )
    except BodyInvalid as exc:
        for error in exc.errors:
            print(f"tessera: {error['field']}: {error['message']}", file=sys.stderr)
        return 1
    print(user.id)
    return 0


async def _user_switch(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from server.console.accounts import set_disabled
    from server.db import utcnow

    async with database.transaction() as session:
        user = await set_disabled(session, args.email, disabled=args.disabled, now=utcnow())
        shown = None if user is None else _shown(user.email)
    if shown is None:
        print(f"tessera: no user with the address {_shown(args.email)!r}", file=sys.stderr)
        return 1
    print(f"{'disabled' if args.disabled else 'enabled'} {shown}")
    return 0


async def _user_list(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.console.accounts import list_users

    async with database.transaction(read_only=True) as session:
        users = await list_users(session)
    print(f"{'id':<17} {'email':<32} {'role':<10} {'password':<9} disabled")
    for u in users:
        print(
            f"{u.id:<17} {_shown(u.email)[:32]:<32} {u.role:<10} "
            f"{'yes' if u.password_hash else 'no':<9} {u.disabled_at or '-'}"
        )


async def _keys_list(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.keys.service import Keystore, list_keys

    keystore = Keystore(settings.keys_path)
    async with database.transaction(read_only=True) as session:
        keys = await list_keys(session)
    signing = next(
        (k.kid for k in reversed(keys) if k.retired_at is None and keystore.read(k.kid)), None
    )
    print(f"{'kid':<10} {'state':<10} {'created':<20} private key here")
    for k in keys:
        state = "retired" if k.retired_at else ("signing" if k.kid == signing else "verifying")
        has_private = "yes" if keystore.path(k.kid).exists() else "no"
        print(f"{k.kid:<10} {state:<10} {k.created_at:%Y-%m-%d %H:%M:%S}  {has_private}")


async def _keys_rotate(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.keys.service import Keystore, rotate_key

    async with database.transaction() as session:
        key = await rotate_key(session, Keystore(settings.keys_path))
    print(key.kid)


async def _keys_retire(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.keys.service import Keystore, retire_key

    async with database.transaction() as session:
        key = await retire_key(session, Keystore(settings.keys_path), args.kid)
    print(f"retired {key.kid}", file=sys.stderr)


def _mail_list(settings: Settings, args: argparse.Namespace) -> int:
    from server.campaigns.transport import read_maildir

    _mail_output(settings)
    mails = read_maildir(settings.maildir)
    if not mails:
        print("no mail yet")
        return 0
    width = max(len(m.id) for m in mails)
    print(f"{'id':<{width}} {'date':<16} {'to':<32} subject")
    for m in mails:
        when = (m.date or m.delivered).astimezone()
        to = _shown(m.to)
        to = to if len(to) <= 32 else to[:31] + "…"
        print(f"{m.id:<{width}} {when:%Y-%m-%d %H:%M} {to:<32} {_shown(m.subject)}")
    return 0


def _mail_show(settings: Settings, args: argparse.Namespace) -> int:
    from server.campaigns.transport import read_mail, view_mail

    _mail_output(settings)
    if not settings.maildir.is_dir():
        print("no mail yet")
        return 0
    try:
        raw = read_mail(settings.maildir, args.id)
    except KeyError as exc:
        wanted, matches = exc.args
        print(
            f"tessera: {matches} mails have an id starting {_shown(wanted)[:80]!r}: give more of it"
            if matches
            else f"tessera: no mail {_shown(wanted)[:80]!r} in {settings.maildir}"
            " (ids: tessera mail list)",
            file=sys.stderr,
        )
        return 1
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        return 0
    view = view_mail(raw)
    for name, value in view.headers:
        print(f"{name}: {_shown(value)}")
    body = view.html if args.html else view.text
    print()
    if body is None:
        kind = "HTML" if args.html else "plain-text"
        print(f"tessera: this message has no {kind} part", file=sys.stderr)
        return 1
    print(_shown(body, lines=True), end="" if body.endswith("\n") else "\n")
    return 0


# --- mail report ------------------------------------------------------------------------------
# For a mail system's pipe (.forward, procmail, Postfix's pipe(8)): one line on stdout when
# recorded, one on stderr when not, and a sysexits code the MTA understands: 75 makes it queue
# the report and try again later; the others make it give up (a bounce of a report, whose sender
# is <>, is dropped).

_EX_DATAERR, _EX_NOINPUT, _EX_NOUSER, _EX_TEMPFAIL = 65, 66, 67, 75


def _mail_report(settings: Settings, args: argparse.Namespace) -> int:
    from server.campaigns.reports import MAX_REPORT_BYTES, ReportUnreadable, parse_report

    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read(MAX_REPORT_BYTES + 1)
        else:
            with open(args.file, "rb") as file:
                raw = file.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        print(f"tessera: {_shown(args.file)[:200]}: {exc.strerror or exc}", file=sys.stderr)
        return _EX_NOINPUT
    try:
        report = parse_report(raw)
    except ReportUnreadable as exc:
        print(f"tessera: {exc.errors[0]['message']}", file=sys.stderr)
        return _EX_DATAERR
    try:
        return _async(_record_report)(settings, argparse.Namespace(report=report))
    except Exception as exc:  # the database is down or busy: the MTA keeps the report
        print(f"tessera: could not record the report now: {exc}"[:300], file=sys.stderr)
        return _EX_TEMPFAIL


async def _record_report(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from server.campaigns.service import ReportUnmatched, record_report
    from server.errors import InvalidState

    try:
        async with database.transaction() as session:
            done = await record_report(session, args.report)
    except ReportUnmatched as exc:
        print(f"tessera: the report {exc.errors[0]['message']}", file=sys.stderr)
        return _EX_NOUSER
    except InvalidState as exc:
        print(f"tessera: {exc.detail}", file=sys.stderr)
        return _EX_TEMPFAIL
    message = done.message
    if done.changed:
        reply = _shown(message.last_reply or "")
        print(f"{message.id} {message.status} (was {done.was}): {reply}")
    else:
        print(f"{message.id} {message.status} (unchanged)")
    return 0


# --- campaign list | watch ----------------------------------------------------------------------
# Counts come from the ledger (`service.counts`), the one truth the API's `counts` also reads;
# "sent" includes the messages a delivery report has since marked delivered.
# `watch` draws on stderr: redrawn in place with \r on a terminal, else one line per look (a log
# or a CI job keeps every line). It ends when the campaign does: sent, cancelled or missed.

_FINAL = ("sent", "cancelled", "missed")
_BAR = 30
_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # any id Tessera hands out; anything else is no id


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a number of seconds: {_shown(text)[:40]!r}"
        ) from None
    if not 0.05 <= value <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("expected 0.05 to 3600 seconds")
    return value


def _checked_id(value: str, resource: str) -> str:
    """`value` when it can be an id; else NotFound, as the database would answer, before any
    query: an argument may hold control characters, lone surrogates or megabytes."""
    from server.errors import NotFound

    if not _ID.fullmatch(value):
        raise NotFound(resource, _shown(value)[:64])
    return value


async def _campaign_list(database: Any, settings: Settings, args: argparse.Namespace) -> None:
    from server.campaigns import service

    event_id = _checked_id(args.event_id, "event")
    rows: list[tuple[Campaign, Counts]] = []
    async with database.transaction(read_only=True) as session:
        while True:
            page, total = await service.list_campaigns(
                session, event_id, limit=500, offset=len(rows)
            )
            rows.extend([(c, await service.counts(session, c.id)) for c in page])
            if not page or len(rows) >= total:
                break
    _replace_unencodable()
    if not rows:
        print("no campaigns yet")
        return
    created = "created"
    print(
        f"{'id':<16} {'status':<10} {'sent':>7} {'failed':>7} {'remaining':>9} {created:<16} name"
    )
    for c, counts in rows:
        print(
            f"{c.id:<16} {c.status:<10} {counts.sent + counts.delivered:>7} {counts.failed:>7} "
            f"{counts.remaining:>9} {c.created_at.astimezone():%Y-%m-%d %H:%M} {_shown(c.name)}"
        )


def _campaign_watch(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return _async(_watch)(settings, args)
    except KeyboardInterrupt:  # Ctrl-C stops the watching, not the sending
        print(file=sys.stderr)
        return 130


async def _watch(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from server.campaigns import service

    campaign_id = _checked_id(args.campaign_id, "campaign")
    redraw = sys.stderr.isatty()
    while True:
        async with database.transaction(read_only=True) as session:
            campaign = await service.get_campaign(session, campaign_id)
            counts = await service.counts(session, campaign_id)
        line = _progress(campaign.status, counts, campaign.send_at, campaign.recipients)
        done = campaign.status in _FINAL
        if redraw:  # \x1b[K: the rest of the last drawing goes when the line got shorter
            sys.stderr.write(f"\r{line}\x1b[K" + ("\n" if done else ""))
        else:
            sys.stderr.write(f"{line}\n")
        sys.stderr.flush()
        if done:
            return 1 if counts.failed else 0
        await asyncio.sleep(args.interval)


def _progress(status: str, counts: Counts, send_at: datetime | None, recipients: int | None) -> str:
    """One line for people: `[#####.....] 512/2000 sent, 3 failed, 1485 remaining`."""
    if status == "draft":
        return "draft: not sent yet"
    if status == "scheduled":
        when = f"{send_at.astimezone():%Y-%m-%d %H:%M %Z}" if send_at else "later"
        return f"scheduled for {when} ({recipients or 0} recipients at confirmation)"
    if status == "missed":
        return "missed: nothing sent (its time passed by more than its grace window)"
    total = counts.total
    done = total - counts.remaining
    filled = _BAR if total == 0 else _BAR * done // total
    line = (
        f"[{'#' * filled}{'.' * (_BAR - filled)}] {counts.sent + counts.delivered}/{total} sent, "
        f"{counts.failed} failed"
    )
    if status in _FINAL:
        return f"{line}: {status}"
    return f"{line}, {counts.remaining} remaining"


def _replace_unencodable() -> None:
    # Names in any script must not stop the listing on a terminal that cannot show them.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")


def _mail_output(settings: Settings) -> None:
    # Guest names in any script must not stop the listing on a terminal that cannot show them.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    if settings.smtp_url:
        print("tessera: TESSERA_SMTP_URL is set: new mail goes there, not here", file=sys.stderr)


# C0 and C1 controls, DEL and the bidirectional overrides: subjects, names and bodies come from
# organisers and buyers, and an escape sequence in them must not reach the operator's terminal.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSHOWABLE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(text: str, *, lines: bool = False) -> str:
    return (_UNSHOWABLE_IN_LINES if lines else _UNSHOWABLE).sub("\ufffd", text)


# --- import ------------------------------------------------------------------------------------
# The same service path as POST /api/v1/events/{id}/imports (server/imports/invitations.py), on
# the database directly. Progress goes to stderr (a spinner while the file is read and checked,
# a bar while bookings are written); the report goes to stdout as tables.


def _import_file(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    path = Path(args.file)
    try:
        args.data = path.read_bytes()
    except OSError as exc:
        print(f"tessera: cannot read {_shown(str(path))!r}: {exc.strerror}", file=sys.stderr)
        return 1
    args.filename = path.name
    return _async(_import)(settings, args)


async def _import(database: Any, settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from server.errors import BodyInvalid
    from server.imports.invitations import ImportRefused, InvitationOptions, Source

    event_id = _checked_id(args.event, "event")
    ticket_type_id = _checked_id(args.ticket_type, "ticket type")
    source = Source(args.data, args.filename, None)
    options = InvitationOptions(
        ticket_type_id=ticket_type_id,
        confirm=args.confirm,
        duplicates=args.duplicates,
        on_error=args.on_error,
    )
    _replace_unencodable()
    out = Console(highlight=False)
    try:
        result = await _run_import(database, settings, event_id, source, options, args.commit)
    except ImportRefused as exc:  # the report says why; nothing was written
        result = exc.result
        _print_import(out, result, "commit")
        print(f"tessera: {exc.detail}", file=sys.stderr)
        code = 1
    except BodyInvalid as exc:  # an unreadable file, no such ticket type: which and why
        for error in exc.errors:
            print(f"tessera: {error['field']}: {_shown(error['message'])}", file=sys.stderr)
        return 1
    else:
        _print_import(out, result, "commit" if args.commit else "analyze")
        code = 1 if result.refusal else 0
    if args.report_csv:
        _write_report_csv(Path(args.report_csv), source, result)
    return code


async def _run_import(
    database: Any, settings: Settings, event_id: str, source: Any, options: Any, commit: bool
) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from server.imports.invitations import analyze_invitations, commit_invitations
    from server.keys.service import KeyRing, Keystore, ensure_signing_key
    from server.tickets.service import TicketIssuer

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
    columns += (MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:  # on stderr
        reading = progress.add_task("reading and checking", total=None)
        if not commit:
            async with database.transaction(read_only=True) as session:
                return await analyze_invitations(session, event_id, source, options)
        writing = progress.add_task("writing bookings", total=None, visible=False)

        def advance(done: int, total: int) -> None:
            progress.update(reading, visible=False)
            progress.update(writing, completed=done, total=total, visible=True)

        async with database.transaction() as session:
            await ensure_signing_key(session, Keystore(settings.keys_path))
            keys = await KeyRing(Keystore(settings.keys_path)).keys(session)
            issuer = TicketIssuer(keys, settings.public_base_url)
            return await commit_invitations(
                session, event_id, source, options, issuer, settings=settings, progress=advance
            )


def _print_import(out: Any, result: Any, mode: str) -> None:
    """The report as the API answers it, as tables: counts, then problems and duplicates."""
    from rich.table import Table

    from server.imports.invitations import invitation_report

    report = invitation_report(result, mode)  # type: ignore[arg-type]
    summary = Table(title=f"import {mode}: {_shown(report.source.format)}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    rows = report.rows
    for name in ("read", "valid", "invalid", "duplicates", "create", "update", "skip"):
        summary.add_row(f"rows {name}", str(getattr(rows, name)))
    summary.add_row("tickets", str(report.tickets))
    remaining = report.capacity.remaining
    summary.add_row("seats left before", "unlimited" if remaining is None else str(remaining))
    if report.capacity.exceeded:
        over = report.capacity.asked - (remaining or 0)
        summary.add_row("over capacity", f"yes: {over} tickets more than the seats left")
    if report.languages:
        summary.add_row("languages", ", ".join(f"{k} {v}" for k, v in report.languages.items()))
    if report.created is not None:
        created = report.created
        summary.add_row("created bookings", str(created.bookings))
        summary.add_row("created tickets", str(created.tickets))
        summary.add_row("mails queued", str(created.mails))
        summary.add_row("bookings updated", str(created.updated))
    summary.add_row("committed", "yes" if report.committed else "no")
    if report.refusal:
        summary.add_row("refused", report.refusal)
    summary.add_row("digest", report.digest)
    out.print(summary)
    if report.problems:
        problems = Table(title=f"problems ({report.problems_total})")
        for name in ("line", "column", "field", "reason", "value"):
            problems.add_column(name)
        for p in report.problems[:_LISTED]:
            cells = (p.line, p.column or "", p.field, p.reason, p.value[:40])
            problems.add_row(*(_shown(str(c)) for c in cells))
        out.print(problems)
    if report.duplicates:
        duplicates = Table(title=f"duplicates ({report.duplicates_total})")
        for name in ("line", "email", "action", "duplicate of"):
            duplicates.add_column(name)
        for d in report.duplicates[:_LISTED]:
            duplicates.add_row(str(d.line), _shown(d.email), d.action, str(d.duplicate_of))
        out.print(duplicates)
    hidden = max(report.problems_total, report.duplicates_total) - _LISTED
    if hidden > 0:
        out.print(f"... and more: --report-csv PATH writes every row to fix ({hidden} not shown)")


_LISTED = 50  # rows of each table; the CSV report holds them all


def _write_report_csv(path: Any, source: Any, result: Any) -> None:
    from server.imports.report_csv import report_csv

    chunks = report_csv(
        source.data,
        filename=source.filename,
        content_type=source.content_type,
        analysis=result.analysis,
        decisions=result.decisions,
    )
    with open(path, "wb") as target:
        for chunk in chunks:
            target.write(chunk)
    print(f"report written to {_shown(str(path))}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
