"""Detectors that read the order flow: spoofing and layering, order-to-trade ratio (RTS 9),
quote stuffing and ping orders. Pure streaming handlers (see ``base.Detector``)."""

from __future__ import annotations

from collections import deque
from math import exp, inf

import msgspec

from compliance.surveillance.base import (
    MAX_EVIDENCE_ORDERS,
    Detector,
    SurveillanceAlert,
    bps,
    excess_score,
    iso,
    lot_size,
)


def _spreads(state) -> float | None:
    """How far a resting order is behind the touch, in spreads quoted when it arrived."""
    if state.arr_ask is None or state.arr_bid is None or state.away_bps is None:
        return None
    spread_bps = (state.arr_ask - state.arr_bid) / ((state.arr_ask + state.arr_bid) * 0.5) * 1e4
    return round(state.away_bps / spread_bps, 3) if spread_bps > 0 else None


def _placed_depth_bps(state) -> float | None:
    """How far behind the touch quoted at its arrival an order went in (its placed price against
    the bid to buy, the ask to sell), in bps of the arrival mid; None without an arrival quote."""
    if state.arr_ask is None or state.arr_bid is None or state.placed_price is None or not state.arr_mid:
        return None
    if state.side > 0:
        return (state.arr_bid - state.placed_price) / state.arr_mid * 1e4
    return (state.placed_price - state.arr_ask) / state.arr_mid * 1e4


def _depth_groups(states, tolerance_bps: float) -> int | None:
    """How many depths behind the touch (``_placed_depth_bps``) the orders went in at: sorted, an
    order within ``tolerance_bps`` of its group's first is in that group. None when an order has
    no arrival quote (the depths are then unknown: the prices decide)."""
    depths = [_placed_depth_bps(s) for s in states]
    if any(d is None for d in depths):
        return None
    groups = 0
    first = None
    for d in sorted(depths):
        if first is None or d - first > tolerance_bps:
            groups += 1
            first = d
    return groups


def _record_end(fill_t: float, before_t: float | None) -> float:
    """Where the account's record before a trade ends: at the fill, or earlier at ``before_t``
    (the order's first partial fill, ``SpoofingParams.record_before_first_fill``)."""
    return fill_t if before_t is None else min(before_t, fill_t)


