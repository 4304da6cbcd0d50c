"""Spoofing, the account's record read before the order's first fill (2026-12-06, wip/spoof36).

``record_before_first_fill``: with ``episode_per_order`` a ladder pulled across several partial
fills of one genuine order is one episode, read from the order's latest fill. The account's pulls
between its first fill and that one are the reaction being read, not its routine: the
quiet-account count, the baseline (its active stretch too) and the chance test (its rate and the
fills that were chances) read the account's cancels before the order's FIRST fill. The limit
order book's LOB U 94280 (account 3556667 USDJPY): a ladder of six pulled 0.5-1.3 s after the
first of two fills of one buy, its first four pulls made the account 'busy' for the second.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import f, o, parked_cancels, q, run
from tests.compliance.test_spoofing_baseline import _surveil

ON = {"spoofing": {"record_before_first_fill": True}}
OFF = {"spoofing": {"record_before_first_fill": False}}


def _ladder_across_two_fills():
    """Six sells 2-7 pips behind the ask placed at 605-610 s; a 100k buy limit at the bid at 630 s
    filled 60k at 631 s and 40k at 632 s; four sells pulled between the fills (631.5-631.8 s),
    the last two after the second (632.2, 632.4 s)."""
    rows = [q(590, "1.10000", "1.10010")]
    ladder = [(f"l{i}", 605 + i, f"1.100{30 + 10 * i}") for i in range(6)]
    rows += [o(t, "new", oid, "S", "sell", 1_000_000, px) for oid, t, px in ladder]
    rows += [
        o(630, "new", "real", "S", "buy", 100_000, "1.10000"),
        f(631, "real", "S", "buy", 60_000, "1.10000"),
        f(632, "real", "S", "buy", 40_000, "1.10000"),
    ]
    pulled = (631.5, 631.6, 631.7, 631.8, 632.2, 632.4)
    rows += [o(t, "cancel", oid, "S", "sell", 1_000_000, px) for (oid, _t, px), t in zip(ladder, pulled, strict=True)]
    rows.append(q(670, "1.10000", "1.10010"))
    return rows


def test_a_ladder_pulled_across_two_partial_fills_of_one_order_is_alerted():
    alerts = run(_ladder_across_two_fills(), only={"spoofing"}, params=ON)
    assert [a["alert_type"] for a in alerts] == ["layering"]
    ev = alerts[0]["evidence"]
    assert len(ev["cancelled_orders"]) == 6 and ev["price_levels"] == 6
    assert ev["fill"]["partial_fills"] == 2 and ev["fill"]["qty"] == 100_000
    assert ev["record_before_fill_s"] == 1.0  # read before the first fill, a second earlier
    assert ev["quiet_account"]["cancels_before_fill"] == 0 and ev["quiet_account"]["quiet"]
    base = ev["cancel_baseline"]
    # the four pulls between the fills count on neither side of the baseline
    assert (base["cancels_before_fill"], base["cancels_after_fill"], base["active_stretch_cancels"]) == (0, 2, 0)
    assert ev["chance"]["fills_same_side"] == 1  # the order's partial fills: one chance
    # read before the latest fill (the rule off), the four pulls are the account's routine
    assert run(_ladder_across_two_fills(), only={"spoofing"}, params=OFF) == []


def test_an_account_that_routinely_cancels_before_its_first_fill_is_not_alerted():
    """The near-miss: an account cancelling every 2 s in the half-minute up to the first fill
    (another symbol: the baselines are the account's across symbols) is busy read before its
    first fill too."""
    routine = parked_cancels([600 + 2 * i for i in range(15)])  # 600-628 s, the first fill at 631
    assert run(routine + _ladder_across_two_fills(), only={"spoofing"}, params=ON) == []


def test_an_account_that_pulls_its_own_side_between_the_fills_is_read_before_the_latest():
    """The near-miss of the seen limit order book (LOB 15235, a quote stuffer's flash): between
    the first and the latest fill the account also cancelled an order on the genuine order's own
    side, its two-sided business going on, not a reaction: its record is read before the latest
    fill, as with the rule off."""
    rows = _ladder_across_two_fills() + [
        o(620, "new", "b1", "S", "buy", 50_000, "1.09990"),
        o(631.55, "cancel", "b1", "S", "buy", 50_000, "1.09990"),
    ]
    assert run(rows, only={"spoofing"}, params=ON) == []
    # a cancel in another symbol between the fills: the account's business elsewhere, likewise
    other = _ladder_across_two_fills() + parked_cancels([631.55], tag="x")
    assert run(other, only={"spoofing"}, params=ON) == []


def _record_older_than_the_margin():
    """One buy filled 60k at 631 s and 40k at 646 s, a sell pulled after each (three levels);
    the account's two routine cancels at 33 and 41 s (598 and 590 s before the first fill) and
    one more at 661 s, while the episode is open: the kept cancels must still reach 600 s before
    the first fill (the usual margin keeps 600 s + 24 s before the latest cancel only)."""
    rows = [q(0, "1.10000", "1.10010"), *parked_cancels([33, 41]), q(590, "1.10000", "1.10010")]
    ladder = [("l0", 605, "1.10030"), ("l1", 620, "1.10040"), ("l2", 625, "1.10050")]
    rows += [o(t, "new", oid, "S", "sell", 1_000_000, px) for oid, t, px in ladder]
    rows += [
        o(630, "new", "real", "S", "buy", 100_000, "1.10000"),
        f(631, "real", "S", "buy", 60_000, "1.10000"),
        o(631.5, "cancel", "l0", "S", "sell", 1_000_000, "1.10030"),
        f(646, "real", "S", "buy", 40_000, "1.10000"),
        o(646.5, "cancel", "l1", "S", "sell", 1_000_000, "1.10040"),
        o(646.6, "cancel", "l2", "S", "sell", 1_000_000, "1.10050"),
        *parked_cancels([661], tag="z"),
        q(700, "1.10000", "1.10010"),
    ]
    return rows


def test_the_record_before_the_first_fill_is_kept_while_the_episode_is_open():
    alerts = run(_record_older_than_the_margin(), only={"spoofing"}, params=ON)
    assert [a["alert_type"] for a in alerts] == ["layering"]
    ev = alerts[0]["evidence"]
    assert ev["record_before_fill_s"] == 15.0
    assert ev["quiet_account"]["cancels_before_fill"] == 2 and not ev["quiet_account"]["quiet"]
    assert ev["cancel_baseline"]["cancels_before_fill"] == 2


def test_a_restart_anywhere_changes_nothing():
    """The kept cancels and the episode's first fill are in the snapshot (no new field)."""
    for rows in (
        _ladder_across_two_fills(),
        _record_older_than_the_margin(),
        parked_cancels([600 + 2 * i for i in range(15)]) + _ladder_across_two_fills(),
    ):
        plain = _surveil(rows, params=ON)
        for cut in range(1, len(rows)):
            assert orjson.dumps(_surveil(rows, restart_at=cut, params=ON)) == orjson.dumps(plain)
