"""The account book's peak equity, tracked lazily over runs of marks (``AccountBook.mark``),
equals the peak tracked at every change: the same value, first reached at the same mark."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from tests.trading.risk.helpers import EURUSD, GBPUSD, T0
from trading.risk.state import AccountBook

USDJPY = replace(EURUSD, symbol="USDJPY", quote_currency="JPY", tick_size=Decimal("0.001"))
SPECS = (EURUSD, GBPUSD, USDJPY)
BASE = {"EURUSD": Decimal("1.10000"), "GBPUSD": Decimal("1.27000"), "USDJPY": Decimal("150.000")}


class EagerBook(AccountBook):
    """The reference: the peak taken from ``equity()`` after every change, as before."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.eager_peak = self.equity()

    def _eager(self) -> None:
        equity = self.equity()
        if equity > self.eager_peak:
            self.eager_peak = equity

    def mark(self, symbol, price, now=None):
        super().mark(symbol, price, now)
        self._eager()

    def apply_fill(self, *args, **kw):
        out = super().apply_fill(*args, **kw)
        self._eager()
        return out

    def load_position(self, *args, **kw):
        super().load_position(*args, **kw)
        self._eager()


def _run(seed: int, steps: int = 600) -> None:
    rng = random.Random(seed)
    book = EagerBook(account_id=1, balance=Decimal(100000), now=T0)
    for spec in SPECS:
        book.add_instrument(spec)
    prices = dict(BASE)
    now = T0
    for step in range(steps):
        now += timedelta(minutes=rng.choice((1, 7, 90)))
        roll = rng.random()
        symbol = rng.choice(("EURUSD", "EURUSD", "EURUSD", "GBPUSD", "USDJPY"))
        if roll < 0.80:
            step_px = Decimal(rng.randint(-30, 30)) * (Decimal("0.001") if symbol == "USDJPY" else Decimal("0.00001"))
            prices[symbol] += step_px
            book.mark(symbol, prices[symbol], now)
        elif roll < 0.93:
            lots = Decimal(rng.choice((1, 2, 5, 10, 50))) / 100 * rng.choice((1, -1))
            book.apply_fill(symbol, lots, prices[symbol], Decimal("-0.5"))
        elif roll < 0.96:
            book.balance = book.balance + Decimal(rng.randint(-500, 500))
        elif roll < 0.98:
            book.realised_since_load = Decimal(0)
        else:
            # a read in the middle of a run: the peak as of now
            assert book.peak_equity == book.eager_peak, (seed, step)
            assert str(book.peak_equity) == str(book.eager_peak), (seed, step)
    assert book.peak_equity == book.eager_peak
    assert str(book.peak_equity) == str(book.eager_peak)
    assert book.drawdown() == max(Decimal(0), (book.eager_peak - book.equity()) / book.eager_peak)


def test_lazy_peak_matches_eager_tracking():
    for seed in range(40):
        _run(seed)


def test_peak_after_a_balance_change_is_taken_at_the_next_mark():
    book = AccountBook(account_id=1, balance=Decimal(1000), now=T0)
    book.add_instrument(EURUSD)
    book.balance = Decimal(1500)
    assert book.peak_equity == Decimal(1000)  # no change tracked yet: as before
    book.mark("GBPUSD", Decimal("1.27"), T0)
    assert book.peak_equity == Decimal(1500)


def test_long_position_peak_is_its_best_mark_in_the_run():
    book = AccountBook(account_id=1, balance=Decimal(1000), now=T0)
    book.add_instrument(EURUSD)
    book.apply_fill("EURUSD", Decimal("0.1"), Decimal("1.10000"))
    for px in ("1.10010", "1.10050", "1.10020", "1.09990"):
        book.mark("EURUSD", Decimal(px), T0)
    assert book.peak_equity == Decimal(1000) + Decimal("0.1") * 100000 * Decimal("0.00050")
    assert book.equity() == Decimal(1000) + Decimal("0.1") * 100000 * Decimal("-0.00010")
