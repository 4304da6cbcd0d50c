"""One way, too few to weigh, 2026-12-06 (wip/asym35, docs/surveillance-rounds-asym35.md;
``AsymmetricSlippageParams.one_way_level``): best execution's held run of a client the sign
test cannot weigh (fewer than 10 non-zero slippages) is asymmetric slippage's alert when the
client was never given an improvement, its adverse marks are 5 or more (2^-5 <= 0.05), most
within best execution's bar (fewer than half past it) and none past twice it; the held
exceptions are named in its evidence. A client given an improvement, with fewer one-way marks,
or with half its marks or more past the bar keeps best execution's alert."""

from __future__ import annotations

from tests.compliance.helpers import run, slipped_buys, surveil_restarted

BOTH = {"best_execution_slippage", "asymmetric_slippage"}
OFF = {"asymmetric_slippage": {"one_way_level": None}}


def types(alerts) -> list[str]:
    return sorted(a["alert_type"] for a in alerts)


# 7 marks all adverse (2 of them past the 2-pip bar, none past 4) among fills at the ask
ONE_WAY = [1.2, 0.0, 1.5, 1.6, 0.0, 2.6, 1.4, 0.0, 1.8, 2.8]


def test_a_one_way_client_too_few_to_weigh_is_asymmetric_with_the_exceptions():
    rows = slipped_buys(ONE_WAY)
    alerts = run(rows, only=BOTH)
    assert types(alerts) == ["asymmetric_slippage"]
    ev = alerts[0]["evidence"]
    assert ev["adverse_fills"] == 7 and ev["improved_fills"] == 0 and ev["at_quote_fills"] == 3
    assert ev["best_execution_fills_held"] == 2
    assert [x["slippage_pips"] for x in ev["best_execution_fills"]] == [2.6, 2.8]
    assert ev["p_value"] == 0.5**7 and "below the test's floor" in ev["assessed"]
    assert types(run(rows, only=BOTH, params=OFF)) == ["best_execution_slippage"]  # before


def test_the_same_live_and_across_a_restart():
    rows = slipped_buys(ONE_WAY)
    for restart_at in (None, 9, len(rows) - 1):
        assert types(surveil_restarted(rows, only=BOTH, restart_at=restart_at)) == ["asymmetric_slippage"]


def test_near_miss_an_improvement_passed_on_keeps_best_execution():
    # the same marks but one improvement of 0.3 pip given: not one way, released as before
    rows = slipped_buys([1.2, 0.0, 1.5, -0.3, 1.6, 2.6, 1.4, 1.8, 2.8])
    assert types(run(rows, only=BOTH)) == ["best_execution_slippage"]


def test_near_miss_too_few_one_way_marks_keep_best_execution():
    # 4 adverse marks, none improved (2^-4 = 0.0625 > 0.05), one past the bar: best execution's
    rows = slipped_buys([0.2, 0.0, 0.3, 0.4, 0.0, 2.6])
    assert types(run(rows, only=BOTH)) == ["best_execution_slippage"]
    # the fifth one-way mark makes it the asymmetric pattern
    assert types(run(slipped_buys([0.2, 0.0, 0.3, 0.4, 0.5, 0.0, 2.6]), only=BOTH)) == ["asymmetric_slippage"]


def test_near_miss_marks_mostly_past_the_bar_keep_best_execution():
    # best-execution abuse: 4 of 5 adverse marks past the bar (3 in 4 or more), none past twice it
    rows = slipped_buys([2.5, 0.0, 3.0, 3.5, 1.2, 2.8])
    assert types(run(rows, only=BOTH)) == ["best_execution_slippage"]
    assert types(run(rows, only=BOTH, params=OFF)) == ["best_execution_slippage"]


def test_near_miss_as_many_past_the_bar_as_within_keep_best_execution():
    # 4 of 8 adverse marks past the bar (not most within it): best execution's, as before
    rows = slipped_buys([0.8, 2.5, 1.0, 2.6, 1.2, 2.4, 1.4, 2.7])
    assert types(run(rows, only=BOTH)) == ["best_execution_slippage"]
    # one more mark within the bar (4 of 9 past): the asymmetric pattern
    assert types(run(slipped_buys([0.8, 2.5, 1.0, 2.6, 1.2, 2.4, 1.4, 2.7, 1.1]), only=BOTH)) == ["asymmetric_slippage"]


def test_near_miss_a_gross_exception_keeps_best_execution():
    # one fill past twice the bar (4.5 pips): a gross exception in its own right
    rows = slipped_buys([1.2, 1.5, 1.6, 4.5, 1.4, 1.8, 2.6])
    assert "best_execution_slippage" in types(run(rows, only=BOTH))
    assert "asymmetric_slippage" not in types(run(rows, only=BOTH))
