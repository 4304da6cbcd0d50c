"""Quote stuffing sustained over several seconds (2026-12-05 evening round 3, wip/qs24).

A burst under ``min_messages_over_baseline`` (30) in any one second but of at least
``long_min_messages`` (75) in ``long_window_s`` (5 s) floods the venue's message capacity as
surely: it is judged on the long window against the account's own rate (``baseline_multiple`` x,
before the burst or, for an account with no history, after it) with the same fill ratio. The
limit order book's `modify_storm` / `ladder_flash` send 85-150 messages over 5-7 s at 15-25 a
second; our generator's busy quoters reach 12-27 a second over 5 s but quote at 3-12 a second of
their own.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import o, q, run, surveil_restarted


def _account(*, history_per_s: float, burst_per_s: float, burst_s: float = 6.0, after_per_s: float = 0.0):
    """Account Q: 120 s of messages at ``history_per_s`` (none: no history), then ``burst_s``
    seconds at ``burst_per_s`` (pairs of new and cancel), then ``after_per_s`` for 70 s."""
    rows = [q(0, "1.10000", "1.10010")]
    i = 0

    def stretch(start, per_s, secs, tag, price):
        nonlocal i
        step = 2.0 / per_s
        t = start
        while t < start + secs - 1e-9:
            rows.append(o(t, "new", f"{tag}{i}", "Q", "buy", 100_000, price))
            rows.append(o(t + step / 2, "cancel", f"{tag}{i}", "Q", "buy", 100_000, price))
            t += step
            i += 1

    if history_per_s:
        stretch(10.0, history_per_s, 120.0, "h", "1.09970")
    stretch(140.0, burst_per_s, burst_s, "b", "1.09990")
    if after_per_s:
        stretch(140.0 + burst_s + 1.5, after_per_s, 70.0, "a", "1.09980")
    rows.append(q(400, "1.10000", "1.10010"))
    return rows


def test_a_sustained_burst_under_the_one_second_floor_is_alerted():
    # 20 a second for 6 s: never 30 in a second, 100 in 5 s; history 1 a second (10 x = 10)
    alerts = run(_account(history_per_s=1.0, burst_per_s=20.0), only={"quote_stuffing"})
    assert [a["alert_type"] for a in alerts] == ["quote_stuffing"]
    ev = alerts[0]["evidence"]
    assert ev["peak_messages_per_window"] < 30 <= ev["peak_messages_per_long_window"] // 3
    assert ev["alerted_on_window_s"] == 5.0 and ev["min_messages_long_window"] == 75
    # the rule off: nothing
    off = {"quote_stuffing": {"long_window_s": None}}
    assert run(_account(history_per_s=1.0, burst_per_s=20.0), only={"quote_stuffing"}, params=off) == []


def test_a_new_account_sustained_into_silence_is_alerted_after_it():
    alerts = run(_account(history_per_s=0.0, burst_per_s=20.0), only={"quote_stuffing"})
    assert [a["alert_type"] for a in alerts] == ["quote_stuffing"]
    assert alerts[0]["evidence"]["messages_per_s_after"] == 0.0


def test_a_busy_quoter_at_its_own_pace_is_not():
    # near-miss: 20 a second for 6 s from an account quoting at 4 a second (10 x = 40)
    assert run(_account(history_per_s=4.0, burst_per_s=20.0), only={"quote_stuffing"}) == []
    # a new quoter that goes on at 5 a second after its sustained burst
    assert run(_account(history_per_s=0.0, burst_per_s=20.0, after_per_s=5.0), only={"quote_stuffing"}) == []
    # 12 a second for 6 s: 60 in 5 s, under the long floor
    assert run(_account(history_per_s=0.5, burst_per_s=12.0), only={"quote_stuffing"}) == []


def _surveil(rows, restart_at=None):
    return surveil_restarted(rows, only={"quote_stuffing"}, restart_at=restart_at)


def test_a_restart_inside_a_sustained_burst_changes_nothing():
    """The long window's messages and the burst's long peak are in the snapshot (version 30)."""
    for rows in (_account(history_per_s=1.0, burst_per_s=20.0), _account(history_per_s=0.0, burst_per_s=20.0)):
        plain = _surveil(rows)
        assert plain
        n = len(rows)
        for cut in list(range(n - 200, n - 60, 9)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain), cut


def test_a_burst_is_not_counted_again_by_the_long_window_after_it():
    """A one-second burst then a message every 1.5 s: the long window still holds the burst, but
    its messages were the burst's; they do not open a second one."""
    rows = _account(history_per_s=1.0, burst_per_s=100.0, burst_s=0.6)
    rows = (
        rows[:-1] + [o(142.0 + 1.5 * k, "new", f"x{k}", "Q", "buy", 100_000, "1.09950") for k in range(4)] + rows[-1:]
    )
    alerts = run(rows, only={"quote_stuffing"})
    assert [a["evidence"]["alerted_on_window_s"] for a in alerts] == [1.0]
