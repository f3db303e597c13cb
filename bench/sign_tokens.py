"""Sign ticket tokens with Tessera's codec and with raw PyJWT: same claims, same key, same run.

Each contender runs in its own process (no shared warm caches or GC state) on claims and a key
derived from one seed, so both sign identical inputs. Prints one JSON line per contender
(name, n, per_second, median_us, p99_us, versions), then a ratio line.

Run: ``.venv/bin/python bench/sign_tokens.py [N]`` (N defaults to 20,000).
"""

import json
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.ids import ALPHABET, EVENT_ID_LENGTH, TICKET_ID_LENGTH
from protocol.token import TicketClaims, sign_ticket_token

SEED = 20_260_314
CONTENDERS = ("tessera.sign_ticket_token", "pyjwt.encode")
VERSIONS = {
    "python": platform.python_version(),
    "pyjwt": version("pyjwt"),
    "cryptography": version("cryptography"),
    "msgspec": version("msgspec"),
}


def _signer(name: str, n: int) -> Callable[[int], str]:
    """The contender `name` as a function of the claim index; inputs depend only on SEED."""
    rng = random.Random(SEED)
    private_key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    kid = "".join(rng.choices(ALPHABET, k=8))
    event = "".join(rng.choices(ALPHABET, k=EVENT_ID_LENGTH))
    jtis = ["".join(rng.choices(ALPHABET, k=TICKET_ID_LENGTH)) for _ in range(n)]
    if name == "pyjwt.encode":
        dicts = [{"jti": jti, "evt": event, "ver": 1} for jti in jtis]
        return lambda i: jwt.encode(dicts[i], private_key, algorithm="EdDSA", headers={"kid": kid})
    claims = [TicketClaims(jti=jti, evt=event, ver=1) for jti in jtis]
    return lambda i: sign_ticket_token(claims[i], private_key, kid)


def measure(name: str, n: int) -> dict[str, object]:
    """Time each of `n` signatures after a short warm-up."""
    sign = _signer(name, n)
    for i in range(min(n, 500)):
        sign(i)
    clock = time.perf_counter_ns
    samples = []
    started = clock()
    for i in range(n):
        before = clock()
        sign(i)
        samples.append(clock() - before)
    elapsed = (clock() - started) / 1e9
    samples.sort()
    return {
        "name": name,
        "n": n,
        "per_second": round(n / elapsed),
        "median_us": round(statistics.median(samples) / 1000, 2),
        "p99_us": round(samples[int(n * 0.99)] / 1000, 2),
        "versions": VERSIONS,
    }


def main(n: int) -> None:
    rates: dict[str, int] = {}
    for name in CONTENDERS:
        line = subprocess.run(
            [sys.executable, __file__, str(n), name], check=True, capture_output=True, text=True
        ).stdout.strip()
        print(line, flush=True)
        rates[name] = json.loads(line)["per_second"]
    ratio = rates["tessera.sign_ticket_token"] / rates["pyjwt.encode"]
    machine = f"{platform.machine()} {platform.system()} {platform.processor() or ''}".strip()
    print(
        json.dumps(
            {"ratio": "tessera/pyjwt per_second", "value": round(ratio, 3), "machine": machine}
        )
    )


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        raise SystemExit(__doc__)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    if len(sys.argv) > 2:
        print(json.dumps(measure(sys.argv[2], count)))
    else:
        main(count)
