"""Best-execution monitoring (MiFID II Art. 27, 2017/565 Art. 64(4), ESMA CFD Q&A on slippage).
Pure streaming handlers (see ``base.Detector``)."""

from __future__ import annotations

from math import sqrt

from compliance.surveillance.base import (
    MAX_EVIDENCE_ORDERS,
    Detector,
    SurveillanceAlert,
    bps,
    excess_score,
    iso,
    pip_size,
)


class BestExecutionDetector(Detector):
    """Per fill of an aggressive order: slippage beyond the touch quoted on arrival (ask to buy,
    bid to sell, the quote in force at the order's ``new`` in the quote stream), in pips. A
    detection when it exceeds ``max_adverse_pips`` and ``spread_multiple`` x the prevailing
    spread (the wider of the spreads on arrival and at the fill), and the fill is also beyond the
    touch quoted when it filled by ``fill_touch_fraction`` of that threshold (a fill at the touch
    of a market that ran away during the order's latency is the market, not the execution);
    and ``max_adverse_bps`` when a rule sets it. Evidence in pips, bps, spreads and money
    (quote currency: qty x price difference), with the latency. Fills of orders never seen
    arriving, or arriving before any quote, are not assessed. The engine merges a client's
    adverse fills in one symbol into one alert per run (episode)."""

    alert_type = "best_execution_slippage"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self._pips: dict[str, float] = {}
        self.quotes = engine.quotes

    def on_fill(self, t, fill, state, side):
        if state is None or not state.aggressive or state.arr_mid is None:
            return
        touch = state.arr_ask if side > 0 else state.arr_bid
        diff = side * (fill.price - touch)
        if diff <= 0:
            return
        symbol = fill.symbol
        pip = self._pips.get(symbol)
        if pip is None:
            pip = self._pips[symbol] = pip_size(symbol, self.p.pip_sizes)
        p = self.p
        slip_pips = diff / pip
        spread_pips = (state.arr_ask - state.arr_bid) / pip
        now = self.quotes.get(symbol)
        if now is not None:  # the spread prevailing when it filled, and the touch then
            now_spread = (now[1] - now[0]) / pip
            now_slip = side * (fill.price - (now[1] if side > 0 else now[0])) / pip
        else:
            now_spread, now_slip = spread_pips, slip_pips
        prevailing = max(spread_pips, now_spread)
        threshold = max(p.max_adverse_pips, p.spread_multiple * prevailing)
        if slip_pips <= threshold or now_slip <= p.fill_touch_fraction * threshold:
            return
        mid = state.arr_mid
        slip_bps = diff / mid * 1e4
        if p.max_adverse_bps is not None and slip_bps <= p.max_adverse_bps:
            return
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=fill.account,
                owner=fill.owner,
                symbol=symbol,
                order_ids=[fill.order_id],
                score=excess_score(slip_pips, threshold),
                start=state.ts_new,
                end=fill.ts,
                evidence={
                    "side": fill.side,
                    "qty": fill.qty,
                    "fill_price": fill.price,
                    "arrival_bid": state.arr_bid,
                    "arrival_ask": state.arr_ask,
                    "arrival_touch": touch,
                    "arrival_mid": mid,
                    "arrival_spread_pips": round(spread_pips, 3),
                    "spread_at_fill_pips": round(now_spread, 3),
                    "slippage_vs_touch_at_fill_pips": round(now_slip, 3),
                    "fill_touch_fraction": p.fill_touch_fraction,
                    "slippage_pips": round(slip_pips, 3),
                    "max_adverse_pips": p.max_adverse_pips,
                    "spread_multiple": p.spread_multiple,
                    "threshold_pips": round(threshold, 3),
                    "slippage_bps": bps(slip_bps),
                    "slippage_vs_mid_bps": bps(side * (fill.price - mid) / mid * 1e4),
                    "max_adverse_bps": p.max_adverse_bps,
                    "slippage_money": round(diff * fill.qty, 2),
                    "pip": pip,
                    "latency_ms": round((t - state.t_new) * 1e3, 3),
                    "order_type": "market" if state.market else "limit",
                    "reference": "touch quoted on arrival (ask to buy, bid to sell), from the quote stream",
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
    """Asymmetric slippage per symbol and client (owner key): of the aggressive orders whose
    first fill's price differs from the touch quoted on arrival (ask to buy, bid to sell) by more
    than ``zero_band_bps``, are adverse ones significantly more frequent than improvements? One
    order is one observation (``one_per_order``): a large order's later fills, further through
    the book, are the depth its size took, not another draw of the broker's policy. One-sided
    sign test: z = (adverse - n/2) / sqrt(n/4) against ``z_threshold``, on all the client's
    non-zero slippages so far, assessed at every ``min_fills``-th one (30, 60, 90...): the
    evidence grows with the client's history; the engine merges the detections into one alert."""

    alert_type = "asymmetric_slippage"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.tallies: dict[tuple[str, str], _Tally] = {}

    def on_fill(self, t, fill, state, side):
        if state is None or not state.aggressive or state.arr_mid is None:
            return
        if self.p.one_per_order and state.filled - fill.qty > 1e-9 * state.qty:
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
        if n < self.p.min_fills or n % self.p.min_fills:
            return
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
