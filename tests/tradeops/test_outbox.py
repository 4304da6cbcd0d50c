"""The transactional outbox: events exist exactly when their write commits, the relay publishes
them in order and marks them, survives a broker outage and its own SIGKILL, and prunes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from prometheus_client import REGISTRY

from tests.tradeops.conftest import tick
from tradeops.bus.memory import MemoryBus
from tradeops.core.clock import utcnow
from tradeops.events import Fill, OrderEvent, PositionChanged, Tick, Topic, decode
from tradeops.outbox.models import Outbox
from tradeops.outbox.relay import NOTIFY_CHANNEL, OutboxListener, OutboxRelay
from tradeops.outbox.services import OutboxError, outbox_append, outbox_prune


def _append(n: int, key: str = "EURUSD") -> list:
    events = [tick(key, i) for i in range(n)]
    with transaction.atomic():
        for e in events:
            outbox_append(event=e)
    return events


def test_append_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(OutboxError) as info:
        outbox_append(event=tick())
    assert info.value.code == "outbox_outside_transaction"


def test_a_rolled_back_write_leaves_no_event(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_append(event=tick())
        raise RuntimeError("the write failed")
    assert not Outbox.objects.exists()


def test_trading_services_append_their_events_in_the_same_transaction(db, account, instrument):
    from trading.orders.plan import FillDraft
    from trading.orders.services import execution_record, order_create, order_transition

    order, _ = order_create(
        client_order_id="o-1", account=account, instrument=instrument, side="BUY", quantity=Decimal("0.10")
    )
    order_transition(order=order, to="RISK_APPROVED")
    order_transition(order=order, to="SUBMITTED", broker_order_id="b-1")
    execution_record(
        order=order,
        fill=FillDraft(broker_deal_id="d-1", quantity=Decimal("0.10"), price=Decimal("1.08500"), executed_at=utcnow()),
    )
    events = [decode(bytes(m)) for m in Outbox.objects.order_by("id").values_list("message", flat=True)]
    kinds = [(type(e.payload).__name__, getattr(e.payload, "status", "")) for e in events]
    assert kinds == [
        ("OrderEvent", "NEW"),
        ("OrderEvent", "RISK_APPROVED"),
        ("OrderEvent", "SUBMITTED"),
        ("Fill", ""),
        ("OrderEvent", "FILLED"),
        ("PositionChanged", ""),
    ]
    assert {e.key for e in events} == {str(account.pk)} and {e.topic for e in events} == {Topic.TRADING}
    filled, fill, position = events[4].payload, events[3].payload, events[5].payload
    assert isinstance(filled, OrderEvent) and filled.previous_status == "SUBMITTED"
    assert isinstance(fill, Fill) and fill.price == Decimal("1.08500") and fill.broker_deal_id == "d-1"
    assert isinstance(position, PositionChanged) and position.net_quantity == Decimal("0.10")
    assert all(e.traceparent for e in events)


def test_relay_publishes_in_order_marks_sent_and_is_idle_after(db):
    events = _append(25)
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    relay = OutboxRelay(bus=bus, batch_size=10)
    published = REGISTRY.get_sample_value("tradeops_outbox_published_total") or 0
    assert relay.drain(timeout=10) == 25
    assert REGISTRY.get_sample_value("tradeops_outbox_published_total") - published == 25
    assert [r.event.event_id for r in sub.poll(100)] == [e.event_id for e in events]
    assert not Outbox.objects.filter(sent_at__isnull=True).exists()
    assert relay.drain(timeout=1) == 0


class _FailingBus(MemoryBus):
    """Acknowledges the first ``ok`` messages, then reports delivery failures (a broker outage)."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    def publish_raw(self, topic, value, *, key=None, headers=None, on_delivery=None):
        if self.ok > 0:
            self.ok -= 1
            return super().publish_raw(topic, value, key=key, headers=headers, on_delivery=on_delivery)
        on_delivery(RuntimeError("Local: Message timed out"))


def test_a_failed_publish_marks_only_the_acknowledged_prefix_and_retries_the_rest(db):
    events = _append(10)
    bus = _FailingBus(ok=4)
    relay = OutboxRelay(bus=bus, batch_size=10, retry_backoff=0)
    assert relay.step() == 4
    first_unsent = Outbox.objects.filter(sent_at__isnull=True).order_by("id").first()
    assert first_unsent.event_id == events[4].event_id
    assert first_unsent.attempts == 1 and "timed out" in first_unsent.last_error
    bus.ok = 100  # the broker is back
    assert relay.drain(timeout=10) == 6
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    assert [r.event.event_id for r in sub.poll(100)] == [e.event_id for e in events]  # in order, none lost


