"""The rules for an order the broker answered whose write failed, and the line format of the
execution worker's spool of them (``trading.orders.unrecorded``): what is written back is what
was kept, to the microsecond and the last decimal; a line cut short anywhere, or altered in any
one byte, is refused, never read as an entry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeops.events import CheckResult
from trading.gate import GateDecision
from trading.intents import IntentAction, OrderIntent
from trading.order_states import OrderStatus
from trading.orders.outcome import Outcome
from trading.orders.plan import FillDraft, OrderStep
from trading.orders.unrecorded import (
    Settlement,
    SpoolLineError,
    UnrecordedOrder,
    positions_judge,
    spool_line_decode,
    spool_line_encode,
    unrecorded_fills_net,
    unrecorded_given_up_evidence,
    unrecorded_settlement,
)

times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)  # aware UTC, microseconds
prices = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(10**9), places=5, allow_nan=False)
lots = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2, allow_nan=False)
words = st.text(max_size=40)  # any unicode: quotes, backslashes, newlines, surrogate-free
maybe = st.none() | prices

intents = st.builds(
    OrderIntent,
    client_order_id=st.text(alphabet="0123456789abcdef", min_size=20, max_size=20).map(lambda s: "T" + s),
    account_id=st.integers(min_value=1, max_value=2**31 - 1),
    symbol=st.sampled_from(["EURUSD", "GBPUSD", "US500.cash"]),
    side=st.sampled_from(["BUY", "SELL"]),
    quantity=lots,
    reference_price=prices,
    ts=times,
    order_type=st.sampled_from(["MARKET", "LIMIT", "STOP"]),
    limit_price=maybe,
    stop_loss=maybe,
    take_profit=maybe,
    algo_id=words,
    trader_id=st.none() | st.integers(min_value=1, max_value=10**6),
    desk=words,
    signal_id=words,
    action=st.sampled_from(list(IntentAction)),
    tags=st.dictionaries(words, words, max_size=3),
)
checks = st.builds(CheckResult, name=words, passed=st.booleans(), code=words, detail=words, rule_version=words)
steps = st.builds(
    OrderStep,
    to=st.sampled_from(list(OrderStatus)),
    at=times,
    reason=words,
    broker_order_id=st.none() | words,
)
fills = st.builds(
    FillDraft,
    broker_deal_id=words,
    quantity=lots,
    price=prices,
    executed_at=times,
    fee=st.decimals(min_value=Decimal(-1000), max_value=Decimal(1000), places=2, allow_nan=False),
    fee_currency=words,
    arrival_mid=maybe,
    arrival_bid=maybe,
    arrival_ask=maybe,
)
entries = st.builds(
    UnrecordedOrder,
    intent=intents,
    received_at=times,
    decided_at=times,
    decision=st.builds(GateDecision, approved=st.booleans(), checks=st.lists(checks, max_size=4).map(tuple)),
    trading_state=st.sampled_from(["NORMAL", "REDUCING", "HALTED"]),
    outcome=st.builds(
        Outcome,
        steps=st.lists(steps, min_size=1, max_size=4).map(tuple),
        fills=st.lists(fills, max_size=3).map(tuple),
        after_fills=st.lists(steps, max_size=1).map(tuple),
        unknown=st.booleans(),
    ),
    answer_accepted=st.booleans(),
    refused=st.booleans(),
    answer=words,
    trial=st.booleans(),
    failed_at=times,
    traceparent=words,
)


@settings(max_examples=200, deadline=None)
@given(entry=entries)
def test_a_spool_line_reads_back_as_the_entry_written(entry):
    line = spool_line_encode(entry)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one line, whatever the strings hold
    back = spool_line_decode(line)
    assert back == entry
    assert all(isinstance(step.to, OrderStatus) for step in (*back.outcome.steps, *back.outcome.after_fills))
    assert back.received_at.tzinfo is not None and back.received_at == entry.received_at  # to the microsecond


@settings(max_examples=100, deadline=None)
@given(entry=entries, data=st.data())
def test_a_spool_line_cut_short_anywhere_is_refused(entry, data):
    line = spool_line_encode(entry)
    cut = data.draw(st.integers(min_value=0, max_value=len(line) - 1))
    with pytest.raises(SpoolLineError):
        spool_line_decode(line[:cut])


@settings(max_examples=100, deadline=None)
@given(entry=entries, data=st.data())
def test_a_spool_line_altered_in_any_byte_is_refused(entry, data):
    line = bytearray(spool_line_encode(entry))
    at = data.draw(st.integers(min_value=0, max_value=len(line) - 1))
    line[at] = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != line[at]))
    with pytest.raises(SpoolLineError):
        spool_line_decode(bytes(line))


def test_every_truncation_of_one_line_is_refused_with_a_reason():
    entry = refusal_kept()
    line = spool_line_encode(entry)
    reasons = set()
    for cut in range(len(line)):
        with pytest.raises(SpoolLineError) as refused:
            spool_line_decode(line[:cut])
        reasons.add(str(refused.value).split(":")[0])
    assert reasons == {"cut short"}  # a line is whole only with its newline
    assert spool_line_decode(line) == entry


def refusal_kept(**changes) -> UnrecordedOrder:
    at = datetime(2026, 3, 2, 9, 0, 1, 250_001, tzinfo=UTC)
    intent = OrderIntent(
        client_order_id="T" + "a" * 20,
        account_id=1,
        symbol="EURUSD",
        side="BUY",
        quantity=Decimal("2.50"),
        reference_price=Decimal("1.10001"),
        ts=at,
        signal_id="sig-1",
    )
    values = dict(
        intent=intent,
        received_at=at,
        decided_at=at,
        decision=GateDecision(True, ()),
        trading_state="NORMAL",
        outcome=Outcome(
            steps=(
                OrderStep(OrderStatus.RISK_APPROVED, at),
                OrderStep(OrderStatus.SUBMITTED, at),
                OrderStep(OrderStatus.REJECTED, at, "broker REJECT: dealer says no"),
            )
        ),
        answer_accepted=False,
        refused=True,
        answer="REJECT",
        trial=False,
        failed_at=at + timedelta(days=280),
    )
    values.update(changes)
    return UnrecordedOrder(**values)


@pytest.mark.parametrize(
    ("refused", "recorded", "waited", "settlement"),
    [
        (True, True, 0, Settlement.FOUND),  # the failed write had committed after all
        (False, True, 0, Settlement.FOUND),  # recovered from the broker's deals
        (True, False, 0, Settlement.WRITE_REFUSED),  # no trace will ever show at the broker
        (False, False, 59.9, Settlement.WAIT),  # MT5's history lags
        (False, False, 60, Settlement.WRITE_GIVEN_UP),
    ],
)
def test_the_settle_rules(refused, recorded, waited, settlement):
    entry = refusal_kept(refused=refused, answer_accepted=not refused, answer="REJECT" if refused else "DONE")
    assert unrecorded_settlement(entry=entry, recorded=recorded, waited=waited, wait=60) is settlement


def test_the_given_up_alert_names_the_order_the_answer_and_the_wait():
    evidence = unrecorded_given_up_evidence(
        entry=refusal_kept(refused=False, answer_accepted=True, answer="DONE"), waited=61.25, written_as="FILLED"
    )
    assert evidence == {
        "explanation": (
            "Order Taaaaaaaaaaaaaaaaaaaa (broker answer DONE) not in the broker's history after 61 s: written "
            "from the answer the worker kept, as FILLED."
        ),
        "client_order_id": "Taaaaaaaaaaaaaaaaaaaa",
        "broker_answer": "DONE",
        "waited_seconds": 61.25,
        "written_as": "FILLED",
    }


# ---------------------------------------------------------------- positions held by waited-for fills


def filled_kept(symbol: str, side: str, *quantities: str, refused: bool = False) -> UnrecordedOrder:
    """An accepted order whose write failed, its answer's fills kept (``refused``: a refusal, whatever it kept)."""
    base = refusal_kept()
    at = base.received_at
    kept = tuple(
        FillDraft(broker_deal_id=f"D{i}", quantity=Decimal(q), price=Decimal("1.1"), executed_at=at)
        for i, q in enumerate(quantities)
    )
    return refusal_kept(
        intent=dataclasses.replace(base.intent, symbol=symbol, side=side),
        outcome=Outcome(steps=base.outcome.steps[:2], fills=kept),
        answer_accepted=not refused,
        refused=refused,
        answer="REJECT" if refused else "DONE",
    )


