"""Order-to-trade (RTS 9): only a burst's minute is set aside (2026-12-05 last round, wip/lob31).

A breach must hold without the ``sustained_excluding_slots`` busiest slots: bursts are quote
stuffing's, not an excessive ratio over the period. The busiest minutes were set aside whatever
their rate, so an account re-pricing one order about once a second in its busy minutes and slower
in between (the limit order book's ``cancel_replace``: 181 orders to 1 transaction in 16 minutes,
at most 4 messages in any second) was read on the 16 messages outside its five busiest minutes.
A minute is now set aside only if it held a burst: ``sustained_burst_messages`` (30) of the
account's messages on the instrument within one second.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import f, o, q, run, surveil_restarted

ONLY = {"excessive_order_to_trade"}
OFF = {"excessive_order_to_trade": {"sustained_burst_messages": None}}


def _cancel_replace(*, burst: bool):
    """Account C keeps one bid three spreads behind the touch for 16 minutes, cancelling it and
    sending a new one: 32 messages a minute in minutes 0-4 (a pair every 3.75 s; with ``burst``
    each of those minutes' messages sent within half a second instead: a stuffing burst), 2 a
    minute after; one small IOC fills in minute 7. 183 orders (a count ratio of 182) to 1
    transaction of half the bid's size."""
    rows = [q(0, "1.10000", "1.10010")]
    n = 0

    def pair(t):
        nonlocal n
        rows.append(o(t, "new", f"c{n}", "C", "buy", 100_000, "1.09970"))
        rows.append(o(t + (0.01 if burst and t < 300 else 1.0), "cancel", f"c{n}", "C", "buy", 100_000, "1.09970"))
        n += 1

    for m in range(16):
        if m < 5:
            for j in range(16):
                pair(60 * m + 1 + (j * 0.03 if burst else j * 3.75))
        else:
            pair(60 * m + 10)
    rows.append(o(420.5, "new", "i1", "C", "buy", 50_000, "1.10010", otype="ioc"))
    rows.append(f(420.51, "i1", "C", "buy", 50_000, "1.10010"))
    rows.append(q(1000, "1.10000", "1.10010"))
    return rows


def test_busy_minutes_without_a_burst_are_the_ratio_itself():
    (alert,) = run(_cancel_replace(burst=False), only=ONLY)
    ev = alert["evidence"]
    assert ev["transactions"] == 1 and ev["count_ratio"] > ev["max_count_ratio"]
    # before: the five busiest minutes set aside, 23 orders left (ratios 22 and 22): not sustained
    assert run(_cancel_replace(burst=False), only=ONLY, params=OFF) == []


def test_the_same_messages_sent_as_bursts_are_set_aside():
    # the near-miss: the busy minutes' messages each sent within a second (quote stuffing's)
    assert run(_cancel_replace(burst=True), only=ONLY) == []


def test_a_restart_anywhere_changes_nothing():
    """The slots' burst marks and the last second's message times are in the snapshot (51)."""
    for burst in (False, True):
        rows = _cancel_replace(burst=burst)
        plain = surveil_restarted(rows, only=ONLY)
        for cut in list(range(1, 150, 7)) + list(range(150, len(rows), 23)):
            assert orjson.dumps(surveil_restarted(rows, only=ONLY, restart_at=cut)) == orjson.dumps(plain), (burst, cut)
