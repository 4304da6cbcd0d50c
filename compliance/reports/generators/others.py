"""The other reports: best-execution quality, alerts and violations summary, the order record,
and the RTS 6 self-assessment evidence pack.

- Best execution (MiFID II Art. 27, 2017/565 Art. 64(4); ESMA CFD Q&A on symmetry): per
  instrument and client, slippage of every fill against the touch quoted when its order arrived
  (ask to buy, bid to sell; the arrival mid for a fill recorded before the touch was kept, and
  the row says which: ``reference``), as a distribution in basis points, in price and in money;
  price improvement vs adverse slippage (counts, money, a sign test), fill rate, and latency from
  the order's receipt to its fill. A fill at the touch is at the reference: neither improved nor
  adverse (against the mid it was adverse by half the spread, every time). CSV.
- Alerts and violations summary: surveillance alerts by type and severity, cases opened and
  decided, pre-trade refusals by control (RTS 6 Art. 15), risk refusals by check, throttle
  trips, kill-switch engagements. JSON.
- Order record (MiFIR Art. 25, 2017/565 Art. 72): every order and every state change in the
  period, from the audit trail (hash-chained: each row carries the record's sequence and hash
  so a regulator can check it against ``audit_verify``). CSV.
- RTS 6 pack (Art. 9): limits in force and their changes, kill-switch and breaker events,
  pre-trade refusals, compliance rules and model versions active in the period, one CSV each,
  in one zip with ``manifest.json`` (each file's SHA-256 and row count).

Times are UTC; a period is [start 00:00, end+1 00:00) of event time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import zipfile
from collections import defaultdict
from decimal import Decimal
from typing import IO

from django.apps import apps
from django.db.models import Count, Q

from compliance.reports.generators import Outcome
from compliance.reports.generators.transaction import period_bounds
from compliance.reports.models import ReportRun
from compliance.reports.transaction.writers import HashingWriter
from tradeops.audit.models import AuditRecord
from trading.models import Execution, KillSwitch, Order, RiskLimit

_SENT = ("SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED")


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _round(value: float | None, digits: int = 4):
    return "" if value is None else round(value, digits)


def _csv_bytes(header: list[str], rows) -> tuple[bytes, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return buffer.getvalue().encode(), count


def _finish(out: IO[bytes], data: bytes, *, records: int, summary: dict) -> Outcome:
    writer = HashingWriter(out)
    writer.write(data)
    return Outcome(records=records, sha256=writer.sha256, size=writer.size, summary=summary)


# ---------------------------------------------------------------- best execution

BEST_EXECUTION_COLUMNS = [
    "symbol",
    "client",
    "fills",
    "lots",
    "with_reference",
    "reference",
    "slippage_bps_mean",
    "slippage_bps_p05",
    "slippage_bps_p25",
    "slippage_bps_median",
    "slippage_bps_p75",
    "slippage_bps_p95",
    "slippage_bps_min",
    "slippage_bps_max",
    "slippage_price_mean",
    "improved",
    "adverse",
    "at_reference",
    "improved_money",
    "adverse_money",
    "money_currency",
    "sign_test_z",
    "orders_sent",
    "orders_filled",
    "fill_rate",
    "quantity_fill_rate",
    "latency_ms_median",
    "latency_ms_p95",
    "latency_ms_max",
]


def _reference(group: dict | None) -> str:
    """What a group's fills were measured against: ``touch``, ``mid``, ``mixed`` or "" (none)."""
    if not group or not (group["touch"] or group["mid"]):
        return ""
    return "mixed" if group["touch"] and group["mid"] else ("touch" if group["touch"] else "mid")