def test_the_waited_for_fills_are_netted_by_symbol_and_signed_by_side():
    waiting = [
        filled_kept("EURUSD", "BUY", "1.00", "0.50"),
        filled_kept("EURUSD", "SELL", "0.20"),
        filled_kept("GBPUSD", "SELL", "2.00"),
        filled_kept("US500.cash", "BUY"),  # accepted, no fill kept (placed, or its answer unknown)
    ]
    assert unrecorded_fills_net(waiting) == {"EURUSD": Decimal("1.30"), "GBPUSD": Decimal("-2.00")}


def test_a_difference_exactly_the_waited_for_fills_is_held_and_any_other_is_a_mismatch():
    judged = positions_judge(
        mismatches={
            "EURUSD": ("0.50", "1.80"),  # short by exactly the kept buy of 1.30: held
            "GBPUSD": ("0", "-1.50"),  # the kept sell is 2.00: explained in part only, a mismatch whole
            "US500.cash": ("3", "4"),  # nothing waited for on it
        },
        waiting=[filled_kept("EURUSD", "BUY", "1.30"), filled_kept("GBPUSD", "SELL", "2.00")],
    )
    assert judged.held == {"EURUSD": ("0.50", "1.80", "1.30")}
    assert judged.mismatches == {"GBPUSD": ("0", "-1.50"), "US500.cash": ("3", "4")}


