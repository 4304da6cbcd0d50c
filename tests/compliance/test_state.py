"""The streaming stage's saved windows: a versioned JSON snapshot (never a pickle), restored whole,
carried across rule changes, saved on a wall-clock cadence and at shutdown, and redelivered
events not counted twice."""

from __future__ import annotations

import logging
import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from compliance.consumers import SurveillanceConsumer, SurveillanceRule
from compliance.scenarios.generator import ScenarioConfig, generate
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION, StateError, state_dump, state_load, state_read
from tradeops.events import ComplianceRuleChanged, Fill, OrderEvent, Tick, make_event

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SCOPED = {
    "account_params": {"wash_trade": {"LNK00A": {"window_s": 20}}, "painting_the_tape": {"LNK01B": {"min_pairs": 3}}},
    "instrument_params": {
        "ping_orders": {"XAUUSD": {"min_count": 6}},
        "momentum_ignition": {"EURUSD": {"min_move_bps": 2.5}},
    },
    "algo_params": {"excessive_order_to_trade": {"mm": {"max_count_ratio": 50}}},
}


@pytest.fixture(scope="module")
def book():
    rows, _episodes = generate(ScenarioConfig(seed=104, hours=2.0))
    return [record_decoder.decode(orjson.dumps(r)) for r in rows]


def _run(records, *, every=None, episodes="close", **kwargs):
    engine = SurveillanceEngine(episodes=episodes, **kwargs)
    out = []
    for i, rec in enumerate(records):
        if every and i and i % every == 0:  # stop, save, start a new engine from the snapshot
            data = state_dump(engine)
            engine = SurveillanceEngine(episodes=episodes, **kwargs)
            report = state_load(engine, data)
            assert report["restarted"] == []
        engine.process(rec)
        out += [a.as_dict() for a in engine.take_alerts()]
    return out + [a.as_dict() for a in engine.finish()]


@pytest.mark.slow
@pytest.mark.parametrize(("episodes", "scoped"), [("close", False), ("updates", True)])
def test_save_and_restore_anywhere_changes_no_alert(book, episodes, scoped):
    """Every detector's windows, the live orders, the mid path and the open episodes survive: a
    development book surveilled with a save-and-restore every 2,503 records gives exactly the
    alerts of an uninterrupted run (a field the snapshot forgot would change them)."""
    kwargs = SCOPED if scoped else {}
    whole = _run(book, episodes=episodes, **kwargs)
    assert len(whole) > 20
    assert orjson.dumps(_run(book, every=2503, episodes=episodes, **kwargs)) == orjson.dumps(whole)


def test_the_snapshot_is_versioned_json():
    data = state_dump(SurveillanceEngine())
    doc = orjson.loads(data)
    assert doc["format"] == "tradeops.surveillance.state" and doc["version"] == STATE_VERSION
    assert set(doc["detectors"]) >= {"wash_trade", "spoofing", "excessive_order_to_trade", "marking_the_close"}


class _Boom:
    def __reduce__(self):
        return (_boom, ())


_BOOMED: list[str] = []


def _boom():
    _BOOMED.append("unpickled")
    return "pwned"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (pickle.dumps(_Boom()), "not a surveillance snapshot"),  # a pickle (old rows, or an attacker's)
        (b'{"format": "something else", "version": 1}', "format 'something else'"),
        (orjson.dumps({"format": "tradeops.surveillance.state", "version": 999}), "version 999"),
    ],
)
def test_a_row_that_is_not_our_snapshot_is_refused_and_never_unpickled(data, why, caplog):
    with pytest.raises(StateError, match=why):
        state_read(data)
    consumer = SurveillanceConsumer(owners={}, contract_sizes={}, state=data)
    assert _BOOMED == []  # nothing in the row ran
    assert why in consumer.restore_report["discarded"]
    assert consumer.engine.orders == {} and consumer.engine.last_t == float("-inf")


def test_a_snapshot_edited_into_the_wrong_shape_is_discarded_whole(caplog):
    engine = SurveillanceEngine()
    engine.process(record_decoder.decode(orjson.dumps(_quote(0))))
    doc = orjson.loads(state_dump(engine))
    doc["detectors"]["spoofing"]["instances"]["firm"]["state"]["recent_fills"] = [["A", "EURUSD", [["x"]]]]
    with caplog.at_level(logging.ERROR, logger="compliance.consumers"):
        consumer = SurveillanceConsumer(owners={}, contract_sizes={}, state=orjson.dumps(doc))
    assert "spoofing/firm" in consumer.restore_report["discarded"]
    assert consumer.engine.quotes == {}  # all or nothing: not even the quotes were taken
    assert "saved windows discarded" in caplog.text


