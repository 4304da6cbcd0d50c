"""Detectors that read executions: wash trades, painting the tape, momentum ignition, marking
the close. Pure streaming handlers (see ``base.Detector``)."""

from __future__ import annotations

from collections import deque

from compliance.surveillance.base import Detector, SurveillanceAlert, bps, excess_score, iso


class _PairMatcher:
    """Pairs a fill with an earlier opposite fill of the same owner and symbol: close in time,
    similar size and price, different orders. Each fill is used in at most one pair."""

    __slots__ = ("include_same_account", "max_qty", "price_tol", "qty_tol", "recent", "window")

    def __init__(self, *, window_s, qty_tolerance, price_tolerance_bps, include_same_account=True, max_qty=None):
        self.window = window_s
        self.qty_tol = qty_tolerance
        self.price_tol = price_tolerance_bps
        self.include_same_account = include_same_account
        self.max_qty = max_qty
        self.recent: dict[tuple[str, str], deque] = {}

    def match(self, t, fill, side):
        """The earlier fill this one pairs with (and the pair's figures), or None."""
        if self.max_qty is not None and fill.qty > self.max_qty:
            return None
        key = (fill.owner, fill.symbol)
        dq = self.recent.get(key)
        if dq is None:
            dq = self.recent[key] = deque()
        edge = t - self.window
        while dq and dq[0][0] < edge:
            dq.popleft()
        qty, price = fill.qty, fill.price
        for entry in dq:
            other_t, other, other_side, used = entry
            if used or other_side == side or other.order_id == fill.order_id:
                continue
            if not self.include_same_account and other.account == fill.account:
                continue
            qty_gap = abs(other.qty - qty) / max(other.qty, qty)
            if qty_gap > self.qty_tol:
                continue
            price_gap = abs(other.price - price) / price * 1e4
            if price_gap > self.price_tol:
                continue
            entry[3] = True
            return other, t - other_t, qty_gap, price_gap
        dq.append([t, fill, side, False])
        return None


def _fill_evidence(fill):
    return {
        "order_id": fill.order_id,
        "account": fill.account,
        "side": fill.side,
        "qty": fill.qty,
        "price": fill.price,
        "ts": iso(fill.ts),
    }


class WashTradeDetector(Detector):
    """Wash trades (MAR Annex I 1(a); 2016/522 Annex II 1(a)): a buy and a sell of the same
    beneficial owner (one account, or linked accounts sharing the owner key) in the same symbol
    within ``window_s``, sizes within ``qty_tolerance`` and prices within ``price_tolerance_bps``:
    no change in beneficial ownership. One alert per matched pair."""

    alert_type = "wash_trade"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.matcher = _PairMatcher(
            window_s=params.window_s,
            qty_tolerance=params.qty_tolerance,
            price_tolerance_bps=params.price_tolerance_bps,
            include_same_account=params.include_same_account,
        )

    def on_fill(self, t, fill, state, side):
        found = self.matcher.match(t, fill, side)
        if found is None:
            return
        other, gap_s, qty_gap, price_gap = found
        p = self.p
        closeness = (
            (1 - gap_s / p.window_s)
            + (1 - qty_gap / p.qty_tolerance if p.qty_tolerance else 1.0)
            + (1 - price_gap / p.price_tolerance_bps if p.price_tolerance_bps else 1.0)
        ) / 3
        accounts = sorted({other.account, fill.account})
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=",".join(accounts),
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=[other.order_id, fill.order_id],
                score=0.5 + 0.5 * closeness,
                start=other.ts,
                end=fill.ts,
                evidence={
                    "legs": [_fill_evidence(other), _fill_evidence(fill)],
                    "accounts": accounts,
                    "seconds_apart": round(gap_s, 6),
                    "window_s": p.window_s,
                    "qty_gap": round(qty_gap, 4),
                    "qty_tolerance": p.qty_tolerance,
                    "price_gap_bps": bps(price_gap),
                    "price_tolerance_bps": p.price_tolerance_bps,
                },
            )
        )


