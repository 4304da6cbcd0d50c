"""Which ``alert.raised`` events are operator alerts, in one place.

An operator alert is raised by the platform about itself or its inputs, for the people who run
trading to act on: the execution worker's reconciliation mismatch and trading breaker, model drift,
the market-data collector's and monitor's flags, the anomaly detector. Every other alert is
surveillance's (market abuse, execution quality): it stays on the compliance screens only and
never reaches a trader's (MAR tipping-off, 2016/957 Art. 5). So the list is an allow-list: an
alert type not named here is treated as surveillance's. A new operator alert type is added here.
Pure: no Django.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tradeops.core import formatting

OPERATOR_ALERT_TYPES = frozenset(
    {
        "reconciliation_position_mismatch",  # trading.orders.reconcile
        "reconciliation_order_not_at_broker",  # workers.execution (an answered order never seen at the broker)
        "reconciliation_order_unwritable",  # workers.execution (an answered order its worker cannot write)
        "trading_breaker_open",  # trading.controls.services
        "model_drift",  # mlmodels.handlers
        "model_drift_cleared",
    }
)
# market_data.<flag> (trading.marketdata.monitor, workers.collector), anomaly.<series> (observability)
OPERATOR_ALERT_PREFIXES = ("market_data.", "anomaly.")
HIGH_SEVERITIES = ("high", "critical")


def alert_is_operator(alert_type: str) -> bool:
    """True for an operator alert's type; False for surveillance's and for any type not known."""
    return alert_type in OPERATOR_ALERT_TYPES or alert_type.startswith(OPERATOR_ALERT_PREFIXES)


def operator_alert_explanation(alert_type: str, evidence: Mapping[str, Any] | None, *, symbol: str = "") -> str:
    """The alert's own words, from its evidence: the anomaly detector's ``explanation``, drift's
    ``action``, the breaker's ``reason``; a reconciliation mismatch names each symbol's two
    positions; the market-data collector's and monitor's findings (gaps, spikes, quarantines,
    stale data and feeds, outages) read as a sentence with their units and UTC times
    (``market_data_sentence``), recorded alerts of before included: it reads the evidence they
    already hold. Empty when the evidence says nothing a person can read."""
    evidence = evidence or {}
    if alert_type.startswith("market_data."):
        sentence = market_data_sentence(alert_type.removeprefix("market_data."), evidence, symbol=symbol)
        if sentence:
            return sentence
    if alert_type == "reconciliation_position_mismatch":
        parts = [
            f"{symbol} ours {v.get('ours')} broker {v.get('broker')}"
            for symbol, v in sorted(evidence.items())
            if isinstance(v, Mapping)
        ]
        return "Positions differ from the broker: " + ", ".join(parts) if parts else "Positions differ from the broker."
    for key in ("explanation", "reason", "error", "action"):
        value = evidence.get(key)
        if isinstance(value, str) and value:
            text = value
            if key == "action" and alert_type.startswith("model_drift"):
                psi = evidence.get("psi_mean")
                text = (
                    f"{value} (PSI {psi:.3f} against a limit of {evidence.get('psi_limit')})"
                    if isinstance(psi, int | float)
                    else value
                )
            return text
    if evidence.get("flag"):
        return str(evidence["flag"]).replace("_", " ")
    return ""


# ---------------------------------------------------------------- market data, as sentences

# 2026-12-06: the monitor writes each finding's figures as fields of the alert's evidence
# (``gap_seconds``, ``since``, ``move_bp``, ``sigma``, ``sigma_limit``, ``delay_seconds``,
# ``silent_seconds``, ``newest``, ...; trading.marketdata.monitor's table) and the sentence reads
# those. These patterns are ONLY the fallback for alerts recorded before that date, whose figures
# are in the monitor's words of the time alone: the audit trail is immutable, so an old record
# must still read as it does today. Never the way a new alert is read; do not add to them.
_GAP = re.compile(r"^(?P<seconds>\d+(?:\.\d+)?)s of session time without data since (?P<since>\S+)$")
_SPIKE = re.compile(
    r"^(?P<what>\w+) moved (?P<bp>[-+]\d+(?:\.\d+)?) bp, (?P<sigma>\d+(?:\.\d+)?) sigma "
    r"\(limit (?P<limit>\d+(?:\.\d+)?)\)$"
)
_STALE = re.compile(r"^received (?P<seconds>\d+(?:\.\d+)?)s after its source time$")
_STALE_FEED = re.compile(
    r"^no (?P<feed>\S+) data for (?P<seconds>\d+(?:\.\d+)?)s while other feeds reached (?P<newest>\S+)$"
)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")
_ACTIONS = {
    "quarantined": "quarantined (kept aside, not published)",
    "published_with_flag": "published with the flag",
}


def utc_text(value: Any) -> str:
    """An ISO time from an alert's evidence as the screens write UTC (``2017-03-02 09:00:00 UTC``);
    the text as it is when it is not one."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:  # a naive time in evidence is UTC already
        moment = moment.replace(tzinfo=UTC)
    try:
        text = formatting.utc(moment)  # the screens' UTC, to the millisecond
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: no UTC time to write
        return str(value)
    return (text if moment.microsecond else text.removesuffix(".000")) + " UTC"


