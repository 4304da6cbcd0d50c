"""Spoofing and layering against the account's own cancel-rate baseline (``baseline_s``,
``baseline_multiple``), and the snapshot that carries it (version 4; an older one is refused
and the stage starts with empty windows).

The rule: the account's cancels in the ``cancel_within_s`` (5 s) after the fill must be at least
``baseline_multiple`` (10) x its own rate over the ``baseline_s`` (600 s) before the fill. With
the one cancel of the episode below that is 1/5 per second against 10 x k/600: at most 12
routine cancels in the ten minutes before the fill."""

from __future__ import annotations

import logging

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.consumers import SurveillanceConsumer
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION, state_dump
from tests.compliance.helpers import parked_cancels, q, run, spoofing_episode, surveil_restarted
from tests.compliance.test_state import _tick

# (the active-stretch baseline, tests/compliance/test_spoofing_active_stretch.py, off too: a run
# of three or more of the drawn cancels within 15 s of the fill would raise the baseline)
BASELINE_ONLY = {"spoofing": {"max_expected_by_chance": None, "active_gap_s": None}}


def _surveil(rows, restart_at=None, params=None):
    return surveil_restarted(rows, only={"spoofing"}, restart_at=restart_at, params=params)


def test_an_account_that_never_cancels_is_alerted_with_its_baseline_in_the_evidence():
    alerts = run(spoofing_episode(), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    base = alerts[0]["evidence"]["cancel_baseline"]
    assert base == {
        "cancels_after_fill": 1,
        "cancels_before_fill": 0,
        "baseline_s": 600.0,
        "active_stretch_cancels": 0,
        "active_stretch_s": 0.0,
        "active_gap_s": 15.0,
        "active_min_cancels": 3,
        "rate_multiple": None,  # no baseline: any cancel is above it
        "baseline_multiple": 10.0,
        "passed": True,
    }


def test_an_account_that_cancels_all_day_is_not_alerted_for_cancelling_after_a_fill():
    busy = parked_cancels([10 + 20 * i for i in range(29)])  # 29 cancels in the 600 s before
    assert run(busy + spoofing_episode(), only={"spoofing"}) == []
    # the same episode on a quiet account, or with the rule off, is alerted
    assert len(run(busy + spoofing_episode(acct="Q"), only={"spoofing"})) == 1
    # (the chance test, off here too, would also find 29 routine cancels in ten minutes too many)
    off = run(
        busy + spoofing_episode(),
        only={"spoofing"},
        params={"spoofing": {"baseline_multiple": 0, "max_expected_by_chance": None}},
    )
    assert [a["alert_type"] for a in off] == ["spoofing"] and "cancel_baseline" not in off[0]["evidence"]


def test_cancels_older_than_the_baseline_window_do_not_count():
    old = parked_cancels([-400 + 10 * i for i in range(30)])  # all before 600 - 600 = 0
    alerts = run(old + spoofing_episode(), only={"spoofing"})
    assert len(alerts) == 1 and alerts[0]["evidence"]["cancel_baseline"]["cancels_before_fill"] == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    times=st.lists(st.floats(1, 599, allow_nan=False), max_size=30, unique_by=lambda t: round(t, 2)),
    cut=st.floats(0, 1),
)
def test_alerted_exactly_when_the_cancels_after_the_fill_beat_ten_times_the_baseline(times, cut):
    """Whatever the routine cancels before the fill, the episode is alerted iff 1/5 per second
    >= 10 x k/600 (k routine cancels in the window), and a save-and-restore anywhere (the
    cancel times are in the snapshot) changes nothing. (The chance test is off here: with no
    other order in the symbol, k = 12 routine cancels already make the episode a 0.049
    coincidence against its 0.04; tests/compliance/test_spoofing_chance.py covers it.)"""
    rows = parked_cancels(times) + spoofing_episode()
    alerts = _surveil(rows, params=BASELINE_ONLY)
    k = len(times)
    assert len(alerts) == (1 if 10 * k / 600 <= 1 / 5 else 0)
    if alerts:
        assert alerts[0]["evidence"]["cancel_baseline"]["cancels_before_fill"] == k
    restarted = _surveil(rows, restart_at=int(cut * (len(rows) - 1)) + 1, params=BASELINE_ONLY)
    assert orjson.dumps(restarted) == orjson.dumps(alerts)


def _v3_snapshot_of(engine) -> bytes:
    """What the previous code wrote: version 3, the spoofing windows without the cancel times."""
    doc = orjson.loads(state_dump(engine))
    doc["version"] = 3
    for inst in doc["detectors"]["spoofing"]["instances"].values():
        del inst["state"]["cancels"]
    return orjson.dumps(doc)


def test_the_snapshot_is_version_4_or_later_and_keeps_the_cancel_times():
    assert STATE_VERSION >= 4
    engine = SurveillanceEngine(only={"spoofing"})
    for row in sorted(parked_cancels([1, 2, 3]), key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    doc = orjson.loads(state_dump(engine))
    assert doc["version"] == STATE_VERSION
    assert len(doc["detectors"]["spoofing"]["instances"]["firm"]["state"]["cancels"]["S"]) == 3


def test_a_version_3_snapshot_is_refused_and_the_stage_starts_with_empty_windows(caplog):
    engine = SurveillanceEngine()
    for row in sorted(parked_cancels([1, 2, 3]) + [q(0, "1.10000", "1.10010")], key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    with caplog.at_level(logging.ERROR, logger="compliance.consumers"):
        consumer = SurveillanceConsumer(owners={}, contract_sizes={}, record=False, state=_v3_snapshot_of(engine))
    assert f"snapshot version 3, this code reads version {STATE_VERSION}" in consumer.restore_report["discarded"]
    assert "saved windows discarded, starting afresh" in caplog.text
    assert consumer.engine.quotes == {} and consumer.engine.orders == {}
    assert consumer.engine.units["spoofing"].cancels == {}
    assert consumer.handle(_tick(5)) == []  # and it carries on
    assert consumer.engine.quotes["EURUSD"][0] == 1.1