def test_a_snapshot_under_other_rules_keeps_every_window_it_can():
    old = SurveillanceEngine({"ping_orders": {"min_count": 20}})
    data = state_dump(old)
    new = SurveillanceEngine(
        {"ping_orders": {"min_count": 10}, "excessive_order_to_trade": {"slot_s": 30}},
        account_params={"spoofing": {"A1": {"min_size_ratio": 5}}},
    )
    report = state_load(new, data)
    assert "ping_orders/firm" in report["restored"]  # a threshold: the windows apply under the new one
    assert any(r.startswith("excessive_order_to_trade/firm: slot_s changed") for r in report["restarted"])
    assert any(r.startswith("spoofing/account:A1: no saved windows") for r in report["restarted"])


# ---------------------------------------------------------------- the live stage


def _quote(t):
    return {"type": "quote", "ts": _ts(t), "symbol": "EURUSD", "bid": "1.10000", "ask": "1.10010"}


def _ts(t):
    return (T0 + timedelta(seconds=t)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _order_and_fill(t, cid, account, side, lots="0.5"):
    price = "1.1001" if side == "BUY" else "1.1000"
    common = {"client_order_id": cid, "account_id": account, "symbol": "EURUSD", "side": side}
    ts = T0 + timedelta(seconds=t)
    order = OrderEvent(
        **common,
        order_type="MARKET",
        quantity=Decimal(lots),
        status="SUBMITTED",
        previous_status="RISK_APPROVED",
        ts=ts,
    )
    fill = Fill(**common, broker_deal_id=f"d{cid}", quantity=Decimal(lots), price=Decimal(price), ts=ts)
    return [
        make_event(order, source="execution", key=str(account)),
        make_event(fill, source="execution", key=str(account)),
    ]


def _tick(t):
    return make_event(
        Tick(symbol="EURUSD", bid=Decimal("1.1"), ask=Decimal("1.1001"), ts=T0 + timedelta(seconds=t)),
        source="md",
        key="EURUSD",
    )


def _consumer(**kwargs):
    return SurveillanceConsumer(
        owners={1: "OWNER-1", 2: "OWNER-1"}, contract_sizes={"EURUSD": 100000.0}, record=False, **kwargs
    )


def _rule_event(rule_type, parameters, *, active=True, rule_id=7, scope="firm", scope_value=""):
    return make_event(
        ComplianceRuleChanged(
            rule_id=rule_id,
            code=f"SURV-{rule_type}",
            rule_type=rule_type,
            scope=scope,
            scope_value=scope_value,
            version=2,
            active=active,
            parameters=parameters,
            actor="officer-b",
            ts=T0,
        ),
        source="compliance",
        key=rule_type,
    )


def test_a_rule_change_applies_at_once_and_keeps_the_run_in_progress():
    """Painting needs 8 small pairs, then an approved rule lowers it to 3 in the middle of a run:
    the stage applies it without a restart, and the pairs before the change count."""
    consumer = _consumer(params={"painting_the_tape": {"min_pairs": 8}})
    out = consumer.handle(_tick(0))
    for i in range(3):  # three small pairs: nothing yet under min_pairs 8
        for k, (account, side) in enumerate(((1, "BUY"), (2, "SELL"))):
            for event in _order_and_fill(60 * i + k + 1, f"p{i}{k}", account, side):
                out += consumer.handle(event)
    assert out == []
    consumer.handle(_rule_event("painting_the_tape", {"min_pairs": 3}))
    assert consumer.engine.units["painting_the_tape"].p.min_pairs == 3
    for k, (account, side) in enumerate(((1, "BUY"), (2, "SELL"))):
        for event in _order_and_fill(200 + k, f"p3{k}", account, side):
            out += consumer.handle(event)
    painting = [e.payload for e in out if e.payload.alert_type == "painting_the_tape"]
    assert len(painting) == 1 and len(painting[0].order_ids) == 8  # the three earlier pairs and the fourth

    consumer.handle(_rule_event("painting_the_tape", {"min_pairs": 3}, active=False, rule_id=6))  # not the one in force
    assert consumer.engine.units["painting_the_tape"].p.min_pairs == 3
    consumer.handle(_rule_event("painting_the_tape", {"min_pairs": 3}, active=False, rule_id=7))  # retired
    assert consumer.engine.units["painting_the_tape"].p.min_pairs == 4  # back to the default
    consumer.handle(_rule_event("painting_the_tape", {"min_pairs": 6}, scope="account", scope_value="1"))
    assert consumer.engine.units["painting_the_tape"].by_account["1"].p.min_pairs == 6


def test_a_rule_change_that_does_not_validate_changes_nothing(caplog):
    consumer = _consumer(params={"ping_orders": {"min_count": 12}})
    engine = consumer.engine
    with caplog.at_level(logging.ERROR, logger="compliance.consumers"):
        consumer.handle(_rule_event("ping_orders", {"min_count": 0}))
    assert consumer.engine is engine and engine.units["ping_orders"].p.min_count == 12
    assert "not applied" in caplog.text


def test_snapshots_follow_the_wall_clock_not_event_time_and_come_at_shutdown():
    wall = [100.0]
    saved = []
    consumer = _consumer(save_state=lambda state, ts, n: saved.append(n), snapshot_every_s=30.0, clock=lambda: wall[0])
    for i in range(200):  # a fast replay: hours of event time in no wall-clock time
        consumer.handle(_tick(60 * i))
    assert saved == []
    wall[0] += 30.5
    consumer.handle(_tick(60 * 200))
    assert saved == [201]
    consumer.handle(_tick(60 * 201))
    assert saved == [201]
    consumer.shutdown()
    assert saved == [201, 202]


def test_events_delivered_again_after_a_restart_are_not_counted_twice():
    """The snapshot was taken in the middle of a batch the bus had not committed: after the crash
    the bus delivers the whole batch again; what the snapshot already holds is skipped."""
    events = [_tick(0), *_order_and_fill(1, "a", 1, "BUY", "2"), *_order_and_fill(3, "b", 2, "SELL", "2")]
    first = _consumer()
    for event in events[:4]:  # the tick, a's order and fill, b's order: then a snapshot, then a crash
        first.handle(event)
    second = _consumer(state=first.state_snapshot())
    out = []
    for event in events:  # the uncommitted batch, delivered again from its start
        out += second.handle(event)
    assert second.engine.positions == {("1", "EURUSD"): 200000.0, ("2", "EURUSD"): -200000.0}  # not doubled
    # A wash is reported when its run ends (here at the end of input): nothing before, then one
    # episode of one pair, its opening and its closing update together.
    assert out == []
    alerts = second.engine.finish()
    assert {a.alert_type for a in alerts} == {"wash_trade"}
    assert len({a.evidence["episode"]["id"] for a in alerts}) == 1
    assert alerts[-1].evidence["matched_pairs"] == 1 and alerts[-1].evidence["episode"]["detections"] == 1


def test_an_open_wash_run_survives_a_restart_and_is_reported_when_it_ends():
    """The stage stops after a wash's two fills (its run open: it may still become a series);
    the restarted stage holds the run and reports the wash when a tick 11 minutes later ends it."""
    first = _consumer()
    for event in [_tick(0), *_order_and_fill(1, "a", 1, "BUY", "2"), *_order_and_fill(3, "b", 2, "SELL", "2")]:
        assert first.handle(event) == []
    second = _consumer(state=first.state_snapshot())
    assert second.handle(_tick(300)) == []  # five minutes on: the run may still grow
    out = second.handle(_tick(660))
    assert [e.payload.alert_type for e in out] == ["wash_trade"]
    assert sorted(out[0].payload.order_ids) == ["a", "b"]


def test_the_runner_saves_the_windows_when_the_stage_stops():
    from tradeops.bus.runner import pipeline_run
    from tradeops.stages import stage_get

    saved = []
    consumer = _consumer(save_state=lambda state, ts, n: saved.append(state))
    pipeline_run(
        [_tick(0), *_order_and_fill(1, "a", 1, "BUY")],
        stages=[stage_get("surveillance")],
        handlers={"surveillance": consumer},
    )
    assert len(saved) == 1
    report = state_load(SurveillanceEngine(clamp_time=True, episodes="updates"), saved[0])
    assert "wash_trade/firm" in report["restored"]


def test_rules_given_as_rows_keep_their_ids():
    rules = [SurveillanceRule("ping_orders", "firm", "", {"min_count": 9}, rule_id=3)]
    consumer = SurveillanceConsumer(owners={}, contract_sizes={}, rules=rules, record=False)
    consumer.handle(_rule_event("ping_orders", {}, active=False, rule_id=4))  # another version: still in force
    assert consumer.engine.units["ping_orders"].p.min_count == 9
    consumer.handle(_rule_event("ping_orders", {}, active=False, rule_id=3))
    assert consumer.engine.units["ping_orders"].p.min_count == 8  # the default again
