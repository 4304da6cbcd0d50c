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