def test_a_row_that_commits_late_with_a_smaller_id_is_still_published(db):
    events = _append(30)
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    relay = OutboxRelay(bus=bus, batch_size=10, rescan_every=3600)
    assert relay.step() == 10
    # a writer whose transaction took an id before the relay's read commits only now
    late = Outbox.objects.order_by("id")[3]
    Outbox.objects.filter(id=late.id).update(sent_at=None)
    assert relay.drain(timeout=10) == 21  # rows 11-30 after the floor, then the late one
    delivered = [r.event.event_id for r in sub.poll(100)]
    assert set(delivered) == {e.event_id for e in events} and delivered[-1] == late.event_id
    assert not Outbox.objects.filter(sent_at__isnull=True).exists()


def test_rows_kept_for_one_mark_are_published_once_and_marked_together(db):
    """``step(mark=False)`` (the embedded dispatcher): each step publishes only rows it has not
    published, the rows stay unsent in the table until ``mark_sent`` marks them in one go, and
    a full scan (a slow rescan) marks the kept rows before it reads, so never publishes them twice."""
    events = _append(4)
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    clock = [0.0]
    relay = OutboxRelay(bus=bus, batch_size=10, rescan_every=5.0, clock=lambda: clock[0])
    assert relay.step(mark=False) == 4  # acknowledged, kept
    assert Outbox.objects.filter(sent_at__isnull=True).count() == 4
    events += _append(3)
    assert relay.step(mark=False) == 3  # after the kept rows: the new ones only
    assert relay.step(mark=False) == 0
    assert Outbox.objects.filter(sent_at__isnull=True).count() == 7
    assert relay.mark_sent() == 7 and relay.mark_sent() == 0
    assert not Outbox.objects.filter(sent_at__isnull=True).exists()
    events += _append(2)
    assert relay.step(mark=False) == 2
    clock[0] = 10.0  # a full scan is due: the kept rows are marked first, not read again
    events += _append(1)
    assert relay.step(mark=False) == 1
    assert Outbox.objects.filter(sent_at__isnull=True).count() == 1
    assert relay.drain(timeout=5) == 1  # drain marks what was kept
    assert [r.event.event_id for r in sub.poll(100)] == [e.event_id for e in events]  # once each, in order
    assert not Outbox.objects.filter(sent_at__isnull=True).exists()


def test_a_relay_that_dies_between_publish_and_mark_causes_duplicates_only_by_event_id(db):
    events = _append(12)
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    dying = OutboxRelay(bus=bus, batch_size=5)
    assert dying.step() == 5  # rows 1-5 published and marked
    dying._start_batch()  # rows 6-10 published (and acknowledged) ... then the process dies
    assert Outbox.objects.filter(sent_at__isnull=True).count() == 7
    assert OutboxRelay(bus=bus, batch_size=5).drain(timeout=10) == 7
    delivered = [r.event.event_id for r in sub.poll(100)]
    assert len(delivered) == 17  # rows 6-10 twice: at-least-once
    assert list(dict.fromkeys(delivered)) == [e.event_id for e in events]  # by event_id: once each, in order


def test_prune_deletes_only_sent_rows_past_retention(db):
    _append(6)
    ids = list(Outbox.objects.order_by("id").values_list("id", flat=True))
    now = utcnow()
    Outbox.objects.filter(id__in=ids[:2]).update(sent_at=now - timedelta(days=8))
    Outbox.objects.filter(id__in=ids[2:4]).update(sent_at=now - timedelta(hours=1))
    assert outbox_prune(sent_before=now - timedelta(days=7)) == 2
    assert list(Outbox.objects.order_by("id").values_list("id", flat=True)) == ids[2:]


# ---------------------------------------------------------------- faults, against PostgreSQL and Kafka

# The issue asks for 10,000 orders: that run takes ~46-50 s here (26-34 s of it writing the orders
# with their audit records on a shared 2-core machine), so the suite uses 2,000 by default;
# OUTBOX_FAULT_TEST_ORDERS=10000 runs the full size (see docs/event-backbone.md).
ORDERS = int(os.environ.get("OUTBOX_FAULT_TEST_ORDERS", "2000"))
ORDERS_PER_TRANSACTION = 50
LOT = Decimal("0.01")


