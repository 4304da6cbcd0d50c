"""Best-execution quality, alerts and violations summary, order record, RTS 6 evidence pack."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from decimal import Decimal

import pytest

from compliance.reports.models import ReportKind, RunStatus
from compliance.reports.services import report_run_create, report_run_execute, report_run_validate
from tradeops.audit.models import AuditRecord
from trading.models import Execution, Order

pytestmark = pytest.mark.django_db


def run(kind, day, **kwargs):
    r = report_run_create(kind=kind, period_start=day, period_end=day, actor="service:test", **kwargs)
    return report_run_execute(run=r)


def content(r) -> bytes:
    with r.file.open("rb") as fh:
        return fh.read()


def test_best_execution_per_instrument_and_client(traded, trade_date, account, instrument):
    r = run(ReportKind.BEST_EXECUTION, trade_date)
    assert r.status == RunStatus.VALIDATED
    rows = {row["symbol"]: row for row in csv.DictReader(io.StringIO(content(r).decode()))}
    assert set(rows) == {"EURUSD", "GBPUSD"}
    eur = rows["EURUSD"]
    fills = list(Execution.objects.filter(instrument=instrument))
    assert eur["client"] == account.client_id and int(eur["fills"]) == len(fills)
    # slippage against the arrival mid, positive = improvement for the client
    slips = [((f.arrival_mid - f.price) if f.side == "BUY" else (f.price - f.arrival_mid)) for f in fills]
    bps = sorted(float(s / f.arrival_mid * 10000) for s, f in zip(slips, fills, strict=True))
    assert float(eur["slippage_bps_mean"]) == pytest.approx(sum(bps) / len(bps), abs=1e-4)
    assert float(eur["slippage_bps_min"]) == pytest.approx(bps[0], abs=1e-4)
    assert int(eur["adverse"]) == sum(1 for s in slips if s < 0)
    assert int(eur["improved"]) == sum(1 for s in slips if s > 0)
    money = sum(-s * f.quantity * f.instrument.contract_size for s, f in zip(slips, fills, strict=True) if s < 0)
    assert Decimal(eur["adverse_money"]) == money.quantize(Decimal("0.01"))
    orders = Order.objects.filter(instrument=instrument).exclude(status__in=["NEW", "REJECTED", "RISK_APPROVED"])
    assert int(eur["orders_sent"]) == orders.count() and float(eur["fill_rate"]) == 1.0
    assert float(eur["latency_ms_median"]) >= 0


def test_alerts_and_violations_summary(traded, trade_date, account):
    from compliance.services import alerts_record

    alerts_record(
        alerts=[
            {"alert_type": "wash_trade", "account": "A1,A2", "owner": "O1", "symbol": "EURUSD", "order_ids": ["o1"]},
            {"alert_type": "spoofing", "account": "A3", "owner": "O3", "symbol": "EURUSD", "order_ids": ["o2"]},
            {"alert_type": "spoofing", "account": "A3", "owner": "O3", "symbol": "EURUSD", "order_ids": ["o2"]},
        ]
    )
    from datetime import UTC, datetime

    day = datetime.now(UTC).date()
    r = run(ReportKind.ALERTS_SUMMARY, day)
    summary = json.loads(content(r))
    assert summary["alerts"]["total"] == 2
    assert summary["alerts"]["by_type"]["spoofing"]["occurrences"] == 2
    assert summary["cases"]["opened"] == 2
    assert set(summary) >= {"pretrade_refusals_by_control", "order_rejections_by_check", "kill_switch_engagements"}


def test_order_record_lists_every_state_change_from_the_audit_trail(traded, account):
    from datetime import UTC, datetime

    records = AuditRecord.objects.filter(object_type="order", action__startswith="order.")
    day = records.first().occurred_at.astimezone(UTC).date()
    r = run(ReportKind.ORDER_RECORD, day)
    rows = list(csv.DictReader(io.StringIO(content(r).decode())))
    assert len(rows) == records.count() == r.record_count
    hashes = dict(records.values_list("sequence", "hash"))
    assert all(hashes[int(row["sequence"])] == row["record_hash"] for row in rows)
    by_order: dict[str, list[str]] = {}
    for row in rows:
        by_order.setdefault(row["client_order_id"], []).append(row["status"])
    assert len(by_order) == Order.objects.count()
    assert all(statuses[-1] in ("FILLED", "REJECTED") for statuses in by_order.values())
    assert datetime.fromisoformat(rows[0]["occurred_at"]).tzinfo is not None


def test_rts6_pack_is_one_archive_with_a_manifest(traded, account, instrument):
    from datetime import UTC, datetime

    from trading.controls.services import kill_switch_engage, risk_limit_save

    risk_limit_save(actor="user:risk", account=account, instrument=instrument, reason="tighter", max_position_lots=3)
    kill_switch_engage(scope="instrument", scope_value="EURUSD", actor="user:risk", reason="drill", source="command")
    day = datetime.now(UTC).date()
    r = run(ReportKind.RTS6_PACK, day)
    assert r.status == RunStatus.VALIDATED and r.file_format == "zip"
    with zipfile.ZipFile(io.BytesIO(content(r))) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        files = {f["name"]: f for f in manifest["files"]}
        assert {
            "risk_limits_in_force.csv",
            "risk_limit_changes.csv",
            "kill_switch_events.csv",
            "breaker_events.csv",
        } <= set(files)
        assert {"pretrade_refusals.csv", "compliance_rules.csv", "model_activations.csv"} <= set(files)
        assert files["risk_limit_changes.csv"]["rows"] >= 1 and files["kill_switch_events.csv"]["rows"] == 1
        kill = list(csv.DictReader(io.StringIO(archive.read("kill_switch_events.csv").decode())))
        assert kill[0]["scope_value"] == "EURUSD" and kill[0]["engage_reason"] == "drill"


def test_a_pack_altered_after_generation_fails_validation(traded):
    from datetime import UTC, datetime

    from compliance.reports.services import report_run_generate

    r = report_run_create(
        kind=ReportKind.RTS6_PACK,
        period_start=datetime.now(UTC).date(),
        period_end=datetime.now(UTC).date(),
        actor="service:test",
    )
    r = report_run_generate(run=r)
    path = r.file.path
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.csv", "smuggled\n")
    r = report_run_validate(run=r)
    assert r.status == RunStatus.FAILED
    assert any("not in the manifest" in e["error"] for e in r.errors)