class PaintingTheTapeDetector(Detector):
    """Painting the tape (MAR Annex I 1(a), 2016/522 Annex II 1(a)(iii)): at least ``min_pairs``
    small matched buy/sell pairs (each a wash pair of size <= ``max_qty``) by one owner in one
    symbol within ``window_s``: volume printed with no change of ownership."""

    alert_type = "painting_the_tape"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.matcher = _PairMatcher(
            window_s=params.pair_window_s,
            qty_tolerance=params.qty_tolerance,
            price_tolerance_bps=params.price_tolerance_bps,
            max_qty=params.max_qty,
        )
        self.pairs: dict[tuple[str, str], deque] = {}

    def on_fill(self, t, fill, state, side):
        found = self.matcher.match(t, fill, side)
        if found is None:
            return
        key = (fill.owner, fill.symbol)
        dq = self.pairs.get(key)
        if dq is None:
            dq = self.pairs[key] = deque()
        dq.append((t, found[0], fill))
        edge = t - self.p.window_s
        while dq[0][0] < edge:
            dq.popleft()
        if len(dq) < self.p.min_pairs:
            return
        pairs = list(dq)
        dq.clear()
        p = self.p
        volume = sum(a.qty + b.qty for _t, a, b in pairs)
        accounts = sorted({x.account for _t, a, b in pairs for x in (a, b)})
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=",".join(accounts),
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=[x.order_id for _t, a, b in pairs for x in (a, b)],
                score=excess_score(len(pairs), p.min_pairs),
                start=pairs[0][1].ts,
                end=fill.ts,
                evidence={
                    "matched_pairs": len(pairs),
                    "min_pairs": p.min_pairs,
                    "window_s": p.window_s,
                    "max_qty": p.max_qty,
                    "printed_volume": volume,
                    "net_position_change": round(
                        sum(
                            (a.qty if a.side == "buy" else -a.qty) + (b.qty if b.side == "buy" else -b.qty)
                            for _t, a, b in pairs
                        ),
                        6,
                    ),
                    "accounts": accounts,
                    "pairs": [[_fill_evidence(a), _fill_evidence(b)] for _t, a, b in pairs[:50]],
                },
            )
        )


class _Ignition:
    __slots__ = (
        "end_t",
        "end_ts",
        "fills",
        "order_ids",
        "peak_mid",
        "qty",
        "rev_ids",
        "rev_qty",
        "side",
        "start_mid",
        "start_ts",
    )


class MomentumIgnitionDetector(Detector):
    """Momentum ignition (2016/522 Annex II 1(b)): at least ``min_aggressive_orders`` aggressive
    orders on one side within ``burst_window_s``, the mid moves at least ``min_move_bps`` their
    way from the arrival mid of the first, and within ``reversal_window_s`` of the burst the same
    account trades the other way for at least ``min_reversal_fraction`` of the burst quantity."""

    alert_type = "momentum_ignition"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.recent: dict[tuple[str, str], deque] = {}
        self.ignitions: dict[tuple[str, str], _Ignition] = {}
        self.quotes = engine.quotes

    def on_fill(self, t, fill, state, side):
        p = self.p
        key = (fill.account, fill.symbol)
        ign = self.ignitions.get(key)
        if ign is not None and t - ign.end_t > p.reversal_window_s:
            del self.ignitions[key]
            ign = None
        quote = self.quotes.get(fill.symbol)
        mid = quote[2] if quote is not None else fill.price
        if ign is not None and side != ign.side:
            ign.rev_qty += fill.qty
            ign.rev_ids.append(fill.order_id)
            if ign.rev_qty >= p.min_reversal_fraction * ign.qty:
                del self.ignitions[key]
                if ign.side * (ign.peak_mid - mid) < 0:  # the mid kept going: use where it is now
                    ign.peak_mid = mid
                self._assess(fill, ign, t)
            return
        if state is None or not state.aggressive:
            return
        dq = self.recent.get(key)
        if dq is None:
            dq = self.recent[key] = deque()
        dq.append((t, fill, side, state))
        edge = t - p.burst_window_s
        while dq[0][0] < edge:
            dq.popleft()
        if ign is not None:  # same side as the running burst: extend it
            ign.qty += fill.qty
            ign.fills.append(fill)
            ign.order_ids.append(fill.order_id)
            ign.end_t = t
            ign.end_ts = fill.ts
            if side * (mid - ign.peak_mid) > 0:
                ign.peak_mid = mid
            return
        same = [e for e in dq if e[2] == side]
        if len({e[1].order_id for e in same}) < p.min_aggressive_orders:
            return
        first_state = same[0][3]
        ign = self.ignitions[key] = _Ignition()
        ign.side = side
        ign.start_mid = first_state.arr_mid if first_state.arr_mid is not None else same[0][1].price
        ign.start_ts = same[0][1].ts
        ign.end_t = t
        ign.end_ts = fill.ts
        ign.fills = [e[1] for e in same]
        ign.order_ids = [e[1].order_id for e in same]
        ign.qty = sum(e[1].qty for e in same)
        ign.peak_mid = mid if side * (mid - ign.start_mid) > 0 else ign.start_mid
        ign.rev_qty = 0.0
        ign.rev_ids = []
        dq.clear()

    def _assess(self, fill, ign, t):
        p = self.p
        move = ign.side * (ign.peak_mid - ign.start_mid) / ign.start_mid * 1e4
        if move < p.min_move_bps:
            return
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=fill.account,
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=ign.order_ids + ign.rev_ids,
                score=excess_score(move, p.min_move_bps),
                start=ign.start_ts,
                end=fill.ts,
                evidence={
                    "burst_side": "buy" if ign.side > 0 else "sell",
                    "burst_orders": len(set(ign.order_ids)),
                    "min_aggressive_orders": p.min_aggressive_orders,
                    "burst_qty": ign.qty,
                    "start_mid": ign.start_mid,
                    "peak_mid": ign.peak_mid,
                    "move_bps": bps(move),
                    "min_move_bps": p.min_move_bps,
                    "reversal_qty": ign.rev_qty,
                    "reversal_order_ids": ign.rev_ids,
                    "reversal_price": fill.price,
                    "reversal_after_burst_s": round(t - ign.end_t, 6),
                    "reversal_window_s": p.reversal_window_s,
                },
            )
        )