def _relay(bootstrap: str, prefix: str, *extra: str, log) -> subprocess.Popen:
    settings_dict = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**settings_dict),
        "DJANGO_SETTINGS_MODULE": "tradeops.settings.local",
        "EVENT_BUS": "kafka",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "manage.py", "run_outbox_relay", "--bootstrap-servers", bootstrap]
    return subprocess.Popen([*command, "--topic-prefix", prefix, *extra], env=env, stdout=log, stderr=subprocess.STDOUT)


def _pending() -> int:
    return Outbox.objects.filter(sent_at__isnull=True).count()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.kafka
@pytest.mark.slow
def test_outbox_survives_kafka_down_and_a_relay_killed_mid_batch(
    kafka, kafka_prefix, kafka_bus, transactional_db, account, instrument, tmp_path
):
    """Kafka "down" is the relay pointed at a closed port (the shared broker stays up for others);
    then the relay is SIGKILLed mid-run. All orders' events arrive; duplicates only by event_id."""
    from tests.conftest import requires_postgres
    from tradeops.recorder import recording
    from trading.orders.services import order_create

    requires_postgres()
    log = open(tmp_path / "relay.log", "ab")  # noqa: SIM115 - shared by the relay processes
    down = _relay("127.0.0.1:1", kafka_prefix, "--batch-size", "500", log=log)
    try:
        started = time.monotonic()
        for chunk in range(0, ORDERS, ORDERS_PER_TRANSACTION):
            # several orders per transaction, their audit records and outbox rows written in one go
            # at its end (one recorder), committed while Kafka is down
            with recording() as recorder:
                for i in range(chunk, min(chunk + ORDERS_PER_TRANSACTION, ORDERS)):
                    order_create(
                        recorder=recorder,
                        client_order_id=f"fault-{i:05d}",
                        account=account,
                        instrument=instrument,
                        side="BUY",
                        quantity=LOT,
                    )
        write_seconds = time.monotonic() - started
        time.sleep(1.0)
        assert down.poll() is None  # the relay is alive, waiting
        assert _pending() == ORDERS  # nothing marked sent, nothing lost
    finally:
        down.send_signal(signal.SIGTERM)
        down.wait(timeout=30)

    # Kafka is "back": a relay throttled by small batches gets killed part-way
    up = _relay(kafka, kafka_prefix, "--batch-size", "100", log=log)
    _wait(lambda: _pending() <= ORDERS * 4 // 5, 60, "the relay to publish some rows")
    up.kill()
    up.wait(timeout=10)
    left = _pending()
    assert 0 < left < ORDERS, "the kill should land mid-run"

    again = _relay(kafka, kafka_prefix, "--batch-size", "1000", log=log)
    try:
        _wait(lambda: _pending() == 0, 120, "the relay to drain the outbox")
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=30)
        log.close()

    expected = {str(e) for e in Outbox.objects.values_list("event_id", flat=True)}
    assert len(expected) == ORDERS
    seen: list[str] = []
    with kafka_bus.subscribe([Topic.TRADING], f"check-{uuid.uuid4()}") as sub:
        deadline = time.monotonic() + 120
        while len(set(seen)) < ORDERS and time.monotonic() < deadline:
            seen += [str(r.event.event_id) for r in sub.poll(5000, timeout=0.5)]
    assert set(seen) == expected  # every event arrived; applying by event_id gives each once
    first_seen = list(dict.fromkeys(seen))
    order_ids = dict(Outbox.objects.values_list("event_id", "id"))
    assert first_seen == sorted(first_seen, key=lambda e: order_ids[uuid.UUID(e)])  # in commit order
    duplicates = len(seen) - len(first_seen)
    print(
        f"{ORDERS} orders written in {write_seconds:.1f}s: {len(seen)} deliveries, "
        f"{duplicates} duplicates after the kill, {left} rows were left when it landed"
    )


def test_tick_events_pass_the_relay_unchanged(db):
    [event] = _append(1)
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    OutboxRelay(bus=bus).drain(timeout=5)
    [record] = sub.poll(10)
    assert record.event.payload == event.payload and isinstance(record.event.payload, Tick)
    assert record.event.traceparent  # the outbox starts a trace when the writer had none


# ---------------------------------------------------------------- the relay process's wake-up (PostgreSQL)