def test_a_refusal_kept_explains_no_difference():
    judged = positions_judge(
        mismatches={"EURUSD": ("0", "1.00")}, waiting=[filled_kept("EURUSD", "BUY", "1.00", refused=True)]
    )
    assert judged.held == {} and judged.mismatches == {"EURUSD": ("0", "1.00")}


def test_with_nothing_waited_for_every_difference_is_a_mismatch():
    mismatches = {"EURUSD": ("0", "1.00"), "GBPUSD": ("-1", "0")}
    assert positions_judge(mismatches=mismatches, waiting=[]).mismatches == mismatches


symbols = st.sampled_from(["EURUSD", "GBPUSD", "US500.cash"])
signed_lots = st.decimals(min_value=Decimal(-1000), max_value=Decimal(1000), places=2, allow_nan=False)


def _differences(ours, pending, unexplained):
    """The position differences a reconciliation sees when the broker holds ours plus the
    waited-for fills (``pending``) plus an unexplained part: symbol -> (ours, the broker's)."""
    mismatches = {}
    for s in set(ours) | set(pending) | set(unexplained):
        a = ours.get(s, Decimal(0))
        b = a + pending.get(s, Decimal(0)) + unexplained.get(s, Decimal(0))
        if a != b:
            mismatches[s] = (str(a), str(b))
    return mismatches


@settings(max_examples=300, deadline=None)
@given(
    kept=st.lists(
        st.tuples(symbols, st.sampled_from(["BUY", "SELL"]), st.lists(lots, max_size=3), st.booleans()), max_size=6
    ),
    ours=st.dictionaries(symbols, signed_lots),
    unexplained=st.dictionaries(symbols, signed_lots),
)
def test_an_explained_difference_never_kills_and_an_unexplained_part_always_does(kept, ours, unexplained):
    """The broker's net on each symbol is ours, plus the fills of the orders waited for (refusals
    kept explain nothing, and leave the broker untouched), plus an unexplained part: a symbol whose
    difference is all waited-for fills is held, never a mismatch; one with any unexplained part
    left over is a mismatch, whatever the waited-for fills."""
    waiting = [filled_kept(s, side, *map(str, qs), refused=r) for s, side, qs, r in kept]
    pending: dict[str, Decimal] = {}
    for s, side, qs, refused in kept:
        if not refused:
            pending[s] = pending.get(s, Decimal(0)) + (sum(qs, Decimal(0)) * (1 if side == "BUY" else -1))
    mismatches = _differences(ours, pending, unexplained)
    judged = positions_judge(mismatches=mismatches, waiting=waiting)
    assert set(judged.held) | set(judged.mismatches) == set(mismatches)
    assert not set(judged.held) & set(judged.mismatches)
    for s in mismatches:
        if unexplained.get(s, Decimal(0)) == 0:
            assert s in judged.held and Decimal(judged.held[s][2]) == pending[s]  # never kills
        else:
            assert s in judged.mismatches  # always does


# ---------------------------------------------------------------- an answer whose deals had not shown


def test_the_unconfirmed_filled_volume_is_what_the_answer_reports_filled_beyond_its_deals():
    from trading.brokers.base import Deal, OrderOutcome, OrderResult
    from trading.orders.unrecorded import unconfirmed_filled_of

    at = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    answer = OrderResult(
        outcome=OrderOutcome.DONE,
        client_order_id="Taaaaaaaaaaaaaaaaaaaa",
        symbol="EURUSD",
        side="BUY",
        requested_volume=Decimal("0.30"),
        ts=at,
        filled_volume=Decimal("0.30"),
        deals_confirmed=False,
    )
    assert unconfirmed_filled_of(answer) == Decimal("0.30")  # no deal showed before the poll timeout
    deal = Deal(
        deal_id="D1",
        order_id="1",
        position_id="1",
        symbol="EURUSD",
        side="BUY",
        volume=Decimal("0.10"),
        price=Decimal("1.1"),
        ts=at,
    )
    assert unconfirmed_filled_of(dataclasses.replace(answer, deals=(deal,))) == Decimal("0.20")  # one of them did
    assert unconfirmed_filled_of(dataclasses.replace(answer, deals_confirmed=True)) == 0  # every fill is a deal
    assert unconfirmed_filled_of(None) == 0  # an error: no answer


