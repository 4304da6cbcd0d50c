"""Asymmetric slippage (ESMA CFD Q&A, MiFID II Art. 27), 2026-12-05 morning round (wip/exec16):
the streaming stage never reaches an end of input, so a client whose slippages since the last
multiple of ``min_fills`` were never assessed is assessed once it has been quiet for
``assess_quiet_s`` of event time (the engine's expiry sweep), with or without a restart in
between; the batch run still assesses what is pending at the end."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import AsymmetricSlippageParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump, state_load
from tests.compliance.helpers import market, q, run

ONLY = {"asymmetric_slippage"}
ADVERSE, IMPROVED = "1.10015", "1.10005"  # half a pip past the ask (1.10010), half a pip inside it
QUIET = AsymmetricSlippageParams().assess_quiet_s


def book(prices: list[str], *, start=1.0, acct="K") -> list[dict]:
    rows = [q(0, "1.10000", "1.10010")]
    for i, price in enumerate(prices):
        rows += market(start + 10 * i, f"{acct}{start:g}-{i}", acct, "buy", 100_000, price)
    return rows


# 20 orders at 16 adverse / 4 improved (z 2.68 at the 20th: nothing), then 3 more adverse:
# 19 / 4 after 23 orders (z 3.13), and no 40th order to be assessed at.
UNFAIR = [ADVERSE if i % 5 else IMPROVED for i in range(20)] + [ADVERSE] * 3
FAIR = [ADVERSE if i % 2 else IMPROVED for i in range(23)]  # 11 adverse, 12 improved
LAST = 1.0 + 10 * 22 + 0.05  # the last slippage's fill


def live(rows, engine=None) -> tuple[SurveillanceEngine, list[dict]]:
    """The streaming stage's engine (alerts as the episodes open and grow), never finished."""
    engine = engine or SurveillanceEngine(only=ONLY, episodes="updates", clamp_time=True)
    for row in rows:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    return engine, [a.as_dict() for a in engine.take_alerts()]


def test_a_client_gone_quiet_after_23_adverse_heavy_slippages_is_alerted_live():
    engine, alerts = live([*book(UNFAIR), q(LAST + QUIET - 5, "1.10000", "1.10010")])
    assert alerts == []  # not quiet long enough yet
    assert not engine.units["asymmetric_slippage"].windows_empty()  # so the sweeps keep running
    _, alerts = live([q(LAST + QUIET + 1, "1.10000", "1.10010")], engine)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert (ev["adverse_fills"], ev["improved_fills"]) == (19, 4) and ev["z"] >= ev["z_threshold"]
    assert ev["assessed"] == f"after {QUIET:g} s without a slippage"
    assert alerts[0]["end"].startswith("2026-01-05T10:03:41.05")  # ends at the last slippage
    assert engine.units["asymmetric_slippage"].windows_empty()  # assessed once: nothing pending
    _, again = live([q(LAST + 3 * QUIET, "1.10000", "1.10010")], engine)
    assert again == []


def test_a_fair_client_gone_quiet_is_not_alerted():
    engine, alerts = live([*book(FAIR), q(LAST + QUIET + 1, "1.10000", "1.10010")])
    assert alerts == []
    assert engine.units["asymmetric_slippage"].windows_empty()  # assessed, and found fair


def test_a_restart_before_the_quiet_deadline_still_assesses_the_client():
    engine, alerts = live(book(UNFAIR))
    assert alerts == []
    snapshot = state_dump(engine)
    saved = orjson.loads(snapshot)["detectors"]["asymmetric_slippage"]["instances"]["firm"]["state"]
    (tally,) = saved["tallies"]
    assert (tally["adverse"], tally["improved"], tally["assessed"]) == (19, 4, 20)
    restarted = SurveillanceEngine(only=ONLY, episodes="updates", clamp_time=True)
    assert state_load(restarted, snapshot)["restarted"] == []
    _, alerts = live([q(LAST + QUIET + 1, "1.10000", "1.10010")], restarted)
    assert len(alerts) == 1 and alerts[0]["evidence"]["adverse_fills"] == 19


def test_a_client_that_resumes_to_the_next_multiple_stays_one_episode():
    # Quiet after 23 (alerted), back an hour and a half later for 17 more adverse orders: assessed
    # again at the 40th, within the episode's quiet period, so one alert with both detections.
    resume = 1.0 + 10 * 23 + QUIET + 3600
    rows = [*book(UNFAIR), *book([ADVERSE] * 17, start=resume)]
    alerts = run(rows, only=ONLY)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["episode"]["detections"] == 2
    assert [d["assessed"] for d in ev["episode"]["detections_detail"]] == [
        f"after {QUIET:g} s without a slippage",
        "at the 40th slippage",
    ]
    assert (ev["adverse_fills"], ev["improved_fills"]) == (36, 4)


def test_the_batch_run_assesses_at_the_end_what_was_never_quiet_long_enough():
    # 23 orders, input ends a minute later: not quiet yet, assessed at the end of the input.
    alerts = run([*book(UNFAIR), q(LAST + 60, "1.10000", "1.10010")], only=ONLY)
    assert len(alerts) == 1 and alerts[0]["evidence"]["assessed"] == "end of input"
    # Without the quiet assessment and the end's, the 23 orders are never looked at.
    off = {"asymmetric_slippage": {"assess_quiet_s": None, "assess_at_end": False}}
    assert run([*book(UNFAIR), q(LAST + QUIET + 1, "1.10000", "1.10010")], only=ONLY, params=off) == []
