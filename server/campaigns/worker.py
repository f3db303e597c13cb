"""`tessera worker`: the outbox (and the change log's retention) in its own process, for the
scaled deployment.

Run as many as you like on PostgreSQL (claims skip each other's rows); on SQLite run one, or
leave the default `TESSERA_WORKER=embedded` and let `tessera serve` send. SIGTERM and SIGINT
stop it after the batch in hand; SIGKILL loses nothing either (models.py: claims expire).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta

from server.campaigns.outbox import Outbox
from server.campaigns.transport import mailer_for
from server.changes.retention import Pruner
from server.config import Settings
from server.db import Database

__all__ = ["run_worker"]

log = logging.getLogger("tessera.worker")


async def run_worker(settings: Settings, *, once: bool = False) -> int:
    """Send until stopped (or, with `once`, until nothing is due); the process's exit code."""
    database = Database(settings.database_url)
    sent = 0

    def progress(count: int) -> None:
        nonlocal sent
        sent += count
        print(f"tessera worker: {sent} messages handled", file=sys.stderr, flush=True)

    outbox = Outbox(
        database,
        settings,
        mailer_for(settings.smtp_url, settings.maildir),
        lease=timedelta(seconds=settings.outbox_lease),
        on_progress=progress,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    retention = settings.change_retention_period
    pruner = Pruner(database, retention) if retention else None  # the change log's retention
    try:
        if once:
            while await outbox.run_once():
                pass
            if pruner is not None:
                await pruner.run_once()
        else:
            pruning = asyncio.create_task(pruner.run(stop)) if pruner else None
            await outbox.run(stop)
            if pruning is not None:
                await pruning
    finally:
        await outbox.mailer.close()
        await database.dispose()
    return 0
