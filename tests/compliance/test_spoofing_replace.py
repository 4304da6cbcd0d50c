"""Replaced or withdrawn (2026-12-05 morning, wip/spoof16).

A desk tells an honest re-quoter from a spoofer by what follows the cancel: the re-quoter puts a
new order on the same side near the same price at once (its interest stays on the book), the
spoofer withdraws. A cancel followed within ``replace_within_s`` (2 s) by a new resting order of
the account in the symbol on that side within ``replace_max_bps`` (5 bps) of its price is
*replaced*. An episode whose cancelled quantity is mostly replaced is not alerted; a busy
account's withdrawals 5-10 s after the fill are judged on the 10-s window, with its baseline and
chance read from its own withdrawals."""

from __future__ import annotations

import orjson

from compliance.surveillance.state import STATE_VERSION, state_dump
from tests.compliance.helpers import market, o, parked_cancels, q, run
from tests.compliance.test_spoofing_baseline import _surveil


def _episode(*, cancel_after=1.0, replace_after=None, replace_price="1.09990", acct="S"):
    """A 1m buy 1 pip behind the touch, a 100k sell fill at 600 s, the buy cancelled
    ``cancel_after`` s after the fill and, with ``replace_after``, a new 1m buy placed that long
    after the cancel at ``replace_price``."""
    tc = 600 + cancel_after
    rows = [
        q(590, "1.10000", "1.10010"),
        o(595, "new", "s0", acct, "buy", 1_000_000, "1.09990"),
        *market(600 - 0.05, "real", acct, "sell", 100_000, "1.10000"),
        o(tc, "cancel", "s0", acct, "buy", 1_000_000, "1.09990"),
        q(640, "1.10000", "1.10010"),
    ]
    if replace_after is not None:
        rows.append(o(tc + replace_after, "new", "s1", acct, "buy", 1_000_000, replace_price))
    return rows


def _busy(acct="S"):
    """Three withdrawals (parked orders cancelled, nothing put back) in the 600 s before: not quiet."""
    return parked_cancels([300, 400, 500], acct=acct)