def test_an_answer_without_deals_explains_the_difference_by_the_volume_it_reported_filled():
    no_deals = dataclasses.replace(filled_kept("EURUSD", "BUY"), unconfirmed_filled=Decimal("0.30"))
    sold = dataclasses.replace(filled_kept("GBPUSD", "SELL", "0.10"), unconfirmed_filled=Decimal("0.20"))
    assert unrecorded_fills_net([no_deals, sold]) == {"EURUSD": Decimal("0.30"), "GBPUSD": Decimal("-0.30")}
    judged = positions_judge(
        mismatches={"EURUSD": ("0", "0.30"), "GBPUSD": ("0", "-0.30"), "US500.cash": ("0", "1")},
        waiting=[no_deals, sold],
    )
    assert judged.held == {"EURUSD": ("0", "0.30", "0.30"), "GBPUSD": ("0", "-0.30", "-0.30")}
    assert judged.mismatches == {"US500.cash": ("0", "1")}
    # Past the wait the entry is no longer waited for: the same difference is a mismatch.
    assert positions_judge(mismatches={"EURUSD": ("0", "0.30")}, waiting=[]).mismatches == {"EURUSD": ("0", "0.30")}


def test_a_format_1_spool_line_without_the_unconfirmed_volume_still_reads():
    import hashlib
    import json

    entry = dataclasses.replace(filled_kept("EURUSD", "BUY", "0.10"), unconfirmed_filled=Decimal("0.20"))
    line = spool_line_encode(entry)
    assert line.startswith(b'{"v":2,') and spool_line_decode(line) == entry
    body = json.loads(line[line.index(b'"entry":') + 8 : -2])
    del body["unconfirmed_filled"]
    old = json.dumps(body, separators=(",", ":")).encode()
    v1 = b'{"v":1,"sha256":"' + hashlib.sha256(old).hexdigest().encode() + b'","entry":' + old + b"}\n"
    assert spool_line_decode(v1) == dataclasses.replace(entry, unconfirmed_filled=Decimal(0))
    with pytest.raises(SpoolLineError, match="format 1 or 2"):
        spool_line_decode(v1.replace(b'"v":1', b'"v":3'))


# ------------------------------------- recorded orders whose reported fill had no deals (written)


def test_a_recorded_orders_reported_fill_explains_the_difference_alone_or_with_the_unrecorded_ones():
    reported = [("EURUSD", "BUY", Decimal("0.30")), ("EURUSD", "SELL", Decimal("0.10")), ("GBPUSD", "SELL", Decimal(1))]
    judged = positions_judge(
        mismatches={"EURUSD": ("1", "1.2"), "GBPUSD": ("0", "-1"), "USDJPY": ("0", "0.1")},
        waiting=[],
        reported=reported,
    )
    assert judged.held == {"EURUSD": ("1", "1.2", "0.20"), "GBPUSD": ("0", "-1", "-1")}
    assert judged.mismatches == {"USDJPY": ("0", "0.1")}
    # together with an unrecorded order's kept fill: the sum explains, either alone does not
    both = positions_judge(
        mismatches={"EURUSD": ("0", "0.5")}, waiting=[filled_kept("EURUSD", "BUY", "0.2")], reported=reported[:1]
    )
    assert both.held == {"EURUSD": ("0", "0.5", "0.50")} and not both.mismatches
    alone = positions_judge(mismatches={"EURUSD": ("0", "0.5")}, waiting=[], reported=reported[:1])
    assert alone.mismatches == {"EURUSD": ("0", "0.5")}  # past its wait the caller passes nothing: a mismatch


@settings(max_examples=300, deadline=None)
@given(
    reported=st.lists(st.tuples(symbols, st.sampled_from(["BUY", "SELL"]), lots), max_size=6),
    ours=st.dictionaries(symbols, signed_lots),
    unexplained=st.dictionaries(symbols, signed_lots),
)
def test_a_reported_fill_waited_for_never_kills_and_an_unexplained_part_always_does(reported, ours, unexplained):
    """The broker's net is ours plus the reported fills of the recorded orders waited for plus an
    unexplained part: all reported, held; any unexplained part left over, a mismatch."""
    pending: dict[str, Decimal] = {}
    for s, side, q in reported:
        pending[s] = pending.get(s, Decimal(0)) + (q if side == "BUY" else -q)
    mismatches = _differences(ours, pending, unexplained)
    judged = positions_judge(mismatches=mismatches, waiting=[], reported=reported)
    assert set(judged.held) | set(judged.mismatches) == set(mismatches)
    for s in mismatches:
        if unexplained.get(s, Decimal(0)) == 0:
            assert s in judged.held and Decimal(judged.held[s][2]) == pending[s]
        else:
            assert s in judged.mismatches