class _RunningRelay:
    """``OutboxRelay.run`` in a thread (its own database connection), as the relay process runs it."""

    def __init__(self, *, idle_timeout: float) -> None:
        self.bus = MemoryBus()
        self.sub = self.bus.subscribe([Topic.MARKET_DATA], "g")
        self.relay = OutboxRelay(bus=self.bus, batch_size=10)
        self.listener = OutboxListener()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, kwargs={"idle_timeout": idle_timeout}, daemon=True)

    def _run(self, idle_timeout: float) -> None:
        try:
            self.relay.run(should_stop=self.stop.is_set, idle_timeout=idle_timeout, listener=self.listener)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        _wait(lambda: self.listener.connects >= 1, 30, "the relay to LISTEN")
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        with connection.cursor() as cursor:  # wake it from its wait so it sees the stop
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_the_idle_relay_is_woken_by_the_commit_not_by_its_timeout():
    """The outbox trigger's NOTIFY reaches the relay at commit: with a 120 s fallback timeout, the
    rows still go out at once, and the wait that ended was ended by a notification."""
    from tests.conftest import requires_postgres

    requires_postgres()
    with _RunningRelay(idle_timeout=120) as running:
        events = _append(3)  # one transaction: one wake-up
        _wait(lambda: _pending() == 0, 60, "the relay to publish the committed rows")
        assert running.relay.stats.woken_by_notify >= 1
        assert running.relay.stats.woken_by_timeout == 0
        assert [r.event.event_id for r in running.sub.poll(100)] == [e.event_id for e in events]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_sends_no_notification():
    from tests.conftest import requires_postgres

    requires_postgres()
    listener = OutboxListener()
    try:
        assert listener.wait(0.1) is True  # connects and LISTENs: look once (nothing before it was notified)
        assert listener.wait(0.1) is False  # nothing pending
        with pytest.raises(RuntimeError), transaction.atomic():
            outbox_append(event=tick())
            raise RuntimeError("the write failed")
        assert listener.wait(0.5) is False
        _append(2)
        assert listener.wait(30) is True
        assert listener.wait(0.1) is False  # the burst was consumed by one wake-up
    finally:
        listener.close()


@pytest.mark.django_db(transaction=True)
def test_a_lost_listening_connection_falls_back_to_the_timeout_then_listens_again():
    """The listener's backend is terminated (a PostgreSQL restart, a network cut): the relay keeps
    publishing on its timeout, reconnects, and is woken by notifications again."""
    from tests.conftest import requires_postgres

    requires_postgres()
    with _RunningRelay(idle_timeout=0.5) as running:
        pid = running.listener.backend_pid
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone()[0] is True
        _append(4)
        _wait(lambda: _pending() == 0, 60, "the relay to publish after losing its listener")
        _wait(lambda: running.listener.failures >= 1 and running.listener.connects >= 2, 30, "a new LISTEN")
        assert running.listener.backend_pid not in (None, pid)
        notified = running.relay.stats.woken_by_notify
        _append(1)
        _wait(lambda: _pending() == 0, 60, "the relay to publish the next row")
        _wait(lambda: running.relay.stats.woken_by_notify > notified, 30, "a wake-up by notification")
        assert len(running.sub.poll(100)) == 5


def test_events_of_one_write_without_a_trace_share_one_new_trace(db):
    """Outside any trace, the events appended together continue one new trace (each its own
    trace before 2026-12-05); an event that carries a traceparent keeps it; the next write starts
    another trace."""
    from tradeops.bus.tracing import traceparent_new, traceparent_parse
    from tradeops.outbox.services import outbox_append_many

    own = traceparent_new()
    events = [tick("EURUSD", 0), tick("EURUSD", 1, traceparent=own), tick("EURUSD", 2)]
    assert not events[0].traceparent and not events[2].traceparent
    with transaction.atomic():
        outbox_append_many(events=events)
    with transaction.atomic():
        outbox_append_many(events=[tick("GBPUSD", 0), tick("GBPUSD", 1)])
    rows = list(Outbox.objects.order_by("id").values_list("traceparent", flat=True))
    first, second = rows[:3], rows[3:]
    assert rows[1] == own
    assert traceparent_parse(first[0])[0] == traceparent_parse(first[2])[0] != traceparent_parse(own)[0]
    assert len({traceparent_parse(tp)[0] for tp in second}) == 1
    assert traceparent_parse(second[0])[0] != traceparent_parse(first[0])[0]
