"""What a cluster test database holds, reconciled (run as a process with the cluster's
environment; prints one JSON object): orders, fills, positions against the sum of the fills,
the outbox, the audit trail (every order in it; the chain verified), alerts.

    python -m tests.cluster.probe
"""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from decimal import Decimal

import django


def reports() -> dict:
    """The RTS 22 transaction report (CSV) of every trading date with fills: each fill is in its
    day's report (by its transaction reference number) or held back with reasons."""
    from compliance.reports.generators.transaction import transaction_report_export
    from trading.models import Execution

    by_day = defaultdict(list)
    for execution_id, executed_at in Execution.objects.values_list("id", "executed_at"):
        by_day[executed_at.date()].append(execution_id)
    missing, reported, held = [], 0, []
    for day, ids in sorted(by_day.items()):
        out = io.BytesIO()
        export = transaction_report_export(day=day, file_format="csv", out=out)
        text = out.getvalue().decode()
        held_ids = {h["execution_id"] for h in export.held_back}
        held += [f"{h['execution_id']}: {h['reasons']}" for h in export.held_back]
        reported += export.result.reported
        missing += [i for i in ids if f"{i:012d}" not in text and i not in held_ids]
    return {"days": len(by_day), "reported": reported, "held_back": held, "missing": missing}


def main() -> None:
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    django.setup()
    if "--reports" in sys.argv:
        print(json.dumps(reports()))
        return
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from compliance.models import Alert, PreTradeDecision
    from tradeops.audit.models import AuditRecord
    from tradeops.outbox.models import Outbox
    from trading.models import Execution, Order, Position

    fills = defaultdict(Decimal)
    for account_id, instrument_id, side, quantity in Execution.objects.values_list(
        "account_id", "instrument_id", "side", "quantity"
    ):
        fills[(account_id, instrument_id)] += quantity if side == "BUY" else -quantity
    positions = {(p.account_id, p.instrument_id): p.net_quantity for p in Position.objects.all()}
    position_mismatches = [
        f"{key}: position {positions.get(key, Decimal(0))} != fills {fills.get(key, Decimal(0))}"
        for key in set(fills) | set(positions)
        if positions.get(key, Decimal(0)) != fills.get(key, Decimal(0))
    ]
    orders = list(Order.objects.values("id", "client_order_id", "status", "quantity", "filled_quantity"))
    filled_by_order = defaultdict(Decimal)
    for order_id, quantity in Execution.objects.values_list("order_id", "quantity"):
        filled_by_order[order_id] += quantity
    fill_mismatches = [
        o["client_order_id"] for o in orders if o["filled_quantity"] != filled_by_order.get(o["id"], Decimal(0))
    ]
    audited = set(AuditRecord.objects.filter(action="order.created").values_list("object_id", flat=True))
    not_audited = [o["id"] for o in orders if str(o["id"]) not in audited and o["client_order_id"] not in audited]
    # The paper broker's own book (its journal, as a restarted worker would read it).
    from datetime import UTC, datetime

    from workers.execution import brokers_from_settings

    broker_deals = []
    for broker in brokers_from_settings().values():
        broker.connect()
        broker_deals += [d.deal_id for d in broker.deals_since(datetime(2000, 1, 1, tzinfo=UTC))]
    # Orders the broker refused (``broker OUTCOME: message``, trading/orders/outcome.py), with
    # what the refusal is judged against; orders without their pre-trade decision.
    refusals = [
        {
            "client_order_id": o.client_order_id,
            "outcome": o.reject_reason.split(":", 1)[0].removeprefix("broker ").strip(),
            "reason": o.reject_reason,
            "side": o.side,
            "stop_loss": str(o.stop_loss) if o.stop_loss is not None else None,
            "take_profit": str(o.take_profit) if o.take_profit is not None else None,
        }
        for o in Order.objects.filter(status="REJECTED", reject_reason__startswith="broker ")
    ]
    decided = set(PreTradeDecision.objects.values_list("client_order_id", flat=True))
    without_decision = [o["client_order_id"] for o in orders if o["client_order_id"] not in decided]
    # The breaker and the kill switch: the account's last risk snapshot, every audited breaker move,
    # the alerts by type and the engaged kill switches.
    from trading.models import AccountRiskSnapshot, KillSwitch

    snapshots = {
        str(s.account_id): {"breaker": s.breaker_state, "trading_state": s.trading_state}
        for s in AccountRiskSnapshot.objects.all()
    }
    breaker_moves = [
        (r.action, (r.payload_data or {}).get("reason", ""))
        for r in AuditRecord.objects.filter(action__startswith="trading_breaker.").order_by("sequence")
    ]
    alerts_by_type = defaultdict(int)
    for alert_type in Alert.objects.values_list("alert_type", flat=True):
        alerts_by_type[alert_type] += 1
    # Alerts for a person published on compliance-events (a risk alert: an open breaker, a
    # position mismatch), by type.
    from tradeops.events import decode

    alerts_published = defaultdict(int)
    for message in Outbox.objects.filter(event_type="alert.raised").values_list("message", flat=True):
        alerts_published[decode(bytes(message)).payload.alert_type] += 1
    # Orders whose broker answer was lost (a timeout): as they were recorded, and what became of them.
    lost = AuditRecord.objects.filter(payload__contains="broker state unknown (TIMEOUT")
    unknown_ids = set(lost.values_list("object_id", flat=True))
    fill_counts = defaultdict(int)
    for order_id in Execution.objects.values_list("order_id", flat=True):
        fill_counts[order_id] += 1
    timeouts = [
        {"client_order_id": o["client_order_id"], "status": o["status"], "fills": fill_counts.get(o["id"], 0)}
        for o in orders
        if str(o["id"]) in unknown_ids or o["client_order_id"] in unknown_ids
    ]
    kill_switches = [f"{k.scope}:{k.scope_value} ({k.engage_reason})" for k in KillSwitch.objects.filter(engaged=True)]
    out = io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=out)
        verified, verify_output = True, out.getvalue()
    except (CommandError, SystemExit) as exc:
        verified, verify_output = False, out.getvalue() + str(exc)
    print(
        json.dumps(
            {
                "orders": len(orders),
                "orders_by_status": {
                    s: sum(1 for o in orders if o["status"] == s) for s in {o["status"] for o in orders}
                },
                "decisions": PreTradeDecision.objects.count(),
                "fills": Execution.objects.count(),
                "broker_deals": sorted(broker_deals),
                "fill_deals": sorted(Execution.objects.values_list("broker_deal_id", flat=True)),
                "positions": {f"{k[0]}/{k[1]}": str(v) for k, v in positions.items()},
                "position_mismatches": position_mismatches,
                "fill_mismatches": fill_mismatches,
                "orders_not_audited": not_audited,
                "audit_records": AuditRecord.objects.count(),
                "audit_verified": verified,
                "audit_verify_output": verify_output[-2000:],
                "alerts": Alert.objects.count(),
                "alerts_by_type": dict(alerts_by_type),
                "alerts_published": dict(alerts_published),
                "broker_refusals": refusals,
                "timeouts": timeouts,
                "orders_without_decision": without_decision,
                "risk_snapshots": snapshots,
                "breaker_moves": [[a, r] for a, r in breaker_moves],
                "kill_switches_engaged": kill_switches,
                "outbox": Outbox.objects.count(),
                "outbox_unsent": Outbox.objects.filter(sent_at__isnull=True).count(),
                "outbox_event_ids": [str(e) for e in Outbox.objects.values_list("event_id", flat=True)],
                "fill_dates": sorted(
                    {e.date().isoformat() for e in Execution.objects.values_list("executed_at", flat=True)}
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
