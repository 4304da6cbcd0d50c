"""Integration API throughput: requests/s and p99 of GET /api/v1/positions/ and GET /api/v1/alerts/
with an OAuth2 bearer token, beside a minimal Django JSON view served the same way, same run.

    python bench/api_throughput.py [--seconds 15] [--rounds 3] [--workers 3] [--connections 12]
                                   [--loadgen wrk|hey|python[,...]] [--positions 30] [--alerts 200]
    python bench/api_throughput.py --profile-served 10 [--split] --loadgen hey   # where served CPU goes

1. A throwaway PostgreSQL database (``test_tradeops_bench_api``, created, migrated and dropped
   here) with a realistic small book: ``--positions`` positions (accounts x instruments, each made
   by real fills through ``execution_record``) and ``--alerts`` surveillance alerts in cases
   (``alerts_record``), every write audited as in production.
2. Two API clients made by the real service (``api_client_create``): a trader client with
   ``trading:read`` and a compliance client with ``compliance:read``; their tokens come from the
   real token endpoint (``/o/token/``) of the server under test.
3. A real server process: Daphne (the default, what the production image runs: one ASGI
   process with the bounded pool), or ``--server gunicorn`` (sync workers, ``--workers``; not a
   dependency of the project, installed by hand to compare), the project's
   middleware, ``DEBUG`` off, throttles counting on the local Redis (``REDIS_URL``), as in a
   deployment. The URLconf is the project's plus one route, ``/bench/minimal/``: a view that
   returns ``JsonResponse({"status": "ok"})`` and nothing else, through the same middleware; and
   ``/bench/positions-plain/``, the same positions page from a plain Django view (same query and
   fields, no authentication, throttle or DRF), so the API machinery's own share shows.
4. A real load generator in its own process: wrk (Debian's package ``wrk``; keep-alive
   connections, latency percentiles), hey (Debian's package ``hey``, Go; ``--threads`` cores at
   most, one CSV line per request) or ``--loadgen python`` (worker processes, one thread per
   ``http.client`` keep-alive connection: ``--connections`` requests in flight). Several,
   comma-separated, are each run in every round. The four targets are measured in turn,
   ``--rounds`` times, interleaved so that the machine's noise falls on all of them alike; the
   median round is reported, with the ratio of each API endpoint to the minimal view (target: at
   least 0.5), both as the ratio of the medians and as the median of the per-round ratios (each
   API figure against the minimal view's of the same round), and two CPU figures per request
   answered: the server process's (user + system, from /proc, all its threads) and the load
   generator's (this process's children). On 2 CPUs the load generator competes with the server:
   its column says how much; the server's column is the steadier comparison of the targets' cost
   as served (Daphne, Twisted and the ASGI thread hops included). The load average before and
   after is printed.
5. The steadier figure on a shared machine: this process's CPU time per request for the same
   four targets, through Django's test client in this process (no HTTP server, no load
   generator; ``--inproc`` requests each, after a warm-up), so the application's own cost per
   request can be compared without the scheduler's noise.

``--profile-served N``: one Daphne per target with every thread under cProfile
(``bench/api_served_profile.py``), N seconds of load each, the top functions; ``--split`` instead
sums the CPU of each sync call per function (no profiler overhead) beside the event loop thread's.

Needs DATABASE_URL and MIGRATE_DATABASE_URL (default: the local PostgreSQL's runtime role and
owner, scripts/services.sh), REDIS_URL (default
redis://127.0.0.1:6379/0), and wrk or hey (``apt-get install wrk hey``) or ``--loadgen python``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from base64 import b64encode
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.api_settings"
os.environ.setdefault("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
# The database is created and migrated by the owner; the bench and the server run as the runtime
# role, as in production (docs/security.md).
os.environ.setdefault("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")
# its own name unless told (two worktrees benching at once must not share it)
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "test_tradeops_bench_api")
os.environ["DEBUG"] = "False"
os.environ.setdefault("CACHE_KEY_PREFIX", f"bench-api-{os.getpid()}")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tradeops.core.db_roles import database_owner  # noqa: E402

TARGETS = {
    "minimal Django JSON view": "/bench/minimal/",
    "same positions, plain Django view": "/bench/positions-plain/",
    "GET /api/v1/positions/": "/api/v1/positions/",
    "GET /api/v1/alerts/": "/api/v1/alerts/",
}


# ---------------------------------------------------------------- the book


def seed(*, positions: int, alerts: int) -> None:
    from compliance.services import alerts_record
    from tradeops.core.identifiers import lei_with_check_digits
    from tradeops.core.services import roles_sync
    from trading.models import Instrument, TradingAccount
    from trading.order_states import OrderStatus
    from trading.orders.plan import FillDraft
    from trading.orders.services import execution_record, order_create, order_transition

    roles_sync()
    per_account = 10
    accounts = [
        TradingAccount.objects.create(
            name=f"Bench account {i}",
            mt5_login=8_000_000 + i,
            mt5_server="bench-server",
            firm_lei=lei_with_check_digits("TRADEOPSBENCH00000"),
            client_id=f"CLIENT-{i}",
            beneficial_owner=f"OWNER-{i}",
        )
        for i in range(max(1, -(-positions // per_account)))
    ]
    instruments = [
        Instrument.objects.create(
            symbol=f"SYM{i:03d}",
            asset_class="FX",
            currency="EUR",
            quote_currency="USD",
            tick_size=Decimal("0.00001"),
            contract_size=Decimal(100000),
        )
        for i in range(per_account)
    ]
    t0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    for n in range(positions):
        account, instrument = accounts[n // per_account], instruments[n % per_account]
        order, _ = order_create(
            client_order_id=f"BENCH-{n}",
            account=account,
            instrument=instrument,
            side="BUY" if n % 2 else "SELL",
            quantity=Decimal("1.50"),
            at=t0,
        )
        order = order_transition(order=order, to=OrderStatus.RISK_APPROVED, at=t0)
        order = order_transition(order=order, to=OrderStatus.SUBMITTED, at=t0, broker_order_id=f"B-{n}")
        execution_record(
            order=order,
            fill=FillDraft(
                broker_deal_id=f"D-{n}",
                quantity=Decimal("1.50"),
                price=Decimal("1.08") + Decimal(n) / 10000,
                executed_at=t0 + timedelta(milliseconds=30),
            ),
        )
    kinds = ["spoofing", "wash_trade", "layering", "momentum_ignition", "best_execution_slippage"]
    alerts_record(
        alerts=[
            {
                "alert_type": kinds[i % len(kinds)],
                "account": str(accounts[i % len(accounts)].pk),
                "owner": f"OWNER-{i % 7}",
                "symbol": instruments[i % len(instruments)].symbol,
                "order_ids": [f"BENCH-{i % max(1, positions)}", f"BENCH-X-{i}"],
                "score": 0.5 + (i % 50) / 100,
                # an hour apart: each its own episode (alerts_record merges an episode's sightings)
                "start": (t0 + timedelta(hours=i)).isoformat(),
                "end": (t0 + timedelta(hours=i, seconds=4)).isoformat(),
                "evidence": {"fill_size": 1.5, "cancelled_size": 6.0, "ratio": 4.0, "threshold": 3.0},
            }
            for i in range(alerts)
        ]
    )


def make_clients() -> dict[str, tuple[str, str]]:
    from tradeops.api.services import api_client_create

    out = {}
    for name, role, scope in (
        ("bench-trader", "trader", "trading:read"),
        ("bench-compliance", "compliance_officer", "compliance:read"),
    ):
        # a throttle far above what the machine can serve: measured, never triggered
        client, secret = api_client_create(
            name=name, role=role, scopes=[scope], throttle_rate="100000000/min", actor="service:bench"
        )
        out[name] = (client.application.client_id, secret)
    return out


# ---------------------------------------------------------------- the server


def server_start(
    *,
    port: int,
    workers: int,
    database: str,
    server: str = "gunicorn",
    profile_to: str | None = None,
    split: bool = False,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    if server == "daphne":  # what docker/Dockerfile runs: one ASGI process, the bounded pool of tradeops.asgi
        daphne = [str(Path(sys.executable).parent / "daphne")]
        if profile_to:  # every thread under cProfile (bench/api_served_profile.py)
            daphne = [sys.executable, str(ROOT / "bench" / "api_served_profile.py")]
            env["API_SERVED_PROFILE"] = profile_to
            env["API_SERVED_SPLIT"] = "1" if split else "0"
        command = [*daphne, "-v", "0", "-b", "127.0.0.1", "-p", str(port), "tradeops.asgi:application"]
        return subprocess.Popen(
            command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if gunicorn is None:
        sys.exit(
            "gunicorn is not a dependency (production serves with Daphne): install it to compare, or --server daphne"
        )
    process = subprocess.Popen(
        [
            gunicorn,
            "tradeops.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--keep-alive",
            "75",
            "--log-level",
            "warning",
            "--preload",  # import the application once, before forking the workers
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    return process


def server_wait(port: int) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/minimal/", timeout=30) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while it starts, or slow on a busy machine
            time.sleep(0.5)
    sys.exit("the server did not answer within 120 s")


def server_stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def token(port: int, client_id: str, secret: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/o/token/",
        data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
        headers={"Authorization": "Basic " + b64encode(f"{client_id}:{secret}".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["access_token"]


def probe(port: int, path: str, bearer: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {bearer}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# ---------------------------------------------------------------- load generators


def run_wrk(*, url: str, bearer: str, seconds: int, connections: int, threads: int) -> dict:
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", url]
    if bearer:
        command[1:1] = ["-H", f"Authorization: Bearer {bearer}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _wrk_ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))
    p50 = _wrk_ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket": errors,
        "requests": done,
    }


def _wrk_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_hey(*, url: str, bearer: str, seconds: int, connections: int, threads: int) -> dict:
    """hey (Debian's package ``hey``, Go): ``connections`` keep-alive workers for ``seconds``, on
    ``threads`` cores at most (GOMAXPROCS: it competes with the server for the machine's CPUs)."""
    command = ["hey", "-z", f"{seconds}s", "-c", str(connections), "-cpus", str(threads), "-disable-compression"]
    if bearer:
        command += ["-H", f"Authorization: Bearer {bearer}"]
    # one CSV line per request (its latency and status), so the percentiles are computed as the python
    # load generator's are, whatever the count
    out = subprocess.run([*command, "-o", "csv", url], capture_output=True, text=True, check=True).stdout
    rows = [line.split(",") for line in out.splitlines()[1:] if line]
    if not rows:
        sys.exit(f"hey measured nothing: {' '.join(command)}")
    latencies = sorted(float(row[0]) * 1000 for row in rows)
    return {
        "rps": len(rows) / seconds,
        "requests": len(rows),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "non_2xx": sum(not 200 <= int(row[6]) < 300 for row in rows),
        "socket": None,
    }


def _python_worker(args) -> tuple[int, list[float], int]:
    """One load process: ``per_process`` keep-alive connections, each driven by its own thread, so
    that as many requests are in flight as there are connections. (Until 4 December the process
    took its connections in turn, one request at a time: 2 requests in flight for "2 x 12", which
    measured latency more than the server's throughput and weighed every round trip an API
    request waits on, Redis and PostgreSQL, as if it were the server's work.)"""
    import http.client
    import threading

    port, path, bearer, seconds, per_process = args
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    end = time.perf_counter() + seconds
    results: list[tuple[list[float], int]] = []

    def drive() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        latencies: list[float] = []
        bad = 0
        while time.perf_counter() < end:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies.append((time.perf_counter() - start) * 1000)
            bad += response.status >= 300
        results.append((latencies, bad))

    threads = [threading.Thread(target=drive) for _ in range(per_process)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [x for lat, _ in results for x in lat]
    return len(latencies), latencies, sum(bad for _, bad in results)


def run_python(*, port: int, path: str, bearer: str, seconds: int, connections: int, processes: int) -> dict:
    per_process = max(1, connections // processes)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_python_worker, [(port, path, bearer, seconds, per_process)] * processes)
    latencies = sorted(x for _, lat, _ in results for x in lat)
    count = sum(n for n, _, _ in results)
    return {
        "rps": count / seconds,
        "requests": count,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "non_2xx": sum(b for _, _, b in results),
        "socket": None,
    }


# ---------------------------------------------------------------- main


def print_rounds_table(rounds: dict, targets, *, baseline: str, ratio_label: str) -> None:
    """The markdown table of each target's median requests/s, p50 and p99 over the rounds, with
    its requests/s as a ratio of the ``baseline`` target's (measured in the same rounds): the
    ratio of the medians, and the median of the per-round ratios (each round's figure against the
    baseline's of the same round, measured a few seconds before it: steadier when the machine's
    load moves between rounds)."""
    server = "server_cpu_ms" in rounds[baseline][0]
    print(
        f"| target | requests/s | p50 | p99 | requests/s vs {ratio_label} | median of per-round ratios |"
        + (" server CPU per request | load generator CPU per request |" if server else "")
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if server else ""))
    base = statistics.median(r["rps"] for r in rounds[baseline])
    for name in targets:
        rps = statistics.median(r["rps"] for r in rounds[name])
        p50 = statistics.median(r["p50_ms"] for r in rounds[name])
        p99 = statistics.median(r["p99_ms"] for r in rounds[name])
        paired = statistics.median(r["rps"] / b["rps"] for r, b in zip(rounds[name], rounds[baseline], strict=True))
        line = f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {rps / base:.2f}x | {paired:.2f}x |"
        if server:
            cpu = statistics.median(r["server_cpu_ms"] for r in rounds[name])
            gen = statistics.median(r["loadgen_cpu_ms"] for r in rounds[name])
            line += f" {cpu:.2f} ms | {gen:.2f} ms |"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument(
        "--server",
        choices=["daphne", "gunicorn"],
        default="daphne",
        help="daphne: what production serves with; gunicorn: installed by hand",
    )
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads / Python load processes")
    parser.add_argument(
        "--loadgen",
        default="wrk" if shutil.which("wrk") else "python",
        help="wrk, hey or python, or several comma-separated (each in every round, interleaved); wrk and hey "
        "(C / Go) take less of the machine's CPUs from the server than the python one",
    )
    parser.add_argument("--positions", type=int, default=30)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8106")))
    parser.add_argument("--page-size", type=int, default=0, help="?page_size= on the API calls (0: the default)")
    parser.add_argument("--inproc", type=int, default=300, help="in-process requests per target (0: skip)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="only profile: N in-process requests per API target under cProfile, print the top functions, no server",
    )
    parser.add_argument(
        "--fast-path-ab",
        type=int,
        default=0,
        metavar="N",
        help="only this: in-process CPU per request of each API target with the cached pages' fast path on and "
        "off (API_PAGE_FAST_PATH), N requests each, interleaved in blocks of 50; no server",
    )
    parser.add_argument(
        "--profile-served",
        type=int,
        default=0,
        metavar="SECONDS",
        help="only profile: serve each target for SECONDS under load from a server whose every thread runs under "
        "cProfile (bench/api_served_profile.py), one server per target; print each one's top functions",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="with --profile-served: no profiler, the CPU time of each sync call in its thread summed per function, "
        "the event loop thread's and the process's user and system time, per request",
    )
    args = parser.parse_args()
    for loadgen in args.loadgen.split(","):
        if loadgen not in ("wrk", "hey", "python") or (loadgen != "python" and not shutil.which(loadgen)):
            parser.error(f"--loadgen {loadgen}: wrk, hey (installed) or python")

    old_name = connection.settings_dict["NAME"]
    with database_owner():
        test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    try:
        t = time.perf_counter()
        seed(positions=args.positions, alerts=args.alerts)
        clients = make_clients()
        seeded = time.perf_counter() - t
        db = settings.DATABASES["default"]
        database = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{test_name}"
        query = f"?page_size={args.page_size}" if args.page_size else ""
        paths = {name: path + (query if path.startswith("/api/") else "") for name, path in TARGETS.items()}
        if args.profile:
            profile(clients, paths, args.profile)
            return
        if args.fast_path_ab:
            fast_path_ab(clients, paths, args.fast_path_ab)
            return
        if args.profile_served:
            profile_served(args, clients, paths, database)
            return
        cpu = in_process(clients, paths, args.inproc) if args.inproc else {}
        load_before = os.getloadavg()
        server = server_start(port=args.port, workers=args.workers, database=database, server=args.server)
        server_wait(args.port)
        bearers = {name: token(args.port, *creds) for name, creds in clients.items()}
        who = {
            "minimal Django JSON view": "",
            "same positions, plain Django view": "",
            "GET /api/v1/positions/": bearers["bench-trader"],
            "GET /api/v1/alerts/": bearers["bench-compliance"],
        }
        sizes = {name: len(probe(args.port, paths[name], who[name])["results"]) for name in TARGETS if who[name]}
        loadgens = args.loadgen.split(",")
        # warm every worker's connection and caches before measuring
        for name in TARGETS:
            warm(args, paths[name], who[name], seconds=2, loadgen=loadgens[0])
        rounds = {loadgen: {name: [] for name in TARGETS} for loadgen in loadgens}
        for r in range(args.rounds):
            for loadgen in loadgens:  # every load generator in every round: the same minutes for both
                for name in TARGETS:
                    result = measure(args, paths[name], who[name], server_pid=server.pid, loadgen=loadgen)
                    if result["non_2xx"]:
                        sys.exit(f"{name}: {result['non_2xx']} responses were not 2xx (throttled? broken?)")
                    rounds[loadgen][name].append(result)
                    print(
                        f"round {r + 1} {loadgen:6} {name:34} {result['rps']:8.1f} req/s  "
                        f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                        f"server CPU {result['server_cpu_ms']:.2f} ms/req  "
                        f"load generator CPU {result['loadgen_cpu_ms']:.2f} ms/req  "
                        f"load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
    finally:
        if server is not None:
            server_stop(server)
        from tradeops.api.cache import version_connections_close

        version_connections_close()  # the in-process requests' (the database is dropped next)
        connection.close()
        with database_owner():
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)

    load = os.getloadavg()
    print()
    print(
        f"python bench/api_throughput.py --seconds {args.seconds} --rounds {args.rounds} --workers {args.workers} "
        f"--connections {args.connections} --threads {args.threads} --loadgen {args.loadgen} "
        f"--server {args.server} --port {args.port}" + (f" --page-size {args.page_size}" if args.page_size else "")
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_version()}, "
        + (f"gunicorn {args.workers} sync workers" if args.server == "gunicorn" else "daphne (one process)")
        + f", {args.threads} load threads x {args.connections} connections, {args.seconds} s per target, load "
        f"generator and round, median of {args.rounds} rounds; {args.positions} positions "
        f"({sizes['GET /api/v1/positions/']} per page), "
        f"{args.alerts} alerts ({sizes['GET /api/v1/alerts/']} per page); seeded in {seeded:.0f} s; "
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)"
    )
    for loadgen in loadgens:
        print()
        print(f"Load generator: {loadgen}")
        print()
        print_rounds_table(
            rounds[loadgen], TARGETS, baseline="minimal Django JSON view", ratio_label="the minimal view"
        )
    if cpu:
        print()
        print(f"In this process (Django's test client, {args.inproc} requests each, CPU time of this process):")
        print()
        print("| target | CPU per request | vs the minimal view |")
        print("| --- | ---: | ---: |")
        for name in TARGETS:
            print(f"| {name} | {cpu[name]:.2f} ms | {cpu[name] / cpu['minimal Django JSON view']:.1f}x |")


def in_process(clients: dict[str, tuple[str, str]], paths: dict[str, str], count: int) -> dict[str, float]:
    """CPU time of this process per request, through Django's test client (no server)."""
    from django.test import Client

    http = Client(HTTP_HOST="127.0.0.1")
    bearer = {}
    for name, (client_id, secret) in clients.items():
        basic = "Basic " + b64encode(f"{client_id}:{secret}".encode()).decode()
        response = http.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic)
        bearer[name] = response.json()["access_token"]
    who = {
        "GET /api/v1/positions/": bearer["bench-trader"],
        "GET /api/v1/alerts/": bearer["bench-compliance"],
    }
    out = {}
    for name, path in paths.items():
        headers = {"HTTP_AUTHORIZATION": f"Bearer {who[name]}"} if name in who else {}
        for _ in range(max(20, count // 10)):
            assert http.get(path, **headers).status_code == 200, name
        start = time.process_time()
        for _ in range(count):
            http.get(path, **headers)
        out[name] = (time.process_time() - start) / count * 1000
    return out


def profile(clients: dict[str, tuple[str, str]], paths: dict[str, str], count: int) -> None:
    """cProfile of ``count`` in-process requests per API target (after a warm-up): where a
    request's CPU goes, by own time and by cumulative time."""
    import cProfile
    import pstats

    from django.test import Client

    http = Client(HTTP_HOST="127.0.0.1")
    for name, (client_id, secret) in clients.items():
        basic = "Basic " + b64encode(f"{client_id}:{secret}".encode()).decode()
        token_ = http.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic).json()
        target = "GET /api/v1/positions/" if name == "bench-trader" else "GET /api/v1/alerts/"
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token_['access_token']}"}
        for _ in range(50):
            assert http.get(paths[target], **headers).status_code == 200, target
        profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on Redis and PostgreSQL
        start = time.process_time()
        profiler.enable()
        for _ in range(count):
            http.get(paths[target], **headers)
        profiler.disable()
        print(f"== {target}: {(time.process_time() - start) / count * 1000:.3f} ms CPU per request (profiled)")
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)


