"""Order-to-trade (RTS 9) and market making (2026-12-04 night round, wip/otr13): an account that
keeps a two-sided quote at competitive prices and re-prices it by modification sends hundreds
of messages per fill in a quiet hour; that is a market-making strategy (MiFID II Art. 17(4)),
not an excessive ratio. The same messages from orders parked spreads away from the touch, or
quoting one side only, still breach."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import f, o, q, restarted_before, run

ONLY = {"excessive_order_to_trade"}
PIP = 0.0001


def quoting_rows(behind_spreads: float, *, sides=("buy", "sell"), minutes: float = 20.0) -> list[dict]:
    """A quote of 1 pip (1.10000 / 1.10010) all along; the account quotes ``sides`` that many
    spreads behind it, re-pricing every 5 s by modification; its bid is hit once, and replaced."""
    rows = [q(0, "1.10000", "1.10010")]
    price = {"buy": 1.10000 - behind_spreads * PIP, "sell": 1.10010 + behind_spreads * PIP}
    live = {side: f"{side}-0" for side in sides}
    for side in sides:
        rows.append(o(10, "new", live[side], "MM", side, 100_000, f"{price[side]:.5f}"))
    t = 10.0
    while t < 10 + minutes * 60:
        t += 5.0
        for side in sides:
            rows.append(o(t, "modify", live[side], "MM", side, 100_000, f"{price[side]:.5f}"))
        if abs(t - 300.0) < 1e-9 and "buy" in sides:  # the bid is hit; a new one replaces it
            rows.append(f(t + 1, live["buy"], "MM", "buy", 100_000, f"{price['buy']:.5f}"))
            live["buy"] = "buy-1"
            rows.append(o(t + 2, "new", live["buy"], "MM", "buy", 100_000, f"{price['buy']:.5f}"))
    return rows


def test_a_market_maker_re_pricing_its_two_sided_quote_is_not_an_excessive_ratio():
    assert run(quoting_rows(0.0), only=ONLY) == []
    assert run(quoting_rows(0.5), only=ONLY) == []  # half a spread behind: still a quote to be hit


def test_the_same_messages_from_orders_parked_away_from_the_touch_breach():
    (alert,) = run(quoting_rows(3.0), only=ONLY)
    ev = alert["evidence"]
    assert ev["count_ratio"] > ev["max_count_ratio"] and ev["transactions"] == 1
    assert ev["two_sided_share"] == 0.0 and ev["market_making_max_spreads"] == 1.0


def test_quoting_one_side_at_the_touch_is_not_market_making():
    (alert,) = run(quoting_rows(0.0, sides=("buy",)), only=ONLY)
    assert alert["evidence"]["two_sided_share"] == 0.0


def test_the_rule_turned_off_alerts_the_market_maker_as_before():
    params = {"excessive_order_to_trade": {"market_making_min_share": None}}
    (alert,) = run(quoting_rows(0.0), only=ONLY, params=params)
    assert alert["evidence"]["two_sided_share"] is None


def test_the_quotes_and_the_time_quoted_survive_a_restart():
    rows = sorted(quoting_rows(0.0), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "buy-1", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 9
    engine = SurveillanceEngine(only=ONLY)  # the same rows, uninterrupted
    for row in rows[: len(rows) - len(rest)]:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    (k,) = engine.units["excessive_order_to_trade"].keys.values()
    (r,) = restarted.units["excessive_order_to_trade"].keys.values()
    assert k.quotes == r.quotes == {"sell-0": -1} and (r.n_buy, r.n_sell) == (0, 1)
    assert r.quote_t == k.quote_t and [s[6] for s in r.slots] == [s[6] for s in k.slots]
    assert sum(s[6] for s in r.slots) > 250  # two-sided from 10 s until the bid was hit at 301 s
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    assert restarted.take_alerts() + restarted.finish() == []
