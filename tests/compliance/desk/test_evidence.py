"""The evidence figures on the case screen's alert cards, as a compliance officer reads them
(``compliance.desk.evidence``): one formatter, its unit read from the figure's name, each
figure's threshold beside it as the evidence names it; it never raises and always gives text,
whatever JSON a detector wrote."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compliance.desk.evidence import _evidence_figure, evidence_figure, evidence_figures

# The names the detectors write (a sample of each unit's vocabulary) and any other text.
NAMES = st.sampled_from(
    [
        "size_ratio",
        "two_sided_share",
        "fill_touch_fraction",
        "close_ts",
        "until",
        "lead_before_fill_s",
        "build_began_s_before_push",
        "latency_ms",
        "orders_per_s",
        "volatility_bps_per_sqrt_s",
        "move_bps",
        "slippage_pips",
        "price_tolerance_spreads",
        "mid_at_window_start",
        "fill_price",
        "pip",
        "z",
        "p_value",
        "qty",
        "orders",
        "one_sided",
        "definition",
    ]
) | st.text(max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
DIGITS = st.none() | st.integers(min_value=-3, max_value=40)


@given(name=NAMES, value=JSON, digits=DIGITS)
def test_the_formatter_never_raises_and_always_gives_text(name, value, digits):
    assert isinstance(evidence_figure(name, value, digits=digits), str)


@given(name=NAMES, value=JSON, digits=DIGITS)
def test_the_formatter_gives_text_without_its_safety_net(name, value, digits):
    """The catch-all in ``evidence_figure`` is a safety net for a screen, not how it copes: the
    formatting itself handles every JSON value (huge, infinite, NaN, nested, any text)."""
    assert isinstance(_evidence_figure(name, value, digits), str)


@given(evidence=st.dictionaries(NAMES, JSON, max_size=12) | JSON, digits=DIGITS)
def test_the_table_never_raises_and_every_cell_is_text(evidence, digits):
    for row in evidence_figures(evidence, digits=digits):
        assert len(row) == 3 and all(isinstance(cell, str) for cell in row)


def test_each_unit_reads_as_an_officer_expects():
    cases = [
        ("size_ratio", 4.199999999, None, "4.20"),  # a ratio to 2 decimals
        ("two_sided_share", 0.8333333333, None, "83.3 %"),  # a share as a percentage
        ("fill_touch_fraction", 0.5, None, "50.0 %"),
        ("placed_ts", 1733401200.0, None, "2024-12-05 12:20:00.000 UTC"),  # epoch seconds
        ("close_ts", "2017-04-24T10:00:00.123456+00:00", None, "2017-04-24 10:00:00.123 UTC"),
        ("lead_before_fill_s", 2.4e-05, None, "0.024 ms"),  # a duration under a second in ms
        ("cancel_after_fill_s", 0.25, None, "250 ms"),
        ("cancel_within_s", 5.0, None, "5 s"),
        ("baseline_s", 600, None, "600 s (10 min)"),
        ("max_seconds_apart", 5.266667, None, "5.27 s"),
        ("latency_ms", 12.5, None, "12.5 ms"),
        ("orders_per_s", 3.33333, None, "3.33 /s"),  # a rate, not a duration
        ("move_bps", 12.3456, None, "12.35 bps"),
        ("slippage_pips", 1.26, None, "1.3 pips"),
        ("away_from_touch_spreads", 1.5, None, "1.50 spreads"),
        ("mid_at_window_start", 1.0584799999999999, 5, "1.05848"),  # a price at the symbol's digits
        ("fill_price", 1.1, 5, "1.10000"),
        ("fill_price", 1.0584799999999999, None, "1.05848"),  # a symbol not of this system
        ("price_levels", 3, 5, "3"),  # a count of levels, not a price
        ("qty", -6405000.0, None, "-6,405,000"),
        ("orders", 5, None, "5"),
        ("one_sided", True, None, "yes"),
        ("concentration", None, None, "—"),
        ("p_value", 0.000123456, None, "0.000123"),
        ("side", "buy", None, "buy"),
        ("levels", [1.1, 1.2], None, "2 items (see the JSON)"),
    ]
    for name, value, digits, text in cases:
        assert evidence_figure(name, value, digits=digits) == text, (name, value)


def test_each_figure_has_its_threshold_beside_it_as_the_evidence_names_it():
    evidence = {
        "size_ratio": 4.2,
        "min_size_ratio": 3.0,
        "move_bps": 12.5,
        "move_threshold_bps": 10,
        "z": 2.5,
        "z_threshold": 2,
        "count_ratio": 25.123,
        "max_count_ratio": 20,
        "lead_before_fill_s": 0.5,
        "max_lead_s": 30,  # bounds no figure of its own name: a row of its own
        "volume_ratio": 2.0,
        "max_volume_ratio": None,  # a bound not set: no threshold beside the figure, a row of its own
        "cancelled_orders": [{"order_id": "a"}],  # in the JSON, not the table
    }
    assert evidence_figures(evidence, digits=5) == [
        ("size ratio", "4.20", "min 3.00"),
        ("move bps", "12.50 bps", "threshold 10.00 bps"),
        ("z", "2.50", "threshold 2.00"),
        ("count ratio", "25.12", "max 20.00"),
        ("lead before fill s", "500 ms", ""),
        ("max lead s", "30 s", ""),
        ("volume ratio", "2.00", ""),
        ("max volume ratio", "—", ""),
    ]
