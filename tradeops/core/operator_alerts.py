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

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tradeops.core import formatting

OPERATOR_ALERT_TYPES = frozenset(
    {
        "reconciliation_position_mismatch",  # trading.orders.reconcile
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

_GAP = re.compile(r"^(?P<seconds>[\d.]+)s of session time without data since (?P<since>\S+)$")
_SPIKE = re.compile(r"^(?P<what>\w+) moved (?P<bp>[-+][\d.]+) bp, (?P<sigma>[\d.]+) sigma \(limit (?P<limit>[\d.]+)\)$")
_STALE = re.compile(r"^received (?P<seconds>[\d.]+)s after its source time$")
_STALE_FEED = re.compile(r"^no (?P<feed>\S+) data for (?P<seconds>[\d.]+)s while other feeds reached (?P<newest>\S+)$")
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
    text = formatting.utc(moment)  # the screens' UTC, to the millisecond
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


def market_data_sentence(flag: str, evidence: Mapping[str, Any], *, symbol: str = "") -> str:
    """One sentence for a market-data alert (``trading.marketdata.monitor``, ``workers.collector``),
    from its evidence: what was seen, on which data, when (UTC), and what was done with it. Empty
    when the evidence is not of a known shape (the caller falls back on its raw words)."""
    subject = symbol or "the instrument"
    if flag in ("feed_down", "feed_restored"):
        symbols = evidence.get("symbols") or ([symbol] if symbol else [])
        names = ", ".join(str(s) for s in symbols) or "every symbol"
        broker = evidence.get("broker") or "the broker"
        if flag == "feed_restored":
            return f"Market data from {broker} flows again for {names}."
        error = evidence.get("error") or "no reason given"
        return f"Market data from {broker} stopped for {names}: {error}."
    reason = str(evidence.get("reason") or "")
    if flag == "stale_feed":
        match = _STALE_FEED.match(reason)
        if not match:
            return ""
        last = f" (last at {utc_text(evidence['last_seen'])})" if evidence.get("last_seen") else ""
        return (
            f"No {subject} {match['feed']} data for {duration_text(float(match['seconds']))} while other feeds "
            f"reached {utc_text(match['newest'])}{last}."
        )
    kind = evidence.get("event_type") or "data"
    data = f"{evidence['timeframe']} bar" if evidence.get("timeframe") else ("tick" if kind == "tick" else "data")
    at = f" at {utc_text(evidence['source_ts'])}" if evidence.get("source_ts") else ""
    action = _ACTIONS.get(str(evidence.get("action") or ""), "")
    done = f"; {action}" if action else ""
    similar = evidence.get("similar_since_last_alert")
    more = ""
    if isinstance(similar, int) and similar > 0:
        cooldown = evidence.get("cooldown_seconds")
        per = f" (one alert per {duration_text(float(cooldown))})" if isinstance(cooldown, int | float) else ""
        more = f" {similar} more like it since the last alert{per}."
    if flag == "gap":
        match = _GAP.match(reason)
        if not match:
            return ""
        return (
            f"No {subject} data for {duration_text(float(match['seconds']))} of session time since "
            f"{utc_text(match['since'])}: gap before the {data}{at}{done}.{more}"
        )
    if flag == "spike":
        match = _SPIKE.match(reason)
        if not match:
            return ""
        return (
            f"{subject} {match['what']} moved {match['bp']} bp on the {data}{at}, {match['sigma']} sigma of its "
            f"recent moves (limit {match['limit']} sigma){done}.{more}"
        )
    if flag == "stale":
        match = _STALE.match(reason)
        if not match:
            return ""
        return (
            f"{subject} {data}{at} received {duration_text(float(match['seconds']))} after its source time{done}.{more}"
        )
    if reason:  # crossed, locked, out of order, duplicate: the monitor's words are already plain
        label = flag.replace("_", " ")
        words = _ISO.sub(lambda m: utc_text(m.group(0)), reason)
        return f"{subject} {data}{at} {label}: {words}{done}.{more}"
    return ""
