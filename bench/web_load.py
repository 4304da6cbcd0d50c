"""The web tier's database connections under HTTP load (issue 19): a real Daphne on loopback,
``hey`` (Debian's package) as the load generator, PostgreSQL's own count of the connections.

For each configuration a fresh Daphne serves ``tradeops.asgi:application`` (DEBUG off) and ``hey``
sends ``--requests`` requests from ``--clients`` concurrent clients to ``--path`` (``/healthz``:
one query); meanwhile a sampler reads ``pg_stat_activity`` every 20 ms and keeps the highest
number of connections the web process holds. Configurations, measured in the same run:

- ``persistent``: ``CONN_MAX_AGE=60``, the default before issue 19 (the baseline);
- ``per-request``: ``CONN_MAX_AGE=0`` (Django opens and closes one per request);
- ``pool``: Django's psycopg pool, ``DB_POOL_MAX_SIZE`` connections at most (the web tier's default).

Run it against a PostgreSQL of your own, never a shared one: the baseline exhausts
``max_connections`` (that is what it shows). Usage:

    DATABASE_URL=postgres://tradeops:tradeops@127.0.0.1:5433/tradeops python bench/web_load.py
    python bench/web_load.py --requests 2000 --clients 20 --configs pool,per-request

Prints one line per configuration: HTTP status counts, requests/s, p50/p99 latency, peak and
after-load connections.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "persistent": {"DB_POOL_MAX_SIZE": "0", "DB_CONN_MAX_AGE": "60"},
    "per-request": {"DB_POOL_MAX_SIZE": "0", "DB_CONN_MAX_AGE": "0"},
    "pool": {"DB_POOL_MAX_SIZE": "8"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daphne_start(*, port: int, env: dict) -> subprocess.Popen:
    """Daphne serving the project's ASGI application on 127.0.0.1:port; returns once /healthz answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradeops.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {process.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("daphne did not answer /healthz within 60 s")


def daphne_stop(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err or ""


class ConnectionSampler:
    """Polls pg_stat_activity for the connections of ``user`` to ``database`` (other than its own)."""

    def __init__(self, *, dsn: dict, user: str, database: str, interval: float = 0.02) -> None:
        import psycopg

        self._conn = psycopg.connect(**dsn, autocommit=True)
        self.user, self.database, self.interval = user, database, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        return self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND datname = %s AND pid <> pg_backend_pid()",
            [self.user, self.database],
        ).fetchone()[0]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def close(self) -> None:
        self._conn.close()


def hey_run(*, url: str, requests: int, clients: int, timeout: int = 20) -> dict:
    """Run ``hey`` and parse its report: status code counts, errors, requests/s, p50/p99 (ms)."""
    hey = shutil.which("hey")
    if hey is None:
        raise RuntimeError("the load generator 'hey' is not installed (apt-get install hey)")
    out = subprocess.run(
        [hey, "-n", str(requests), "-c", str(clients), "-t", str(timeout), url],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]\s+Get ", out))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%+ in ([\d.]+) secs", out)
    p99 = re.search(r"99%+ in ([\d.]+) secs", out)
    return {
        "statuses": statuses,
        "errors": errors,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": float(p50.group(1)) * 1000 if p50 else None,
        "p99_ms": float(p99.group(1)) * 1000 if p99 else None,
        "report": out,
    }


def database_settings() -> dict:
    import environ

    url = os.environ.get("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
    return environ.Env.db_url_config(url)


def measure(*, config: dict, db: dict, requests: int, clients: int, path: str) -> dict:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tradeops.settings.local", "DEBUG": "false", **config}
    env["DATABASE_URL"] = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**db)
    dsn = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"], "dbname": db["NAME"]}
    sampler = ConnectionSampler(dsn=dsn, user=db["USER"], database=db["NAME"])
    process = daphne_start(port=port, env=env)
    try:
        with sampler:
            result = hey_run(url=f"http://127.0.0.1:{port}{path}", requests=requests, clients=clients)
        time.sleep(2)
        result["after"] = sampler.count()
        result["peak"] = sampler.peak
    finally:
        result_err = daphne_stop(process)
        sampler.close()
    result["server_errors"] = result_err.count("Traceback")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--configs", default="persistent,per-request,pool")
    args = parser.parse_args()
    db = database_settings()
    print(
        f"{args.requests} requests from {args.clients} clients to {args.path} (hey, Daphne on loopback), "
        f"database {db['NAME']} as {db['USER']}; load average {os.getloadavg()[0]:.1f}"
    )
    for name in args.configs.split(","):
        config = CONFIGS[name]
        result = measure(config=config, db=db, requests=args.requests, clients=args.clients, path=args.path)
        statuses = " ".join(f"{code}x{n}" for code, n in sorted(result["statuses"].items()))
        knobs = ", ".join(f"{k}={v}" for k, v in config.items())
        print(
            f"{name:12} {statuses:>22}  transport errors {result['errors']:4}  {result['rps']:7.1f} req/s  "
            f"p50 {result['p50_ms'] or 0:7.1f} ms  p99 {result['p99_ms'] or 0:8.1f} ms  "
            f"connections peak {result['peak']:3}, 2 s after {result['after']:3}  ({knobs})"
        )
        sys.stdout.flush()
        time.sleep(3)  # let PostgreSQL reap what the last configuration left


if __name__ == "__main__":
    main()
