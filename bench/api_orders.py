"""Placing orders over the integration API: requests/s and p99 of ``POST /api/v1/orders/`` with an
OAuth2 bearer token (a new idempotency key on every request), beside two baselines served the
same way in the same run, then every request taken through the execution worker's gate.

    python bench/api_orders.py [--seconds 10] [--rounds 3] [--workers 3] [--connections 12]
                               [--gate-orders 300] [--port 8106]

1. A throwaway PostgreSQL database (``test_tradeops_bench_api``, as ``bench/api_throughput.py``)
   with one trading account and ten instruments, a trader API client (``trading:read``,
   ``trading:write``; its throttle far above what the machine serves) and a person for the plain
   view.
2. The same server as ``bench/api_throughput.py`` (gunicorn sync workers, the project's
   middleware, ``DEBUG`` off, throttles in the local Redis) and wrk with a Lua script that gives
   every request its own ``client_order_id`` (thread number and counter), so each request records
   a new order request (audit record and outbox event in one transaction: the 202 path). Three
   targets, interleaved over ``--rounds``, median reported:
   - ``POST /bench/minimal-post/``: a view that parses the JSON body and answers 202;
   - ``POST /bench/order-request-plain/``: the same request from a plain Django view calling the
     same service (``order_request``) for a fixed person: what the write alone costs;
   - ``POST /api/v1/orders/``: the API (token, throttle, write scope audited, DRF, the service).
3. Through the gate: ``--gate-orders`` of the API's requests, as their ``order.requested`` events
   from the outbox, handled by a live execution worker (paper broker, this process) exactly as it
   takes them from the bus (the request closed as taken, the pre-trade gate, the broker, the one
   write), beside the same number of the same orders executed as the worker's own intents
   (``ExecutionWorker.execute``): orders/s and CPU per order, and a check that every request
   became exactly one order.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import api_throughput as base

LUA = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = args[1] .. "-" .. tid .. "-"
end
function request()
  counter = counter + 1
  local body = '{"client_order_id": "' .. prefix .. counter .. '", "account": ACCOUNT, '
    .. '"symbol": "SYM00' .. (counter % 10) .. '", "side": "' .. ((counter % 2 == 0) and "BUY" or "SELL")
    .. '", "quantity": "0.01"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = AUTH}, body)
end
"""

TARGETS = {
    "POST minimal Django JSON view": "/bench/minimal-post/",
    "same order request, plain Django view": "/bench/order-request-plain/",
    "POST /api/v1/orders/": "/api/v1/orders/",
}


def seed() -> tuple[int, tuple[str, str]]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from bench.api_urls import PLAIN_REQUESTER
    from tradeops.api.services import api_client_create
    from trading.models import TradingAccount

    base.seed(positions=0, alerts=0)  # one account, ten instruments, no position (the paper broker has none)
    person = get_user_model().objects.create_user(username=PLAIN_REQUESTER, password=None)
    person.groups.add(Group.objects.get(name="trader"))
    client, secret = api_client_create(
        name="bench-orders",
        role="trader",
        scopes=["trading:read", "trading:write"],
        throttle_rate="100000000/min",
        actor="service:bench",
    )
    account = TradingAccount.objects.order_by("pk").first()
    return account.pk, (client.application.client_id, secret)


