"""Spoofing, the bait's side traded by the account (2026-12-05 evening, wip/spoof22).

- Executed, not withdrawn (``replace_by_execution``): a resting buy cancelled as the account buys
  at market (within ``replace_within_s`` before or after the cancel) went to the market: replaced,
  not withdrawn, so the episode is a re-quote (our generator's and the order book's background).
- One way on the bait's side (``quiet_extensions_one_way``): a quiet account's longer readings
  (the bait's lead to the genuine limit's arrival, its withdrawals up to 20 s) are read only when
  it did not itself trade on the bait's side between the bait's placement and the genuine fill
  (the other firm's ping near-misses: small orders resting and filling on both sides).
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import market, o, q, run
from tests.compliance.test_spoofing_baseline import _surveil
from tests.compliance.test_spoofing_lob_round import _waited


def _pulled_into_market(buy_at):
    """A 1m buy 1 pip behind the touch at 0 s, a 100k market sell at 10 s, the buy cancelled at
    11 s, and (``buy_at`` not None) a 200k market buy of the account at ``buy_at``."""
    rows = [q(0, "1.10000", "1.10010"), o(0, "new", "s0", "S", "buy", 1_000_000, "1.09990")]
    rows += market(10, "real", "S", "sell", 100_000, "1.10000")
    if buy_at is not None and buy_at <= 11:
        rows += market(buy_at, "exec", "S", "buy", 200_000, "1.10010")
    rows.append(o(11, "cancel", "s0", "S", "buy", 1_000_000, "1.09990"))
    if buy_at is not None and buy_at > 11:
        rows += market(buy_at, "exec", "S", "buy", 200_000, "1.10010")
    rows.append(q(40, "1.10000", "1.10010"))
    return rows


def test_a_bait_pulled_as_the_account_buys_at_market_is_not_alerted():
    for buy_at in (10.95, 11.0, 12.5):  # the market buy just before, with, or 1.5 s after the cancel
        assert run(_pulled_into_market(buy_at), only={"spoofing"}) == [], buy_at
        off = run(_pulled_into_market(buy_at), only={"spoofing"}, params={"spoofing": {"replace_by_execution": False}})
        assert [a["alert_type"] for a in off] == ["spoofing"], buy_at


def test_a_market_buy_later_than_the_re_quote_window_changes_nothing():
    for buy_at in (None, 14.0):  # no buy; a buy 3 s after the cancel (past replace_within_s 2)
        alerts = run(_pulled_into_market(buy_at), only={"spoofing"})
        assert [a["alert_type"] for a in alerts] == ["spoofing"], buy_at
        assert alerts[0]["evidence"]["replaced"]["replaced_qty_share"] == 0.0


def test_a_quiet_account_that_bought_while_its_bait_rested_gets_no_longer_lead():
    """The waited-limit episode (bait 120 s before the fill, 2 s before the genuine limit's
    arrival) with a 50k market buy of the account at 560 s: no alert; with the rule off, alerted."""
    rows = _waited() + market(560, "own", "S", "buy", 50_000, "1.10010")
    assert run(rows, only={"spoofing"}) == []
    off = run(rows, only={"spoofing"}, params={"spoofing": {"quiet_extensions_one_way": False}})
    assert [a["alert_type"] for a in off] == ["spoofing"]
    # a buy after the genuine fill is no part of it: alerted
    later = _waited() + market(640, "own", "S", "buy", 50_000, "1.10010")
    alerts = run(later, only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    assert alerts[0]["evidence"]["quiet_account"]["bait_side_fills"] == 0


def test_a_bait_side_fill_leaves_the_ordinary_reading_alone():
    """Bait within 30 s of a market fill and cancelled 1 s after: the account's buy fill 2 s
    before the genuine sell does not stop the quiet account's ordinary (10-s, 30-s) reading."""
    rows = _pulled_into_market(None) + market(8, "own", "S", "buy", 50_000, "1.10010")
    alerts = run(rows, only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    assert alerts[0]["evidence"]["quiet_account"]["bait_side_fills"] == 1


def test_a_restart_anywhere_changes_nothing():
    """Whether a recent fill was aggressive is in the snapshot (version 26)."""
    for rows in (
        _pulled_into_market(11.0),
        _pulled_into_market(None),
        _waited() + market(560, "own", "S", "buy", 50_000, "1.10010"),
    ):
        plain = _surveil(rows)
        for cut in range(1, len(rows)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain)
