"""The outage test's hands inside the system under test (``python -m tests.integration.outage_tool``):
it runs with the environment of the stages (their DATABASE_URL, Kafka and topic prefix), so it
sees what they see.

    publish --first N --count M   ticks and M signals (ids sig-N..) on the bus, alternating sides
    report                        one JSON line: orders by status, refusals, decisions, audit, outbox
    open-market                   EURUSD trades around the clock (the test runs live, on the wall
                                  clock, at any hour of the week: FX's weekend close must not
                                  turn its signals into skips)
    train                         train both models (small, seconds), activate them, signal on 0.5;
                                  a permissive wash-trade rule (same account, two hours)
    records                       one JSON line: what a run decided, in a form two runs compare by:
                                  orders, fills, positions, alerts, decisions (event times, no
                                  wall-clock times, no database ids)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from decimal import Decimal


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    import django

    django.setup()


def publish(first: int, count: int) -> None:
    from django.conf import settings

    from tradeops.bus.kafka import KafkaBus
    from tradeops.core.clock import utcnow
    from tradeops.events import Signal, Tick, make_event

    bus = KafkaBus(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, topic_prefix=settings.KAFKA_TOPIC_PREFIX)
    for i in range(first, first + count):
        now = utcnow()
        bid = Decimal("1.10000") + Decimal(i % 7) / Decimal(100000)
        bus.publish(
            make_event(
                Tick(symbol="EURUSD", bid=bid, ask=bid + Decimal("0.00002"), ts=now), source="test", key="EURUSD"
            )
        )
        signal = Signal(
            signal_id=f"outage-sig-{i}",
            symbol="EURUSD",
            ts=now,
            side="BUY" if i % 2 else "SELL",
            confidence=0.8,
            price=bid + Decimal("0.00001"),
            model_versions={"gbm": "1"},
            algo_id="algo-outage",
            atr=0.0010,
        )
        bus.publish(make_event(signal, source="test", key="EURUSD"))
        # Sides alternate, so a side repeats every 1.2 s: past the duplicate-order window (1 s by
        # default), which would otherwise refuse a same-size order on the same side as a duplicate.
        time.sleep(0.6)
    left = bus.flush(120)
    bus.close()
    if left:
        raise SystemExit(f"{left} events not acknowledged")


def report() -> dict:
    from django.db.models import Count

    from compliance.models import PreTradeDecision
    from tradeops.audit.models import AuditRecord
    from tradeops.outbox.models import Outbox
    from trading.models import Execution, Order

    statuses = dict(Order.objects.values_list("status").annotate(n=Count("id")))
    outbox_ids = set(Outbox.objects.values_list("event_id", flat=True))
    audited = list(AuditRecord.objects.values_list("event_id", flat=True))
    return {
        "orders": Order.objects.count(),
        "signals_ordered": Order.objects.values("signal_id").distinct().count(),
        "statuses": statuses,
        "refusals": sorted({o.reject_reason for o in Order.objects.filter(status="REJECTED")})[:10],
        "fills": Execution.objects.count(),
        "decisions": PreTradeDecision.objects.count(),
        "decided_orders": PreTradeDecision.objects.values("client_order_id").distinct().count(),
        "outbox": len(outbox_ids),
        "outbox_unsent": Outbox.objects.filter(sent_at__isnull=True).count(),
        "audited": len(audited),
        "audited_distinct": len(set(audited)),
        "outbox_audited": len(outbox_ids & set(audited)),
    }


def train() -> None:
    from mlmodels.services import model_training_run, validator_config_update
    from tests.mlmodels.conftest import FAST, NO_EDGE

    model_training_run(actor="service:test", config=FAST, activate=True, allow_no_edge=True, reason=NO_EDGE)
    validator_config_update(actor="service:test", min_confidence=0.5)  # every agreeing pair is a signal
    # Surveillance that fires on an hourly strategy's own round trips (a same-account buy and sell
    # within two hours), so two runs have alerts to compare: four eyes, two officers.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from compliance.services import compliance_rule_approve, compliance_rule_propose
    from tradeops.core.roles import Role

    officers = []
    for name in ("parity-officer-a", "parity-officer-b"):
        user = get_user_model().objects.create_user(username=name, password=None, is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=str(Role.COMPLIANCE_OFFICER))[0])
        officers.append(user)
    rule = compliance_rule_propose(
        proposed_by=officers[0],
        rule_type="wash_trade",
        parameters={
            "window_s": 7200.0,
            "include_same_account": True,
            "price_tolerance_bps": 200.0,
            "qty_tolerance": 0.5,
            "run_gap_s": 7200.0,
        },
        reason="test: alerts on the strategy's own round trips",
    )
    compliance_rule_approve(rule=rule, approver=officers[1])


def open_market() -> None:
    from trading.services import instrument_upsert

    instrument_upsert(symbol="EURUSD", trading_hours={})


def records() -> dict:
    from compliance.models import Alert, PreTradeDecision
    from trading.models import Execution, Order, Position

    def text(value):
        return None if value is None else str(value)

    orders = [
        {
            "client_order_id": o.client_order_id,
            "signal_id": o.signal_id,
            "account": o.account.mt5_login,
            "symbol": o.instrument.symbol,
            "side": o.side,
            "type": o.order_type,
            "quantity": text(o.quantity),
            "filled": text(o.filled_quantity),
            "average_fill_price": text(o.average_fill_price),
            "stop_loss": text(o.stop_loss),
            "take_profit": text(o.take_profit),
            "status": o.status,
            "reject_reason": o.reject_reason,
            "created_at": text(o.created_at),
            "decided_at": text(o.decided_at),
            "closed_at": text(o.closed_at),
        }
        for o in Order.objects.select_related("account", "instrument").order_by("client_order_id")
    ]
    fills = [
        {
            "order": f.order.client_order_id,
            "side": f.side,
            "quantity": text(f.quantity),
            "price": text(f.price),
            "executed_at": text(f.executed_at),
        }
        for f in Execution.objects.select_related("order").order_by("order__client_order_id", "executed_at", "price")
    ]
    positions = [
        {"symbol": p.instrument.symbol, "net": text(p.net_quantity), "average_price": text(p.average_price)}
        for p in Position.objects.select_related("instrument").order_by("instrument__symbol", "account_id")
    ]
    alerts = sorted(
        (
            {
                "type": a.alert_type,
                "severity": a.severity,
                "account": a.account,
                "symbol": a.symbol,
                "orders": a.order_ids,
                "score": round(a.score, 6),
                "start": text(a.start),
                "end": text(a.end),
                "occurrences": a.occurrences,
                "source": a.source,
            }
            for a in Alert.objects.all()
        ),
        key=lambda a: json.dumps(a, sort_keys=True, default=str),
    )
    decisions = sorted(
        (d.client_order_id, d.approved, text(d.decided_at), d.reason) for d in PreTradeDecision.objects.all()
    )
    return {"orders": orders, "fills": fills, "positions": positions, "alerts": alerts, "decisions": decisions}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    sub.add_parser("report")
    sub.add_parser("train")
    sub.add_parser("records")
    sub.add_parser("open-market")
    args = parser.parse_args(argv)
    _setup()
    if args.command == "publish":
        publish(args.first, args.count)
    elif args.command == "train":
        train()
    elif args.command == "open-market":
        open_market()
    elif args.command == "records":
        print(json.dumps(records(), default=str))
    else:
        print(json.dumps(report(), default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
