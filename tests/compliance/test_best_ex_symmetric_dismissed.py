"""Symmetric slippage is not an Art. 27 exception, 2026-12-05 night round (wip/bex27,
docs/surveillance-rounds-bex27.md; ``BestExecutionParams.dismiss_symmetric``): a held mark just
past best execution's bar, from a client whose slippage asymmetric slippage assessed and found
symmetric, is dismissed when the client was given an improvement at least as large (the policy
passes price moves on both ways, ESMA's CFD Q&A); a mark past every improvement the client was
given is released as best execution's, as before."""

from __future__ import annotations

from tests.compliance.helpers import f, o, q, run, surveil_restarted

BOTH = {"best_execution_slippage", "asymmetric_slippage"}
ON = {"best_execution_slippage": {"dismiss_symmetric": True}}
OFF = {"best_execution_slippage": {"dismiss_symmetric": False}}
QUOTE = q(0, "1.10000", "1.10010")  # ask 1.10010, a 1-pip spread: best execution's bar is 2 pips


def client(pips: list[float], *, gap: float = 60.0) -> list[dict]:
    """One client's market buys, ``gap`` s apart, each filled once this many pips past the ask."""
    rows = [QUOTE]
    for i, p in enumerate(pips):
        t = gap * i + 1
        price = f"{1.10010 + p * 0.0001:.5f}"
        rows += [o(t, "new", f"a{i}", "K", "buy", 100_000), f(t + 0.05, f"a{i}", "K", "buy", 100_000, price)]
    return rows


def types(alerts) -> list[str]:
    return sorted(a["alert_type"] for a in alerts)


def test_a_mark_within_the_clients_improvements_is_dismissed():
    # 6 marks and 6 improvements: symmetric; the 2.5-pip mark (held: mostly within the bar)
    # is within the 3-pip improvement the client was given
    rows = client([1.5, -1.5] * 5 + [2.5, -3.0])
    assert types(run(rows, only=BOTH, params=ON)) == []
    assert types(run(rows, only=BOTH, params=OFF)) == ["best_execution_slippage"]


def test_a_mark_past_every_improvement_stays_best_executions():
    # the same symmetric count, but no improvement larger than 1.5 pips: the 2.5-pip mark is not
    # the symmetric policy's
    rows = client([1.5, -1.5] * 5 + [2.5, -1.0])
    assert types(run(rows, only=BOTH, params=ON)) == ["best_execution_slippage"]
    assert types(run(rows, only=BOTH, params=OFF)) == ["best_execution_slippage"]


def test_an_asymmetric_client_is_still_alerted_with_its_held_marks():
    # one-way marks: asymmetric slippage alerts and takes the held mark, whatever the switch
    rows = client([1.5] * 10 + [2.5, 1.0])
    assert types(run(rows, only=BOTH, params=ON)) == ["asymmetric_slippage"]


def test_the_largest_improvement_survives_a_restart():
    # the snapshot keeps the client's largest improvement (STATE_VERSION 38): a restart at any
    # row gives the same alerts, dismissed and kept alike
    for pips in ([1.5, -1.5] * 5 + [-3.0, 2.5], [1.5, -1.5] * 5 + [-1.0, 2.5]):
        rows = client(pips)
        want = types(surveil_restarted(rows, only=BOTH, params=ON))
        for cut in range(1, len(rows)):
            assert types(surveil_restarted(rows, only=BOTH, params=ON, restart_at=cut)) == want, cut