def best_execution_write(*, run: ReportRun, out: IO[bytes]) -> Outcome:
    """Per instrument and client (the account's client identifier). Each fill is measured
    against its reference: the touch quoted when its order arrived, the ask for a buy and the bid
    for a sell (``Execution.arrival_ask`` / ``arrival_bid``, kept since trading 0009), else the
    arrival mid (fills recorded before); a fill with neither is counted but not measured.
    ``with_reference`` is how many were measured and ``reference`` against what: ``touch``,
    ``mid`` or ``mixed`` (some of each; empty: none measured). Slippage is signed so that
    positive = price improvement for the client: (reference - price) for a buy, (price -
    reference) for a sell; in basis points of the reference, and in money (x lots x contract
    size, quote currency). A fill at the reference (a market order filled at the touch) is
    ``at_reference``: neither improved nor adverse. ``sign_test_z`` = (adverse - improved) /
    sqrt(adverse + improved), 0 when every measured fill is at its reference: 3 or more is
    adverse slippage passed on while improvement is kept (ESMA's CFD Q&A). Against the mid, a
    fill at the touch was adverse by half the spread, so every client's z was sqrt(n) (3 from 9
    fills): a false finding."""
    lo, hi = period_bounds(run.period_start, run.period_end)
    groups: dict[tuple[str, str], dict] = defaultdict(
        lambda: (
            {"fills": 0, "lots": Decimal(0), "bps": [], "price": [], "improved": 0, "adverse": 0, "at_reference": 0}
            | {"improved_money": Decimal(0), "adverse_money": Decimal(0), "latency": [], "currency": ""}
            | {"touch": 0, "mid": 0}
        )
    )
    fills = (
        Execution.objects.filter(executed_at__gte=lo, executed_at__lt=hi, recorded_at__lte=run.as_of)
        .order_by("id")
        .values_list(
            "instrument__symbol",
            "account__client_id",
            "side",
            "quantity",
            "price",
            "arrival_mid",
            "arrival_bid",
            "arrival_ask",
            "instrument__contract_size",
            "instrument__quote_currency",
            "executed_at",
            "order__created_at",
        )
    )
    for symbol, client, side, qty, price, mid, bid, ask, contract, currency, executed_at, received_at in fills.iterator(
        chunk_size=5000
    ):
        g = groups[(symbol, client)]
        g["fills"] += 1
        g["lots"] += qty
        g["currency"] = currency
        if received_at is not None:
            g["latency"].append((executed_at - received_at).total_seconds() * 1000)
        touch = ask if side == "BUY" else bid
        if touch is not None and touch > 0:
            reference = touch
            g["touch"] += 1
        elif mid is not None and mid > 0:
            reference = mid  # recorded before the touch was kept (trading 0009)
            g["mid"] += 1
        else:
            continue
        improvement = (reference - price) if side == "BUY" else (price - reference)
        money = improvement * qty * contract
        g["price"].append(float(improvement))
        g["bps"].append(float(improvement / reference * 10000))
        if improvement > 0:
            g["improved"] += 1
            g["improved_money"] += money
        elif improvement < 0:
            g["adverse"] += 1
            g["adverse_money"] += -money
        else:
            g["at_reference"] += 1
    orders = (
        Order.objects.filter(created_at__gte=lo, created_at__lt=hi)
        .values_list("instrument__symbol", "account__client_id", "status", "quantity", "filled_quantity")
        .iterator(chunk_size=5000)
    )
    sent: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for symbol, client, status, qty, filled in orders:
        if status not in _SENT:
            continue
        s = sent[(symbol, client)]
        s[0] += 1
        s[1] += 1 if filled > 0 else 0
        s[2] += qty
        s[3] += filled

    def rows():
        for key in sorted(set(groups) | set(sent)):
            g = groups.get(key)
            s = sent.get(key, [0, 0, Decimal(0), Decimal(0)])
            bps = sorted(g["bps"]) if g else []
            latency = sorted(g["latency"]) if g else []
            n = (g["improved"] + g["adverse"]) if g else 0
            yield [
                key[0],
                key[1],
                g["fills"] if g else 0,
                g["lots"] if g else 0,
                len(bps),
                _reference(g),
                _round(sum(bps) / len(bps)) if bps else "",
                *(_round(_percentile(bps, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)),
                _round(bps[0]) if bps else "",
                _round(bps[-1]) if bps else "",
                _round(sum(g["price"]) / len(g["price"]), 10) if g and g["price"] else "",
                g["improved"] if g else 0,
                g["adverse"] if g else 0,
                g["at_reference"] if g else 0,
                g["improved_money"].quantize(Decimal("0.01")) if g else 0,
                g["adverse_money"].quantize(Decimal("0.01")) if g else 0,
                g["currency"] if g else "",
                _round((g["adverse"] - g["improved"]) / math.sqrt(n), 3) if n else (0.0 if bps else ""),
                s[0],
                s[1],
                _round(s[1] / s[0]) if s[0] else "",
                _round(float(s[3] / s[2])) if s[2] else "",
                _round(_percentile(latency, 0.5), 3),
                _round(_percentile(latency, 0.95), 3),
                _round(latency[-1], 3) if latency else "",
            ]

    data, count = _csv_bytes(BEST_EXECUTION_COLUMNS, rows())
    return _finish(
        out, data, records=count, summary={"groups": count, "fills": sum(g["fills"] for g in groups.values())}
    )


# ---------------------------------------------------------------- alerts and violations


def _reason_codes(text: str) -> list[str]:
    return sorted({token.strip(" ,;:()") for token in text.split() if token.startswith(("risk.", "compliance."))})


def alerts_summary_write(*, run: ReportRun, out: IO[bytes]) -> Outcome:
    """Alerts, cases and control refusals of the period, as one JSON document."""
    from compliance.models import Alert, Case, PreTradeDecision, ThrottleTrip

    lo, hi = period_bounds(run.period_start, run.period_end)
    alerts = Alert.objects.filter(first_seen__gte=lo, first_seen__lt=hi)
    by_type: dict[str, dict] = {}
    for alert_type, severity, occurrences, case_status in alerts.values_list(
        "alert_type", "severity", "occurrences", "case__status"
    ):
        entry = by_type.setdefault(alert_type, {"alerts": 0, "occurrences": 0, "by_severity": {}, "by_case_status": {}})
        entry["alerts"] += 1
        entry["occurrences"] += occurrences
        entry["by_severity"][severity] = entry["by_severity"].get(severity, 0) + 1
        entry["by_case_status"][case_status] = entry["by_case_status"].get(case_status, 0) + 1
    cases_opened = Case.objects.filter(opened_at__gte=lo, opened_at__lt=hi)
    decided = Case.objects.filter(decided_at__gte=lo, decided_at__lt=hi)
    refusals: dict[str, int] = defaultdict(int)
    decisions = PreTradeDecision.objects.filter(decided_at__gte=lo, decided_at__lt=hi)
    for checks in decisions.filter(approved=False).values_list("checks", flat=True):
        for check in checks or []:
            if not check.get("passed", True):
                refusals[check.get("code") or check.get("name", "?")] += 1
    risk: dict[str, int] = defaultdict(int)
    rejected = Order.objects.filter(status="REJECTED", created_at__gte=lo, created_at__lt=hi)
    for reason in rejected.values_list("reject_reason", flat=True):
        codes = _reason_codes(reason) or [reason.split(":")[0][:60] or "unspecified"]
        for code in codes:
            risk[code] += 1
    document = {
        "report": run.reference,
        "period": {"start": run.period_start.isoformat(), "end": run.period_end.isoformat()},
        "as_of": run.as_of.isoformat(),
        "alerts": {"total": sum(e["alerts"] for e in by_type.values()), "by_type": dict(sorted(by_type.items()))},
        "cases": {
            "opened": cases_opened.count(),
            "decided": dict(decided.values_list("status").annotate(n=Count("pk")).values_list("status", "n")),
        },
        "pretrade_decisions": {"total": decisions.count(), "refused": decisions.filter(approved=False).count()},
        "pretrade_refusals_by_control": dict(sorted(refusals.items())),
        "orders_rejected": rejected.count(),
        "order_rejections_by_check": dict(sorted(risk.items())),
        "throttle_trips": ThrottleTrip.objects.filter(tripped_at__gte=lo, tripped_at__lt=hi).count(),
        "kill_switch_engagements": KillSwitch.objects.filter(engaged_at__gte=lo, engaged_at__lt=hi).count(),
    }
    data = (json.dumps(document, indent=2, sort_keys=False, default=str) + "\n").encode()
    return _finish(out, data, records=document["alerts"]["total"], summary={"alerts": document["alerts"]["total"]})


# ---------------------------------------------------------------- order record

ORDER_RECORD_COLUMNS = [
    "sequence",
    "occurred_at",
    "recorded_at",
    "action",
    "actor",
    "order_id",
    "client_order_id",
    "broker_order_id",
    "account_id",
    "instrument",
    "side",
    "order_type",
    "quantity",
    "filled_quantity",
    "average_fill_price",
    "limit_price",
    "stop_price",
    "time_in_force",
    "status",
    "from_status",
    "reason",
    "reject_reason",
    "algo_id",
    "trader_id",
    "desk",
    "signal_id",
    "record_hash",
]


# the columns taken from the audit record's payload (the order's snapshot)
_ORDER_PAYLOAD_KEYS = ORDER_RECORD_COLUMNS[ORDER_RECORD_COLUMNS.index("client_order_id") : -1]


def _order_record_rows(lo, hi, as_of):
    records = (
        AuditRecord.objects.filter(
            object_type="order", action__startswith="order.", occurred_at__gte=lo, occurred_at__lt=hi
        )
        .filter(recorded_at__lte=as_of)
        .order_by("sequence")
        .values_list(
            "sequence", "occurred_at", "recorded_at", "action", "actor_type", "actor_id", "object_id", "payload", "hash"
        )
    )
    for sequence, occurred, recorded, action, actor_type, actor_id, object_id, payload, digest in records.iterator(
        chunk_size=5000
    ):
        data = json.loads(payload)
        yield [
            sequence,
            occurred.isoformat(),
            recorded.isoformat(),
            action,
            f"{actor_type}:{actor_id}",
            object_id,
            *(data.get(k, "") for k in _ORDER_PAYLOAD_KEYS),
            digest,
        ]


def order_record_write(*, run: ReportRun, out: IO[bytes]) -> Outcome:
    """Every order and state change of the period, streamed from the audit trail."""
    lo, hi = period_bounds(run.period_start, run.period_end)
    writer = HashingWriter(out)
    buffer = io.StringIO()
    rows = csv.writer(buffer, lineterminator="\n")
    rows.writerow(ORDER_RECORD_COLUMNS)
    count = 0
    orders: set[str] = set()
    for row in _order_record_rows(lo, hi, run.as_of):
        rows.writerow(["" if v is None else v for v in row])
        orders.add(row[5])
        count += 1
        if count % 2000 == 0:
            writer.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    writer.write(buffer.getvalue().encode())
    return Outcome(
        records=count, sha256=writer.sha256, size=writer.size, summary={"state_changes": count, "orders": len(orders)}
    )


# ---------------------------------------------------------------- RTS 6 self-assessment pack


def _audit_rows(lo, hi, prefix: str):
    return (
        [seq, occ.isoformat(), f"{at}:{aid}", action, oid, payload, digest]
        for seq, occ, at, aid, action, oid, payload, digest in AuditRecord.objects.filter(
            action__startswith=prefix, occurred_at__gte=lo, occurred_at__lt=hi
        )
        .order_by("sequence")
        .values_list("sequence", "occurred_at", "actor_type", "actor_id", "action", "object_id", "payload", "hash")
    )


_AUDIT_HEADER = ["sequence", "occurred_at", "actor", "action", "object_id", "payload", "record_hash"]


def _pack_files(run: ReportRun) -> list[tuple[str, str, list[str], object]]:
    from compliance.models import ComplianceRule, PreTradeDecision, ThrottleTrip

    lo, hi = period_bounds(run.period_start, run.period_end)
    limit_fields = [f.name for f in RiskLimit._meta.concrete_fields]
    files = [
        (
            "risk_limits_in_force.csv",
            "Risk limits (RTS 6 Art. 15, 17) in force when the pack was made; earlier values in the changes file",
            limit_fields,
            (
                [getattr(limit, f.attname) for f in RiskLimit._meta.concrete_fields]
                for limit in RiskLimit.objects.order_by("pk")
            ),
        ),
        (
            "risk_limit_changes.csv",
            "Every risk-limit change in the period (audit trail)",
            _AUDIT_HEADER,
            _audit_rows(lo, hi, "risk_limit."),
        ),
        (
            "kill_switch_events.csv",
            "Kill-switch engagements and releases in the period (RTS 6 Art. 12)",
            [
                "id",
                "scope",
                "scope_value",
                "engaged_at",
                "engaged_by",
                "engage_reason",
                "source",
                "cancelled_orders",
                "released_at",
                "released_by_id",
                "release_reason",
            ],
            (
                [
                    k.pk,
                    k.scope,
                    k.scope_value,
                    k.engaged_at,
                    k.engaged_by,
                    k.engage_reason,
                    k.source,
                    json.dumps(k.cancelled_orders),
                    k.released_at or "",
                    k.released_by_id or "",
                    k.release_reason,
                ]
                for k in KillSwitch.objects.filter(
                    Q(engaged_at__gte=lo, engaged_at__lt=hi) | Q(released_at__gte=lo, released_at__lt=hi)
                ).order_by("engaged_at")
            ),
        ),
        (
            "kill_switch_audit.csv",
            "Kill-switch records of the audit trail",
            _AUDIT_HEADER,
            _audit_rows(lo, hi, "killswitch."),
        ),
        (
            "breaker_events.csv",
            "Trading breaker state changes (audit trail)",
            _AUDIT_HEADER,
            _audit_rows(lo, hi, "trading_breaker."),
        ),
        (
            "pretrade_refusals.csv",
            "Pre-trade control refusals (RTS 6 Art. 15) with every failing check and rule version",
            ["client_order_id", "account_id", "symbol", "decided_at", "reason", "checks", "rule_versions"],
            (
                [
                    d.client_order_id,
                    d.account_id,
                    d.symbol,
                    d.decided_at.isoformat(),
                    d.reason,
                    json.dumps(d.checks),
                    json.dumps(d.rule_versions),
                ]
                for d in PreTradeDecision.objects.filter(
                    approved=False, decided_at__gte=lo, decided_at__lt=hi
                ).order_by("decided_at")
            ),
        ),
        (
            "orders_rejected.csv",
            "Orders refused by the risk and compliance gate or the broker",
            ["client_order_id", "account_id", "symbol", "side", "quantity", "created_at", "algo_id", "reject_reason"],
            (
                [
                    o.client_order_id,
                    o.account_id,
                    o.instrument.symbol,
                    o.side,
                    o.quantity,
                    o.created_at.isoformat(),
                    o.algo_id,
                    o.reject_reason,
                ]
                for o in Order.objects.filter(status="REJECTED", created_at__gte=lo, created_at__lt=hi)
                .select_related("instrument")
                .order_by("created_at")
            ),
        ),
        (
            "execution_throttle_trips.csv",
            "Execution throttle trips and resets (RTS 6 Art. 15(3))",
            ["algo_id", "tripped_at", "detail", "rule_version", "reset_at", "reset_by_id", "reset_reason"],
            (
                [
                    t.algo_id,
                    t.tripped_at.isoformat(),
                    t.detail,
                    t.rule_version,
                    t.reset_at or "",
                    t.reset_by_id or "",
                    t.reset_reason,
                ]
                for t in ThrottleTrip.objects.filter(
                    Q(tripped_at__lt=hi) & (Q(reset_at__isnull=True) | Q(reset_at__gte=lo))
                )
            ),
        ),
        (
            "compliance_rules.csv",
            "Compliance rule versions in force at any time in the period",
            [
                "code",
                "version",
                "rule_type",
                "scope",
                "scope_value",
                "parameters",
                "status",
                "effective_from",
                "effective_to",
                "proposed_by_id",
                "decided_by_id",
            ],
            (
                [
                    r.code,
                    r.version,
                    r.rule_type,
                    r.scope,
                    r.scope_value,
                    json.dumps(r.parameters),
                    r.status,
                    r.effective_from or "",
                    r.effective_to or "",
                    r.proposed_by_id,
                    r.decided_by_id or "",
                ]
                for r in ComplianceRule.objects.filter(effective_from__lt=hi)
                .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=lo))
                .select_related("instrument")
                .order_by("code", "version")
            ),
        ),
    ]
    if apps.is_installed("mlmodels"):
        ModelActivation = apps.get_model("mlmodels", "ModelActivation")
        ModelVersion = apps.get_model("mlmodels", "ModelVersion")
        files.append(
            (
                "model_activations.csv",
                "Model activations and rollbacks in the period, and versions active at its start",
                ["name", "version", "action", "actor", "reason", "at", "artifact_sha256"],
                _model_rows(ModelActivation, ModelVersion, lo, hi),
            )
        )
    return files


