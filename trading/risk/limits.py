"""Risk limits as plain values, and how a per-account, per-instrument set resolves.

Pure. The execution worker loads ``trading.models.RiskLimit`` rows into a ``LimitBook`` at start
and whenever a limit changes; the risk checks read the book, never the database.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """One set of limits. ``None`` means "no limit" for that control.

    Money is in the account currency; exposure converts quote-currency notionals through the
    latest marks where a conversion pair is quoted (see ``AccountBook.to_account_currency``).
    """

    max_position_lots: Decimal | None = None  # |net + pending + order| per instrument
    max_gross_exposure: Decimal | None = None  # sum of |notional| over instruments
    max_net_exposure: Decimal | None = None  # |sum of signed notional|
    check_margin: bool = True  # order margin must fit in free margin
    daily_loss_limit: Decimal | None = None  # loss since the start of the UTC day (positive number)
    max_drawdown: Decimal | None = None  # fraction of peak equity, e.g. 0.10
    max_submits_per_second: int | None = None
    max_modifies_per_second: int | None = None
    max_open_orders: int | None = None
    duplicate_window_ms: int | None = 1000  # same symbol/side/size/price within this window is a duplicate


NO_LIMITS = RiskLimits(check_margin=False, duplicate_window_ms=None)
_FIELDS = tuple(f.name for f in fields(RiskLimits))


class LimitBook:
    """Limits keyed by (account_id or None, symbol or None); the most specific value wins, field by field.

    Resolution order for one field: (account, symbol), (None, symbol), (account, None),
    (None, None), then ``default``. Account-wide controls (exposure, loss, rates) are read from
    ``for_account``, which ignores instrument rows.
    """

    def __init__(self, default: RiskLimits | None = None):
        self.default = default or RiskLimits()
        self._rows: dict[tuple[int | None, str | None], dict] = {}
        self._cache: dict[tuple[int, str | None], RiskLimits] = {}

    def set(self, *, account_id: int | None, symbol: str | None, **values) -> None:
        unknown = set(values) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown limit fields: {sorted(unknown)}")
        self._rows[(account_id, symbol)] = {k: v for k, v in values.items() if v is not None}
        self._cache.clear()

    def clear(self) -> None:
        self._rows.clear()
        self._cache.clear()

    def for_instrument(self, account_id: int, symbol: str) -> RiskLimits:
        key = (account_id, symbol)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve(
                [(account_id, symbol), (None, symbol), (account_id, None), (None, None)]
            )
        return hit

    def for_account(self, account_id: int) -> RiskLimits:
        key = (account_id, None)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve([(account_id, None), (None, None)])
        return hit

    def _resolve(self, keys) -> RiskLimits:
        merged: dict = {}
        for key in reversed(keys):  # least specific first, overwritten by more specific rows
            merged.update(self._rows.get(key, {}))
        return replace(self.default, **merged)
