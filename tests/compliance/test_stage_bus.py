"""The surveillance stage behind the real stage runner: memory bus (one process) and Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from compliance.consumers import SurveillanceConsumer
from compliance.models import Alert, Case
from tradeops.bus.runner import pipeline_run, stage_run
from tradeops.events import Fill, OrderEvent, Tick, Topic, make_event
from tradeops.stages import stage_get

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _events(late: bool = True):
    out = [
        make_event(Tick(symbol="EURUSD", bid=Decimal("1.1"), ask=Decimal("1.1001"), ts=T0), source="md", key="EURUSD")
    ]
    for i, (account_id, side, price) in enumerate(((1, "BUY", "1.1001"), (2, "SELL", "1.1000"))):
        ts = T0 + timedelta(seconds=1 + 2 * i)
        cid = f"w{i}"
        out.append(
            make_event(
                OrderEvent(
                    client_order_id=cid,
                    account_id=account_id,
                    symbol="EURUSD",
                    side=side,
                    order_type="MARKET",
                    quantity=Decimal(1),
                    status="SUBMITTED",
                    previous_status="RISK_APPROVED",
                    ts=ts,
                ),
                source="execution",
                key=str(account_id),
            )
        )
        out.append(
            make_event(
                Fill(
                    client_order_id=cid,
                    broker_deal_id=f"d{i}",
                    account_id=account_id,
                    symbol="EURUSD",
                    side=side,
                    quantity=Decimal(1),
                    price=Decimal(price),
                    ts=ts + timedelta(milliseconds=30),
                ),
                source="execution",
                key=str(account_id),
            )
        )
    # Eleven minutes later: the wash's run has ended (``run_gap_s``, 600 s, without a further
    # pair), so it is reported (since the 2026-12-05 late-morning round, wip/wash19, a wash waits
    # for its run's end: the run may still become a series of one ticket, painting the tape's).
    if not late:
        return out
    out.append(
        make_event(
            Tick(symbol="EURUSD", bid=Decimal("1.1"), ask=Decimal("1.1001"), ts=T0 + timedelta(seconds=660)),
            source="md",
            key="EURUSD",
        )
    )
    return out


def _sample(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def _consumer(**kwargs):
    return SurveillanceConsumer(owners={1: "OWNER-1", 2: "OWNER-1"}, contract_sizes={"EURUSD": 100000.0}, **kwargs)


def test_surveillance_stage_in_the_one_process_pipeline(db, django_capture_on_commit_callbacks):
    from tradeops.bus.memory import MemoryBus
    from tradeops.outbox.relay import OutboxRelay

    seen = []
    bus = MemoryBus()  # a private bus: the process-wide one is shared with other tests
    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction stands for the commits
        result = pipeline_run(
            _events(),
            bus=bus,
            stages=[stage_get("surveillance")],
            handlers={"surveillance": _consumer()},
            on_event=seen.append,
            relay=OutboxRelay(bus=bus),  # the stage publishes its alert through the outbox, as run_embedded relays it
        )
    stats = result.stages["surveillance"]
    assert (stats.produced, stats.outboxed) == (0, {Topic.COMPLIANCE: 2})  # the alert and its case's step
    alerts = [e for e in seen if e.type == "alert.raised"]
    assert len(alerts) == 1 and alerts[0].topic == Topic.COMPLIANCE
    assert alerts[0].payload.alert_type == "wash_trade"
    assert [e.payload.action for e in seen if e.type == "case.changed"] == ["opened"]
    assert Case.objects.get().alerts.count() == 1


@pytest.mark.kafka
def test_surveillance_stage_on_kafka(kafka_bus, transactional_db):
    # Topics are read in no set order, so a later tick cannot be relied on to close the wash's
    # run after its fills: the stage is tested with the rule that reports a wash pair as it comes
    # (``series_size_ratio`` None; wip/wash19 made a wash wait for its run's end).
    for event in _events(late=False):
        kafka_bus.publish(event)
    kafka_bus.flush(10)
    handler = _consumer(params={"painting_the_tape": {"series_size_ratio": None}})
    outboxed_before = _sample("tradeops_events_outboxed_total", stage="surveillance", topic=Topic.COMPLIANCE)
    out_before = _sample("tradeops_events_out_total", stage="surveillance", topic=Topic.COMPLIANCE)
    relayed_before = _sample("tradeops_outbox_published_total")
    stats = stage_run(stage_get("surveillance"), bus=kafka_bus, handler=handler, idle_exit=3.0, poll_timeout=0.5)
    # the 5 inputs; its alert (and its case's step) went to the outbox with the rows, not back to
    # the runner: counted as the stage's writes to the outbox, not as events it published itself
    assert (stats.consumed, stats.produced) == (5, 0)
    assert stats.outboxed == {Topic.COMPLIANCE: 2} and stats.outboxed_total() == 2
    assert Alert.objects.get().alert_type == "wash_trade"
    # what an operator's dashboard reads: the stage wrote 2 events to the outbox, published none itself
    outboxed = _sample("tradeops_events_outboxed_total", stage="surveillance", topic=Topic.COMPLIANCE)
    assert outboxed - outboxed_before == 2
    assert _sample("tradeops_events_out_total", stage="surveillance", topic=Topic.COMPLIANCE) == out_before
    from tradeops.outbox.relay import OutboxRelay

    assert OutboxRelay(bus=kafka_bus).drain(timeout=10) == 2  # the relay publishes them on compliance-events
    assert _sample("tradeops_outbox_published_total") - relayed_before == 2  # and counts them as its own
    with kafka_bus.subscribe([Topic.COMPLIANCE], "compliance-test-reader") as sub:
        received = []
        for _ in range(40):
            received += [r.event for r in sub.poll(max_records=10, timeout=0.5)]
            if len(received) >= 2:
                break
    # two keys, so perhaps two partitions: read in no set order
    by_type = {e.type: e.payload for e in received}
    assert sorted(by_type) == ["alert.raised", "case.changed"]
    assert by_type["alert.raised"].alert_type == "wash_trade" and by_type["case.changed"].action == "opened"