def test_a_busy_account_withdrawing_its_bait_1_s_after_the_fill_is_alerted():
    alerts = run(_busy() + _episode(), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["replaced"]["replaced_qty_share"] == 0.0
    assert ev["cancel_within_s"] == 5.0 and ev["withdrawals_read"] is False


def test_a_re_quote_of_the_order_at_once_is_not_alerted():
    """The near-miss: the same cancel, and a new buy of the same size at the same price 0.1 s later."""
    assert run(_busy() + _episode(replace_after=0.1), only={"spoofing"}) == []


def test_a_quiet_account_re_quoting_is_not_alerted_either():
    assert run(_episode(replace_after=0.0), only={"spoofing"}) == []
    assert [a["alert_type"] for a in run(_episode(), only={"spoofing"})] == ["spoofing"]


def test_a_new_order_too_late_or_too_far_away_is_no_re_quote():
    for rows in (
        _episode(replace_after=3.0),  # past replace_within_s
        _episode(replace_after=0.1, replace_price="1.09900"),  # 8 bps away
    ):
        alerts = run(_busy() + rows, only={"spoofing"})
        assert [a["alert_type"] for a in alerts] == ["spoofing"]
        assert alerts[0]["evidence"]["replaced"]["replaced_qty_share"] == 0.0


def test_with_the_rule_off_the_re_quote_is_alerted_as_before():
    off = {"spoofing": {"replace_within_s": None}}
    alerts = run(_busy() + _episode(replace_after=0.1), only={"spoofing"}, params=off)
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    assert "replaced" not in alerts[0]["evidence"]


def _routine(acct="S"):
    """Six ordinary 100k orders in the symbol (resting far off): the 1m bait is ten times its usual size."""
    return [o(100 + i, "new", f"n{i}", acct, "sell", 100_000, "1.10500") for i in range(6)]


def test_a_busy_account_withdrawing_7_s_after_the_fill_is_judged_on_10_s():
    alerts = run(_busy() + _routine() + _episode(cancel_after=7.0), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["cancel_within_s"] == 10.0 and ev["withdrawals_read"] is True
    assert ev["cancel_baseline"]["cancels_before_fill"] == 3
    assert not ev["quiet_account"]["quiet"]
    assert ev["chance"]["max_expected_by_chance"] == 0.02  # the second reading's half budget


def test_a_busy_account_re_quoting_7_s_after_the_fill_is_not_alerted():
    """The near-miss of the late withdrawal: the cancel at 7 s is put back at once."""
    rows = _busy() + _routine() + _episode(cancel_after=7.0, replace_after=0.0)
    assert run(rows, only={"spoofing"}) == []


def test_the_wider_reading_has_half_the_chance_budget():
    """With no order history in the symbol the bait's size says nothing (share 0.5): 0.025
    expected by chance, under the 5-s reading's 0.04 but over the wider reading's 0.02."""
    rows = _busy() + _episode(cancel_after=7.0)
    assert run(rows, only={"spoofing"}) == []
    full = {"spoofing": {"withdrawn_max_expected_by_chance": None}}
    alerts = run(rows, only={"spoofing"}, params=full)
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    assert 0.02 < alerts[0]["evidence"]["chance"]["expected_by_chance"] <= 0.04


def test_without_the_wider_window_a_busy_account_keeps_5_s():
    off = {"spoofing": {"withdrawn_cancel_within_s": None}}
    assert run(_busy() + _routine() + _episode(cancel_after=7.0), only={"spoofing"}, params=off) == []


def test_a_busy_account_past_10_s_is_not_alerted():
    assert run(_busy() + _routine() + _episode(cancel_after=11.0), only={"spoofing"}) == []


def test_the_snapshot_keeps_whether_a_cancel_was_replaced():
    """A restart anywhere (between a cancel and its re-quote too) changes nothing."""
    assert STATE_VERSION >= 12
    for rows in (
        _busy() + _episode(),
        _busy() + _episode(replace_after=0.1),
        _busy() + _routine() + _episode(cancel_after=7.0),
        _busy() + _routine() + _episode(cancel_after=7.0, replace_after=1.5),
    ):
        plain = _surveil(rows)
        for cut in range(1, len(rows)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain)


def test_the_snapshot_holds_the_cancels_with_their_replaced_flag():
    from compliance.surveillance.engine import SurveillanceEngine
    from compliance.surveillance.records import record_decoder

    rows = sorted(_busy() + _episode(replace_after=0.1), key=lambda r: r["ts"])
    engine = SurveillanceEngine(None, only={"spoofing"})
    for row in rows:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    doc = orjson.loads(state_dump(engine))
    assert doc["version"] == STATE_VERSION
    text = orjson.dumps(doc).decode()
    assert '"S":[[' in text and "true" in text  # the re-quoted cancel is marked


def _requotes(times, *, acct="S", sym="GBPUSD"):
    """A standing sell the account re-quotes at each time (cancelled and put back at once)."""
    rows = [o(times[0] - 5, "new", "k0", acct, "sell", 100_000, "1.27000", sym=sym)]
    for i, t in enumerate(times):
        rows.append(o(t, "cancel", f"k{i}", acct, "sell", 100_000, "1.27000", sym=sym))
        rows.append(o(t, "new", f"k{i + 1}", acct, "sell", 100_000, "1.27000", sym=sym))
    return rows


def test_a_re_quoter_stopping_7_s_after_a_fill_is_judged_against_all_its_cancels():
    """Ten re-quotes in the 600 s before, then the order withdrawn 7 s after a fill (our
    generator's re-quoter when it stops): against its ten cancels one in 10 s is its routine
    (6x its rate, under 10x). Counting its withdrawals only (the rejected variant) would read it
    as an account that never withdraws and alert it."""
    rows = _requotes([300 + 25 * i for i in range(10)]) + _episode(cancel_after=7.0)
    assert run(rows, only={"spoofing"}) == []
    wd = {"spoofing": {"withdrawn_tests_count_withdrawals": True}}
    assert [a["alert_type"] for a in run(rows, only={"spoofing"}, params=wd)] == ["spoofing"]
