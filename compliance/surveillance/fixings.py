"""Close and fixing prints derived from the quote stream (pure), for the streaming stage.

The batch input (``manage.py surveil``) carries its close prints as ``close`` lines; the live
stream carries quotes, orders and fills only, so without this marking the close would never
run live. FX has no exchange close: what a client's order, a benchmark or a held position is
marked at is a **fixing**, the average of the market over a short window before a scheduled
time (the WM/Reuters 4 pm London fix averages the mid over a few minutes; a broker's hourly
marks and a book's fixings usually over the last seconds before the hour), and for gold
every half hour in the books this firm sees. So a print is derived per symbol at every
multiple of ``every_s`` from midnight UTC (plus ``offset_s``), as the **time-weighted average
mid** over the ``window_s`` before it (``window_s`` = 0: the last mid before it, a close).

``FixingClock.on_quote`` is fed every quote in event-time order and returns the prints whose
time the quote has passed, stamped at the fixing time, so the caller processes them before the
quote itself (the engine sees the market as it stood at the print). A fixing with no quote in
or before its window is skipped (nothing to mark against). The schedule is configurable per
symbol: an exact symbol wins over a ``PREFIX*`` pattern, which wins over ``*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from math import floor
from typing import Any

from compliance.surveillance.records import ClosePrint, Quote


@dataclass(frozen=True)
class FixingSpec:
    """A print every ``every_s`` seconds (from midnight UTC, shifted by ``offset_s``): the
    time-weighted average mid over the ``window_s`` before it (0: the last mid)."""

    every_s: float
    window_s: float = 0.0
    offset_s: float = 0.0

    def __post_init__(self):
        if self.every_s <= 0 or self.window_s < 0 or self.window_s >= self.every_s:
            raise ValueError(f"fixing: every_s > window_s >= 0 required, got {self}")


# Full hours for every symbol, gold each half hour; the average mid of the last 30 s before
# each (docs/compliance-monitor.md, "Marking the close on the live stream").
DEFAULT_FIXINGS: dict[str, FixingSpec] = {
    "*": FixingSpec(every_s=3600.0, window_s=30.0),
    "XAU*": FixingSpec(every_s=1800.0, window_s=30.0),
}


def fixing_spec(specs: Mapping[str, FixingSpec], symbol: str) -> FixingSpec | None:
    """The schedule for ``symbol``: exact name, then the longest matching ``PREFIX*``, then ``*``."""
    spec = specs.get(symbol)
    if spec is not None:
        return spec
    best = None
    for pattern, s in specs.items():
        prefix = pattern.endswith("*") and pattern != "*" and symbol.startswith(pattern[:-1])
        if prefix and (best is None or len(pattern) > len(best[0])):
            best = (pattern, s)
    return best[1] if best is not None else specs.get("*")


def fixings_from_settings(raw: Mapping[str, Mapping[str, Any]] | None) -> dict[str, FixingSpec]:
    """``{"XAU*": {"every_s": 1800, "window_s": 30}, ...}`` (settings or a rule) into specs."""
    if raw is None:
        return dict(DEFAULT_FIXINGS)
    return {k: FixingSpec(**{f: float(v) for f, v in spec.items()}) for k, spec in raw.items()}


class _SymbolFixing:
    __slots__ = ("spec", "next_t", "last_t", "last_mid", "area", "covered")

    def __init__(self, spec: FixingSpec, t: float):
        self.spec = spec
        self.next_t = self._after(t)
        self.last_t: float | None = None
        self.last_mid: float | None = None
        self.area = 0.0  # integral of the mid over the part of the window seen so far
        self.covered = 0.0  # seconds of the window covered by a known mid

    def _after(self, t: float) -> float:
        """The first fixing time strictly after ``t``."""
        s = self.spec
        return (floor((t - s.offset_s) / s.every_s) + 1) * s.every_s + s.offset_s

    def _accumulate(self, until: float) -> None:
        """Add the mid in force from the last quote up to ``until`` to the window's average."""
        if self.last_t is None:
            return
        lo = max(self.last_t, self.next_t - self.spec.window_s)
        hi = min(until, self.next_t)
        if hi > lo:
            self.area += self.last_mid * (hi - lo)
            self.covered += hi - lo

    def on_quote(self, t: float, mid: float, symbol: str, out: list) -> None:
        while t >= self.next_t:
            self._accumulate(self.next_t)
            # a close (or a window with no quote in it): the last mid before the print
            price = self.last_mid if self.spec.window_s <= 0 or self.covered <= 0 else self.area / self.covered
            if price is not None:
                out.append(ClosePrint(ts=datetime.fromtimestamp(self.next_t, tz=UTC), symbol=symbol, price=price))
            self.area = self.covered = 0.0
            if self.last_t is not None:
                self.last_t = self.next_t  # the mid stays in force into the next window
            self.next_t += self.spec.every_s
            if t >= self.next_t:  # a gap longer than the schedule (a weekend, an outage): its prints are skipped
                self.next_t = self._after(t)
        self._accumulate(t)
        self.last_t, self.last_mid = t, mid


class FixingClock:
    """Derives close and fixing prints from quotes (see the module docstring)."""

    def __init__(self, specs: Mapping[str, FixingSpec] | None = None):
        self.specs = dict(DEFAULT_FIXINGS if specs is None else specs)
        self.symbols: dict[str, _SymbolFixing | None] = {}

    def on_quote(self, quote: Quote) -> list[ClosePrint]:
        """The prints due before ``quote`` (event time), oldest first; then takes the quote in."""
        t = quote.ts.timestamp()
        state = self.symbols.get(quote.symbol, False)
        if state is False:
            spec = fixing_spec(self.specs, quote.symbol)
            state = self.symbols[quote.symbol] = _SymbolFixing(spec, t) if spec is not None else None
        if state is None:
            return []
        out: list[ClosePrint] = []
        state.on_quote(t, (quote.bid + quote.ask) / 2, quote.symbol, out)
        return out

    # ------------------------------------------------------------ state across restarts

    def dump(self) -> dict[str, list]:
        """Small JSON-able state: per symbol the next fixing, the last mid and the partial window."""
        return {
            sym: [s.next_t, s.last_t, s.last_mid, s.area, s.covered] for sym, s in self.symbols.items() if s is not None
        }

    def load(self, raw: Mapping[str, Any]) -> None:
        """Restore ``dump``'s output; an entry that does not read is dropped (the symbol starts
        afresh at its next quote and at worst one print is missed)."""
        for sym, entry in (raw or {}).items():
            spec = fixing_spec(self.specs, sym)
            try:
                next_t, last_t, last_mid, area, covered = entry
                state = _SymbolFixing(spec, float(next_t) - spec.every_s) if spec is not None else None
                if state is None:
                    continue
                state.next_t = float(next_t)
                state.last_t = None if last_t is None else float(last_t)
                state.last_mid = None if last_mid is None else float(last_mid)
                state.area, state.covered = float(area), float(covered)
            except (TypeError, ValueError):
                continue
            self.symbols[sym] = state