class SpoofingDetector(Detector):
    """Spoofing / layering (MAR Art. 12(2)(c), 2016/522 Annex II 1(e)-(g)).

    Episode: an account rests limit orders behind the touch on one side, gets a fill on the
    other side, then cancels the resting orders within ``cancel_within_s`` of that fill. The
    episode is assessed when its cancel window has passed: cancelled quantity at least
    ``min_size_ratio`` x the fill's quantity; orders on at least ``layering_min_levels`` price
    levels make it ``layering``, otherwise ``spoofing``. The account's own cancels in the
    ``cancel_within_s`` after the fill must also be at least ``baseline_multiple`` x its cancel
    rate over the ``baseline_s`` before the fill (its baseline; zero if it never cancels), so an
    account that cancels all day long is not alerted for cancelling after a fill. And the episode
    must be unlikely as a coincidence (``max_expected_by_chance``, see ``_chance``): an account
    that trades and cancels ordinary-sized orders all the time cancels one within seconds of one
    of its fills now and then, and that is not spoofing.

    Replaced or withdrawn (``replace_within_s``): a cancel is *replaced* when the account puts a
    new resting order in the same symbol on the same side near the same price within
    ``replace_within_s`` after it (a re-quote: the interest stays on the book); otherwise it is
    *withdrawn*. An episode whose cancelled quantity is mostly replaced is a re-quoter's routine
    and is not alerted; a busy account's episode that its ``cancel_within_s`` window does not
    alert is read once more on its withdrawals up to ``withdrawn_cancel_within_s`` after the
    fill, with half the chance budget (``withdrawn_max_expected_by_chance``); a quiet account's
    up to ``quiet_withdrawn_cancel_within_s``.
    """

    alert_type = "spoofing"
    emits = ("spoofing", "layering")  # the alert types it raises (a variant re-run replaces both)
    order_actions = frozenset({"new", "cancel"})

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.recent_fills: dict[tuple[str, str], deque] = {}
        # (fill's order id, fill_t) -> [deadline, fill, fill_t, fill_side, [(state, cancel_ts, cancel_t)],
        # first_t]: with ``episode_per_order`` the cancels after several partial fills of one order
        # are one episode, ``fill_t`` its latest fill and ``first_t`` its first (else the same)
        self.episodes: dict[tuple[str, float], list] = {}
        # the longest window an episode may have: a quiet account's, when that rule is on
        self._window = max(
            params.cancel_within_s,
            params.quiet_cancel_within_s or 0.0,
            params.withdrawn_cancel_within_s or 0.0,
            params.quiet_withdrawn_cancel_within_s or 0.0,
        )
        self._horizon = params.max_lead_s + self._window
        # an episode waits ``replace_within_s`` past its window: a last cancel's re-quote comes after it
        self._replace = params.replace_within_s is not None
        self._replace_s = params.replace_within_s or 0.0
        self._mark_all = self._replace and params.withdrawn_tests_count_withdrawals
        self._wait = self._window + (params.replace_within_s or 0.0)
        # a quiet account's bait may lead the fill by more than ``max_lead_s`` when the order that
        # filled went in within ``max_lead_s`` of it and waited in the queue (needs the quiet rule)
        self._by_arrival = params.quiet_lead_to_order_arrival and params.quiet_cancel_within_s is not None
        # the account's record is read before an episode's first fill: the cancels and fills kept
        # reach back ``baseline_s`` before the earliest first fill of the open episodes
        self._before_first = params.record_before_first_fill and params.episode_per_order
        # account -> its cancels (every symbol) as [event time, symbol, side, price, replaced], kept
        # for baseline_s + the wait (+ 2 s: an episode is assessed up to a second after its
        # deadline, see the engine's expiry); ``replaced`` is set by the account's next new order
        # in the symbol on that side near that price within ``replace_within_s``
        self.cancels: dict[str, deque] = {}
        self._cancel_horizon = params.baseline_s + self._wait + 2.0
        # (account, symbol) -> its last ``size_history_orders`` orders as (order id, qty), and the
        # fills are kept over the baseline window too (the chance test counts them)
        self.sizes: dict[tuple[str, str], deque] = {}
        self._chance = params.max_expected_by_chance is not None
        if self._chance:
            self._horizon = max(self._horizon, self._cancel_horizon)

    def on_fill(self, t, fill, state, side):
        key = state.key if state is not None else (fill.account, fill.symbol)
        dq = self.recent_fills.get(key)
        if dq is None:
            dq = self.recent_fills[key] = deque()
        # when the order that filled went in: a resting order waited in the queue since its
        # arrival (a limit re-priced through the touch keeps its first arrival, ``ts_new``)
        arrival = t
        if state is not None and not state.market:
            arrival = min(state.t_new, state.ts_new.timestamp())
        # an aggressive order (market, triggered stop, limit through the touch) took liquidity:
        # a cancel of the account's own resting order on that side next to it was executed
        aggressive = state is not None and (state.market or state.aggressive)
        dq.append((t, fill, side, arrival, aggressive))
        horizon = t - self._horizon
        if dq[0][0] < horizon:
            horizon = self._kept_from(horizon)
            while dq[0][0] < horizon:
                dq.popleft()

    def on_order(self, t, msg, state, side):  # new orders and cancels
        if msg.action == "new":
            if self._chance:
                key = state.key if state is not None else (msg.account, msg.symbol)
                dq = self.sizes.get(key)
                if dq is None:
                    dq = self.sizes[key] = deque(maxlen=self.p.size_history_orders)
                dq.append((msg.order_id, msg.qty))
            # Only an open episode's cancels need the flag (unless the withdrawals are counted
            # over the baseline too): a market maker re-quoting all day costs nothing otherwise.
            if (
                self._replace
                and (self.episodes or self._mark_all)
                and state is not None
                and not state.aggressive
                and not state.stop
            ):
                dq = self.cancels.get(state.account)
                if dq and dq[-1][0] >= t - self._replace_s:
                    self._mark_replaced(t, state, dq)
            return
        if self.p.baseline_multiple > 0 or self._chance:
            src = state if state is not None else msg  # what the engine knows of the order, else the message
            dq = self.cancels.get(src.account)
            if dq is None:
                dq = self.cancels[src.account] = deque()
            dq.append([t, src.symbol, side, src.price, False])
            horizon = t - self._cancel_horizon
            if dq[0][0] < horizon:
                horizon = self._kept_from(horizon)
                while dq[0][0] < horizon:
                    dq.popleft()
        if state is None or state.market:
            return
        p = self.p
        away = state.away_bps
        if away is None or away < p.min_away_bps or away > p.max_away_bps or state.filled >= state.qty:
            return
        dq = self.recent_fills.get(state.key)
        if not dq:
            return
        t_new = state.t_new
        by_arrival = self._by_arrival
        waited = None  # the latest fill of an order that went in within ``max_lead_s`` of this one
        for fill_t, fill, fill_side, arrival, _aggressive in reversed(dq):
            if fill_side == side or fill_t > t:
                continue
            if t - fill_t > self._window or fill_t < t_new:
                break
            if fill_t - t_new > p.max_lead_s:
                if by_arrival and waited is None and arrival - t_new <= p.max_lead_s:
                    waited = (fill_t, fill, fill_side)
                continue
            self._queue(fill_t, fill, fill_side, state, msg.ts, t)
            return
        if waited is not None:  # kept for a quiet account only (``_assess``)
            self._queue(*waited, state, msg.ts, t)

    def _queue(self, fill_t, fill, fill_side, state, ts, t) -> None:
        """Add a cancel to the episode of the fill it followed (with ``episode_per_order``, to the
        open episode of another partial fill of the same order when there is one)."""
        fill_key = (fill.order_id, fill_t)
        episode = self.episodes.get(fill_key)
        if episode is None and self.p.episode_per_order:
            oid = fill.order_id
            episode = next((e for k, e in self.episodes.items() if k[0] == oid and e[1].account == fill.account), None)
            if episode is not None and fill_t != episode[2]:
                if fill_t > episode[2]:  # read from the order's latest fill
                    episode[0] = max(episode[0], fill_t + self._wait)
                    episode[1], episode[2] = fill, fill_t
                episode[5] = min(episode[5], fill_t)
        if episode is None:
            episode = self.episodes[fill_key] = [fill_t + self._wait, fill, fill_t, fill_side, [], fill_t]
        episode[4].append((state, ts, t))

    def _kept_from(self, horizon: float) -> float:
        """How far back the account's cancels and fills are kept: ``horizon``, or further back while
        an open episode's record is read before its first fill (``record_before_first_fill``: an
        order may fill in parts over longer than the kept window's margin)."""
        if not self._before_first or not self.episodes:
            return horizon
        return min(horizon, min(e[5] for e in self.episodes.values()) - self.p.baseline_s)

    def windows_empty(self) -> bool:
        return not self.episodes

    def expire(self, t):
        if not self.episodes:
            return
        for key in [k for k, e in self.episodes.items() if e[0] < t]:
            self._assess(self.episodes.pop(key))

    def _assess(self, episode):
        p = self.p
        _deadline, fill, fill_t, _fill_side, cancelled, first_t = episode
        parts = 1
        if first_t < fill_t:  # one order's partial fills: its quantity filled over them
            same = [
                f
                for ft, f, _fs, *_ in self.recent_fills.get((fill.account, fill.symbol), ())
                if f.order_id == fill.order_id and first_t <= ft <= fill_t
            ]
            parts = len(same)
            fill = msgspec.structs.replace(fill, qty=sum(f.qty for f in same) or fill.qty)
        # the account's record before the trade: before the genuine order's first fill when its
        # cancels follow several partial fills and every cancel of the account between them was
        # a pull on the bait's side in the symbol (``record_before_first_fill``), else this fill
        before_t = fill_t
        if p.record_before_first_fill and first_t < fill_t and self._pulls_between(fill, first_t, fill_t, episode[3]):
            before_t = first_t
        window, quiet = self._window_for(fill.account, before_t)
        # a quiet account's longer readings (the lead to the genuine order's arrival, the
        # withdrawals up to ``quiet_withdrawn_cancel_within_s``) only for a one-way account
        extend = quiet is not None and quiet["quiet"]
        if extend and p.quiet_extensions_one_way:
            fills = self._bait_side_fills(fill, fill_t, episode[3], cancelled)
            quiet["bait_side_fills"] = fills
            extend = not fills
        waited = False  # an order placed more than ``max_lead_s`` before the fill is in the episode
        if self._by_arrival:
            lead = p.max_lead_s
            if extend:
                waited = any(first_t - s.t_new > lead for s, _ts, _t in cancelled)
            else:  # a busy account: the orders placed within ``max_lead_s`` of the (first) fill only
                cancelled = episode[4] = [c for c in cancelled if first_t - c[0].t_new <= lead]
                if not cancelled:
                    return
        replaced = self._replaced(fill.account, cancelled) if self._replace else None
        late = False
        if window < self._window:
            # only the cancels in the account's own window count, unless they alert nothing and it
            # withdrew (did not replace) orders after that window: then those withdrawals are
            # judged on the wider window (a quiet account's own, when that rule is on)
            inside = [c for c in cancelled if c[2] - fill_t <= window]
            figures = self._alertable(fill, fill_t, episode[3], inside, window, replaced, False, before_t=before_t)
            wide, second = p.withdrawn_cancel_within_s, not figures
            if extend:
                # a quiet account's withdrawals are read on its wider window even when the first
                # reading alerts: the later ones belong to the episode (its levels too); the
                # wider reading is kept when it alerts, else the first
                wide, second = p.quiet_withdrawn_cancel_within_s, True
            if second and replaced is not None and wide is not None:
                withdrawn = [c for c in cancelled if c[2] - fill_t <= wide and not replaced[id(c)]]
                if any(c[2] - fill_t > window for c in withdrawn):
                    later = self._alertable(
                        fill,
                        fill_t,
                        episode[3],
                        withdrawn,
                        wide,
                        replaced,
                        p.withdrawn_tests_count_withdrawals,
                        p.withdrawn_max_expected_by_chance,
                        before_t,
                    )
                    if later or not figures:
                        late, window, inside, figures = True, wide, withdrawn, later
            cancelled = inside
        else:
            figures = self._alertable(fill, fill_t, episode[3], cancelled, window, replaced, False, before_t=before_t)
        if not figures:
            return
        total, ratio, baseline, chance, replace = figures
        if p.levels_as_placed:  # the ladder the account built, not where it moved the orders since
            levels = sorted({s.placed_price for s, _ts, _t in cancelled})
        else:
            levels = sorted({s.price for s, _ts, _t in cancelled})
        kind = "layering" if len(levels) >= p.layering_min_levels else "spoofing"
        depths = None
        if p.spoof_one_depth_bps is not None and kind == "layering":
            depths = _depth_groups([s for s, _ts, _t in cancelled], p.spoof_one_depth_bps)
            if depths is not None and depths < p.layering_min_levels:
                kind = "spoofing"
        first_placed = min(s.t_new for s, _ts, _t in cancelled)
        placed_ts = min((s.ts_new for s, _ts, _t in cancelled))
        last_cancel = max(cancelled, key=lambda c: c[2])
        evidence = {
            "fill": {
                "order_id": fill.order_id,
                "side": fill.side,
                "qty": fill.qty,
                "price": fill.price,
                "ts": iso(fill.ts),
                "partial_fills": parts,
            },
            "cancelled_orders": [
                {
                    "order_id": s.order_id,
                    "side": "buy" if s.side > 0 else "sell",
                    "qty": s.qty,
                    "price": s.price,
                    "placed_price": s.placed_price,
                    "away_from_touch_bps": bps(s.away_bps),
                    "away_from_touch_spreads": _spreads(s),
                    "placed_depth_bps": bps(_placed_depth_bps(s)),
                    "placed": iso(s.ts_new),
                    "cancelled": iso(cts),
                    "cancel_after_fill_s": round(ct - fill_t, 6),
                }
                for s, cts, ct in cancelled[:MAX_EVIDENCE_ORDERS]
            ],
            "cancelled_qty": total,
            "size_ratio": round(ratio, 3),
            "min_size_ratio": p.min_size_ratio,
            "price_levels": len(levels),
            "layering_min_levels": p.layering_min_levels,
            "levels_as_placed": p.levels_as_placed,
            "depth_levels": depths,
            "spoof_one_depth_bps": p.spoof_one_depth_bps,
            "lead_before_fill_s": round(first_t - first_placed, 6),
            # the account's record (quiet count, baseline, chance) read up to this long before
            # the fill: the order's first partial fill (``record_before_first_fill``), else 0
            "record_before_fill_s": round(fill_t - before_t, 6),
            "max_lead_s": p.max_lead_s,
            "lead_to_order_arrival": waited,
            "cancel_within_s": window,
        }
        if quiet is not None:
            evidence["quiet_account"] = quiet
        if replace is not None:
            evidence["replaced"] = replace
            evidence["withdrawals_read"] = late
        if baseline is not None:
            evidence["cancel_baseline"] = baseline
        if chance is not None:
            evidence["chance"] = chance
        self.out.append(
            SurveillanceAlert(
                kind,
                account=fill.account,
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=[s.order_id for s, _ts, _t in cancelled] + [fill.order_id],
                score=excess_score(ratio, p.min_size_ratio),
                start=placed_ts,
                end=last_cancel[1],
                evidence=evidence,
            )
        )

    def _pulls_between(self, fill, first_t, fill_t, fill_side) -> bool:
        """Whether every cancel of the account from the order's first fill to its latest was of an
        order in the symbol on the other side than the fill (the bait's): the reaction being read.
        Any other cancel (the genuine order's side, another symbol) is the account's own business
        going on, its routine: then the record is read before the latest fill."""
        for c in self.cancels.get(fill.account, ()):
            if first_t <= c[0] <= fill_t and (c[1] != fill.symbol or c[2] == fill_side):
                return False
        return True

    def _alertable(self, fill, fill_t, fill_side, cancelled, window, replaced, withdrawals, budget=None, before_t=None):
        """(cancelled quantity, size ratio, baseline, chance, replace figures) when the episode
        read on ``window`` passes every test, else None. ``withdrawals``: the baseline and chance
        tests count the account's withdrawn cancels only; ``budget``: the chance test's limit
        (``max_expected_by_chance`` when None); ``before_t``: the account's record is read before
        it (the genuine order's first fill, see ``record_before_first_fill``; ``fill_t`` when None)."""
        p = self.p
        if not cancelled:
            return None
        total = sum(s.qty - s.filled for s, _ts, _t in cancelled)
        ratio = total / fill.qty
        if ratio < p.min_size_ratio:
            return None
        replace = None
        if replaced is not None:
            again = sum(c[0].qty - c[0].filled for c in cancelled if replaced[id(c)])
            share = again / total if total > 0 else 0.0
            replace = {
                "replaced_qty_share": round(share, 3),
                "replace_within_s": p.replace_within_s,
                "replace_max_bps": p.replace_max_bps,
                "max_replaced_share": p.max_replaced_share,
            }
            if share > p.max_replaced_share:  # the interest stayed on the book: a re-quote
                return None
        baseline = self._baseline(fill.account, fill_t, window, withdrawals, before_t)
        if baseline is not None and not baseline["passed"]:
            return None
        chance = self._chance_figures(fill, fill_t, fill_side, cancelled, window, withdrawals, before_t)
        if chance is not None and budget is not None and budget < chance["max_expected_by_chance"]:
            chance["max_expected_by_chance"] = budget
            chance["passed"] = chance["expected_by_chance"] <= budget
        if chance is not None and not chance["passed"]:
            return None
        return total, ratio, baseline, chance, replace

    def _mark_replaced(self, t, state, dq) -> None:
        """A new resting order re-quotes the account's latest unreplaced cancel (in ``dq``, its
        cancels) in the symbol on its side within ``replace_within_s`` before it, priced within
        ``replace_max_bps``."""
        price = state.price
        if price is None:
            return
        p = self.p
        edge = t - self._replace_s
        symbol, side = state.symbol, state.side
        for c in reversed(dq):
            if c[0] < edge:
                return
            if c[4] or c[1] != symbol or c[2] != side or c[3] is None:
                continue
            if abs(price - c[3]) <= c[3] * p.replace_max_bps * 1e-4:
                c[4] = True
                return

    def _replaced(self, account, cancelled) -> dict:
        """id(episode cancel) -> whether the account re-quoted it (see ``_mark_replaced``) or,
        with ``replace_by_execution``, executed it: an aggressive order of its own on that side
        in the symbol filled within ``replace_within_s`` before or after the cancel."""
        out = {}
        dq = self.cancels.get(account, ())
        executed = self.p.replace_by_execution
        for c in cancelled:
            s, _ts, ct = c
            hit = False
            for e in reversed(dq):
                if e[0] < ct:
                    break
                if e[0] == ct and e[1] == s.symbol and e[3] == s.price:
                    hit = e[4]
                    break
            if not hit and executed:
                hit = any(
                    aggressive and fs == s.side and abs(ft - ct) <= self._replace_s and f.order_id != s.order_id
                    for ft, f, fs, _arrival, aggressive in self.recent_fills.get((account, s.symbol), ())
                )
            out[id(c)] = hit
        return out

    def _bait_side_fills(self, fill, fill_t, fill_side, cancelled) -> int:
        """The account's fills of its other orders in the symbol on the side of the episode's
        cancelled orders, from the first one's placement to the fill (over the kept fills)."""
        own = {s.order_id for s, _ts, _t in cancelled}
        first = min(s.t_new for s, _ts, _t in cancelled)
        return sum(
            1
            for ft, f, fs, *_ in self.recent_fills.get((fill.account, fill.symbol), ())
            if fs != fill_side and first <= ft <= fill_t and f.order_id not in own
        )

    def _window_for(self, account, fill_t) -> tuple[float, dict | None]:
        """The cancel window the episode is assessed on: ``quiet_cancel_within_s`` for an account
        with at most ``quiet_max_cancels`` cancels in the ``baseline_s`` before the fill,
        ``cancel_within_s`` otherwise; and the figures that chose it (None when the rule is off)."""
        p = self.p
        if p.quiet_cancel_within_s is None:
            return p.cancel_within_s, None
        before, _after = self._cancels_before(account, fill_t, p.cancel_within_s)
        quiet = before <= p.quiet_max_cancels
        figures = {
            "cancels_before_fill": before,
            "quiet_max_cancels": p.quiet_max_cancels,
            "quiet": quiet,
            "quiet_cancel_within_s": p.quiet_cancel_within_s,
        }
        return (p.quiet_cancel_within_s if quiet else p.cancel_within_s), figures

    def _cancels_before(self, account, fill_t, window, withdrawals=False, before_t=None) -> tuple[int, int]:
        """The account's cancels in the ``baseline_s`` before the fill (before ``before_t`` when
        given: the genuine order's first fill) and in the ``window`` after it (``withdrawals``:
        only those it did not replace). Cancels between ``before_t`` and the fill count in neither:
        they follow the trade being read, they are not the account's routine before it."""
        p = self.p
        ref = _record_end(fill_t, before_t)
        before = after = 0
        start, end = ref - p.baseline_s, fill_t + window
        for e in self.cancels.get(account, ()):
            c = e[0]
            if c < start or (withdrawals and e[4]):
                continue
            if c < ref:
                before += 1
            elif fill_t <= c <= end:
                after += 1
        return before, after

    def _chance_figures(
        self, fill, fill_t, fill_side, cancelled, window, withdrawals=False, before_t=None
    ) -> dict | None:
        """How many episodes like this one the account's own routine would produce by chance
        over the ``baseline_s`` before the fill (before ``before_t`` when given, the order's first
        fill: its rate and the fills that were chances both) (None when the rule is off).

        Under the null, the account's cancels are a Poisson process unrelated to its fills, at
        its own rate over the baseline window; only those of orders at least as large as the
        episode's smallest cancelled order count (their share among the account's last
        ``size_history_orders`` orders in the symbol, the episode's own left out, smoothed
        (k + 1) / (n + 2) so that a short history is no evidence either way). Each of its fills in
        the symbol on the fill's side in the window, this one included, was a chance for at
        least ``len(cancelled)`` such cancels to fall in the ``window`` after it."""
        p = self.p
        if p.max_expected_by_chance is None:
            return None
        key = (fill.account, fill.symbol)
        before, _after = self._cancels_before(fill.account, fill_t, window, withdrawals, before_t)
        own = {s.order_id for s, _ts, _t in cancelled}
        own.add(fill.order_id)
        smallest = min(s.qty for s, _ts, _t in cancelled)
        history = [q for oid, q in self.sizes.get(key, ()) if oid not in own]
        share = (sum(1 for q in history if q >= smallest) + 1) / (len(history) + 2)
        # the fills that were chances: over the same ``baseline_s`` as the rate, up to the
        # reference time (the order's first fill, once for its partial fills, when read before it)
        ref = _record_end(fill_t, before_t)
        start = ref - p.baseline_s
        fills = sum(1 for ft, _f, fs, *_ in self.recent_fills.get(key, ()) if fs == fill_side and start <= ft <= ref)
        fills = max(fills, 1)
        rate = before / p.baseline_s
        mu = rate * share * window
        k = len(cancelled)
        term = exp(-mu)  # P(N = 0)
        below = 0.0
        for i in range(k):  # P(N < k)
            below += term
            term *= mu / (i + 1)
        expected = fills * max(0.0, 1.0 - below)
        return {
            "cancel_rate_per_s": round(rate, 6),
            "orders_compared": len(history),
            "share_at_least_as_large": round(share, 3),
            "fills_same_side": fills,
            "cancels": k,
            "expected_by_chance": round(expected, 4),
            "max_expected_by_chance": p.max_expected_by_chance,
            "passed": expected <= p.max_expected_by_chance,
        }

    def _baseline(self, account, fill_t, window, withdrawals=False, before_t=None) -> dict | None:
        """The account's cancels in the ``window`` after the fill against its own rate over the
        ``baseline_s`` before it (before ``before_t`` when given; its active stretch too) (None
        when the rule is off)."""
        p = self.p
        if p.baseline_multiple <= 0:
            return None
        before, after = self._cancels_before(account, fill_t, window, withdrawals, before_t)
        rate = after / window
        base = before / p.baseline_s
        figures = {
            "cancels_after_fill": after,
            "cancels_before_fill": before,
            "baseline_s": p.baseline_s,
        }
        if p.active_gap_s is not None:
            ref = _record_end(fill_t, before_t)
            n, span = self._active_stretch(account, ref, withdrawals)
            figures["active_stretch_cancels"] = n
            figures["active_stretch_s"] = round(span, 3)
            figures["active_gap_s"] = p.active_gap_s
            figures["active_min_cancels"] = p.active_min_cancels
            if n >= p.active_min_cancels:
                base = max(base, n / max(span, p.active_gap_s))
        figures["rate_multiple"] = round(rate / base, 3) if base > 0 else None
        figures["baseline_multiple"] = p.baseline_multiple
        figures["passed"] = rate >= p.baseline_multiple * base
        return figures

    def _active_stretch(self, account, fill_t, withdrawals=False) -> tuple[int, float]:
        """The account's cancels in the ``baseline_s`` before the fill that form its current
        stretch (walking back from the fill, none more than ``active_gap_s`` after the one
        before), and the stretch's length up to the fill."""
        p = self.p
        gap, start = p.active_gap_s, fill_t - p.baseline_s
        n, last = 0, fill_t
        for e in reversed(self.cancels.get(account, ())):
            c = e[0]
            if c >= fill_t or (withdrawals and e[4]):
                continue
            if c < start or last - c > gap:
                break
            n, last = n + 1, c
        return n, fill_t - last


