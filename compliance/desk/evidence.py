"""How an alert's evidence figures read on the desk's screens (the case screen's alert cards): for a
compliance officer, not as the detector wrote them. ``0.8333333333`` share -> ``83.3 %``,
``1733401200.0`` -> ``2024-12-05 12:20:00.000 UTC``, ``2.4e-05`` s -> ``0.024 ms``, prices at the
symbol's digits, pips and basis points named, and each figure's threshold beside it, as the
evidence names it (``size_ratio`` beside ``min_size_ratio``).

The unit is read from the figure's name, the vocabulary the detectors write
(``compliance/surveillance/``: ``*_s`` durations, ``*_bps``, ``*_pips``, ``*_ratio``, ``*share``,
``*_ts`` times, ``*price`` and ``mid_*`` prices). Only the screen changes: the alert, its JSONL
record and the evidence JSON beside the table keep the exact values. Pure: no Django."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradeops.core import formatting

# A figure's own threshold, as the evidence names it: ``min_<figure>``, ``max_<figure>``,
# ``<figure>_threshold``; and for a figure in a unit, ``<stem>_threshold_<unit>`` (``move_bps``:
# ``move_threshold_bps``).
THRESHOLD_PREFIXES = ("min_", "max_")
SHOWN_MAX_CHARS = 80  # longer text (a definition, a list) stays in the JSON beside the table
PRICE_NAMES = {"mid", "bid", "ask", "touch", "pip", "arrival_bid", "arrival_ask", "arrival_mid", "arrival_touch"}
RATIO_WORDS = ("ratio", "multiple", "concentration")  # shown to 2 decimals
# Epoch seconds a time figure may hold and still be read as a time (1970 to 2200).
EPOCH_MAX = 7_258_118_400


def _plain(value: float, significant: int = 10) -> str:
    """A float without binary noise or an exponent (``2.4e-05`` -> ``0.000024``), to ``significant``
    digits; very large or very small magnitudes keep their exponent."""
    if not math.isfinite(value):
        return "not a number" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    text = format(value, f".{significant}g")
    if "e" in text and 1e-9 <= abs(value) < 1e15:
        text = format(Decimal(text), "f")
    return text


def _grouped(value: float | int) -> str:
    """A count or quantity with thousands separators, no noise (``6405000.0`` -> ``6,405,000``)."""
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e15):
        return f"{int(value):,}"
    text = _plain(value)
    if "e" in text or not math.isfinite(value):
        return text
    whole, _dot, fraction = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{sign}{int(whole.lstrip('-') or 0):,}"
    return f"{grouped}.{fraction}" if fraction else grouped


def _decimals(value: float, places: int) -> str:
    if not math.isfinite(value) or abs(value) >= 1e15:  # beyond what a quantized Decimal holds
        return _plain(value)
    return formatting.fixed(value, places, separators=True)


def _duration(seconds: float) -> str:
    """``2.4e-05`` -> ``0.024 ms``, ``0.25`` -> ``250 ms``, ``5.0`` -> ``5 s``, ``5.266667`` -> ``5.27 s``,
    ``600`` -> ``600 s (10 min)``."""
    if not math.isfinite(seconds):
        return _plain(seconds)
    if seconds != 0 and abs(seconds) < 1:
        return f"{_plain(seconds * 1000, 6)} ms"
    text = f"{_plain(round(seconds, 2), 10)} s"  # 5.266667 -> 5.27 s: an officer reads to 10 ms
    if abs(seconds) >= 120:
        text += f" ({_plain(round(seconds / 60, 1), 6)} min)"
    return text


def _utc_time(value: Any) -> str | None:
    """A time figure (epoch seconds or ISO 8601 text) as ``YYYY-MM-DD HH:MM:SS.mmm UTC``; None
    when it does not read as one."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not (math.isfinite(value) and 0 <= value <= EPOCH_MAX):
                return None
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4:5] == "-":
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                return None  # a naive time is ambiguous: shown as written
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return f"{formatting.utc(moment)} UTC"


def _is_time(name: str) -> bool:
    return name in ("ts", "until", "at", "time") or name.endswith(("_ts", "_at", "_time"))


def _is_price(name: str) -> bool:
    if "bps" in name or "pips" in name or "spreads" in name or name.endswith(("_levels", "_tolerance")):
        return False
    return name in PRICE_NAMES or name.endswith("price") or name.startswith("mid_")


def _is_duration(name: str) -> bool:
    if "per_s" in name or "sqrt_s" in name:
        return False
    return name.endswith("_s") or "_s_" in name or name == "s" or "seconds" in name


