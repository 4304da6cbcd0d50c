"""Quote stuffing, an account with no history before its burst (2026-12-05 evening, wip/qs23).

Without ``baseline_min_s`` of history before it, a burst was alerted only at ``min_messages``
(50) in a second. With ``baseline_after_burst`` a burst of at least ``min_messages_over_baseline``
(30) is judged ``baseline_min_s`` after it against the account's own rate in those seconds
(``baseline_multiple`` x): the limit order book's stuffing accounts appear, send 30-49 messages a
second for a few seconds and fall silent; our generator's new quoters burst as high in their
first minute and go on quoting at a fifth to a tenth of it.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import o, q, run, surveil_restarted


def _burst(messages: int, *, after_per_s: float = 0.0, after_s: float = 70.0):
    """``messages`` new/cancel messages in under a second from account Q (no history), then
    ``after_per_s`` messages a second for ``after_s`` seconds (pairs of new and cancel)."""
    rows = [q(0, "1.10000", "1.10010")]
    for i in range(messages // 2):
        rows.append(o(100 + i * 0.01, "new", f"q{i}", "Q", "buy", 100_000, "1.09990"))
        rows.append(o(100.005 + i * 0.01, "cancel", f"q{i}", "Q", "buy", 100_000, "1.09990"))
    if after_per_s:
        step = 2.0 / after_per_s
        t, i = 102.0, 0
        while t < 102.0 + after_s:
            rows.append(o(t, "new", f"a{i}", "Q", "buy", 100_000, "1.09980"))
            rows.append(o(t + step / 2, "cancel", f"a{i}", "Q", "buy", 100_000, "1.09980"))
            t += step
            i += 1
    rows.append(q(400, "1.10000", "1.10010"))
    return rows


def test_a_burst_out_of_nowhere_into_silence_is_alerted():
    alerts = run(_burst(40), only={"quote_stuffing"})
    assert [a["alert_type"] for a in alerts] == ["quote_stuffing"]
    ev = alerts[0]["evidence"]
    assert ev["peak_messages_per_window"] == 40 and ev["min_messages"] == 30
    assert ev["baseline_messages_per_s"] is None and ev["messages_per_s_after"] == 0.0
    # the rule off: under the absolute floor (50) for an account with no history
    assert run(_burst(40), only={"quote_stuffing"}, params={"quote_stuffing": {"baseline_after_burst": False}}) == []


def test_a_new_quoter_that_goes_on_at_a_tenth_of_its_burst_is_not():
    assert run(_burst(40, after_per_s=5.0), only={"quote_stuffing"}) == []  # 40 < 10 x 5
    # a slower account after it: 40 >= 10 x 2
    assert [a["alert_type"] for a in run(_burst(40, after_per_s=2.0), only={"quote_stuffing"})] == ["quote_stuffing"]
    assert run(_burst(28), only={"quote_stuffing"}) == []  # under the floor: no burst at all


def _surveil(rows, restart_at=None):
    return surveil_restarted(rows, only={"quote_stuffing"}, restart_at=restart_at)


def test_a_restart_while_the_burst_awaits_the_rate_after_changes_nothing():
    """The bursts awaiting the account's rate after them are in the snapshot (version 29)."""
    for rows in (_burst(40), _burst(40, after_per_s=5.0), _burst(40, after_per_s=2.0)):
        plain = _surveil(rows)
        for cut in list(range(1, 45, 4)) + list(range(45, len(rows), 37)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain), cut
