"""A market-data alert's sentence (tradeops.core.operator_alerts.market_data_sentence), property-
based (hypothesis): for any well-formed evidence of each flag (its figures as fields, whatever the
words beside them) it is a sentence, never ""; for any evidence at all (an old record, a hand-made
one, a consumer's JSON) it never raises, so the console's panel never fails on one alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeops.core.operator_alerts import market_data_sentence, operator_alert_explanation

FLAGS = (
    "gap",
    "spike",
    "stale",
    "stale_feed",
    "out_of_order",
    "crossed",
    "locked",
    "duplicate",
    "feed_down",
    "feed_restored",
)
KNOWN_KEYS = (
    "flag",
    "reason",
    "action",
    "event_type",
    "source_ts",
    "similar_since_last_alert",
    "cooldown_seconds",
    "bid",
    "ask",
    "timeframe",
    "open",
    "high",
    "low",
    "close",
    "gap_seconds",
    "gap_limit_seconds",
    "since",
    "price",
    "move_bp",
    "sigma",
    "sigma_limit",
    "delay_seconds",
    "delay_limit_seconds",
    "known_at",
    "received_at",
    "previous_ts",
    "behind_seconds",
    "feed",
    "silent_seconds",
    "silent_limit_seconds",
    "last_seen",
    "newest",
    "broker",
    "symbols",
    "error",
    "code",
    "suppressed_from",
    "suppressed_to",
    "suppressed_worst",
    "window_closed",
)

# ---------------------------------------------------------------- well-formed: what the monitor writes

times = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
).map(datetime.isoformat)
seconds = st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.integers(min_value=0, max_value=10**9)
numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-(10**6), 10**6)
prices = st.decimals(min_value="0.00001", max_value="100000", places=5).map(str)
names = st.text(min_size=1, max_size=12)

common = st.fixed_dictionaries(
    {},
    optional={
        "reason": st.text(max_size=60),  # whatever the words: the figures are read from the fields
        "action": st.sampled_from(["quarantined", "published_with_flag"]),
        "event_type": st.sampled_from(["market.tick", "market.bar"]),
        "source_ts": times,
        "similar_since_last_alert": st.integers(min_value=0, max_value=10**6),
        "cooldown_seconds": seconds,
        "timeframe": st.sampled_from(["M1", "H1", "D1"]),
        "suppressed_from": times,  # since 2026-12-06: what the throttle suppressed
        "suppressed_to": times,
        "suppressed_worst": st.fixed_dictionaries(
            {},
            optional={
                "gap_seconds": seconds,
                "since": times,
                "move_bp": numbers,
                "sigma": seconds,
                "price": st.sampled_from(["mid", "close"]),
                "delay_seconds": seconds,
                "known_at": times,
                "behind_seconds": seconds,
                "previous_ts": times,
                "source_ts": times,
            },
        ),
    },
)
FIGURES = {
    "gap": st.fixed_dictionaries({"gap_seconds": seconds, "since": times}, optional={"gap_limit_seconds": seconds}),
    "spike": st.fixed_dictionaries(
        {"move_bp": numbers, "sigma": seconds, "sigma_limit": seconds},
        optional={"price": st.sampled_from(["mid", "close"])},
    ),
    "stale": st.fixed_dictionaries(
        {"delay_seconds": seconds},
        optional={"delay_limit_seconds": seconds, "known_at": times, "received_at": times},
    ),
    "stale_feed": st.fixed_dictionaries(
        {"feed": st.sampled_from(["tick", "M1", "H1"]), "silent_seconds": seconds, "newest": times},
        optional={"silent_limit_seconds": seconds, "last_seen": times},
    ),
    "out_of_order": st.fixed_dictionaries(
        {"source_ts": times, "previous_ts": times}, optional={"behind_seconds": seconds}
    ),
    "crossed": st.fixed_dictionaries({"bid": prices, "ask": prices})
    | st.fixed_dictionaries({"high": prices, "low": prices, "timeframe": st.sampled_from(["M1", "H1"])}),
    "locked": st.fixed_dictionaries({"bid": prices, "ask": prices}),
    "duplicate": st.fixed_dictionaries({"source_ts": times, "timeframe": st.sampled_from(["M1", "H1", "D1"])}),
    "feed_down": st.fixed_dictionaries(
        {"broker": names, "symbols": st.lists(names, max_size=3), "error": st.text(max_size=40)},
        optional={"code": st.text(max_size=8) | st.integers()},
    ),
}
FIGURES["feed_restored"] = FIGURES["feed_down"]


@st.composite
def well_formed(draw):
    flag = draw(st.sampled_from(FLAGS))
    evidence = {"flag": flag, **draw(common), **draw(FIGURES[flag])}
    return flag, evidence, draw(st.sampled_from(["", "EURUSD"]))


@settings(max_examples=400, deadline=None)
@given(well_formed())
def test_well_formed_evidence_of_every_flag_reads_as_a_sentence(case):
    flag, evidence, symbol = case
    sentence = market_data_sentence(flag, evidence, symbol=symbol)
    assert sentence and sentence.endswith("."), (flag, evidence)
    assert operator_alert_explanation(f"market_data.{flag}", evidence, symbol=symbol) == sentence


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FLAGS[:3] + FLAGS[4:8]), common, st.integers(min_value=1, max_value=10**6), times)
def test_a_window_closed_summary_reads_as_a_sentence_without_a_finding_of_its_own(flag, extra, similar, first):
    """The summary raised when a throttle window closes has no figures of a finding, only what
    was suppressed: still a sentence, naming how many, since when, and that the window closed."""
    evidence = {**extra, "flag": flag, "window_closed": True, "similar_since_last_alert": similar}
    evidence["suppressed_from"] = first
    sentence = market_data_sentence(flag, evidence, symbol="EURUSD")
    assert sentence.startswith(f"EURUSD: {similar} more ") and sentence.endswith("window closed."), evidence


# ---------------------------------------------------------------- anything at all

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | times,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
any_evidence = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=10), json_values, max_size=12)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(FLAGS) | st.text(max_size=12), any_evidence, st.text(max_size=8))
def test_any_evidence_never_raises(flag, evidence, symbol):
    assert isinstance(market_data_sentence(flag, evidence, symbol=symbol), str)
    assert isinstance(operator_alert_explanation(f"market_data.{flag}", evidence, symbol=symbol), str)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FLAGS), st.data())
def test_a_well_formed_evidence_with_any_field_spoiled_never_raises(flag, data):
    """Every known field with any value (an infinity, an int past a float's range, a time in
    year 1 east of UTC, a list where a number goes): never an exception."""
    evidence = {"flag": flag, **data.draw(FIGURES[flag])}
    spoilt = data.draw(st.sampled_from(KNOWN_KEYS))
    evidence[spoilt] = data.draw(
        json_values | st.sampled_from([float("inf"), float("nan"), 10**400, -1, "0001-01-01T00:00:00+05:00"])
    )
    assert isinstance(market_data_sentence(flag, evidence, symbol="EURUSD"), str)
