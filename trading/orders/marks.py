"""Marks and risk snapshots: derived data the execution worker keeps in memory and writes on a
cadence, not per tick.

Mark-to-market, equity and drawdown live in the worker's memory (``trading.risk``). What the
dashboard and a restart need of them is written (``trading.orders.services.account_state_save``)
at most once per wall-clock interval per account whatever the feed's pace, with every fill
(inside the order's own write, so no mark or snapshot a fill depended on can be lost), and at
shutdown. ``AccountState`` is what the worker holds for one account between those writes. Pure:
no Django query, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradeops.core.frozen import slot_setters
from trading.models import Position


@dataclass(frozen=True, slots=True, init=False)
class Mark:
    """A position's mark price and the event time of the quote it came from."""

    price: Decimal
    at: datetime

    def __init__(self, price: Decimal, at: datetime) -> None:
        # built per tick: the slots set directly (``tradeops.core.frozen``), as the generated __init__ would
        _MARK_SET_PRICE(self, price)
        _MARK_SET_AT(self, at)


_MARK_SET_PRICE, _MARK_SET_AT = slot_setters(Mark, "price", "at")


@dataclass(frozen=True, slots=True)
class RiskFigures:
    """One account's equity, drawdown and trading state at ``as_of`` (event time): the values of
    its ``AccountRiskSnapshot`` row."""

    balance: Decimal
    equity: Decimal
    unrealised_pnl: Decimal
    peak_equity: Decimal
    drawdown: Decimal
    daily_pnl: Decimal
    used_margin: Decimal
    trading_state: str
    breaker_state: str
    as_of: datetime

    def row_values(self) -> dict:
        q6 = Decimal("1E-6")
        return {
            "balance": self.balance.quantize(q6),
            "equity": self.equity.quantize(q6),
            "unrealised_pnl": self.unrealised_pnl.quantize(q6),
            "peak_equity": self.peak_equity.quantize(q6),
            "drawdown": self.drawdown.quantize(q6),
            "daily_pnl": self.daily_pnl.quantize(q6),
            "used_margin": self.used_margin.quantize(q6),
            "trading_state": self.trading_state,
            "breaker_state": self.breaker_state,
            "as_of": self.as_of,
        }


class AccountState:
    """One account between writes: its position rows as last written (instrument id -> row; the
    base the PostgreSQL writer computes from and the database checks), the marks taken since
    (only the latest per position), and its latest risk figures.

    ``rows`` are only a hint: the PostgreSQL writer's statement refuses a row that moved since
    and the writer retries from the row as it stands; the ORM writer reads the rows itself."""

    def __init__(self, account_id: int, rows: dict[int, Position] | None = None):
        self.account_id = account_id
        self.rows: dict[int, Position] = dict(rows or {})
        self.pending: dict[int, Mark] = {}
        self.figures: RiskFigures | None = None
        self.figures_written = True

    def mark(self, instrument_id: int, mark: Mark) -> None:
        """A new mark for a position (kept until written; a newer one replaces it)."""
        self.pending[instrument_id] = mark

    def figures_set(self, figures: RiskFigures) -> None:
        self.figures = figures
        self.figures_written = False

    @property
    def dirty(self) -> bool:
        """Something to write."""
        return bool(self.pending) or not self.figures_written

    def written(self, positions: dict[int, Position], *, marks: dict[int, Mark], figures: RiskFigures | None) -> None:
        """A writer wrote ``positions`` with ``marks`` (and ``figures``): the rows are the base
        from now on, and the marks and figures written are no longer pending."""
        self.rows.update(positions)
        for instrument_id, mark in marks.items():
            if self.pending.get(instrument_id) is mark:
                del self.pending[instrument_id]
        if figures is not None and figures is self.figures:
            self.figures_written = True

    def reload(self, rows: dict[int, Position]) -> None:
        """The rows as read from the system of record (start, reconciliation, a refused write)."""
        self.rows = dict(rows)