def fast_path_ab(clients: dict[str, tuple[str, str]], paths: dict[str, str], count: int) -> None:
    """CPU of this process per request (Django's test client) for each API target and the minimal
    view, the cached pages' fast path on and off by turns (blocks of 50), so both see the same
    machine."""
    from django.test import Client

    http = Client(HTTP_HOST="127.0.0.1")
    who = {"minimal Django JSON view": {}}
    for name, (client_id, secret) in clients.items():
        basic = "Basic " + b64encode(f"{client_id}:{secret}".encode()).decode()
        token_ = http.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic).json()
        target = "GET /api/v1/positions/" if name == "bench-trader" else "GET /api/v1/alerts/"
        who[target] = {"HTTP_AUTHORIZATION": f"Bearer {token_['access_token']}"}
    spent = {(name, on): 0.0 for name in who for on in (True, False)}
    done = dict.fromkeys(spent, 0)
    for name, headers in who.items():
        for _ in range(50):
            assert http.get(paths[name], **headers).status_code == 200, name
    while min(done.values()) < count:
        for on in (True, False):
            settings.API_PAGE_FAST_PATH = on
            for name, headers in who.items():
                start = time.process_time()
                for _ in range(50):
                    http.get(paths[name], **headers)
                spent[(name, on)] += time.process_time() - start
                done[(name, on)] += 50
    minimal = {on: spent[("minimal Django JSON view", on)] / done[("minimal Django JSON view", on)] for on in (1, 0)}
    print(f"In this process, {count} requests each, fast path on and off in turns; load average {os.getloadavg()}")
    print()
    print("| target | CPU per request, fast path on | off (DRF's dispatch) | on / off | on vs the minimal view |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in who:
        on, off = (spent[(name, x)] / done[(name, x)] * 1000 for x in (True, False))
        print(f"| {name} | {on:.3f} ms | {off:.3f} ms | {on / off:.2f} | {on / (minimal[True] * 1000):.1f}x |")


def profile_served(args, clients: dict[str, tuple[str, str]], paths: dict[str, str], database: str) -> None:
    """Where a served request's CPU goes: for the minimal view and each API target, a Daphne
    whose every thread runs under cProfile (``bench/api_served_profile.py``) serves
    ``--profile-served`` seconds of load (measured from after its start-up and a warm-up); its
    own-time and cumulative tables (or with ``--split``, CPU per request by sync function, no
    profiler), with the server's CPU per request."""
    import pstats
    import tempfile

    loadgen = args.loadgen.split(",")[0]
    for name in ("minimal Django JSON view", "GET /api/v1/positions/", "GET /api/v1/alerts/"):
        out = Path(tempfile.mkdtemp(prefix="api-served-")) / "profile.pstats"
        server = server_start(
            port=args.port, workers=1, database=database, server="daphne", profile_to=str(out), split=args.split
        )
        try:
            server_wait(args.port)
            bearer = ""
            if name != "minimal Django JSON view":
                bearer = token(args.port, *clients["bench-trader" if "positions" in name else "bench-compliance"])
            warm(args, paths[name], bearer, seconds=2, loadgen=loadgen)
            os.kill(server.pid, signal.SIGUSR1)  # profile from here
            result = measure(
                args, paths[name], bearer, seconds=args.profile_served, server_pid=server.pid, loadgen=loadgen
            )
        finally:
            server_stop(server)
        print(
            f"== {name} served under cProfile ({loadgen}): {result['rps']:.0f} req/s, "
            f"server CPU {result['server_cpu_ms']:.2f} ms per request (profiled), {result['requests']} requests"
        )
        if args.split:
            split = json.loads(out.read_text())
            n = result["requests"]
            print(
                f"per request: process user {split['user'] / n * 1000:.3f} ms, system {split['system'] / n * 1000:.3f}"
                f" ms; event loop thread {split['event_loop_thread'] / n * 1000:.3f} ms; sync calls in worker threads:"
            )
            for name, (calls, spent) in sorted(split["sync"].items(), key=lambda kv: -kv[1][1]):
                print(f"  {spent / n * 1000:8.3f} ms  {calls / n:5.2f} calls  {name}")
            continue
        stats = pstats.Stats(str(out)).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(60)


def warm(args, path: str, bearer: str, *, seconds: int, loadgen: str) -> None:
    measure(args, path, bearer, seconds=seconds, loadgen=loadgen)


def measure(
    args, path: str, bearer: str, *, loadgen: str, seconds: int | None = None, server_pid: int | None = None
) -> dict:
    """One load run, with the CPU the server process and the load generator each spent on it per
    request answered (the server's from /proc; the load generator's as this process's children)."""
    server_before = _process_cpu(server_pid) if server_pid else None
    children_before = _children_cpu()
    result = _load(args, path, bearer, seconds=seconds or args.seconds, loadgen=loadgen)
    served = max(1, result["requests"])
    result["loadgen_cpu_ms"] = (_children_cpu() - children_before) / served * 1000
    if server_pid:
        result["server_cpu_ms"] = (_process_cpu(server_pid) - server_before) / served * 1000
    return result


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load(args, path: str, bearer: str, *, seconds: int, loadgen: str) -> dict:
    if loadgen == "hey":
        return run_hey(
            url=f"http://127.0.0.1:{args.port}{path}",
            bearer=bearer,
            seconds=seconds,
            connections=args.connections,
            threads=args.threads,
        )
    if loadgen == "wrk":
        return run_wrk(
            url=f"http://127.0.0.1:{args.port}{path}",
            bearer=bearer,
            seconds=seconds,
            connections=args.connections,
            threads=args.threads,
        )
    return run_python(
        port=args.port, path=path, bearer=bearer, seconds=seconds, connections=args.connections, processes=args.threads
    )


if __name__ == "__main__":
    main()
