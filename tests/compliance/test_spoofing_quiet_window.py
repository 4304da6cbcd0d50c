"""A quiet account's cancel window (``quiet_cancel_within_s`` 10 s for an account with at most
``quiet_max_cancels`` 1 cancel in the 600 s before the fill; 2026-12-05 early morning,
wip/slip15), and its withdrawals read once more up to ``quiet_withdrawn_cancel_within_s`` 20 s
after the fill (2026-12-05 afternoon, wip/spoof20: the limit order book's manual spoofers pulled
their bait 10-16 s after the fill).

Another firm's spoofers pulled their bait 5.4-8.2 s after the genuine fill, past the 5-s window.
An account with no cancelling routine pulling a large resting order 7 s after its opposite fill
is as plain as one pulling it after 1 s; a busy account's cancel 7 s after a fill blurs into its
routine (an honest re-quoter replacing its order after the market moved), so it keeps 5 s."""

from __future__ import annotations

import orjson

from tests.compliance.helpers import market, o, parked_cancels, q, run
from tests.compliance.test_spoofing_baseline import _surveil


def _late_episode(*, cancel_after=7.0, acct="S"):
    """A 1m buy 1 pip behind the touch, a 100k sell fill at 600 s, the buy cancelled
    ``cancel_after`` s after the fill."""
    return [
        q(590, "1.10000", "1.10010"),
        o(595, "new", "s0", acct, "buy", 1_000_000, "1.09990"),
        *market(600 - 0.05, "real", acct, "sell", 100_000, "1.10000"),
        o(600 + cancel_after, "cancel", "s0", acct, "buy", 1_000_000, "1.09990"),
        q(630, "1.10000", "1.10010"),
    ]


def test_a_quiet_account_pulling_its_bait_7_s_after_the_fill_is_alerted():
    alerts = run(_late_episode(), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["cancel_within_s"] == 10.0
    assert ev["quiet_account"]["quiet"] and ev["quiet_account"]["cancels_before_fill"] == 0
    assert ev["cancelled_orders"][0]["cancel_after_fill_s"] == 7.0


def test_with_the_rule_off_the_same_episode_is_past_the_5_s_window():
    # (the busy account's withdrawal window, wip/spoof16, off too: it would read the 7 s)
    off = {"spoofing": {"quiet_cancel_within_s": None, "withdrawn_cancel_within_s": None}}
    assert run(_late_episode(), only={"spoofing"}, params=off) == []


def test_one_cancel_in_the_600_s_before_is_still_quiet():
    alerts = run(parked_cancels([200]) + _late_episode(), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    assert alerts[0]["evidence"]["quiet_account"]["cancels_before_fill"] == 1


def test_a_re_quoter_cancelling_7_s_after_a_fill_is_not_alerted():
    """Two cancels in the 600 s before the fill: its window stays 5 s; the cancel at 7 s is put
    back at once (a re-quote, wip/spoof16), so the withdrawal window does not read it either."""
    requote = o(607.0, "new", "s1", "S", "buy", 1_000_000, "1.09990")
    assert run(parked_cancels([400, 500]) + _late_episode() + [requote], only={"spoofing"}) == []
    off = {"spoofing": {"withdrawn_cancel_within_s": None}}
    assert run(parked_cancels([400, 500]) + _late_episode(), only={"spoofing"}, params=off) == []


def test_a_busy_account_pulling_its_bait_1_s_after_the_fill_is_alerted_as_before():
    alerts = run(parked_cancels([400, 500]) + _late_episode(cancel_after=1.0), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["cancel_within_s"] == 5.0 and not ev["quiet_account"]["quiet"]


def test_a_quiet_account_past_10_s_is_read_on_its_withdrawals_up_to_20_s():
    alerts = run(_late_episode(cancel_after=16.0), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["cancel_within_s"] == 20.0 and ev["withdrawals_read"] is True
    assert ev["chance"]["max_expected_by_chance"] == 0.02  # a second look: half the budget
    off = {"spoofing": {"quiet_withdrawn_cancel_within_s": None}}
    assert run(_late_episode(cancel_after=11.0), only={"spoofing"}, params=off) == []
    assert run(_late_episode(cancel_after=21.0), only={"spoofing"}) == []


def test_a_quiet_account_that_puts_its_order_back_after_11_s_is_not_alerted():
    """Replaced at once: a re-quote, not a withdrawal."""
    requote = o(611.2, "new", "s1", "S", "buy", 1_000_000, "1.09990")
    assert run([*_late_episode(cancel_after=11.0), requote], only={"spoofing"}) == []


def test_a_restart_inside_the_wider_window_changes_nothing():
    """The episode waits 20 s for its cancels in the snapshot as it did 5 s (no new state)."""
    late = _late_episode(cancel_after=16.0)
    for rows in (_late_episode(), late, parked_cancels([400, 500]) + _late_episode()):
        plain = _surveil(rows)
        for cut in range(1, len(rows)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain)
    assert len(_surveil(_late_episode())) == 1
