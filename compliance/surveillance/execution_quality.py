"""Best-execution monitoring (MiFID II Art. 27, 2017/565 Art. 64(4), ESMA CFD Q&A on slippage).
Pure streaming handlers (see ``base.Detector``)."""

from __future__ import annotations

from math import sqrt

from compliance.surveillance.base import MAX_EVIDENCE_ORDERS, Detector, SurveillanceAlert, bps, excess_score, iso


def pip_size(symbol: str, overrides: dict[str, float]) -> float:
    size = overrides.get(symbol)
    if size is not None:
        return size
    return 0.01 if symbol.endswith("JPY") else 0.0001


class BestExecutionDetector(Detector):
    """Per fill of an aggressive order: slippage = side x (fill - arrival mid), in bps, pips and
    money (quote currency, qty x price difference). Alert when adverse slippage exceeds
    ``max_adverse_bps``. The arrival mid is the mid when the order arrived (the order's
    ``new``); fills of orders never seen arriving are not assessed."""

    alert_type = "best_execution_slippage"

    def on_fill(self, t, fill, state, side):
        if state is None or not state.aggressive or state.arr_mid is None:
            return
        mid = state.arr_mid
        diff = side * (fill.price - mid)
        slip = diff / mid * 1e4
        limit = self.p.max_adverse_bps
        if slip <= limit:
            return
        pip = pip_size(fill.symbol, self.p.pip_sizes)
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=fill.account,
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=[fill.order_id],
                score=excess_score(slip, limit),
                start=state.ts_new,
                end=fill.ts,
                evidence={
                    "side": fill.side,
                    "qty": fill.qty,
                    "fill_price": fill.price,
                    "arrival_mid": mid,
                    "arrival_bid": state.arr_bid,
                    "arrival_ask": state.arr_ask,
                    "slippage_bps": bps(slip),
                    "max_adverse_bps": limit,
                    "slippage_pips": round(diff / pip, 3),
                    "slippage_money": round(diff * fill.qty, 2),
                    "latency_ms": round((t - state.t_new) * 1e3, 3),
                    "order_type": "market" if state.market else "limit",
                },
            )
        )


class _Tally:
    __slots__ = ("accounts", "adverse", "first_ts", "improved", "order_ids", "sum_adverse", "sum_improved", "zero")

    def __init__(self, ts):
        self.adverse = self.improved = self.zero = 0
        self.sum_adverse = self.sum_improved = 0.0
        self.order_ids: list[str] = []
        self.accounts: set[str] = set()
        self.first_ts = ts


class AsymmetricSlippageDetector(Detector):
    """Asymmetric slippage per symbol and client (owner key): of the aggressive fills whose
    price differs from the touch quoted on arrival (ask to buy, bid to sell) by more than
    ``zero_band_bps``, are adverse ones significantly more frequent than improvements? One-sided
    sign test: z = (adverse - n/2) / sqrt(n/4) against ``z_threshold``, assessed on every
    ``min_fills`` non-zero slippages (tumbling)."""

    alert_type = "asymmetric_slippage"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.tallies: dict[tuple[str, str], _Tally] = {}

    def on_fill(self, t, fill, state, side):
        if state is None or not state.aggressive or state.arr_mid is None:
            return
        touch = state.arr_ask if side > 0 else state.arr_bid
        slip = side * (fill.price - touch) / state.arr_mid * 1e4
        key = (fill.owner, fill.symbol)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = _Tally(fill.ts)
        band = self.p.zero_band_bps
        if slip > band:
            tally.adverse += 1
            tally.sum_adverse += slip
        elif slip < -band:
            tally.improved += 1
            tally.sum_improved -= slip
        else:
            tally.zero += 1
            return
        tally.accounts.add(fill.account)
        if len(tally.order_ids) < MAX_EVIDENCE_ORDERS:
            tally.order_ids.append(fill.order_id)
        n = tally.adverse + tally.improved
        if n < self.p.min_fills:
            return
        del self.tallies[key]
        z = (tally.adverse - n / 2) / sqrt(n / 4)
        if z < self.p.z_threshold:
            return
        accounts = sorted(tally.accounts)
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=",".join(accounts),
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=tally.order_ids,
                score=excess_score(z, self.p.z_threshold),
                start=tally.first_ts,
                end=fill.ts,
                evidence={
                    "adverse_fills": tally.adverse,
                    "improved_fills": tally.improved,
                    "at_quote_fills": tally.zero,
                    "mean_adverse_bps": bps(tally.sum_adverse / tally.adverse) if tally.adverse else 0.0,
                    "mean_improvement_bps": bps(tally.sum_improved / tally.improved) if tally.improved else 0.0,
                    "z": round(z, 3),
                    "z_threshold": self.p.z_threshold,
                    "min_fills": self.p.min_fills,
                    "reference": "touch quoted on arrival (ask to buy, bid to sell)",
                    "accounts": accounts,
                    "until": iso(fill.ts),
                },
            )
        )