REPORT_EVERY_S = 600.0  # a breach that goes on is reported again this often (it extends one alert)


class _OtrKey:
    """Rolling RTS 9 tallies of one account and instrument: one entry per slot in the period.

    The open slot (``cur``) is counted on its own; ``sums`` covers the closed slots in ``slots``
    and takes the open one in when it closes (``close_slot``), so a message costs a few
    increments of the open slot and nothing else."""

    __slots__ = (
        "breach",
        "cur",
        "cur_slot",
        "first_ts",
        "last_ts",
        "n_buy",
        "n_sell",
        "order_ids",
        "owner",
        "quote_t",
        "quotes",
        "slot_end",
        "slots",
        "sums",
    )

    def __init__(self, owner):
        self.owner = owner
        # [slot, messages, volume, executed order ids, executed volume, first ts, seconds quoted two-sided]
        self.slots: deque = deque()
        self.cur = None  # the open slot (the last one in ``slots``), or None
        self.cur_slot = None
        self.slot_end = -inf  # event time at which the open slot ends (a cheap "same slot?" test)
        self.sums = [0, 0.0, 0, 0.0]  # messages, volume, executed orders, executed volume of the closed slots
        self.breach: dict | None = None  # the breach under way: start, figures at its peak
        self.order_ids: deque = deque(maxlen=MAX_EVIDENCE_ORDERS)
        self.first_ts = None
        self.last_ts = None
        # The account's live orders at competitive prices (order id -> +1 buy / -1 sell), how
        # many on each side, and the event time its two-sided time was last counted up to.
        self.quotes: dict[str, int] = {}
        self.n_buy = 0
        self.n_sell = 0
        self.quote_t = None

    def quote_update(self, t, order_id, side, competitive) -> None:
        """Count the time since the last update as quoted if both sides were live, then set
        whether ``order_id`` is a competitive quote now (the open slot takes the time)."""
        if self.n_buy and self.n_sell and self.quote_t is not None and self.cur is not None:
            self.cur[6] += t - self.quote_t
        self.quote_t = t
        quotes = self.quotes
        was = quotes.pop(order_id, 0)
        if was > 0:
            self.n_buy -= 1
        elif was < 0:
            self.n_sell -= 1
        if competitive:
            quotes[order_id] = side
            if side > 0:
                self.n_buy += 1
            else:
                self.n_sell += 1

    def totals(self) -> list:
        """Messages, volume, executed orders and executed volume over every slot in the window."""
        cur = self.cur
        if cur is None:
            return self.sums
        m, v, n, e = self.sums
        return [m + cur[1], v + cur[2], n + len(cur[3]), e + cur[4]]

    def close_slot(self) -> None:
        cur = self.cur
        if cur is not None:
            sums = self.sums
            sums[0] += cur[1]
            sums[1] += cur[2]
            sums[2] += len(cur[3])
            sums[3] += cur[4]
            self.cur = None

    def drop_before(self, edge) -> None:
        slots, sums = self.slots, self.sums
        while slots and slots[0][0] <= edge:
            old = slots.popleft()
            if old is self.cur:  # still open: not in the sums
                self.cur = None
                continue
            sums[0] -= old[1]
            sums[1] -= old[2]
            sums[2] -= len(old[3])
            sums[3] -= old[4]