def _model_rows(ModelActivation, ModelVersion, lo, hi):
    latest_before: dict[str, object] = {}
    for activation in ModelActivation.objects.filter(at__lt=lo).select_related("version").order_by("at", "pk"):
        latest_before[activation.name] = activation
    for activation in latest_before.values():
        v = activation.version
        yield [
            activation.name,
            v.version,
            "active_at_period_start",
            activation.actor,
            activation.reason,
            activation.at.isoformat(),
            v.artifact_sha256,
        ]
    for activation in (
        ModelActivation.objects.filter(at__gte=lo, at__lt=hi).select_related("version").order_by("at", "pk")
    ):
        v = activation.version
        yield [
            activation.name,
            v.version,
            activation.action,
            activation.actor,
            activation.reason,
            activation.at.isoformat(),
            v.artifact_sha256,
        ]


def rts6_pack_write(*, run: ReportRun, out: IO[bytes]) -> Outcome:
    """One zip: a CSV per evidence kind and ``manifest.json`` listing each with its SHA-256
    and row count (the manifest is last, so ``pack_verify`` can check every file against it)."""
    writer = HashingWriter(out)
    manifest = {
        "report": run.reference,
        "kind": "RTS 6 Art. 9 self-assessment evidence pack",
        "period": {"start": run.period_start.isoformat(), "end": run.period_end.isoformat()},
        "as_of": run.as_of.isoformat(),
        "files": [],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, description, header, rows in _pack_files(run):
            data, count = _csv_bytes(header, (["" if v is None else v for v in row] for row in rows))
            archive.writestr(name, data)
            manifest["files"].append(
                {"name": name, "description": description, "rows": count, "sha256": hashlib.sha256(data).hexdigest()}
            )
        archive.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
    writer.write(buffer.getvalue())
    total = sum(f["rows"] for f in manifest["files"])
    return Outcome(
        records=total,
        sha256=writer.sha256,
        size=writer.size,
        summary={"files": {f["name"]: f["rows"] for f in manifest["files"]}},
    )


def pack_verify(archive: zipfile.ZipFile) -> list[str]:
    """Every file the manifest lists is there with its SHA-256; nothing else is."""
    try:
        manifest = json.loads(archive.read("manifest.json"))
    except KeyError:
        return ["manifest.json missing"]
    errors = []
    listed = {f["name"] for f in manifest.get("files", [])}
    for entry in manifest.get("files", []):
        try:
            data = archive.read(entry["name"])
        except KeyError:
            errors.append(f"{entry['name']} listed but missing")
            continue
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            errors.append(f"{entry['name']}: SHA-256 differs from the manifest")
    extra = set(archive.namelist()) - listed - {"manifest.json"}
    if extra:
        errors.append(f"files not in the manifest: {sorted(extra)}")
    return errors
