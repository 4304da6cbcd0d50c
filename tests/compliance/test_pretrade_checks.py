"""Each pre-trade control at, just under and just over its limit (pure: no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from compliance.pretrade.checks import (
    ExecutionThrottle,
    MaxOrderValue,
    MaxOrderVolume,
    MessageRate,
    PositionLimit,
    PriceCollar,
    RestrictedList,
    RuleSpec,
    checks_build,
)
from compliance.pretrade.decisions import compliance_decision_of
from compliance.pretrade.params import PretradeParameterError, pretrade_params_convert
from tradeops.events import (
    ComplianceRuleChanged,
    ExecutionThrottleReset,
    Fill,
    OrderEvent,
    PositionChanged,
    make_event,
)
from trading.gate import GateContext, PreTradeGate
from trading.intents import InstrumentSpec, OrderIntent, Quote

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
EURUSD = InstrumentSpec(
    symbol="EURUSD",
    contract_size=Decimal(100000),
    tick_size=Decimal("0.00001"),
    volume_step=Decimal("0.01"),
    min_volume=Decimal("0.01"),
    max_volume=Decimal(100),
)
QUOTE = Quote("EURUSD", Decimal("1.09995"), Decimal("1.10005"), NOW)  # mid 1.10000


def spec(rule_type, scope="firm", scope_value="", version=1, **params):
    return RuleSpec(
        rule_type=rule_type,
        scope=scope,
        scope_value=scope_value,
        params=pretrade_params_convert(rule_type, params),
        version=version,
        rule_id=7,
        code=rule_type,
    )


def intent(qty="1", side="BUY", limit=None, algo="algo-1", account=1, symbol="EURUSD", **kw):
    return OrderIntent(
        client_order_id=kw.pop("cid", "c1"),
        account_id=account,
        symbol=symbol,
        side=side,
        quantity=Decimal(qty),
        reference_price=Decimal("1.10000"),
        ts=NOW,
        order_type="LIMIT" if limit else "MARKET",
        limit_price=Decimal(limit) if limit else None,
        algo_id=algo,
        **kw,
    )


def ctx(now=NOW, quote=QUOTE):
    return GateContext(now=now, instrument=EURUSD, quote=quote)


# ---------------------------------------------------------------- price collar: 10 bps of 1.10000 = 0.0011


@pytest.mark.parametrize(
    ("limit", "passed"),
    [("1.10109", True), ("1.10110", True), ("1.10111", False), ("1.09890", True), ("1.09889", False)],
)
def test_price_collar_under_at_and_over(limit, passed):
    check = PriceCollar([spec("price_collar", max_deviation_bps="10")])
    result = check(intent(limit=limit), ctx())
    assert result.passed is passed
    assert result.rule_version == "price_collar#7@v1"
    if not passed:
        assert result.code == "compliance.price_collar" and "bps from mid 1.10000" in result.detail


def test_price_collar_without_a_quote_fails_closed():
    result = PriceCollar([spec("price_collar", max_deviation_bps="10")])(intent(limit="1.1"), ctx(quote=None))
    assert not result.passed and "no reference price" in result.detail


# ---------------------------------------------------------------- max order value: 1 lot at 1.10005 (ask) = 110,005


@pytest.mark.parametrize(("limit_value", "passed"), [("110006", True), ("110005", True), ("110004.99", False)])
def test_max_order_value_under_at_and_over(limit_value, passed):
    check = MaxOrderValue([spec("max_order_value", max_value=limit_value)])
    assert check(intent(qty="1"), ctx()).passed is passed


@pytest.mark.parametrize(("qty", "passed"), [("4.99", True), ("5", True), ("5.01", False)])
def test_max_order_volume_under_at_and_over(qty, passed):
    result = MaxOrderVolume([spec("max_order_volume", max_lots="5")])(intent(qty=qty), ctx())
    assert result.passed is passed


# ---------------------------------------------------------------- message rate


@pytest.mark.parametrize(("already_sent", "passed"), [(8, True), (9, True), (10, False)])
def test_messages_per_second_per_account(already_sent, passed):
    check = MessageRate([spec("max_messages_per_account", max_messages=10)], per="account")
    for i in range(already_sent):
        check.on_sent(intent(), ctx(now=NOW - timedelta(milliseconds=900 - i)))
    result = check(intent(), ctx())
    assert result.passed is passed
    if not passed:
        assert result.code == "compliance.max_messages_per_account"


def test_messages_per_algo_window_slides_and_keys_by_algo():
    check = MessageRate([spec("max_messages_per_algo", max_messages=2)], per="algo")
    check.on_sent(intent(algo="a"), ctx(now=NOW - timedelta(seconds=1)))  # falls out of the window
    check.on_sent(intent(algo="a"), ctx(now=NOW - timedelta(milliseconds=500)))
    check.on_sent(intent(algo="a"), ctx(now=NOW - timedelta(milliseconds=400)))
    assert not check(intent(algo="a"), ctx()).passed
    assert check(intent(algo="b"), ctx()).passed


# ---------------------------------------------------------------- execution throttle (RTS 6 Art. 15(3))


def _fills(check, n, algo="algo-1", start=NOW - timedelta(seconds=30)):
    for i in range(n):
        cid = f"o{uuid.uuid4().hex[:8]}"
        order = OrderEvent(
            client_order_id=cid,
            account_id=1,
            symbol="EURUSD",
            side="BUY",
            order_type="MARKET",
            quantity=Decimal(1),
            status="SUBMITTED",
            algo_id=algo,
            ts=start,
        )
        fill = Fill(
            client_order_id=cid,
            broker_deal_id=cid,
            account_id=1,
            symbol="EURUSD",
            side="BUY",
            quantity=Decimal(1),
            price=Decimal("1.1"),
            ts=start + timedelta(seconds=i),
        )
        check.on_event(make_event(order, source="t", key="1"))
        check.on_event(make_event(fill, source="t", key="1"))


@pytest.mark.parametrize(("executions", "passed"), [(4, True), (5, True), (6, False)])
def test_execution_throttle_under_at_and_over(executions, passed):
    check = ExecutionThrottle([spec("execution_throttle", max_executions=5, window_s=60)])
    _fills(check, executions)
    result = check(intent(), ctx())
    assert result.passed is passed
    if not passed:
        assert "a designated person must re-enable it" in result.detail


def test_execution_throttle_stays_disabled_until_a_person_reenables():
    check = ExecutionThrottle([spec("execution_throttle", max_executions=1, window_s=60)])
    _fills(check, 2)
    later = ctx(now=NOW + timedelta(hours=5))  # time alone does not re-enable it
    assert not check(intent(), later).passed
    assert check(intent(algo="other-algo"), later).passed
    reset = ExecutionThrottleReset(algo_id="algo-1", actor="user:officer", reason="reviewed", ts=NOW)
    check.on_event(make_event(reset, source="compliance", key="algo-1"))
    assert check(intent(), later).passed


# ---------------------------------------------------------------- restricted and watch lists


def test_restricted_list_refuses_and_watch_list_flags():
    check = RestrictedList([spec("restricted_list", restricted=["GBPUSD"], watch=["EURUSD"], reason="inside info")])
    refused = check(intent(symbol="GBPUSD"), ctx())
    assert not refused.passed and "restricted list: inside info" in refused.detail
    watched = check(intent(symbol="EURUSD"), ctx())
    assert watched.passed and watched.code == "compliance.watch_list"
    assert check(intent(symbol="USDJPY"), ctx()).passed


def test_restricted_list_combines_firm_and_account_scopes():
    check = RestrictedList(
        [spec("restricted_list", restricted=["GBPUSD"]), spec("restricted_list", "account", "2", restricted=["USDJPY"])]
    )
    assert not check(intent(symbol="USDJPY", account=2), ctx()).passed
    assert check(intent(symbol="USDJPY", account=1), ctx()).passed
    assert not check(intent(symbol="GBPUSD", account=2), ctx()).passed


# ---------------------------------------------------------------- position limit


@pytest.mark.parametrize(("qty", "passed"), [("1.99", True), ("2", True), ("2.01", False)])
def test_position_limit_under_at_and_over(qty, passed):
    check = PositionLimit([spec("position_limit", max_net_lots="10")])
    check.on_event(
        make_event(
            PositionChanged(
                account_id=1,
                symbol="EURUSD",
                net_quantity=Decimal(8),
                average_price=Decimal("1.1"),
                realised_pnl=Decimal(0),
                ts=NOW,
            ),
            source="t",
            key="1",
        )
    )
    assert check(intent(qty=qty), ctx()).passed is passed


def test_position_limit_lets_a_reducing_order_through():
    check = PositionLimit([spec("position_limit", max_net_lots="10")])
    check.load(1, "EURUSD", Decimal(15))  # already over (e.g. the limit was lowered)
    assert check(intent(qty="1", side="SELL"), ctx()).passed
    assert not check(intent(qty="1", side="BUY"), ctx()).passed


# ---------------------------------------------------------------- scopes, versions, composition


def test_most_specific_scope_wins_and_decision_names_the_version():
    check = MaxOrderVolume(
        [
            spec("max_order_volume", max_lots="5"),
            spec("max_order_volume", "account", "1", version=3, max_lots="2"),
            spec("max_order_volume", "algorithm", "algo-1", version=4, max_lots="1"),
        ]
    )
    r = check(intent(qty="1.5"), ctx())
    assert not r.passed and r.rule_version == "max_order_volume#7@v4"
    r = check(intent(qty="1.5", algo="other"), ctx())
    assert r.passed and r.rule_version == "max_order_volume#7@v3"
    assert not check(intent(qty="3", algo="other"), ctx()).passed
    assert check(intent(qty="3", algo="other", account=9), ctx()).passed


def test_rule_change_event_updates_the_check_without_a_restart():
    check = MaxOrderVolume([spec("max_order_volume", max_lots="5")])
    changed = ComplianceRuleChanged(
        rule_id=8,
        code="max-order-volume-firm",
        rule_type="max_order_volume",
        scope="firm",
        version=2,
        active=True,
        parameters={"max_lots": "1"},
        actor="user:b",
        ts=NOW,
    )
    check.on_event(make_event(changed, source="compliance", key="x"))
    result = check(intent(qty="2"), ctx())
    assert not result.passed and result.rule_version == "max-order-volume-firm#8@v2"


def test_no_rule_passes_and_parameters_are_validated():
    assert PriceCollar()(intent(limit="2"), ctx()).passed
    with pytest.raises(PretradeParameterError, match="max_deviation_bps"):
        pretrade_params_convert("price_collar", {"max_deviation_bps": -1})
    with pytest.raises(PretradeParameterError, match="unknown field"):
        pretrade_params_convert("max_order_volume", {"max_lots": 1, "maxlots": 2})


def test_checks_compose_in_the_trading_gate_and_cancels_bypass_them():
    gate = PreTradeGate(
        checks_build([spec("max_order_volume", max_lots="1"), spec("price_collar", max_deviation_bps="5")])
    )
    decision = gate.evaluate(intent(qty="2", limit="1.2"), ctx())
    assert not decision.approved
    assert {c.code for c in decision.failures} == {"compliance.max_order_volume", "compliance.price_collar"}
    from trading.intents import IntentAction

    cancel = intent(qty="2", limit="1.2", action=IntentAction.CANCEL)
    assert gate.evaluate(cancel, ctx()).approved
    payload = compliance_decision_of(decision.to_payload(intent(qty="2", limit="1.2"), trading_state="ACTIVE"))
    assert payload.approved is False and len(payload.checks) == 8


def _tick(check, seconds_ago, mid):
    from tradeops.events import Tick

    half = Decimal("0.00005")
    tick = Tick(
        symbol="EURUSD", bid=Decimal(mid) - half, ask=Decimal(mid) + half, ts=NOW - timedelta(seconds=seconds_ago)
    )
    check.on_event(make_event(tick, source="md", key="EURUSD"))


@pytest.mark.parametrize(("limit", "passed"), [("1.10549", True), ("1.10550", True), ("1.10551", False)])
def test_price_collar_over_a_period(limit, passed):
    # the mid ran from 1.10000 (61 s ago) to 1.10500 (now): within 50 bps of the mid 60 s ago means <= 1.10550
    rule = spec("price_collar", max_deviation_bps="50", period_s=60, max_period_deviation_bps="50")
    check = PriceCollar([rule])
    _tick(check, 61, "1.10000")
    _tick(check, 30, "1.10200")
    _tick(check, 0, "1.10500")
    now_quote = Quote("EURUSD", Decimal("1.10495"), Decimal("1.10505"), NOW)
    result = check(intent(limit=limit), ctx(quote=now_quote))
    assert result.passed is passed
    if not passed:
        assert "of 60s ago" in result.detail


def test_price_collar_period_parameters_go_together():
    with pytest.raises(PretradeParameterError, match="go together"):
        pretrade_params_convert("price_collar", {"max_deviation_bps": 10, "period_s": 60})
