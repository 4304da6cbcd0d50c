"""Spoofing's chance test (``max_expected_by_chance``, ``size_history_orders``): a busy account's
ordinary order cancelled a second after one of its own opposite fills is a coincidence its
routine produces every few minutes, not spoofing; a large order, a quiet account or several
price levels cancelled together are not. The snapshot that carries the account's order sizes
and fills is version 6; an older one is refused.

The busy account below, in the ten minutes before the fill at 600 s: 6 resting sells of 300,000
placed and cancelled (a cancel rate of 0.01/s: under the cancel-rate baseline's 12) and 5
market sells of 50,000 (fills on the side of the episode's fill). Its last orders in EURUSD
(the episode's own left out): 6 of 300,000 and 5 of 50,000."""

from __future__ import annotations

import logging
from math import exp

import orjson
import pytest

from compliance.consumers import SurveillanceConsumer
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION, state_dump
from tests.compliance.helpers import market, o, q, run, surveil_restarted
from tests.compliance.test_state import _tick

ONLY = {"spoofing"}


def _busy_routine(acct="B"):
    rows = [q(0, "1.10000", "1.10010")]
    for i, t in enumerate((60, 140, 220, 300, 380, 460)):  # resting sells, cancelled 20 s later
        rows.append(o(t - 20, "new", f"r{i}", acct, "sell", 300_000, "1.10030"))
        rows.append(o(t, "cancel", f"r{i}", acct, "sell", 300_000, "1.10030"))
    for i, t in enumerate((100, 180, 260, 340, 420)):  # market sells that fill
        rows += market(t, f"m{i}", acct, "sell", 50_000, "1.10000")
    return rows


def _episode(qty, *, acct="B", levels=1):
    """A buy of ``qty`` resting behind the bid (split over ``levels`` prices), a market sell of
    50,000 filled at 600 s, the buy cancelled a second later."""
    rows = [q(590, "1.10000", "1.10010")]
    for lvl in range(levels):
        price = f"{1.09990 - 0.0001 * lvl:.5f}"
        rows.append(o(595 + lvl * 0.1, "new", f"s{lvl}", acct, "buy", qty // levels, price))
        rows.append(o(601 + lvl * 0.1, "cancel", f"s{lvl}", acct, "buy", qty // levels, price))
    rows += market(600 - 0.05, "real", acct, "sell", 50_000, "1.10000")
    rows.append(q(630, "1.10000", "1.10010"))
    return rows


def _expected(share, *, cancels=6, fills=6, k=1):
    mu = cancels / 600 * share * 5
    below = sum(exp(-mu) * mu**i / [1, 1, 2][i] for i in range(k))
    return fills * (1 - below)


def test_a_busy_accounts_ordinary_order_cancelled_after_its_fill_is_not_alerted():
    # 6 of its 11 last orders are as large as this one: about 0.16 such coincidences expected
    # in ten minutes by chance, against 0.04
    assert _expected(7 / 13) > 0.04
    assert run(_busy_routine() + _episode(300_000), only=ONLY) == []
    # the cancel-rate baseline alone lets it through: it is the chance test that holds it back
    off = run(_busy_routine() + _episode(300_000), only=ONLY, params={"spoofing": {"max_expected_by_chance": None}})
    assert [a["alert_type"] for a in off] == ["spoofing"]
    assert off[0]["evidence"]["cancel_baseline"]["passed"] is True


def test_a_large_order_from_the_same_busy_account_is_alerted_with_the_figures_against_the_threshold():
    (alert,) = run(_busy_routine() + _episode(3_000_000), only=ONLY)
    assert alert["alert_type"] == "spoofing" and alert["order_ids"] == ["s0", "real"]
    chance = alert["evidence"]["chance"]
    assert chance == {
        "cancel_rate_per_s": 0.01,
        "orders_compared": 11,
        "share_at_least_as_large": round(1 / 13, 3),  # none of its 11 last orders: (0 + 1) / (11 + 2)
        "fills_same_side": 6,  # its 5 routine sells and this one
        "cancels": 1,
        "expected_by_chance": round(_expected(1 / 13), 4),
        "max_expected_by_chance": 0.04,
        "passed": True,
    }
    assert chance["expected_by_chance"] < 0.04


def test_a_quiet_accounts_ordinary_order_is_alerted():
    (alert,) = run([q(0, "1.10000", "1.10010"), *_episode(300_000, acct="Q")], only=ONLY)
    assert alert["evidence"]["chance"]["expected_by_chance"] == 0.0


def test_several_levels_cancelled_together_are_no_coincidence_even_for_a_busy_account():
    (alert,) = run(_busy_routine() + _episode(600_000, levels=2), only=ONLY)
    assert alert["alert_type"] == "layering"
    # two cancels in 5 s by chance: P(N >= 2), about 0.002 expected in ten minutes
    assert alert["evidence"]["chance"]["cancels"] == 2
    assert alert["evidence"]["chance"]["expected_by_chance"] < 0.01


def _surveil(rows, restart_at=None):
    return surveil_restarted(rows, only=ONLY, restart_at=restart_at)


@pytest.mark.parametrize("qty", [300_000, 3_000_000])
def test_the_order_sizes_and_fills_survive_a_restart(qty):
    """Saved and restored just before the episode: the account's order sizes and its fills over
    the baseline window come back, so the figures (and the decision) are those of an
    uninterrupted run (without them the large order would look ordinary: share 0.5)."""
    rows = _busy_routine() + _episode(qty)
    cut = next(i for i, r in enumerate(sorted(rows, key=lambda r: r["ts"])) if r.get("order_id") == "s0")
    whole = _surveil(rows)
    assert len(whole) == (1 if qty > 1_000_000 else 0)
    assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(whole)


def _v5_snapshot_of(engine) -> bytes:
    """What the previous code wrote: version 5, the spoofing windows without the order sizes."""
    doc = orjson.loads(state_dump(engine))
    doc["version"] = 5
    for inst in doc["detectors"]["spoofing"]["instances"].values():
        del inst["state"]["sizes"]
    return orjson.dumps(doc)


def test_the_snapshot_is_version_6_and_a_version_5_one_is_refused(caplog):
    assert STATE_VERSION >= 6
    engine = SurveillanceEngine()
    for row in sorted(_busy_routine(), key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    doc = orjson.loads(state_dump(engine))
    assert doc["version"] == STATE_VERSION
    sizes = doc["detectors"]["spoofing"]["instances"]["firm"]["state"]["sizes"]
    ((account, symbol, orders),) = sizes
    assert (account, symbol) == ("B", "EURUSD")
    assert sorted(q for _oid, q in orders) == [50_000.0] * 5 + [300_000.0] * 6
    with caplog.at_level(logging.ERROR, logger="compliance.consumers"):
        consumer = SurveillanceConsumer(owners={}, contract_sizes={}, record=False, state=_v5_snapshot_of(engine))
    assert f"snapshot version 5, this code reads version {STATE_VERSION}" in consumer.restore_report["discarded"]
    assert "saved windows discarded, starting afresh" in caplog.text
    assert consumer.engine.units["spoofing"].sizes == {}
    assert consumer.handle(_tick(5)) == []
