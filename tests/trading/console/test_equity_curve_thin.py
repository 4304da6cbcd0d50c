"""The console's equity chart is thinned to a few hundred points before it goes to the browser;
the thinning keeps the first and last points and every drawdown re-base point, where the chart's
drawdown restarts from the re-based peak (trading/console/selectors.py, ``equity_curve_thin``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trading.console.selectors import equity_curve_thin

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def curve(n: int, rebases: set[int]) -> list[dict]:
    return [
        {
            "t": (T0 + timedelta(minutes=i)).isoformat(),
            "equity": 1000.0 + i,
            "drawdown": 0.0,
        }
        | ({"rebase": i} if i in rebases else {})
        for i in range(n)
    ]


def test_every_rebase_survives_the_thinning_with_the_first_and_last_points():
    # 1,000 points to 400: every-n-th thinning (step 2.5) kept 0, 2, 5, 7, 10, ...: never 1, 3 or 998
    full = curve(1000, rebases={1, 3, 501, 998})
    thin = equity_curve_thin(full, points=400)
    assert len(thin) == 400
    assert [p["rebase"] for p in thin if "rebase" in p] == [1, 3, 501, 998]
    assert thin[0] is full[0] and thin[-1] is full[-1]
    assert [p["t"] for p in thin] == sorted(p["t"] for p in thin)  # in time order, no point twice
    assert len({p["t"] for p in thin}) == 400


def test_the_rest_is_spread_evenly_over_the_curve():
    thin = equity_curve_thin(curve(1000, rebases={500}), points=100)
    kept = [int(p["equity"] - 1000) for p in thin]
    gaps = [b - a for a, b in zip(kept, kept[1:], strict=False)]
    assert max(gaps) <= 11  # about 1,000 / 100 apart, the re-base between two of them


def test_a_short_curve_is_sent_whole_and_more_rebases_than_points_are_all_kept():
    short = curve(5, rebases={2})
    assert equity_curve_thin(short, points=400) is short
    many = curve(50, rebases=set(range(5, 45)))
    assert [p["rebase"] for p in equity_curve_thin(many, points=10) if "rebase" in p] == list(range(5, 45))
