"""One clock discipline: a replay's records carry the replayed market time (event time) and the
wall clock (record time); and a worker restarted mid-replay has every mark and snapshot a fill
depended on (they are written with the fill, not on the cadence)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.mlmodels.conftest import NO_EDGE
from tests.workers.conftest import make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock, utcnow
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers.paper import PaperBroker
from trading.models import AccountRiskSnapshot, Execution, Order, Position

MARKET = datetime(2017, 5, 2, 10, 0, tzinfo=UTC)


def _broker(clock, *instruments) -> PaperBroker:
    broker = PaperBroker.from_instruments(instruments, clock=clock.now)
    broker.connect()
    return broker


def test_on_a_replay_clock_every_record_is_dated_at_market_time_and_recorded_now(instrument, gbpusd, account):
    clock = ReplayClock()
    broker = _broker(clock, instrument, gbpusd)
    worker = make_worker(broker, account, clock=clock).start()
    before = utcnow()
    worker.handle(tick(at=MARKET))
    worker.handle(signal(at=MARKET + timedelta(seconds=5)))
    worker.handle(tick(bid="1.10100", ask="1.10102", at=MARKET + timedelta(minutes=20)))
    worker.close()
    decided = MARKET + timedelta(seconds=5)

    order = Order.objects.get()
    assert order.status == "FILLED"
    stages = (order.created_at, order.decided_at, order.submitted_at, order.first_fill_at, order.closed_at)
    assert set(stages) == {decided}  # the signal's market time: no time passes inside a replayed event
    assert before <= order.recorded_at <= order.updated_at <= utcnow()  # record time: the wall clock
    fill = Execution.objects.get()
    assert fill.executed_at == decided and before <= fill.recorded_at <= utcnow()  # the paper broker's clock
    position = Position.objects.get()
    assert position.as_of == MARKET + timedelta(minutes=20) and position.mark_price == Decimal("1.10101")
    assert before <= position.updated_at <= utcnow()
    snapshot = AccountRiskSnapshot.objects.get()
    assert snapshot.as_of == MARKET + timedelta(minutes=20)
    records = AuditRecord.objects.filter(category="trading")
    assert {r.occurred_at for r in records} == {decided}
    assert all(before <= r.recorded_at <= utcnow() for r in records)
    events = [decode(bytes(m)) for m in Outbox.objects.values_list("message", flat=True)]
    assert {e.occurred_at for e in events} == {decided}
    (decision,) = [e.payload for e in events if e.type == "risk.decision"]
    assert decision.ts == decided


def _models_activate(trained, settings, tmp_path) -> None:
    """Both models trained on the real bars, registered and activated (no edge, said so)."""
    from datetime import UTC as utc

    from mlmodels.services import model_version_activate, model_versions_register, validator_config_update
    from mlmodels.training import MODEL_NAMES, artifact_bytes, artifact_write

    settings.ML_MODEL_DIR = str(tmp_path)
    settings.EXECUTION_PAPER_JOURNAL_DIR = ""
    artifacts = []
    for name in MODEL_NAMES:
        data = artifact_bytes(name=name, version=f"{name}-r1", result=trained)
        path, sha = artifact_write(directory=tmp_path, name=name, version=f"{name}-r1", data=data)
        artifacts.append((name, f"{name}-r1", path, sha))
    for row in model_versions_register(
        actor="service:test", result=trained, artifacts=artifacts, at=datetime(2026, 1, 1, tzinfo=utc)
    ):
        model_version_activate(version=row, actor="user:risk", allow_no_edge=True, reason=NO_EDGE)
    validator_config_update(actor="user:risk", min_confidence=0.5, algo_id="ml-eurusd-h1")


@pytest.mark.django_db(transaction=True)
def test_restarting_an_embedded_replay_records_its_decision_inputs_once(
    trained, settings, tmp_path, monkeypatch, instrument, account
):
    """The embedded run replays its data again after a restart: the collector derives each
    replayed event's id from what it is and every stage derives its outputs' ids from their
    input's, so the second run's features, predictions and signals carry the first run's ids and
    the audit trail records each once (an order's story shows each prediction once)."""
    from tradeops.bus.memory import MemoryBus
    from tradeops.bus.runner import EMBEDDED_SINK_SECONDS, pipeline_run
    from tradeops.outbox.relay import OutboxRelay
    from workers.collector import embedded_source
    from workers.execution import execution_stage

    _models_activate(trained, settings, tmp_path)
    monkeypatch.setenv("REPLAY_LIMIT", "150")
    monkeypatch.setenv("REPLAY_QUARANTINE", str(tmp_path / "quarantine.jsonl"))
    inputs = ("feature.vector", "prediction.made", "signal.validated")

    def run() -> dict[str, list]:
        bus = MemoryBus()
        result = pipeline_run(
            embedded_source(),
            handlers={"execution": execution_stage(clock=ReplayClock())},
            bus=bus,
            batch_size=1,
            relay=OutboxRelay(bus=bus, use_lock=False),
            sink_seconds=EMBEDDED_SINK_SECONDS,
        )
        assert result.dead_letters == 0
        return {
            action: sorted(AuditRecord.objects.filter(action=action).values_list("event_id", flat=True))
            for action in inputs
        }

    first = run()
    assert first["feature.vector"] and first["prediction.made"], "the replay made features and predictions"
    assert run() == first  # the same events again, not new ones


@pytest.mark.django_db(transaction=True)
def test_a_replay_of_real_bars_writes_only_records_dated_inside_the_replayed_span(
    trained, settings, tmp_path, monkeypatch, instrument, account
):
    """The embedded pipeline, every stage on (features, models, validator, execution worker,
    surveillance, audit trail), over 400 real EURUSD hours of 2017 on the replay clock: every
    trading record's event time lies inside the replayed data; record times are today's."""

    from tradeops.bus.memory import MemoryBus
    from tradeops.bus.runner import pipeline_run
    from tradeops.outbox.relay import OutboxRelay
    from trading.marketdata.sources import backtesting_bars
    from workers.collector import embedded_source
    from workers.execution import execution_stage

    _models_activate(trained, settings, tmp_path)
    bars = 400
    monkeypatch.setenv("REPLAY_LIMIT", str(bars))
    monkeypatch.setenv("REPLAY_QUARANTINE", str(tmp_path / "quarantine.jsonl"))
    shipped = list(backtesting_bars("EURUSD"))[:bars]
    first, last = shipped[0].ts, shipped[-1].ts + timedelta(hours=1)
    started = utcnow()
    bus = MemoryBus()
    result = pipeline_run(
        embedded_source(),
        handlers={"execution": execution_stage(clock=ReplayClock())},
        bus=bus,
        batch_size=1,
        relay=OutboxRelay(bus=bus, use_lock=False),
    )
    assert result.dead_letters == 0 and result.source_events > 4 * bars

    def inside(when) -> bool:
        return when is None or first <= when <= last

    orders = list(Order.objects.all())
    assert orders, "the replay traded"
    assert Execution.objects.exists()
    for order in orders:
        times = (order.created_at, order.decided_at, order.submitted_at, order.first_fill_at, order.last_fill_at)
        assert all(inside(t) for t in (*times, order.closed_at)), order
        assert order.recorded_at >= started
    for fill in Execution.objects.all():
        assert inside(fill.executed_at) and fill.recorded_at >= started
    for position in Position.objects.all():
        assert position.as_of is not None and inside(position.as_of) and position.updated_at >= started
    for snapshot in AccountRiskSnapshot.objects.all():
        assert inside(snapshot.as_of) and snapshot.updated_at >= started
    from compliance.models import PreTradeDecision

    decisions = list(PreTradeDecision.objects.all())
    assert len(decisions) == len(orders)
    assert all(inside(d.decided_at) and d.recorded_at >= started for d in decisions)
    replayed = AuditRecord.objects.filter(recorded_at__gte=started)
    assert replayed.filter(action="order.created").count() == len(orders)
    outside = [(r.action, r.occurred_at) for r in replayed if not inside(r.occurred_at)]
    assert outside == []
    recorded = list(replayed.order_by("sequence").values_list("recorded_at", flat=True))
    assert recorded == sorted(recorded)  # the chain is in record order


def test_a_worker_restarted_mid_replay_has_every_mark_and_snapshot_its_fills_depended_on(instrument, gbpusd, account):
    """Marks are not written per tick (cadence: an hour of wall clock here), yet every fill's
    write carries the marks and the risk figures the worker held at that fill; a worker killed
    after it (no shutdown write) and restarted loads exactly those."""
    clock = ReplayClock()
    broker = _broker(clock, instrument, gbpusd)
    worker = make_worker(broker, account, clock=clock, snapshot_interval=timedelta(hours=1)).start()
    at, price = MARKET, Decimal("1.10000")
    state_at_fill = None
    for n in range(60):
        at += timedelta(minutes=20)
        price += Decimal("0.00030") if (n // 7) % 2 == 0 else Decimal("-0.00020")
        worker.handle(tick(bid=str(price), ask=str(price + Decimal("0.00002")), at=at))
        worker.handle(tick("GBPUSD", str(price + Decimal("0.2")), str(price + Decimal("0.20002")), at=at))
        if n % 9 == 4:
            symbol = "EURUSD" if n % 2 else "GBPUSD"
            mid = price if symbol == "EURUSD" else price + Decimal("0.2")
            worker.handle(signal(side="BUY" if n % 4 else "SELL", symbol=symbol, price=str(mid), at=at))
            book = worker.risk.account(account.pk)
            state_at_fill = {
                "positions": {s: book.position(s) for s in ("EURUSD", "GBPUSD")},
                "marks": {s: book.marks[s] for s in ("EURUSD", "GBPUSD") if book.position(s)},
                "equity": book.equity(),
                "peak": book.peak_equity,
                "day_start": book.day_start_equity,
            }
            # what the database holds right after this fill, though no tick was ever written
            for symbol, mark in state_at_fill["marks"].items():
                row = Position.objects.get(account=account, instrument__symbol=symbol)
                assert row.mark_price == mark and row.net_quantity == state_at_fill["positions"][symbol]
            snapshot = AccountRiskSnapshot.objects.get(account=account)
            assert snapshot.equity == state_at_fill["equity"].quantize(Decimal("1E-6"))
            assert snapshot.peak_equity == state_at_fill["peak"].quantize(Decimal("1E-6")) and snapshot.as_of == at
        if n == 40:
            break  # killed: no shutdown write, the ticks since the last fill are lost
    assert Execution.objects.count() >= 3 and worker.stats.state_writes <= 1  # fills carried the marks
    assert state_at_fill is not None and any(state_at_fill["positions"].values())

    restarted = make_worker(broker, account, clock=ReplayClock(at), snapshot_interval=timedelta(hours=1)).start()
    book = restarted.risk.account(account.pk)
    assert {s: book.position(s) for s in ("EURUSD", "GBPUSD")} == state_at_fill["positions"]
    assert {s: book.marks[s] for s in state_at_fill["marks"]} == state_at_fill["marks"]
    assert book.peak_equity == state_at_fill["peak"].quantize(Decimal("1E-6"))
    assert book.day_start_equity == state_at_fill["day_start"].quantize(Decimal("1E-6"))
    assert book.equity() == state_at_fill["equity"]  # the broker's balance and our marks agree
    assert restarted.stats.reconciled_orders == 0 and restarted.stats.position_mismatches == 0


def test_fills_at_one_replayed_instant_that_net_a_position_back_are_each_recorded(instrument, account):
    """On the distributed topology a replay's quotes run ahead of its signals, so several fills
    carry one replayed instant; SELL, BUY, SELL of one size nets the position back to figures it
    had. Each fill's position record is still its own (found by the cluster end-to-end test: the
    third write collided with the first's event id and wedged the worker)."""
    from collections import Counter

    clock = ReplayClock()
    broker = _broker(clock, instrument)
    worker = make_worker(broker, account, clock=clock).start()
    worker.handle(tick(bid="1.10000", ask="1.10000", at=MARKET))  # a bar's close: no spread
    for n, side in enumerate(("SELL", "BUY", "SELL")):
        worker.handle(signal(side=side, price="1.10000", at=MARKET, signal_id=f"same-instant-{n}"))
    worker.close()
    orders = list(Order.objects.order_by("id"))
    assert [o.status for o in orders] == ["FILLED"] * 3 and worker.stats.commit_failures == 0
    assert orders[1].quantity == orders[2].quantity  # the third fill nets back to the first's position
    fills = list(Execution.objects.order_by("id"))
    net = sum((f.quantity if f.side == "BUY" else -f.quantity) for f in fills)
    assert Position.objects.get().net_quantity == net
    updates = AuditRecord.objects.filter(action="position.updated")
    assert updates.count() == 3 and len(Counter(updates.values_list("event_id", flat=True))) == 3