def run_wrk_post(*, url: str, bearer: str, account: int, tag: str, seconds: int, connections: int, threads: int):
    script = LUA.replace("ACCOUNT", str(account)).replace("AUTH", repr(f"Bearer {bearer}" if bearer else ""))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
        command += ["-s", handle.name, url, "--", tag]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)
    import re

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50_ms": base._wrk_ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1)),
        "p99_ms": base._wrk_ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def through_the_gate(count: int, account_id: int) -> dict:
    """The API's requests through a live worker, beside the same orders as its own intents."""
    from dataclasses import replace
    from datetime import timedelta

    from msgspec import structs

    from tradeops.audit.models import AuditRecord
    from tradeops.core.clock import utcnow
    from tradeops.events import Tick, decode, make_event
    from tradeops.outbox.models import Outbox
    from trading.brokers.paper import PaperBroker, PaperConfig
    from trading.intents import Quote, intent_of_request
    from trading.models import Instrument, Order, TradingAccount
    from trading.risk import RiskLimits
    from workers.execution import ExecutionConfig, ExecutionWorker

    rows = Outbox.objects.filter(event_type="order.requested").order_by("id")
    events = [e for e in (decode(bytes(r.message)) for r in rows) if e.payload.client_order_id.startswith("api-")]
    events = events[:count]
    instruments = list(Instrument.objects.all())
    account = TradingAccount.objects.get(pk=account_id)
    broker = PaperBroker.from_instruments(instruments, config=PaperConfig(balance=Decimal(10**9)))
    broker.connect()
    now = utcnow()
    for inst in instruments:
        broker.update_quote(Quote(inst.symbol, Decimal("1.10000"), Decimal("1.10002"), now))
    # quotes stay current for the bench's length (a busy machine takes minutes): the gate decides
    # on limits, not on stale market data
    config = ExecutionConfig(default_limits=RiskLimits(duplicate_window_ms=None), stale_after=timedelta(hours=1))
    worker = ExecutionWorker(brokers={account.pk: broker}, config=config).start()
    for inst in instruments:
        tick = Tick(symbol=inst.symbol, bid=Decimal("1.10000"), ask=Decimal("1.10002"), ts=utcnow())
        worker.handle(make_event(tick, source="bench", key=inst.symbol))
    # the requests expire 60 s after they were made: the bench takes them up as if at once
    events = [structs.replace(e, payload=structs.replace(e.payload, expires_at=None)) for e in events]
    out = {}
    cpu, wall = time.process_time(), time.perf_counter()
    for event in events:
        worker.handle(event)
    out["api"] = (time.perf_counter() - wall, time.process_time() - cpu)
    keys = [e.payload.client_order_id for e in events]
    orders = dict(Order.objects.filter(client_order_id__in=keys).values_list("client_order_id", "status"))
    taken = AuditRecord.objects.filter(action="order.request_taken", object_id__in=keys).count()
    intents = [
        replace(intent_of_request(e.payload, quote=None, at=utcnow()), client_order_id=f"OWN-{i}")
        for i, e in enumerate(events)
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    for intent in intents:
        worker.execute(replace(intent, ts=utcnow(), reference_price=Decimal("1.10001")))
    out["own"] = (time.perf_counter() - wall, time.process_time() - cpu)
    statuses: dict[str, int] = {}
    for status in orders.values():
        statuses[status] = statuses.get(status, 0) + 1
    return {"count": len(events), "orders": len(orders), "taken": taken, "statuses": statuses, **out}


def main() -> None:
    from django.conf import settings
    from django.db import connection

    from tradeops.core.db_roles import database_owner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gate-orders", type=int, default=300)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8106")))
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    with database_owner():
        test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    rounds: dict[str, list[dict]] = {name: [] for name in TARGETS}
    try:
        account, creds = seed()
        db = settings.DATABASES["default"]
        database = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{test_name}"
        server = base.server_start(port=args.port, workers=args.workers, database=database)
        base.server_wait(args.port)
        bearer = base.token(args.port, *creds)
        who = {name: (bearer if path.startswith("/api/") else "") for name, path in TARGETS.items()}
        tags = {name: tag for name, tag in zip(TARGETS, ("min", "plain", "api"), strict=True)}

        def go(name, seconds, label):
            return run_wrk_post(
                url=f"http://127.0.0.1:{args.port}{TARGETS[name]}",
                bearer=who[name],
                account=account,
                tag=f"{tags[name]}-{label}",
                seconds=seconds,
                connections=args.connections,
                threads=args.threads,
            )

        warm_answers = 0
        for name in TARGETS:
            warmed = go(name, 2, "w")  # warm every worker
            if name != "POST minimal Django JSON view":
                warm_answers += warmed["requests"]
        for r in range(args.rounds):
            for name in TARGETS:
                result = go(name, args.seconds, f"r{r}")
                if result["non_2xx"]:
                    sys.exit(f"{name}: {result['non_2xx']} responses were not 2xx")
                rounds[name].append(result)
                print(
                    f"round {r + 1} {name:38} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                    f"p99 {result['p99_ms']:8.2f} ms",
                    flush=True,
                )
        base.server_stop(server)
        server = None
        from tradeops.audit.models import AuditRecord

        recorded = AuditRecord.objects.filter(action="order.requested").count()
        writers = [name for name in TARGETS if name != "POST minimal Django JSON view"]
        answered = warm_answers + sum(r["requests"] for name in writers for r in rounds[name])
        gate = through_the_gate(args.gate_orders, account)
    finally:
        if server is not None:
            base.server_stop(server)
        connection.close()
        with database_owner():
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)

    load = os.getloadavg()
    print()
    print(
        f"python bench/api_orders.py --seconds {args.seconds} --rounds {args.rounds} --workers {args.workers} "
        f"--connections {args.connections} --gate-orders {args.gate_orders}"
    )
    print(
        f"gunicorn {args.workers} sync workers, wrk {args.threads} threads x {args.connections} connections, "
        f"{args.seconds} s per target and round, median of {args.rounds} rounds; order requests recorded "
        f"{recorded} for {answered} answered (wrk counts only completed responses); "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print()
    base.print_rounds_table(
        rounds, TARGETS, baseline="POST minimal Django JSON view", ratio_label="the minimal POST view"
    )
    print()
    n = gate["count"]
    print(
        f"Through the gate (one live execution worker in this process, paper broker): {n} API requests -> "
        f"{gate['orders']} orders ({gate['statuses']}), {gate['taken']} closed as taken"
    )
    print()
    print("| path | orders/s | CPU per order | vs the worker's own intents |")
    print("| --- | ---: | ---: | ---: |")
    for label, key in (("the worker's own intents (execute)", "own"), ("API requests (order.requested)", "api")):
        wall, cpu = gate[key]
        print(f"| {label} | {n / wall:,.0f} | {cpu / n * 1000:.2f} ms | {gate['own'][0] / wall:.2f}x |")


if __name__ == "__main__":
    main()
