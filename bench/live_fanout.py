"""Live screens: events/s delivered to N connected WebSocket screens through the Redis channel
layer, and commit-to-screen latency (issue 14), beside a bare Channels fan-out in the same run.

One real Daphne serves ``tradeops.asgi:application`` (the project's consumer, its session
authentication, the Redis channel layer on a Redis database of the bench's own); ``--screens``
WebSocket clients (the ``websockets`` library, requirements/dev.txt) sign in with a session each and stay
connected. Two paths are measured, one after the other, with the same number of events at the
same offered rate:

- ``live path``: a writer commits one ``position.changed`` event per transaction to the outbox
  (``outbox_append`` in ``transaction.atomic``, as every service does); the real ``OutboxRelay``
  publishes it to a memory bus; the live-push stage (``workers.live_push.LivePush``) sends it to
  the Channels group; Daphne's consumers write it to every socket. Latency: from the commit's
  return to each screen's receipt (one clock: all in this host).
- ``bare fan-out``: the same number of messages sent straight to the same group with
  ``channel_layer.group_send`` (no database, no outbox, no bus): the floor Channels, Redis and
  Daphne set. Latency: from the ``group_send`` call to each screen's receipt.

Both report delivered messages/s (events x screens / time from the first send to the last
receipt) and p50/p99 latency over every (event, screen) pair. The Kafka hop of a distributed
deployment is not in the live path (bench/outbox_relay.py and bench/bus_throughput.py measure
it). The database is a SQLite file under var/bench by default (``--database-url`` for PostgreSQL).

    python bench/live_fanout.py                       # 100 screens, 2,000 events at 200/s
    python bench/live_fanout.py --screens 100 --events 3000 --rate 0   # as fast as it goes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Screens:
    """N WebSocket clients on one asyncio loop (its own thread); each receipt is timestamped."""

    def __init__(self, *, url: str, cookie: str, count: int):
        self.url, self.cookie, self.count = url, cookie, count
        self.loop = asyncio.new_event_loop()
        self.received: dict[str, list[float]] = {}
        self.connected = 0
        self.stopping = False  # set before Daphne stops: the screens' ends are expected then
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import websockets

        asyncio.set_event_loop(self.loop)
        host = self.url.split("//")[1].split("/")[0]

        async def screen(gate: asyncio.Semaphore):
            # Screens sign in a few at a time and retry a refused handshake: 100 handshakes at
            # once (each a session read) overran Daphne on this shared host and one failure
            # used to stop every screen.
            error = None
            for attempt in range(6):
                hello = False
                try:
                    async with gate:
                        ws = await websockets.connect(
                            self.url,
                            additional_headers={"Cookie": self.cookie},
                            origin=f"http://{host}",
                            max_queue=None,
                            open_timeout=30,
                        )
                    async with ws:
                        async for text in ws:
                            now = time.perf_counter()
                            if '"hello"' in text[:20]:
                                hello = True
                                with self.lock:
                                    self.connected += 1
                                    if self.connected == self.count:
                                        self.ready.set()
                                continue
                            marker = text.find('"event_id"')
                            start = text.find('"', text.find(":", marker) + 1) + 1
                            key = text[start : text.find('"', start)]
                            with self.lock:
                                self.received.setdefault(key, []).append(now)
                    return
                except (OSError, websockets.exceptions.WebSocketException) as exc:
                    if hello:  # a screen that was counted and then dropped: report it
                        if not self.stopping:
                            print(f"screen dropped: {exc!r}", file=sys.stderr)
                        return
                    error = exc
                    await asyncio.sleep(0.5 * (attempt + 1))
            print(f"screen gave up after 6 handshakes: {error!r}", file=sys.stderr)

        async def all_screens():
            gate = asyncio.Semaphore(10)
            await asyncio.gather(*(screen(gate) for _ in range(self.count)), return_exceptions=True)

        try:
            self.loop.run_until_complete(all_screens())
        except Exception as exc:  # reported by start() as fewer screens connected
            print(f"screens stopped: {exc!r}", file=sys.stderr)

    def start(self, timeout=60):
        self.thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError(f"only {self.connected} of {self.count} screens connected")

    def wait_for(self, keys, timeout=60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(len(self.received.get(k, ())) >= self.count for k in keys):
                    return True
            time.sleep(0.01)
        return False


def summary(name: str, sent: dict[str, float], screens: Screens, first: float) -> dict:
    latencies, last = [], first
    with screens.lock:
        for key, t0 in sent.items():
            for t in screens.received.get(key, ()):
                latencies.append((t - t0) * 1000)
                last = max(last, t)
    delivered = len(latencies)
    expected = len(sent) * screens.count
    seconds = last - first
    return {
        "path": name,
        "delivered": delivered,
        "expected": expected,
        "per_s": delivered / seconds if seconds else float("nan"),
        "p50": pct(latencies, 0.50),
        "p99": pct(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="events offered per second (0: as fast as it goes)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a Redis database of the bench's own")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    bench_dir = ROOT / "var" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    database_url = args.database_url or f"sqlite:///{bench_dir / 'live_fanout.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeops.settings.local",
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis,
        "DEBUG": "0",
        "DB_POOL_MAX_SIZE": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("MIGRATE_DATABASE_URL", None)
    os.environ.update(
        {k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_LEVEL")}
    )
    os.environ.pop("MIGRATE_DATABASE_URL", None)
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench-screen")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    layer = get_channel_layer()
    async_to_sync(layer.flush)() if hasattr(layer, "flush") else None

    port = free_port()
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradeops.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL,
    )
    screens = None
    try:
        deadline = time.monotonic() + 180  # a loaded host starts Daphne slowly
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except urllib.error.HTTPError:  # it answers (a dependency it checks may be down)
                break
            except OSError:
                if daphne.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Daphne did not come up (BENCH_DEBUG=1 shows its log)") from None
                time.sleep(0.2)
        screens = Screens(
            url=f"ws://127.0.0.1:{port}/ws/live/", cookie=f"sessionid={session.session_key}", count=args.screens
        )
        screens.start()
        print(
            f"live_fanout: {args.screens} screens connected to Daphne; {args.events} events per path at "
            f"{'max' if not args.rate else f'{args.rate:.0f}/s'}; Redis channel layer {args.redis}; "
            f"database {database_url.split(':')[0]}"
        )
        results = [
            run_bare(layer=layer, screens=screens, events=args.events, rate=args.rate),
            run_live(screens=screens, events=args.events, rate=args.rate, transaction=transaction),
        ]
        for r in results:
            print(
                f"  {r['path']:<13} delivered {r['delivered']:>7,}/{r['expected']:,}  {r['per_s']:>9,.0f} msgs/s  "
                f"latency p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  max {r['max']:7.2f} ms"
            )
        return 0 if all(r["delivered"] == r["expected"] for r in results) else 1
    finally:
        if screens is not None:
            screens.stopping = True
        daphne.terminate()
        try:
            daphne.wait(30)
        except subprocess.TimeoutExpired:  # a loaded host: do not leave it behind
            daphne.kill()
            daphne.wait(10)


def _pace(i: int, start: float, rate: float) -> None:
    if rate:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def run_bare(*, layer, screens: Screens, events: int, rate: float) -> dict:
    """group_send straight to the live group: Channels + Redis + Daphne, nothing else."""
    import uuid

    from tradeops.core import groups

    sent: dict[str, float] = {}
    loop = asyncio.new_event_loop()  # one long-lived loop, as the live-push stage sends on
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def send(group, message):
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=10)

    start = time.perf_counter()
    for i in range(events):
        _pace(i, start, rate)
        key = str(uuid.uuid4())
        sent[key] = time.perf_counter()
        send(
            groups.LIVE_TRADING,
            {"type": "live.event", "event": {"event_id": key, "type": "bench.echo", "payload": {"n": i}}},
        )
    screens.wait_for(sent, timeout=60)
    return summary("bare fan-out", sent, screens, start)


def run_live(*, screens: Screens, events: int, rate: float, transaction) -> dict:
    """Commit to the outbox; the relay and the live-push stage take it to the screens."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from tradeops.bus.memory import MemoryBus
    from tradeops.events import PositionChanged, Topic, make_event
    from tradeops.outbox.relay import OutboxRelay
    from tradeops.outbox.services import outbox_append
    from workers.live_push import LivePush

    bus = MemoryBus()
    subscription = bus.subscribe([Topic.TRADING, Topic.COMPLIANCE], "live-screens")
    stop = threading.Event()

    def pipeline():  # the relay and the live-push stage, as the embedded run wires them
        from django.db import connection

        relay = OutboxRelay(bus=bus, use_lock=False, prune_every=3600)
        push = LivePush()
        while not stop.is_set():
            moved = relay.step()
            records = subscription.poll(max_records=500, timeout=0)
            if records and hasattr(push, "handle_batch"):
                push.handle_batch([r.event for r in records])
            else:
                for record in records:
                    push.handle(record.event)
            if records:
                subscription.commit()
            if not moved and not records:
                time.sleep(0.002)
        connection.close()

    thread = threading.Thread(target=pipeline, daemon=True)
    thread.start()
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(events):
        _pace(i, start, rate)
        event = make_event(
            PositionChanged(
                account_id=1,
                symbol="EURUSD",
                net_quantity=Decimal(i % 7),
                average_price=Decimal("1.10123"),
                realised_pnl=Decimal("12.5"),
                ts=datetime.now(UTC),
            ),
            source="bench",
            key="1",
        )
        with transaction.atomic():
            outbox_append(event=event)
        sent[str(event.event_id)] = time.perf_counter()
    screens.wait_for(sent, timeout=120)
    stop.set()
    thread.join(10)
    return summary("live path", sent, screens, start)


if __name__ == "__main__":
    sys.exit(main())