class OrderToTradeDetector(Detector):
    """Excessive order-to-trade ratio (RTS 9, Delegated Regulation 2017/566 Art. 3 and Annex).

    Per account and instrument over a rolling ``period_s``: count ratio = orders / transactions
    - 1, volume ratio = order volume / executed volume - 1. Orders are submissions,
    modifications and cancellations (cancellations with a reason in ``excluded_cancel_reasons``
    do not count); transactions are orders fully or partly executed. With no transaction the
    count ratio is the number of orders. Assessed at each ``slot_s`` step with at least
    ``min_messages`` orders and ``min_history_s`` of activity in the window; a breach must also
    hold without the ``sustained_excluding_slots`` busiest slots (with nothing executed outside
    them, the volume ratio there is read as the count ratio is: the number of orders; see
    ``no_execution_volume_as_count``). An account that quoted both
    sides at competitive prices for ``market_making_min_share`` of its time in the window runs
    a market-making strategy (MiFID II Art. 17(4)): its re-pricing is not an excessive ratio.
    A breach is reported when it starts, every ``REPORT_EVERY_S`` while it lasts and, with its
    peak figures, when it ends: the engine merges them into one alert."""

    alert_type = "excessive_order_to_trade"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.keys: dict[tuple[str, str], _OtrKey] = {}
        self._excluded = frozenset(params.excluded_cancel_reasons)
        self._slot_s = params.slot_s
        self._n_slots = max(1, int(round(params.period_s / params.slot_s)))
        self._last_sweep = -inf
        self._mm = params.market_making_min_share is not None
        self._mm_spreads = params.market_making_max_spreads

    def _competitive(self, state) -> bool:
        """A passive limit order priced within ``market_making_max_spreads`` of its side of the
        touch, in the spread quoted when it was priced (``away_bps`` is measured against that
        quote too), or better than the touch: a quote to be hit. An IOC or FOK (a finite ``until``)
        never rests on the book: it is no quote."""
        if state is None or state.aggressive or state.stop or state.away_bps is None or state.until != inf:
            return False
        away = state.away_bps
        if away <= 0:
            return True
        quote = self.engine.quotes.get(state.symbol)
        if quote is None:
            return False
        bid, ask, mid = quote
        return ask > bid and away <= self._mm_spreads * (ask - bid) / mid * 1e4

    def _roll(self, slot, key, owner, ts):
        """The key's slot for this instant, opening it (and assessing the window) if new."""
        k = self.keys.get(key)
        if k is None:
            k = self.keys[key] = _OtrKey(owner)
            k.first_ts = ts
        if k.cur_slot != slot:
            k.close_slot()
            if k.slots:
                self._assess(key, k, slot)
            k.cur = [slot, 0, 0.0, set(), 0.0, ts, 0.0]
            k.cur_slot = slot
            k.slot_end = (slot + 1) * self._slot_s
            k.slots.append(k.cur)
            k.drop_before(slot - self._n_slots)
        return k

    def on_order(self, t, msg, state, side):
        action = msg.action
        key = state.key if state is not None else (msg.account, msg.symbol)
        if action == "cancel" and msg.reason in self._excluded:
            k = self.keys.get(key)
            if k is not None and msg.order_id in k.quotes:
                k.quote_update(t, msg.order_id, side, False)
            return
        k = self.keys.get(key)
        if k is None or t >= k.slot_end:  # (event time never goes back: the engine sees to it)
            k = self._roll(int(t // self._slot_s), key, msg.owner, msg.ts)
        k.last_ts = msg.ts
        if self._mm:
            k.quote_update(t, msg.order_id, side, action != "cancel" and self._competitive(state))
        cur = k.cur
        cur[1] += 1
        if action != "cancel":
            cur[2] += msg.qty
            if action == "new":
                k.order_ids.append(msg.order_id)

    def on_fill(self, t, fill, state, side):
        key = state.key if state is not None else (fill.account, fill.symbol)
        k = self.keys.get(key)
        if k is None or t >= k.slot_end:
            k = self._roll(int(t // self._slot_s), key, fill.owner, fill.ts)
        k.last_ts = fill.ts
        if self._mm and (state is None or state.filled >= state.qty * 0.999999999):  # filled: off the book
            k.quote_update(t, fill.order_id, side, False)
        cur = k.cur
        cur[3].add(fill.order_id)
        cur[4] += fill.qty

    def on_evict(self, t, state):
        """A live order the engine dropped (past its age or count bound): no longer a quote."""
        k = self.keys.get(state.key)
        if k is not None and state.order_id in k.quotes:
            k.quote_update(t, state.order_id, state.side, False)

    def windows_empty(self) -> bool:
        return not self.keys  # a sweep then only moves _last_sweep

    def expire(self, t):
        # Windows drain when an account goes quiet: re-assess the keys in breach once a slot.
        slot = int(t // self._slot_s)
        if slot == self._last_sweep:
            return
        self._last_sweep = slot
        for key, k in list(self.keys.items()):
            if k.breach is not None:
                k.drop_before(slot - self._n_slots)
                self._assess(key, k, slot)
            elif not k.slots or k.slots[-1][0] <= slot - self._n_slots:
                del self.keys[key]

    def finish(self):
        for key, k in self.keys.items():
            k.close_slot()
            if k.slots:  # the last slot has not been assessed yet
                self._assess(key, k, k.slots[-1][0])
            if k.breach is not None:
                self._report(key, k, k.breach, ended=True)
                k.breach = None

    @staticmethod
    def _ratios(sums, skip=()):
        """Ratios over the window (``sums``), optionally without some slots. Transactions are
        counted per slot (an order executed in two slots counts in both: rare, and in the
        account's favour)."""
        messages, volume, n_tx, exec_volume = sums
        for slot in skip:
            messages -= slot[1]
            volume -= slot[2]
            n_tx -= len(slot[3])
            exec_volume -= slot[4]
        exec_volume = exec_volume if exec_volume > 1e-6 else 0.0  # running sums: no float dust
        count_ratio = messages / n_tx - 1 if n_tx else messages
        volume_ratio = volume / exec_volume - 1 if exec_volume else None
        return int(messages), volume, n_tx, exec_volume, count_ratio, volume_ratio

    def _breached(self, count_ratio, volume_ratio):
        p = self.p
        count = count_ratio > p.max_count_ratio
        volume = volume_ratio is not None and volume_ratio > p.max_volume_ratio
        return count, volume

    def _assess(self, key, k, now_slot):
        p = self.p
        slots = k.slots
        if not slots:
            messages = 0
        else:
            totals = k.totals()
            messages, volume, n_tx, exec_volume, count_ratio, volume_ratio = self._ratios(totals)
        breach = False
        quoted = None
        if messages >= p.min_messages and (now_slot - slots[0][0]) * self._slot_s >= p.min_history_s:
            count, vol = self._breached(count_ratio, volume_ratio)
            if count or vol:
                busiest = sorted(slots, key=lambda s: s[1])[-int(p.sustained_excluding_slots) :]
                _m, _v, _n, _e, c2, v2 = self._ratios(totals, skip=busiest if p.sustained_excluding_slots else ())
                count2, vol2 = self._breached(c2, v2)
                if v2 is None and p.no_execution_volume_as_count:
                    # Nothing executed outside the busiest slots: the volume ratio there is read as
                    # RTS 9's no-transaction count ratio is (the number of orders).
                    vol2 = count2
                breach = (count and count2) or (vol and vol2)
                if breach and self._mm:
                    quoted = self._two_sided_share(k, now_slot)
                    breach = quoted < p.market_making_min_share
        if breach:
            figures = {
                "orders": messages,
                "transactions": n_tx,
                "order_volume": volume,
                "executed_volume": exec_volume,
                "count_ratio": round(count_ratio, 3),
                "volume_ratio": None if volume_ratio is None else round(volume_ratio, 3),
                "breached": [n for n, b in (("count", count), ("volume", vol)) if b],
                "two_sided_share": None if quoted is None else round(quoted, 3),
            }
            if k.breach is None:
                k.breach = {"start_ts": slots[0][5], "peak": figures, "end_ts": k.last_ts, "reported": now_slot}
                self._report(key, k, k.breach, ended=False)
            else:
                if count_ratio > k.breach["peak"]["count_ratio"]:
                    k.breach["peak"] = figures
                k.breach["end_ts"] = k.last_ts
                if (now_slot - k.breach["reported"]) * self._slot_s >= REPORT_EVERY_S:  # still going on
                    k.breach["reported"] = now_slot
                    self._report(key, k, k.breach, ended=False)
        elif k.breach is not None:
            self._report(key, k, k.breach, ended=True)
            k.breach = None

    def _two_sided_share(self, k, now_slot) -> float:
        """The share of the window, from the account's first activity in it to ``now_slot``,
        during which it held competitive quotes on both sides (counted up to its last event)."""
        slots = k.slots
        span = max(self._slot_s, (now_slot - slots[0][0]) * self._slot_s)
        return min(1.0, sum(s[6] for s in slots) / span)

    def _report(self, key, k, breach, *, ended):
        p = self.p
        f = breach["peak"]
        vr = f["volume_ratio"]
        score = max(
            excess_score(f["count_ratio"], p.max_count_ratio),
            excess_score(vr, p.max_volume_ratio) if vr is not None else 0.0,
        )
        account, symbol = key
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=account,
                owner=k.owner,
                symbol=symbol,
                order_ids=list(k.order_ids),
                score=score,
                start=breach["start_ts"],
                end=breach["end_ts"],
                evidence={
                    **f,
                    "max_count_ratio": p.max_count_ratio,
                    "max_volume_ratio": p.max_volume_ratio,
                    "min_messages": p.min_messages,
                    "min_history_s": p.min_history_s,
                    "sustained_excluding_slots": p.sustained_excluding_slots,
                    "market_making_min_share": p.market_making_min_share,
                    "market_making_max_spreads": p.market_making_max_spreads,
                    "period_s": p.period_s,
                    "rolling_slot_s": p.slot_s,
                    "breach": "ended" if ended else "started",
                    "definition": "RTS 9: orders / transactions - 1 (orders when no transaction), rolling period",
                },
            )
        )


class _Burst:
    __slots__ = (
        "baseline_rate",
        "fills",
        "last_t",
        "last_ts",
        "messages",
        "order_ids",
        "owner",
        "peak",
        "peak_long",
        "start_ts",
        "symbols",
        "total_end",
    )


class _Account:
    __slots__ = ("burst", "fills", "first_t", "pending", "total", "window")

    def __init__(self, t):
        self.window: deque = deque()
        # Event times of the account's fills in the last ``long_window_s`` while no burst is open:
        # a burst takes in the window's fills with its messages (``window_fills``).
        self.fills: deque = deque()
        self.first_t = t
        self.total = 0
        self.burst: _Burst | None = None
        # Bursts of an account with no history before them, awaiting its rate after them.
        self.pending: list[_Burst] = []


class QuoteStuffingDetector(Detector):
    """Quote stuffing (2016/522 Annex II 1(d)): an account's message rate bursts to at least
    ``baseline_multiple`` x its own long-run rate and ``min_messages_over_baseline`` per
    ``window_s`` (``min_messages`` while the account has no baseline yet: without its own history
    only a burst large in absolute terms is far above anything), with at most
    ``max_fill_ratio`` executions per message (the fills of the window that opened the burst
    count with its messages: ``window_fills``). Assessed when the burst ends. With
    ``baseline_after_burst``, an account with no history before its burst that sent at least
    ``min_messages_over_baseline`` is judged, ``baseline_min_s`` after the burst, against its
    rate in those seconds: a burst out of nowhere into silence is far above the account's own
    rate; one that goes on quoting at a tenth of the burst's rate is its normal business."""

    alert_type = "quote_stuffing"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.accounts: dict[str, _Account] = {}
        self.open_bursts: set[str] = set()
        self.pending_accounts: set[str] = set()  # accounts with bursts awaiting their rate after
        self._window = params.window_s
        self._min = min(params.min_messages, params.min_messages_over_baseline)  # opens a burst
        self._long = params.long_window_s is not None and params.long_window_s > params.window_s
        self._span = params.long_window_s if self._long else params.window_s

    def on_order(self, t, msg, state, side):
        acc = self.accounts.get(msg.account)
        if acc is None:
            acc = self.accounts[msg.account] = _Account(t)
        if acc.pending:
            self._judge_pending(msg.account, acc, t)
        acc.total += 1
        burst = acc.burst
        if burst is not None and t - burst.last_t > self._window:
            acc.burst = None
            acc.window.clear()  # the burst's messages: not counted again for the next one
            acc.fills.clear()
            self._assess(msg.account, burst)
            burst = None
        # ``acc.window`` holds the account's messages of the last ``long_window_s`` (or
        # ``window_s`` when it is off or shorter): the short window is its tail.
        dq = acc.window
        dq.append((t, msg))
        edge = t - self._span
        while dq[0][0] <= edge:
            dq.popleft()
        n_long = len(dq)
        if self._long:
            edge = t - self._window
            n = n_long
            for i, e in enumerate(reversed(dq)):
                if e[0] <= edge:
                    n = i
                    break
        else:
            n = n_long
        if burst is not None:
            burst.messages += 1
            burst.last_t = t
            burst.last_ts = msg.ts
            burst.total_end = acc.total
            if n > burst.peak:
                burst.peak = n
            if n_long > burst.peak_long:
                burst.peak_long = n_long
            if len(burst.order_ids) < MAX_EVIDENCE_ORDERS:
                burst.order_ids.append(msg.order_id)
            burst.symbols.add(msg.symbol)
        elif n >= self._min or (self._long and n_long >= self.p.long_min_messages):
            # A burst opens on either scale: the short window's floor, or the long window's (a
            # burst sustained over several seconds); it takes in the window that opened it.
            opened = list(dq)[-n:] if n >= self._min else list(dq)
            m = len(opened)
            burst = acc.burst = _Burst()
            first_t = opened[0][0]
            span = first_t - acc.first_t
            before = acc.total - m
            burst.baseline_rate = before / span if span >= self.p.baseline_min_s else None
            burst.messages = m
            burst.peak = n
            burst.peak_long = n_long if self._long else 0
            # The fills of the window that opened it are the burst's too (the fill ratio is over
            # every message it takes in, not only those after it reached its floor).
            burst.fills = sum(1 for ft in acc.fills if ft >= first_t) if self.p.window_fills else 0
            acc.fills.clear()
            burst.last_t = t
            burst.last_ts = msg.ts
            burst.total_end = acc.total
            burst.start_ts = opened[0][1].ts
            burst.owner = msg.owner
            burst.order_ids = [e[1].order_id for e in opened[:MAX_EVIDENCE_ORDERS]]
            burst.symbols = {e[1].symbol for e in opened}
            self.open_bursts.add(msg.account)

    def on_fill(self, t, fill, state, side):
        acc = self.accounts.get(fill.account)
        if acc is None:
            return
        if acc.burst is not None:
            acc.burst.fills += 1
        elif self.p.window_fills:
            fills = acc.fills
            fills.append(t)
            edge = t - self._span
            while fills[0] <= edge:
                fills.popleft()

    def windows_empty(self) -> bool:
        return not self.open_bursts and not self.pending_accounts

    def _judge_pending(self, account, acc, t) -> None:
        """Judge the account's bursts whose ``baseline_min_s`` after them has passed by ``t``
        (``inf``: the end of input, the account's messages so far), against its rate after them."""
        after_s = self.p.baseline_min_s
        while acc.pending and t > acc.pending[0].last_t + after_s:
            b = acc.pending.pop(0)
            self._alert(account, b, (acc.total - b.total_end) / after_s, after=True)
        if not acc.pending:
            self.pending_accounts.discard(account)

    def expire(self, t):
        for account in list(self.pending_accounts):
            self._judge_pending(account, self.accounts[account], t)
        open_bursts = self.open_bursts
        if not open_bursts:
            return
        for account in list(open_bursts):
            acc = self.accounts[account]
            burst = acc.burst
            if burst is None:
                open_bursts.discard(account)
            elif t - burst.last_t > self._window:
                acc.burst = None
                acc.window.clear()
                acc.fills.clear()
                open_bursts.discard(account)
                self._assess(account, burst)

    def finish(self):
        for account, acc in self.accounts.items():
            if acc.burst is not None:
                burst, acc.burst = acc.burst, None
                self._assess(account, burst)
            if acc.pending:
                self._judge_pending(account, acc, inf)

    def _scales(self, b, rate):
        """The window scales on which burst ``b`` is far above ``rate`` (the account's own
        messages a second; None: no baseline, the absolute floor of the short window alone) and
        reaches that scale's floor: a list of (peak, window_s, floor)."""
        p = self.p
        out = []
        short_floor = p.min_messages if rate is None else self._min
        if b.peak >= short_floor and (rate is None or b.peak / p.window_s >= p.baseline_multiple * rate):
            out.append((b.peak, p.window_s, short_floor))
        if (
            rate is not None
            and self._long
            and b.peak_long >= p.long_min_messages
            and b.peak_long / p.long_window_s >= p.baseline_multiple * rate
        ):
            out.append((b.peak_long, p.long_window_s, p.long_min_messages))
        return out

    def _assess(self, account, b):
        p = self.p
        fill_ratio = b.fills / b.messages
        if fill_ratio > p.max_fill_ratio:
            return
        if self._scales(b, b.baseline_rate):
            self._alert(account, b, None)
            return
        if (
            b.baseline_rate is None
            and p.baseline_after_burst
            and (b.peak >= p.min_messages_over_baseline or (self._long and b.peak_long >= p.long_min_messages))
        ):
            self.accounts[account].pending.append(b)  # judged against the account's rate after it
            self.pending_accounts.add(account)

    def _alert(self, account, b, rate_after, *, after=False):
        p = self.p
        if after:
            # The account's rate after the burst is its own rate: the short window's floor is
            # then the one for an account with a history.
            scales = self._scales(b, rate_after)
            if not scales:
                return
        else:
            scales = self._scales(b, b.baseline_rate)
        peak, window_s, floor = max(scales, key=lambda sc: sc[0] / sc[2])
        fill_ratio = b.fills / b.messages
        symbols = sorted(b.symbols)
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=account,
                owner=b.owner,
                symbol=symbols[0] if len(symbols) == 1 else ",".join(symbols),
                order_ids=b.order_ids,
                score=excess_score(peak, floor),
                start=b.start_ts,
                end=b.last_ts,
                evidence={
                    "messages": b.messages,
                    "executions": b.fills,
                    "fill_ratio": round(fill_ratio, 4),
                    "max_fill_ratio": p.max_fill_ratio,
                    "peak_messages_per_window": b.peak,
                    "min_messages": p.min_messages if b.baseline_rate is None and not after else self._min,
                    "window_s": p.window_s,
                    "peak_messages_per_long_window": b.peak_long if self._long else None,
                    "min_messages_long_window": p.long_min_messages if self._long else None,
                    "long_window_s": p.long_window_s if self._long else None,
                    "alerted_on_window_s": window_s,
                    "baseline_messages_per_s": None if b.baseline_rate is None else round(b.baseline_rate, 4),
                    "messages_per_s_after": None if rate_after is None else round(rate_after, 4),
                    "baseline_multiple": p.baseline_multiple,
                    "symbols": symbols,
                },
            )
        )


def _keep(dq: deque, keep) -> None:
    """Keep, in place and in order, only the entries of ``dq`` that ``keep`` accepts."""
    kept = [e for e in dq if keep(e)]
    if len(kept) < len(dq):
        dq.clear()
        dq.extend(kept)


class PingOrdersDetector(Detector):
    """Ping orders: at least ``min_count`` small orders (at most ``max_lots`` lots) cancelled
    within ``max_life_s`` of entry (a partial fill first still counts), inside ``window_s``,
    per account and symbol, sent at least ``min_median_gap_s`` apart (median; a faster run is a
    message burst, quote stuffing's to judge). An IOC or FOK leaves the book at entry when it
    does not fill (the venue kills the rest, whether or not the feed sends a cancel): it counts
    at entry with a life of zero once ``ioc_settle_s`` has passed without its full fill (a fully
    filled one is dropped); a feed that does send the cancel of its rest counts that cancel instead.
    A fleeting order (withdrawn within ``fleeting_life_s``: no one could have traded with it, so
    it was never a genuine offer) counts over the longer ``fleeting_window_s``: a slow prober
    sending one every minute or two. Orders of such a
    run keep extending it; the engine merges the run into one alert."""

    alert_type = "ping_orders"
    order_actions = frozenset({"new", "cancel"})

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.pings: dict[tuple[str, str], deque] = {}
        self._lots: dict[str, float] = {}
        # Per account and symbol, the event times of its new orders and cancels in the last second
        # (only while ``burst_messages`` is set): a message burst's orders are not pings.
        self.recent: dict[tuple[str, str], deque] = {}

    def _small(self, state) -> bool:
        p = self.p
        if p.max_qty is not None:
            return state.qty <= p.max_qty
        lot = self._lots.get(state.symbol)
        if lot is None:
            lot = self._lots[state.symbol] = lot_size(state.symbol, p.lot_sizes)
        return state.qty <= p.max_lots * lot

    def _in_burst(self, t, key) -> bool:
        """Note a new order or cancel of ``key`` at ``t``; True when the key sent at least
        ``burst_messages`` of them in the second up to and including it (a message burst). The
        burst's first messages, counted before it reached that many, are its messages too: the
        pings entered or pulled in that second are dropped."""
        recent = self.recent.get(key)
        if recent is None:
            recent = self.recent[key] = deque()
        recent.append(t)
        edge = t - 1.0
        while recent[0] <= edge:
            recent.popleft()
        if len(recent) < self.p.burst_messages:
            return False
        dq = self.pings.get(key)
        if dq:
            _keep(dq, lambda e: e[0] <= edge and e[1].t_new <= edge)
        return True

    def on_order(self, t, msg, state, side):  # new IOC/FOK and cancels
        if state is None:
            return
        p = self.p
        if p.burst_messages is not None and self._in_burst(t, state.key):
            return
        immediate = msg.order_type in ("ioc", "fok")
        if msg.action == "new":
            if not immediate or not self._small(state):
                return
            life = 0.0  # on the book for no time: it trades at once or not at all
        else:
            dq = self.pings.get(state.key)
            if immediate and dq:  # the feed's cancel of an IOC's rest: it counts as a cancel, once
                _keep(dq, lambda e: e[1] is not state)
            life = t - state.t_new
            if life > p.max_life_s or state.filled >= state.qty or not self._small(state):
                return
        if p.max_spreads_behind is not None:
            # A probe is priced where it can trade (at or through the touch, inside the spread,
            # or within a spread of it: quotes move that much in a ping's life); one parked two
            # spreads or more behind the touch on entry cannot find hidden liquidity: it is a
            # fleeting quote (order-to-trade's to judge), not a ping.
            behind = _spreads(state)
            if behind is not None and behind >= p.max_spreads_behind:
                return
        key = state.key
        dq = self.pings.get(key)
        if dq is None:
            dq = self.pings[key] = deque()
        dq.append((t, state, msg.ts, life))
        edge = t - max(p.window_s, p.fleeting_window_s)
        while dq[0][0] < edge:
            dq.popleft()
        recent = t - p.window_s
        # An IOC entry (life 0 at its own entry time) is settled once ``ioc_settle_s`` has passed:
        # fully filled, it found what it sought and was no ping; until then it is not counted.
        settle = t - p.ioc_settle_s
        entries, found = [], []
        for e in dq:
            if e[3] == 0.0 and e[0] == e[1].t_new:  # an IOC/FOK, counted at entry
                if e[0] > settle:
                    continue
                if e[1].filled >= e[1].qty:
                    found.append(e)
                    continue
            if e[0] >= recent or e[3] <= p.fleeting_life_s:  # only a fleeting order counts that far back
                entries.append(e)
        if found:
            dropped = {id(e) for e in found}
            _keep(dq, lambda e: id(e) not in dropped)
        if len(entries) < p.min_count:
            return
        news = sorted(b[1].t_new - a[1].t_new for a, b in zip(entries, entries[1:], strict=False))
        median_gap = news[len(news) // 2]
        if median_gap < p.min_median_gap_s:
            return
        span = entries[-1][1].t_new - entries[0][1].t_new
        rate = len(entries) / span if span > 0 else inf
        taken = {id(e) for e in entries}
        _keep(dq, lambda e: id(e) not in taken)
        lives = [e[3] for e in entries]
        mean_life = sum(lives) / len(lives)
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=msg.account,
                owner=msg.owner,
                symbol=msg.symbol,
                order_ids=[e[1].order_id for e in entries],
                score=excess_score(len(entries), p.min_count) * 0.5 + 0.5 * (1 - mean_life / p.max_life_s),
                start=entries[0][1].ts_new,
                end=entries[-1][2],
                evidence={
                    "small_orders_cancelled": len(entries),
                    "min_count": p.min_count,
                    "window_s": p.window_s,
                    "max_lots": p.max_lots if p.max_qty is None else None,
                    "max_qty": p.max_qty,
                    "max_life_s": p.max_life_s,
                    "mean_life_s": round(mean_life, 6),
                    "orders_per_s": round(rate, 4),
                    "median_gap_s": round(median_gap, 6),
                    "min_median_gap_s": p.min_median_gap_s,
                    "partly_filled": sum(1 for e in entries if e[1].filled > 0),
                    "orders": [
                        {"order_id": e[1].order_id, "qty": e[1].qty, "price": e[1].price, "life_s": round(e[3], 6)}
                        for e in entries[:50]
                    ],
                },
            )
        )
