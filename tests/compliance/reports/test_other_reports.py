"""Best-execution quality, alerts and violations summary, order record, RTS 6 evidence pack."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
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
    # slippage against the touch on arrival (ask to buy, bid to sell), positive = improvement
    # for the client; the worker keeps the touch with every fill
    touches = [f.arrival_ask if f.side == "BUY" else f.arrival_bid for f in fills]
    assert all(t is not None for t in touches) and eur["reference"] == "touch"
    slips = [((t - f.price) if f.side == "BUY" else (f.price - t)) for t, f in zip(touches, fills, strict=True)]
    bps = sorted(float(s / t * 10000) for s, t in zip(slips, touches, strict=True))
    assert float(eur["slippage_bps_mean"]) == pytest.approx(sum(bps) / len(bps), abs=1e-4)
    assert float(eur["slippage_bps_min"]) == pytest.approx(bps[0], abs=1e-4)
    assert int(eur["adverse"]) == sum(1 for s in slips if s < 0)
    assert int(eur["improved"]) == sum(1 for s in slips if s > 0)
    assert int(eur["at_reference"]) == sum(1 for s in slips if s == 0) and int(eur["with_reference"]) == len(fills)
    money = sum(
        (-s * f.quantity * f.instrument.contract_size for s, f in zip(slips, fills, strict=True) if s < 0), Decimal(0)
    )
    assert Decimal(eur["adverse_money"]) == money.quantize(Decimal("0.01"))
    orders = Order.objects.filter(instrument=instrument).exclude(status__in=["NEW", "REJECTED", "RISK_APPROVED"])
    assert int(eur["orders_sent"]) == orders.count() and float(eur["fill_rate"]) == 1.0
    assert float(eur["latency_ms_median"]) >= 0


def test_market_fills_at_the_touch_are_at_reference_not_adverse(traded, trade_date):
    """The paper broker fills a market order at the touch (ask to buy, bid to sell): against the
    arrival mid every fill was adverse by half the spread and z was sqrt(n); against the touch
    each is at the reference and z is 0."""
    r = run(ReportKind.BEST_EXECUTION, trade_date)
    rows = {row["symbol"]: row for row in csv.DictReader(io.StringIO(content(r).decode()))}
    for symbol, row in rows.items():
        fills = list(Execution.objects.filter(instrument__symbol=symbol))
        assert all(f.price == (f.arrival_ask if f.side == "BUY" else f.arrival_bid) for f in fills)
        assert all(f.arrival_bid < f.arrival_mid < f.arrival_ask for f in fills)
        assert row["reference"] == "touch" and int(row["at_reference"]) == len(fills)
        assert (int(row["improved"]), int(row["adverse"]), Decimal(row["adverse_money"])) == (0, 0, 0)
        assert float(row["sign_test_z"]) == 0.0 and float(row["slippage_bps_max"]) == 0.0


def _fills(account, instrument, name, rows):
    """Fills recorded through the trading services, one market order each, at T0 + n minutes:
    ``rows`` of (side, price, arrival bid, arrival ask, arrival mid); a bid/ask of None is a fill
    recorded before the touch was kept (the mid alone). Returns the report's row for the instrument."""
    from tests.workers.conftest import T0
    from trading.orders.plan import FillDraft
    from trading.orders.services import execution_record, order_create, order_transition

    D = Decimal
    for n, (side, price, bid, ask, mid) in enumerate(rows):
        at = T0 + timedelta(minutes=n)
        order, _ = order_create(
            client_order_id=f"{name}-{n}",
            account=account,
            instrument=instrument,
            side=side,
            quantity=D("0.10"),
            at=at,
            algo_id="algo-1",
        )
        order_transition(order=order, to="RISK_APPROVED", at=at)
        order_transition(order=order, to="SUBMITTED", at=at)
        execution_record(
            order=Order.objects.get(pk=order.pk),
            fill=FillDraft(
                broker_deal_id=f"{name}-{n}-deal",
                quantity=D("0.10"),
                price=D(price),
                executed_at=at,
                arrival_mid=D(mid),
                arrival_bid=None if bid is None else D(bid),
                arrival_ask=None if ask is None else D(ask),
            ),
        )
    r = run(ReportKind.BEST_EXECUTION, T0.date())
    (row,) = [row for row in csv.DictReader(io.StringIO(content(r).decode())) if row["symbol"] == instrument.symbol]
    return row


AT_BID, AT_ASK, MID = "1.10000", "1.10002", "1.10001"  # a 0.2 pip spread


def test_nine_fills_at_the_touch_give_z_0_where_the_mid_gave_3(account, instrument):
    row = _fills(
        account,
        instrument,
        "touch",
        [("BUY", AT_ASK, AT_BID, AT_ASK, MID), ("SELL", AT_BID, AT_BID, AT_ASK, MID)] * 4
        + [("BUY", AT_ASK, AT_BID, AT_ASK, MID)],
    )
    assert (row["fills"], row["with_reference"], row["reference"]) == ("9", "9", "touch")
    assert (row["improved"], row["adverse"], row["at_reference"]) == ("0", "0", "9")
    assert float(row["sign_test_z"]) == 0.0  # against the mid: 9 adverse, z = 9 / sqrt(9) = 3.0
    assert float(row["slippage_bps_mean"]) == 0.0


def test_fills_past_the_touch_on_buys_and_at_it_on_sells_are_adverse(account, instrument):
    past = "1.10012"  # one pip past the ask
    row = _fills(
        account,
        instrument,
        "past",
        [("BUY", past, AT_BID, AT_ASK, MID), ("SELL", AT_BID, AT_BID, AT_ASK, MID)] * 9,
    )
    assert (row["reference"], row["improved"], row["adverse"], row["at_reference"]) == ("touch", "0", "9", "9")
    assert float(row["sign_test_z"]) == 3.0
    assert Decimal(row["adverse_money"]) == Decimal("9.00")  # 9 x 0.0001 x 0.10 lot x 100,000
    assert float(row["slippage_bps_min"]) == pytest.approx(-0.0001 / 1.10002 * 1e4, abs=1e-4)
    assert float(row["slippage_bps_max"]) == 0.0


def test_a_fill_without_the_touch_is_measured_against_the_mid_and_says_so(account, instrument, gbpusd):
    old = _fills(account, instrument, "old", [("BUY", AT_ASK, None, None, MID), ("SELL", AT_BID, None, None, MID)])
    assert (old["reference"], old["with_reference"], old["adverse"], old["at_reference"]) == ("mid", "2", "2", "0")
    assert float(old["slippage_price_mean"]) == pytest.approx(-0.00001)
    mixed = _fills(
        account,
        gbpusd,
        "mixed",
        [("BUY", "1.30002", None, None, "1.30001"), ("BUY", "1.30002", "1.30000", "1.30002", "1.30001")],
    )
    assert (mixed["reference"], mixed["adverse"], mixed["at_reference"]) == ("mixed", "1", "1")


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