def duration_text(seconds: float) -> str:
    """Seconds as a person reads them: ``45 s``, ``2.345 s``, ``12 min 5 s``, ``3 h``, ``1 h 30 min``."""
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + " s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" + (f" {secs} s" if secs else "")


def _number(value: Any) -> float | None:
    """A figure from the evidence: a finite number (a bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)  # an int past a float's range raises: not a figure either
    return number if math.isfinite(number) else None


def _seconds(value: Any) -> float | None:
    """A duration from the evidence: a number (not its text), finite, not negative."""
    try:
        seconds = _number(value)
    except OverflowError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _time(value: Any) -> str | None:
    """An ISO 8601 time from the evidence, else None."""
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _gap_figures(evidence: Mapping[str, Any], reason: str) -> tuple[float, str] | None:
    seconds, since = _seconds(evidence.get("gap_seconds")), _time(evidence.get("since"))
    if seconds is not None and since is not None:
        return seconds, since
    match = _GAP.match(reason)  # a record of before 2026-12-06
    seconds = _seconds(float(match["seconds"])) if match else None
    return (seconds, match["since"]) if seconds is not None else None


def _spike_figures(evidence: Mapping[str, Any], reason: str) -> tuple[str, str, str, str] | None:
    """(price, move in bp, sigma, limit) as the sentence writes them."""
    try:
        move, sigma, limit = (_number(evidence.get(k)) for k in ("move_bp", "sigma", "sigma_limit"))
    except OverflowError:
        move = sigma = limit = None
    if move is not None and sigma is not None and limit is not None:
        return _text(evidence.get("price")) or "price", f"{move:+.1f}", f"{sigma:.1f}", str(limit)
    match = _SPIKE.match(reason)  # a record of before 2026-12-06
    return (match["what"], match["bp"], match["sigma"], match["limit"]) if match else None


def _stale_figures(evidence: Mapping[str, Any], reason: str) -> float | None:
    seconds = _seconds(evidence.get("delay_seconds"))
    if seconds is not None:
        return seconds
    match = _STALE.match(reason)  # a record of before 2026-12-06
    return _seconds(float(match["seconds"])) if match else None


def _stale_feed_figures(evidence: Mapping[str, Any], reason: str) -> tuple[str, float, str] | None:
    """(feed, seconds silent, the newest time of any feed)."""
    feed, seconds, newest = (
        _text(evidence.get("feed")),
        _seconds(evidence.get("silent_seconds")),
        _time(evidence.get("newest")),
    )
    if feed is not None and seconds is not None and newest is not None:
        return feed, seconds, newest
    match = _STALE_FEED.match(reason)  # a record of before 2026-12-06
    seconds = _seconds(float(match["seconds"])) if match else None
    return (match["feed"], seconds, match["newest"]) if seconds is not None else None


def _plain_words(flag: str, evidence: Mapping[str, Any]) -> str:
    """What a crossed, locked, duplicate or out-of-order finding saw, from the event's fields
    (the words the monitor writes, with UTC times); empty when the fields are not there."""
    bid, ask, high, low = (evidence.get(k) for k in ("bid", "ask", "high", "low"))
    if flag == "crossed":
        if bid is not None and ask is not None:
            return f"bid {bid} above ask {ask}"
        if high is not None and low is not None:
            return f"high {high} below low {low}"
    if flag == "locked" and bid is not None:
        return f"bid equals ask at {bid}"
    source_ts = _time(evidence.get("source_ts"))
    if flag == "out_of_order" and source_ts and (previous := _time(evidence.get("previous_ts"))):
        return f"{utc_text(source_ts)} is before the previous {utc_text(previous)}"
    if flag == "duplicate" and source_ts and evidence.get("timeframe"):
        return f"a second {evidence['timeframe']} bar opening at {utc_text(source_ts)}"
    return ""


def _finding_noun(flag: str, data: str, count: int) -> str:
    """What was suppressed: ``gaps``, ``spikes``, ``stale ticks``, ``crossed H1 bars``, ``locked
    findings`` (when the evidence names no data: a window's summary); singular for one."""
    plural = "" if count == 1 else "s"
    if flag in ("gap", "spike"):
        return f"{flag}{plural}"
    words = flag.replace("_", " ")
    return f"{words} {data}{plural}" if data != "data" else f"{words} finding{plural}"


def _suppressed_text(flag: str, evidence: Mapping[str, Any], data: str, *, one: bool = False) -> str:
    """``, from <first> to <last>, the longest ...`` of the findings the throttle suppressed
    (``suppressed_from``/``suppressed_to``/``suppressed_worst``, alerts raised since 2026-12-06);
    empty without their span (an alert of before). ``one``: a single finding was suppressed, so
    its figures are said without a superlative ("the largest" of one) and its time once."""
    first, last = _time(evidence.get("suppressed_from")), _time(evidence.get("suppressed_to"))
    if first is None:
        return ""
    span = f", from {utc_text(first)} to {utc_text(last)}" if last and last != first else f", at {utc_text(first)}"
    worst = evidence.get("suppressed_worst")
    if not isinstance(worst, Mapping):
        return span
    at = _time(worst.get("source_ts"))
    where = f" at {utc_text(at)}" if at else ""
    figure = ""
    try:
        if flag == "gap" and (seconds := _seconds(worst.get("gap_seconds"))) is not None:
            since = _time(worst.get("since"))
            start = f" since {utc_text(since)}" if since else where
            figure = f"{'' if one else 'the longest '}{duration_text(seconds)} of session time{start}"
        elif flag == "spike" and (move := _number(worst.get("move_bp"))) is not None:
            sigma = _number(worst.get("sigma"))
            sigmas = f" ({sigma:.1f} sigma)" if sigma is not None else ""
            figure = f"{'' if one else 'the largest '}{move:+.1f} bp{sigmas}{where}"
        elif flag == "stale" and (seconds := _seconds(worst.get("delay_seconds"))) is not None:
            received = "received" if one else "the latest received"
            figure = f"{received} {duration_text(seconds)} after its source time{where}"
        elif flag == "out_of_order" and (seconds := _seconds(worst.get("behind_seconds"))) is not None:
            figure = f"{'' if one else 'the furthest '}{duration_text(seconds)} behind the previous{where}"
    except OverflowError:  # a figure past a float's range: not a figure
        return span
    if not figure:
        return span
    if one and at is not None and at == first and where in figure:
        return f": {figure}"  # "1 more spike ...: -103.6 bp (13.2 sigma) at <time>", the time said once
    return f"{span}; {figure}"


def market_data_sentence(flag: str, evidence: Mapping[str, Any], *, symbol: str = "") -> str:
    """One sentence for a market-data alert (``trading.marketdata.monitor``, ``workers.collector``),
    from its evidence: what was seen, on which data, when (UTC), and what was done with it. The
    figures come from the evidence's fields (alerts raised since 2026-12-06), else from the words
    of an alert recorded before. Empty when the evidence is not of a known shape (the caller falls
    back on its raw words); never raises, whatever the evidence holds."""
    subject = symbol or "The instrument"  # a sentence's first word
    named = f"{symbol} " if symbol else ""  # "No EURUSD data ...", or "No data ..." without a symbol
    if flag in ("feed_down", "feed_restored"):
        symbols = evidence.get("symbols")
        if isinstance(symbols, str):
            symbols = [symbols]
        elif not isinstance(symbols, list | tuple) or not symbols:
            symbols = [symbol] if symbol else []
        names = ", ".join(str(s) for s in symbols) or "every symbol"
        broker = evidence.get("broker") or "the broker"
        if flag == "feed_restored":
            return f"Market data from {broker} flows again for {names}."
        error = evidence.get("error") or "no reason given"
        return f"Market data from {broker} stopped for {names}: {error}."
    reason = str(evidence.get("reason") or "")
    if flag == "stale_feed":
        figures = _stale_feed_figures(evidence, reason)
        if figures is None:
            return ""
        feed, seconds, newest = figures
        last_seen = evidence.get("last_seen")
        last = f" (last at {utc_text(last_seen)})" if last_seen else ""
        return f"No {named}{feed} data for {duration_text(seconds)} while other feeds reached {utc_text(newest)}{last}."
    kind = evidence.get("event_type") or "data"
    tick = kind in ("market.tick", "tick")  # the payload's TYPE; "tick" in hand-written evidence
    data = f"{evidence['timeframe']} bar" if evidence.get("timeframe") else ("tick" if tick else "data")
    at = f" at {utc_text(evidence['source_ts'])}" if evidence.get("source_ts") else ""
    action = _ACTIONS.get(str(evidence.get("action") or ""), "")
    done = f"; {action}" if action else ""
    similar = evidence.get("similar_since_last_alert")
    more = ""
    if isinstance(similar, int) and not isinstance(similar, bool) and similar > 0:
        cooldown = _seconds(evidence.get("cooldown_seconds"))
        per = f" (one alert per {duration_text(cooldown)})" if cooldown is not None else ""
        suppressed = _suppressed_text(flag, evidence, data, one=similar == 1)
        if suppressed:  # since 2026-12-06: what the throttle suppressed, its span and its worst
            more = f" {similar} more {_finding_noun(flag, data, similar)} since the last alert{per}{suppressed}."
        else:
            more = f" {similar} more like it since the last alert{per}."
        if evidence.get("window_closed") is True:  # the summary alone: no finding of its own
            if not suppressed:
                return ""
            return f"{symbol + ': ' if symbol else ''}{more.strip()[:-1]}; raised as the alert's window closed."
    if flag == "gap":
        figures = _gap_figures(evidence, reason)
        if figures is None:
            return ""
        seconds, since = figures
        return (
            f"No {named}data for {duration_text(seconds)} of session time since "
            f"{utc_text(since)}: gap before the {data}{at}{done}.{more}"
        )
    if flag == "spike":
        figures = _spike_figures(evidence, reason)
        if figures is None:
            return ""
        what, bp, sigma, limit = figures
        return (
            f"{subject} {what} moved {bp} bp on the {data}{at}, {sigma} sigma of its "
            f"recent moves (limit {limit} sigma){done}.{more}"
        )
    if flag == "stale":
        seconds = _stale_figures(evidence, reason)
        if seconds is None:
            return ""
        return f"{subject} {data}{at} received {duration_text(seconds)} after its source time{done}.{more}"
    # crossed, locked, out of order, duplicate: from the event's fields, else the monitor's words
    # (already plain; a record of before 2026-12-06 has no previous_ts for out of order)
    words = _plain_words(flag, evidence) or _ISO.sub(lambda m: utc_text(m.group(0)), reason)
    if words:
        return f"{subject} {data}{at} {flag.replace('_', ' ')}: {words}{done}.{more}"
    return ""