def evidence_figure(name: str, value: Any, *, digits: int | None = None) -> str:
    """One evidence figure as a compliance officer reads it, its unit read from its ``name``
    (the detectors' vocabulary; see the module). ``digits``: the symbol's price digits (None:
    unknown, e.g. a symbol of a surveilled file, so prices to ten significant digits). Never
    raises and always returns text, whatever JSON value it is given (a list or an object is
    summarised: the JSON beside the table has it whole)."""
    try:
        return _evidence_figure(str(name), value, digits)
    except Exception:  # noqa: BLE001 - a screen must render whatever a detector wrote
        return str(value)


def _evidence_figure(name: str, value: Any, digits: int | None) -> str:
    key = name.lower()
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        shown = _utc_time(value) if _is_time(key) or value[:2] in ("19", "20") else None
        return shown or value
    if isinstance(value, list):
        return f"{len(value)} item{'' if len(value) == 1 else 's'} (see the JSON)"
    if isinstance(value, dict):
        return f"{len(value)} field{'' if len(value) == 1 else 's'} (see the JSON)"
    if not isinstance(value, int | float):
        return str(value)
    number = value
    if _is_time(key):
        return _utc_time(number) or _plain(float(number))
    if key.endswith("_ms") or key == "ms":
        return f"{_plain(float(number), 6)} ms"
    if "pips" in key:
        return f"{_decimals(float(number), 1)} pips"
    if key.endswith("_per_sqrt_s") and "bps" in key:
        return f"{_decimals(float(number), 2)} bps/√s"
    if "bps" in key:
        return f"{_decimals(float(number), 2)} bps"
    if "spreads" in key:
        return f"{_decimals(float(number), 2)} spreads"
    if "per_s" in key:
        return f"{_decimals(float(number), 2)} /s"
    if _is_duration(key):
        return _duration(float(number))
    if "share" in key or "fraction" in key:
        return f"{_decimals(float(number) * 100, 1)} %"
    if any(word in key for word in RATIO_WORDS) or key in ("z", "sigma") or key.endswith(("_z", "_sigma", "z_value")):
        return _decimals(float(number), 2)
    if "p_value" in key or "chance" in key:
        return _plain(float(number), 3)
    if _is_price(key):
        if digits is not None and math.isfinite(number) and abs(number) < 1e15:
            return formatting.price(number, max(0, min(int(digits), 10)))
        return _plain(float(number))
    return _grouped(number)


def _threshold_of(name: str, evidence: dict) -> tuple[str, str] | None:
    """The evidence's own threshold for the figure ``name``: (its key, how it bounds: min, max,
    threshold)."""
    for prefix in THRESHOLD_PREFIXES:
        if prefix + name in evidence:
            return prefix + name, prefix.rstrip("_")
    if f"{name}_threshold" in evidence:
        return f"{name}_threshold", "threshold"
    stem, _sep, unit = name.rpartition("_")
    if stem and f"{stem}_threshold_{unit}" in evidence:
        return f"{stem}_threshold_{unit}", "threshold"
    return None


def evidence_figures(evidence: Any, *, digits: int | None = None) -> list[tuple[str, str, str]]:
    """The evidence's top-level figures (numbers, flags, short text) for the table beside the
    JSON, each ``(name, figure, threshold)``: the figure formatted (``evidence_figure``), and
    its threshold as the evidence names it, in the figure's unit (``min 3.00``), or "" when the
    evidence names none. A threshold shown beside its figure is not listed again; the others
    (``cancel_within_s``: a parameter, not a bound on a figure) are rows of their own."""
    if not isinstance(evidence, dict):
        return []
    shown = {
        str(key): value
        for key, value in evidence.items()
        if value is None or (isinstance(value, int | float | str | bool) and len(str(value)) <= SHOWN_MAX_CHARS)
    }
    paired: dict[str, tuple[str, str]] = {}
    for key in shown:
        found = _threshold_of(key, shown)
        if found and found[0] != key and shown[found[0]] is not None:  # an unset bound stays a row of its own
            paired[key] = found
    thresholds = {threshold for threshold, _how in paired.values()}
    rows = []
    for key, value in shown.items():
        if key in thresholds and key not in paired:
            continue
        bound = ""
        if key in paired:
            threshold, how = paired[key]
            bound = f"{how} {evidence_figure(key, shown[threshold], digits=digits)}"
        rows.append((key.replace("_", " "), evidence_figure(key, value, digits=digits), bound))
    return rows
