"""Live screens: events/s delivered to N connected WebSocket screens through the Redis channel
layer, and commit-to-screen latency (issue 14), beside a bare Channels fan-out in the same run.

One real Daphne serves ``tradeops.asgi:application`` (the project's consumer, its session
authentication, the Redis channel layer on a Redis database of the bench's own); ``--screens``
WebSocket clients (the ``websockets`` library, requirements/dev.txt) sign in with a session each
and stay connected. The clients run in ``--screen-procs`` processes of their own (2 by default),
not in the bench's process, so they do not compete with the writer, the relay and the live-push
stage for one interpreter. Two paths are measured, one after the other, with the same number of
events at the same offered rate:

- ``bare fan-out`` (the baseline): one ``channel_layer.group_send`` per message straight to the
  group (no database, no outbox, no bus, no batching): the floor per-message Channels, Redis and
  Daphne set. Latency: from the ``group_send`` call to each screen's receipt.
- ``live path``: a writer commits one ``position.changed`` event per transaction to the outbox
  (``outbox_append`` in ``transaction.atomic``, as every service does); the real ``OutboxRelay``
  (stepped when a commit happened, ``OutboxRelay.wanted``, as the embedded run steps it)
  publishes it to a memory bus; the live-push stage (``workers.live_push.LivePush``) sends it to
  the group in its next frame (at most one per 200 ms per group); Daphne's consumers write each
  frame to every socket. Latency: from the commit's return to each screen's receipt.

Times are ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every process of the host): the
writer stamps each event as its commit returns, each screen stamps each frame as it arrives.
Both paths report delivered messages (events x screens, an event counted once per screen) per
second from the first send to the last receipt, p50/p99 latency over every (event, screen) pair,
the share within 1 s, and the load average; the live path also where its time goes (commit to
the stage, frames, ``group_send``). The Kafka hop and the relay process's own 0.2 s idle poll of
a distributed deployment are not in the live path (bench/outbox_relay.py, bench/bus_throughput.py,
bench/bus_poll_latency.py). The database is a SQLite file under var/bench by default
(``--database-url`` for PostgreSQL). ``BENCH_DEBUG=1``: Daphne's log, the latency's course over
the run, every frame.

    python bench/live_fanout.py                       # 100 screens, 2,000 events at 200/s
    python bench/live_fanout.py --rate 50             # a lower rate (a loaded host)
    python bench/live_fanout.py --layer pubsub        # channels_redis's pub/sub layer instead
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


LAYERS = {"core": "channels_redis.core.RedisChannelLayer", "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _screens_process(url: str, cookie: str, count: int, conn) -> None:
    """A process of ``count`` WebSocket screens on one asyncio loop (a thread); the main thread
    answers the bench over ``conn``. Each frame's receipt is stamped with ``time.monotonic()``
    (CLOCK_MONOTONIC: one clock for every process of this host) for every event in it."""
    import json

    import websockets

    received: dict[str, list[float]] = {}
    lock = threading.Lock()
    state = {"connected": 0, "stopping": False, "last": time.monotonic()}
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    host = url.split("//")[1].split("/")[0]

    async def screen(gate: asyncio.Semaphore):
        seen: set[str] = set()  # a screen counts an event once (the relay is at-least-once)
        # Screens sign in a few at a time and retry a refused handshake: 100 handshakes at once
        # (each a session read) overran Daphne on this shared host.
        error = None
        for attempt in range(6):
            hello = False
            try:
                async with gate:
                    ws = await websockets.connect(
                        url,
                        additional_headers={"Cookie": cookie},
                        origin=f"http://{host}",
                        max_queue=None,
                        open_timeout=30,
                    )
                async with ws:
                    async for text in ws:
                        now = time.monotonic()
                        frame = json.loads(text)
                        kind = frame.get("type")
                        if kind == "hello":
                            hello = True
                            with lock:
                                state["connected"] += 1
                                if state["connected"] == count:
                                    ready.set()
                            continue
                        events = frame["events"] if kind == "batch" else [frame]
                        state["last"] = now
                        with lock:
                            for event in events:
                                key = event["event_id"]
                                if key not in seen:
                                    seen.add(key)
                                    received.setdefault(key, []).append(now)
                return
            except (OSError, websockets.exceptions.WebSocketException) as exc:
                if hello:  # a screen that was counted and then dropped: report it
                    if not state["stopping"]:
                        print(f"screen dropped: {exc!r}", file=sys.stderr)
                    return
                error = exc
                await asyncio.sleep(0.5 * (attempt + 1))
        print(f"screen gave up after 6 handshakes: {error!r}", file=sys.stderr)

    async def all_screens():
        gate = asyncio.Semaphore(10)
        await asyncio.gather(*(screen(gate) for _ in range(count)), return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(all_screens(),), daemon=True)
    thread.start()
    conn.send(("ready", ready.wait(120), state["connected"]))
    while True:
        command, *args = conn.recv()
        if command == "stop":
            state["stopping"] = True
            conn.send(("stopped",))
            return
        if command == "quiet":  # seconds since this process's screens last got a frame
            conn.send(("quiet", time.monotonic() - state["last"]))
            continue
        if command == "collect":  # (keys, timeout): wait until every screen has every key
            keys, timeout = args
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with lock:
                    if all(len(received.get(k, ())) >= count for k in keys):
                        break
                time.sleep(0.02)
            with lock:
                conn.send(("receipts", {k: list(received.get(k, ())) for k in keys}))


class Screens:
    """N WebSocket screens in ``procs`` processes of their own (``_screens_process``), so the
    clients do not compete with the writer, the relay and the live-push stage for this process's
    interpreter: what is measured is the path, not the bench."""

    def __init__(self, *, url: str, cookie: str, count: int, procs: int = 2):
        import multiprocessing

        self.count = count
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no Django, no threads
        sizes = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        self.children = []
        for size in (s for s in sizes if s):
            parent, child = context.Pipe()
            process = context.Process(target=_screens_process, args=(url, cookie, size, child), daemon=True)
            process.start()
            self.children.append((process, parent))

    def start(self, timeout=150):
        connected = 0
        for _process, conn in self.children:
            if not conn.poll(timeout):
                raise RuntimeError("a screens process did not report")
            _, ok, n = conn.recv()
            connected += n
        if connected != self.count:
            raise RuntimeError(f"only {connected} of {self.count} screens connected")

    def collect(self, keys, timeout=60) -> dict[str, list[float]]:
        """Every screen's receipt times per key, once all have them all or ``timeout`` passed."""
        keys = list(keys)
        for _, conn in self.children:
            conn.send(("collect", keys, timeout))
        merged: dict[str, list[float]] = {k: [] for k in keys}
        for _, conn in self.children:
            _, receipts = conn.recv()
            for k, times in receipts.items():
                merged[k].extend(times)
        return merged

    def drain(self, quiet: float = 3.0, timeout: float = 180.0) -> float:
        """Wait until no screen got a frame for ``quiet`` seconds: what Daphne still held from the
        path before (messages it took from Redis but had not yet written) must not be measured
        in the next one. Returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            idle = []
            for _, conn in self.children:
                conn.send(("quiet",))
                idle.append(conn.recv()[1])
            if min(idle) >= quiet:
                break
            time.sleep(0.5)
        return time.monotonic() - started

    def stop(self):
        for process, conn in self.children:
            try:
                conn.send(("stop",))
                conn.poll(10) and conn.recv()
            except OSError:
                pass
            process.join(10)
            if process.is_alive():
                process.kill()


def summary(name: str, sent: dict[str, float], screens: Screens, first: float, timeout: float) -> dict:
    received = screens.collect(sent, timeout=timeout)
    latencies, last = [], first
    for key, t0 in sent.items():
        for t in received.get(key, ()):
            latencies.append((t - t0) * 1000)
            last = max(last, t)
    if os.environ.get("BENCH_DEBUG"):  # the latency's course over the run: p50 per tenth of the events
        keys = list(sent)
        tenths = [keys[i * len(keys) // 10 : (i + 1) * len(keys) // 10] for i in range(10)]
        course = [pct([(t - sent[k]) * 1000 for k in part for t in received.get(k, ())], 0.5) for part in tenths]
        print(f"  {name}: p50 per tenth of the run (ms): {' '.join(f'{x:.0f}' for x in course)}", file=sys.stderr)
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
        "within_1s": sum(1 for x in latencies if x <= 1000) / expected if expected else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="events offered per second (0: as fast as it goes)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a Redis database of the bench's own")
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--layer",
        choices=("core", "pubsub"),
        default="core",
        help="channels_redis layer: core (lists, the default) or pubsub (Redis pub/sub)",
    )
    parser.add_argument(
        "--frame-interval", type=float, default=None, help="seconds between a group's frames (LivePush default)"
    )
    parser.add_argument("--screen-procs", type=int, default=2, help="processes the screens run in (their own)")
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
        "CHANNELS_REDIS_BACKEND": LAYERS[args.layer],
    }
    env.pop("MIGRATE_DATABASE_URL", None)
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DJANGO_SETTINGS_MODULE",
                "DATABASE_URL",
                "REDIS_URL",
                "DEBUG",
                "LOG_LEVEL",
                "CHANNELS_REDIS_BACKEND",
            )
        }
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
            url=f"ws://127.0.0.1:{port}/ws/live/",
            cookie=f"sessionid={session.session_key}",
            count=args.screens,
            procs=args.screen_procs,
        )
        screens.start()
        print(
            f"live_fanout: {args.screens} screens in {len(screens.children)} processes connected to Daphne; "
            f"{args.events} events per path at {'max' if not args.rate else f'{args.rate:.0f}/s'}; "
            f"Redis channel layer {args.layer} on {args.redis}; database {database_url.split(':')[0]}; "
            f"load average {_load()}"
        )
        bare = run_bare(layer=layer, screens=screens, events=args.events, rate=args.rate)
        waited = screens.drain()
        print(f"  (Daphne drained what it still held of the bare fan-out in {waited:.0f} s)")
        results = [
            bare,
            run_live(
                screens=screens,
                events=args.events,
                rate=args.rate,
                transaction=transaction,
                frame_interval=args.frame_interval,
            ),
        ]
        for r in results:
            print(
                f"  {r['path']:<13} delivered {r['delivered']:>7,}/{r['expected']:,}  {r['per_s']:>9,.0f} msgs/s  "
                f"latency p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  max {r['max']:7.2f} ms  "
                f"within 1 s {r['within_1s']:6.1%}"
            )
        print(f"  live path hops: {results[1]['hops']}")
        bare, live = results
        print(
            f"  live / bare: p50 x{live['p50'] / bare['p50']:.2f}, p99 x{live['p99'] / bare['p99']:.2f}, "
            f"msgs/s x{live['per_s'] / bare['per_s']:.2f}; load average {_load()}"
        )
        return 0 if all(r["delivered"] == r["expected"] for r in results) else 1
    finally:
        if screens is not None:
            screens.stop()
        daphne.terminate()
        try:
            daphne.wait(30)
        except subprocess.TimeoutExpired:  # a loaded host: do not leave it behind
            daphne.kill()
            daphne.wait(10)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _pace(i: int, start: float, rate: float) -> None:
    if rate:
        delay = start + i / rate - time.monotonic()
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

    start = time.monotonic()
    for i in range(events):
        _pace(i, start, rate)
        key = str(uuid.uuid4())
        sent[key] = time.monotonic()
        send(
            groups.LIVE_TRADING,
            {"type": "live.event", "event": {"event_id": key, "type": "bench.echo", "payload": {"n": i}}},
        )
    return summary("bare fan-out", sent, screens, start, timeout=60)


def run_live(*, screens: Screens, events: int, rate: float, transaction, frame_interval=None) -> dict:
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

    push = LivePush() if frame_interval is None else LivePush(frame_interval=frame_interval)
    stages: dict[str, float] = {}  # event id -> when the live-push stage polled it
    sends: list[tuple[float, float, int]] = []  # each frame: group_send called, returned, events
    layer = push.channel_layer

    class TimedLayer:  # the same layer; each group_send timed (where the time goes)
        async def group_send(self, group, message):
            called = time.monotonic()
            await layer.group_send(group, message)
            events = message["text"].count('"event_id"') if "text" in message else 1  # 1: an older push
            sends.append((called, time.monotonic(), events))

    push.channel_layer = TimedLayer()

    def pipeline():  # the relay and the live-push stage, as the embedded run wires them
        from django.db import connection

        relay = OutboxRelay(bus=bus, use_lock=False, prune_every=3600)
        while not stop.is_set():
            # The relay reads the table when a commit happened since its last read (as the
            # embedded dispatcher steps it: ``OutboxRelay.wanted``), not every turn of the loop.
            moved = relay.step(flush_timeout=0) if relay.wanted() else 0
            records = subscription.poll(max_records=500, timeout=0)
            if records:
                polled = time.monotonic()
                push.handle_batch([r.event for r in records])
                for r in records:
                    stages[str(r.event.event_id)] = polled
            if records:
                subscription.commit()
            if not moved and not records:
                time.sleep(0.001)
        connection.close()

    thread = threading.Thread(target=pipeline, daemon=True)
    thread.start()
    sent: dict[str, float] = {}
    start = time.monotonic()
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
        sent[str(event.event_id)] = time.monotonic()  # the commit returned: the latency starts here
    result = summary("live path", sent, screens, start, timeout=120)
    if hasattr(push, "flush"):  # (an older LivePush sent before returning)
        push.flush()
    stop.set()
    thread.join(10)
    # Where the time goes: commit -> the live-push stage has it (the relay, the bus); the rest is
    # the stage's sender, the channel layer (Redis), Daphne and the sockets.
    hops = [stages[k] - t0 for k, t0 in sent.items() if k in stages]
    result["hops"] = (
        f"commit->stage p50 {pct(hops, 0.5) * 1000:.1f} ms p99 {pct(hops, 0.99) * 1000:.1f} ms; "
        f"frames sent {len(sends)} (mean {sum(n for _, _, n in sends) / max(1, len(sends)):.1f} events), "
        f"dropped {getattr(push, 'dropped', 'n/a')}; "
        f"group_send p50 {pct([(b - a) * 1000 for a, b, _ in sends], 0.5):.1f} ms; "
        f"commits {len(sent) / (max(sent.values()) - start):.0f}/s"
    )
    if os.environ.get("BENCH_DEBUG"):
        print(
            "  frames (start ms, send ms, events):",
            [(round((a - start) * 1000), round((b - a) * 1000), n) for a, b, n in sends],
            file=sys.stderr,
        )
    return result


if __name__ == "__main__":
    sys.exit(main())
