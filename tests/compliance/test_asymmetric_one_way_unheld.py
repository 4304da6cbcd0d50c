"""One way with nothing held, 2026-12-06 noon (wip/lob45, docs/surveillance-rounds.md 12:00 round;
``AsymmetricSlippageParams.one_way_unheld``, on in the order book's market profile): a client the
sign test cannot weigh (fewer than 10 non-zero slippages) whose slippage is one way (5 adverse
marks or more, no improvement, most within best execution's bar, none past twice it) is raised
as asymmetric slippage once it has been quiet for ``assess_quiet_s`` (or at the end of the
input), even when no mark went past the bar (best execution held nothing to review). Off by
default: the FX books' ``otc`` profile keeps the rule before (nothing raised)."""

from __future__ import annotations

from tests.compliance.helpers import q, run, slipped_buys, surveil_restarted

BOTH = {"best_execution_slippage", "asymmetric_slippage"}
ON = {"asymmetric_slippage": {"one_way_unheld": True}}

# 6 marks all adverse, each within the 2-pip bar, among fills at the ask
ONE_WAY_WITHIN = [0.8, 0.0, 1.2, 0.6, 0.0, 1.5, 0.9, 1.1]


def types(alerts) -> list[str]:
    return sorted(a["alert_type"] for a in alerts)


def test_a_one_way_client_with_no_mark_past_the_bar_is_asymmetric_on_the_order_book():
    rows = slipped_buys(ONE_WAY_WITHIN)
    alerts = run(rows, only=BOTH, market="order_book")
    assert types(alerts) == ["asymmetric_slippage"]
    ev = alerts[0]["evidence"]
    assert ev["adverse_fills"] == 6 and ev["improved_fills"] == 0 and ev["at_quote_fills"] == 2
    assert ev["best_execution_fills_held"] == 0 and ev["p_value"] == 0.5**6
    assert ev["asymmetric_by"] == "one way, below the test's floor"
    assert sorted(alerts[0]["order_ids"]) == ["a0", "a2", "a3", "a5", "a6", "a7"]
    # the rule before (and the FX books' profile): nothing raised
    assert run(rows, only=BOTH) == []
    assert run(rows, only=BOTH, market="order_book", params={"asymmetric_slippage": {"one_way_unheld": False}}) == []


def test_reviewed_when_quiet_in_the_stream_not_only_at_the_end():
    # a quote long after the last mark (2101 s): the review 1800 s after it comes in the stream
    rows = [*slipped_buys(ONE_WAY_WITHIN), q(5000, "1.10000", "1.10010")]
    alerts = surveil_restarted(rows, only=BOTH, params=ON)
    assert types(alerts) == ["asymmetric_slippage"]
    assert alerts[0]["evidence"]["assessed"] == "after 1800 s without a slippage, below the test's floor, one way"


def test_the_same_across_a_restart():
    rows = slipped_buys(ONE_WAY_WITHIN)
    for restart_at in (None, 5, 11, len(rows) - 1):
        assert types(surveil_restarted(rows, only=BOTH, params=ON, restart_at=restart_at)) == ["asymmetric_slippage"]


def test_a_held_run_is_folded_once():
    # a mark past the bar (2.6 pips) among one-way marks: held by best execution, then one
    # asymmetric alert naming it (not two alerts, not best execution's)
    rows = slipped_buys([0.8, 1.2, 0.6, 2.6, 0.9, 1.1])
    alerts = run(rows, only=BOTH, market="order_book")
    assert types(alerts) == ["asymmetric_slippage"]
    assert alerts[0]["evidence"]["best_execution_fills_held"] == 1


def test_near_miss_an_improvement_passed_on_raises_nothing():
    rows = slipped_buys([0.8, 1.2, -0.3, 0.6, 1.5, 0.9, 1.1])
    assert run(rows, only=BOTH, market="order_book") == []


def test_near_miss_four_one_way_marks_raise_nothing():
    # 2^-4 = 0.0625 > 0.05: too few to say "policy"
    rows = slipped_buys([0.8, 0.0, 1.2, 0.6, 0.0, 1.5])
    assert run(rows, only=BOTH, market="order_book") == []
