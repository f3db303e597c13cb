"""The image's HEALTHCHECK: exit 0 when this container's `tessera serve` answers `/readyz` 200.

The slim image has no curl, so this is the standard library alone. It asks the port the server
reads (`TESSERA_PORT`, default 8000) on loopback, never through an HTTP proxy named in the
environment, and says on stderr why a check failed (`docker inspect` shows it). `/readyz` answers
503 while the database is unreachable, which fails the check: the proxy then has the other
instance, and an orchestrator may restart this one.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT = 4.0  # seconds; the HEALTHCHECK's own timeout is 5


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('TESSERA_PORT', '8000')}/readyz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            status = response.status
    except (OSError, ValueError) as exc:  # refused, timed out, HTTP 503 (HTTPError), bad port
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