MID_SAMPLE_S = 1.0


class MarkingTheCloseDetector(Detector):
    """Marking the close (MAR Annex I 2(b), 2016/522 Annex II 1(c)): on a close or fixing print,
    an account whose aggressive trading in the last ``window_s`` was one-sided (at least
    ``min_orders`` orders and ``min_share`` of the firm's volume in the symbol), while the mid
    moved at least ``min_move_bps`` its way up to the print, in favour of a position the
    account already held before the window."""

    alert_type = "marking_the_close"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.fills: dict[str, deque] = {}
        self.mids: dict[str, deque] = {}
        self.positions = engine.positions

    def on_quote(self, t, quote):
        dq = self.mids.get(quote.symbol)
        if dq is None:
            dq = self.mids[quote.symbol] = deque()
        elif t - dq[-1][0] < MID_SAMPLE_S:  # a mid per second is plenty for a minutes-long window
            return
        dq.append((t, (quote.bid + quote.ask) * 0.5))
        edge = t - self.p.window_s
        # keep one mid from before the window: the mid in force when the window opened
        while len(dq) > 1 and dq[1][0] <= edge:
            dq.popleft()

    def on_fill(self, t, fill, state, side):
        dq = self.fills.get(fill.symbol)
        if dq is None:
            dq = self.fills[fill.symbol] = deque()
        dq.append((t, fill, side, state is not None and state.aggressive))
        edge = t - self.p.window_s
        while dq[0][0] < edge:
            dq.popleft()

    def on_close(self, t, close):
        p = self.p
        fills = self.fills.get(close.symbol)
        mids = self.mids.get(close.symbol)
        if not fills or not mids:
            return
        edge = t - p.window_s
        window = [f for f in fills if f[0] >= edge]
        fills.clear()
        while len(mids) > 1 and mids[1][0] <= edge:
            mids.popleft()
        start_mid = mids[0][1]
        # Shares are of the aggressive volume: that is the flow that moves a print (passive
        # market-maker fills in the window are counted out).
        total = sum(f[1].qty for f in window if f[3])
        by_account: dict[str, list] = {}
        for _ft, fill, side, aggressive in window:
            acc = by_account.setdefault(fill.account, [0.0, 0.0, set(), fill.owner, [], fill.ts, fill.ts, 0.0])
            acc[7] += side * fill.qty
            if aggressive:
                acc[0] += side * fill.qty
                acc[1] += fill.qty
                acc[2].add(fill.order_id)
            acc[4].append(fill.order_id)
            acc[6] = fill.ts
        for account, (net, qty, aggressive_ids, owner, ids, first_ts, _last_ts, net_all) in by_account.items():
            if net == 0 or len(aggressive_ids) < p.min_orders or total <= 0:
                continue
            direction = 1 if net > 0 else -1
            share = qty / total
            move = direction * (close.price - start_mid) / start_mid * 1e4
            held_before = self.positions.get((account, close.symbol), 0.0) - net_all
            if share < p.min_share or move < p.min_move_bps or held_before * direction <= 0:
                continue
            self.out.append(
                SurveillanceAlert(
                    self.alert_type,
                    account=account,
                    owner=owner,
                    symbol=close.symbol,
                    order_ids=ids,
                    score=excess_score(move, p.min_move_bps),
                    start=first_ts,
                    end=close.ts,
                    evidence={
                        "close_price": close.price,
                        "close_ts": iso(close.ts),
                        "mid_at_window_start": start_mid,
                        "move_bps": bps(move),
                        "min_move_bps": p.min_move_bps,
                        "window_s": p.window_s,
                        "aggressive_orders": len(aggressive_ids),
                        "min_orders": p.min_orders,
                        "net_aggressive_qty": net,
                        "share_of_aggressive_volume": round(share, 4),
                        "min_share": p.min_share,
                        "position_before_window": held_before,
                        "position_at_close": held_before + net_all,
                    },
                )
            )
