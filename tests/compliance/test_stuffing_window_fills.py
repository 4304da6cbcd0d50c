"""Quote stuffing, the fills of the window that opens a burst (2026-12-05 night, wip/qs28).

A burst takes in the messages of the second that opened it, and now that second's fills with
them: the fill ratio (at most ``max_fill_ratio`` executions per message) is over every message
of the burst. Before, only fills after the burst reached its floor counted, so a burst opened
on its last message had no fills by construction: on our held-out 85106 a two-sided quoter hit
three times in the second it re-quoted 33 times was alerted at 1 fill in 33.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import f, o, q, run, surveil_restarted

ONLY = {"quote_stuffing"}


def _requote(fills: int):
    """Account Q quotes at 0.5 a second for 120 s (its own rate), then re-quotes 17 times in
    under a second (34 messages, 10x its rate is 5 a second); the first ``fills`` of those
    quotes are hit (a fill instead of the cancel: 34 - fills messages)."""
    rows = [q(0, "1.10000", "1.10010")]
    for i in range(30):
        rows.append(o(2 + 4 * i, "new", f"b{i}", "Q", "buy", 100_000, "1.09990"))
        rows.append(o(4 + 4 * i, "cancel", f"b{i}", "Q", "buy", 100_000, "1.09990"))
    for i in range(17):
        t = 130 + i * 0.05
        rows.append(o(t, "new", f"r{i}", "Q", "buy", 100_000, "1.10000"))
        if i < fills:
            rows.append(f(t + 0.01, f"r{i}", "Q", "buy", 100_000, "1.10000"))
        else:
            rows.append(o(t + 0.02, "cancel", f"r{i}", "Q", "buy", 100_000, "1.10000"))
    rows.append(q(400, "1.10000", "1.10010"))
    return rows


def test_a_burst_with_one_fill_in_its_opening_second_is_still_stuffing():
    (alert,) = run(_requote(1), only=ONLY)
    ev = alert["evidence"]
    assert ev["executions"] == 1 and ev["fill_ratio"] <= ev["max_fill_ratio"]


def test_a_quote_hit_three_times_in_its_opening_second_is_trading():
    # 3 fills of 31 messages (0.097 > 0.05), all before the burst reached its floor
    assert run(_requote(3), only=ONLY) == []
    # the rule off: the opening second's fills are not counted, as before
    (alert,) = run(_requote(3), only=ONLY, params={"quote_stuffing": {"window_fills": False}})
    assert alert["evidence"]["executions"] == 0


def test_a_restart_with_fills_in_the_window_changes_nothing():
    """The account's fills in the window are in the snapshot (version 40)."""
    for rows in (_requote(1), _requote(3)):
        plain = surveil_restarted(rows, only=ONLY)
        for cut in range(len(rows) - 40, len(rows)):
            assert orjson.dumps(surveil_restarted(rows, only=ONLY, restart_at=cut)) == orjson.dumps(plain), cut
