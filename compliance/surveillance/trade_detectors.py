"""Detectors that read executions: wash trades, painting the tape, momentum ignition, marking
the close. Pure streaming handlers (see ``base.Detector``)."""

from __future__ import annotations

from collections import deque
from math import exp, inf, log, log1p

from compliance.surveillance.base import Detector, SurveillanceAlert, bps, excess_score, iso, lot_size
from compliance.surveillance.params import (
    CLOSE_GATE,
    MOMENTUM_GATE,
    MOMENTUM_GATE_OTC,
    PARENT_SLICE_SIZE_CV,
    PaintingTheTapeParams,
    WashTradeParams,
)


def _fill_evidence(fill):
    return {
        "order_id": fill.order_id,
        "account": fill.account,
        "owner": fill.owner,
        "side": fill.side,
        "qty": fill.qty,
        "price": fill.price,
        "ts": iso(fill.ts),
    }


class _Run:
    __slots__ = (
        "accounts",
        "collusive",
        "crossed",
        "emitted",
        "filled",
        "large_todo",
        "last_t",
        "owner",
        "pairs",
        "series_at",
        "series_checked",
        "series_qty",
        "small",
        "sole_at",
        "small_todo",
        "symbol",
    )

    def __init__(self, owner, symbol, collusive):
        self.owner = owner
        self.symbol = symbol
        self.collusive = collusive
        self.pairs: list = []  # (earlier fill, later fill, seconds apart, qty gap, price gap bps)
        self.accounts: dict[str, None] = {}
        self.last_t = 0.0
        self.emitted: set[int] = set()  # indexes of the pairs already reported
        # Indexes of the colluding pairs whose legs crossed each other, one resting (see
        # ``WashTradeParams.collusion_crosses``).
        self.crossed: list[int] = []
        # Each leg order's whole filled volume (all its fills, paired or not: the venue may fill
        # it in slices and pair only some), from its fills still in the window when it first
        # became a leg and every fill of it since (``_PairRuns.add``): the order offset test.
        self.filled: dict[str, float] = {}
        # The owning detector's view of the pairs, kept as they come (no rescans of a long run):
        self.small: list[int] = []  # indexes of the small pairs (painting's size)
        self.small_todo: list[int] = []  # small pairs not reported yet
        self.large_todo: list[int] = []  # other pairs not reported yet
        # A cache, not state (rebuilt from ``pairs`` after a restore): how many pairs the run
        # had when it first was a series of one ticket (None: not yet), and up to which length
        # its prefixes were checked (see ``_PairDetector._series``).
        self.series_at: int | None = None
        self.series_checked = 0
        self.series_qty = 0.0  # the ticket: the median pair of orders' size when it became one
        # How many pairs the run had when it first was its accounts' whole trading in the symbol
        # with enough small pairs of orders (``PaintingTheTapeParams.sole_trading_fewer_pairs``;
        # None: not yet). State: the tallies it was read on are trimmed as time passes.
        self.sole_at: int | None = None


class _PairRuns:
    """Matched pairs and their runs, per subject (owner, or the two owners of a colluding pair)
    and symbol. A pair: a fill and an earlier opposite fill in the same symbol, on another
    account of the same owner (or the same account with ``include_same_account``), or, with
    ``collusion``, on an account of another owner when both legs were aggressive, or when one rested
    and the other met it at one instant and price (``collusion_crosses``); close in time
    (``window_s``), size (``qty_tolerance``) and price (``price_tolerance_bps``, or two spreads;
    for one owner's two legs, when the market moved between them, as a large first leg's own
    impact moves it, the round trip's cost against the mid each leg traded at: see ``add``).
    Each fill is used once; of several earlier fills that fit, the nearest in time
    (``pair_nearest``). Pairs of one subject within ``run_gap_s`` of each other make a run;
    ``expire`` hands closed runs to ``on_run``."""

    def __init__(self, p, on_run, quotes, on_pair=None):
        self.on_pair = on_pair
        self.quotes = quotes
        self.spreads = p.price_tolerance_spreads
        # (account, symbol) -> (time, order id) of its aggressive fills: the exclusive share is
        # read by orders, so a large order the broker fills in slices counts once.
        self.collusion_tally: dict[tuple[str, str], deque] = {}
        self.window = p.window_s
        self.qty_tol = p.qty_tolerance
        self.price_tol = p.price_tolerance_bps
        self.same_account = p.include_same_account
        self.collusion = p.collusion
        self.run_gap = p.run_gap_s
        self.nearest = p.pair_nearest
        self.crosses = p.collusion_crosses
        self.on_run = on_run
        self.recent: dict[str, deque] = {}  # symbol -> [t, fill, side, aggressive, used, mid at the fill]
        self.runs: dict[tuple[str, str], _Run] = {}
        # order id -> the open runs it is a leg of (derived from ``runs``: their ``filled``).
        self.legs: dict[str, list[_Run]] = {}

    def add(self, t, fill, side, aggressive):
        leg_of = self.legs.get(fill.order_id)
        if leg_of:
            for run in leg_of:  # a further fill of a leg order (a slice)
                run.filled[fill.order_id] += fill.qty
        dq = self.recent.get(fill.symbol)
        if dq is None:
            dq = self.recent[fill.symbol] = deque()
        edge = t - self.window
        while dq and dq[0][0] < edge:
            dq.popleft()
        qty, price, owner, account = fill.qty, fill.price, fill.owner, fill.account
        if aggressive and self.collusion:
            tally = self.collusion_tally.get((account, fill.symbol))
            if tally is None:
                tally = self.collusion_tally[(account, fill.symbol)] = deque()
            tally.append((t, fill.order_id))
            edge_c = t - 4 * self.run_gap
            while tally[0][0] < edge_c:
                tally.popleft()
        tolerance = self.price_tol
        quote = self.quotes.get(fill.symbol)
        mid = quote[2] if quote is not None and quote[2] > 0 else None
        if self.spreads and mid is not None:
            tolerance = max(tolerance, self.spreads * (quote[1] - quote[0]) / mid * 1e4)
        match = None
        for entry in dq:
            other_t, other, other_side, other_aggressive, used, other_mid = entry
            if used or other_side == side or other.order_id == fill.order_id:
                continue
            if other.owner == owner:
                if other.account == account and not self.same_account:
                    if abs(other.qty - qty) <= self.qty_tol * max(other.qty, qty):
                        # The account reverses its own trade of seconds ago: that round trip is
                        # its own (an account's scalp, not a wash), and neither leg is left to
                        # pair with another account, as when an owner's two accounts trade the
                        # same way at once and each turns its own trade round.
                        entry[4] = True
                        return
                    continue
                collusive = False
            elif self.collusion and other.account != account and aggressive and other_aggressive:
                collusive = True
            elif (
                self.collusion
                and self.crosses
                and other.account != account
                and aggressive != other_aggressive
                and t - other_t <= CROSS_S
                and other.price == price
            ):
                collusive = "crossed"  # the two sides of one execution: a resting order met
            else:
                continue
            # With ``pair_nearest`` the last fit in the (time-ordered) window wins: the leg answers
            # the trade just before it, not a stranger's same-size trade a few seconds older.
            # Without it the oldest is taken and later entries matter as own round trips only.
            if match is not None and not self.nearest:
                continue
            qty_gap = abs(other.qty - qty) / max(other.qty, qty)
            if qty_gap > self.qty_tol:
                continue
            price_gap = abs(other.price - price) / price * 1e4
            if price_gap > tolerance:
                if collusive or mid is None or other_mid is None:
                    continue
                # The market moved between an owner's two legs (a large first leg moves it
                # itself): the round trip is still one when each leg traded at the market of its
                # moment, so what is held to the tolerance is its cost against the mids the legs
                # met (the buy's premium over its mid plus the sell's discount under its own).
                # Not between distinct owners: there a cross at one agreed price is the only
                # sign of arrangement, and two strangers each trading at the market are chance.
                price_gap = abs((price - mid) - (other.price - other_mid)) / price * 1e4
                if price_gap > tolerance:
                    continue
            match = (entry, other_t, other, qty_gap, price_gap, collusive)
        if match is None:
            dq.append([t, fill, side, aggressive, False, mid])
            return
        entry, other_t, other, qty_gap, price_gap, collusive = match
        entry[4] = True
        self._pair(t, other, fill, t - other_t, qty_gap, price_gap, collusive)

    def _pair(self, t, a, b, gap, qty_gap, price_gap, collusive):
        if collusive:
            subject = "+".join(sorted((a.owner, b.owner)))
            key = ("+".join(sorted((a.account, b.account))), a.symbol)
        else:
            subject = a.owner
            key = (subject, a.symbol)
        run = self.runs.get(key)
        if run is not None and t - run.last_t > self.run_gap:
            self._close(key)
            run = None
        if run is None:
            run = self.runs[key] = _Run(subject, a.symbol, bool(collusive))
        run.pairs.append((a, b, gap, qty_gap, price_gap))
        if collusive == "crossed":
            run.crossed.append(len(run.pairs) - 1)
        run.accounts[a.account] = None
        run.accounts[b.account] = None
        run.last_t = t
        for leg, now in ((a, 0.0), (b, b.qty)):  # b: the fill being added, not in the window yet
            oid = leg.order_id
            if oid not in run.filled:
                run.filled[oid] = now + sum(e[1].qty for e in self.recent.get(a.symbol, ()) if e[1].order_id == oid)
                self.legs.setdefault(oid, []).append(run)
        if self.on_pair is not None:
            self.on_pair(run)

    def _close(self, key):
        run = self.runs.pop(key)
        for oid in run.filled:
            leg_of = self.legs.get(oid)
            if leg_of is not None:
                leg_of[:] = [r for r in leg_of if r is not run]
                if not leg_of:
                    del self.legs[oid]
        self.on_run(run)

    def expire(self, t):
        if not self.runs:
            return
        for key in [k for k, r in self.runs.items() if t - r.last_t > self.run_gap]:
            self._close(key)

    def finish(self):
        for key in list(self.runs):
            self._close(key)


def sigma_bps(engine, symbol, start, end, horizon) -> float | None:
    """The mid's volatility in bps per square-root second over [start, end), from its changes
    over ``horizon``-second steps of the engine's per-second mid path (quote-to-quote noise,
    such as a spread that changes on every quote, does not inflate a horizon of tens of
    seconds); None on too short a path."""
    path = engine.mid_paths.get(symbol)
    if not path:
        return None
    var = 0.0
    steps = 0
    mark = None  # (time, mid) at the last step
    for pt, pmid in path:
        if pt >= end:
            break
        if pt < start:
            continue
        if mark is None:
            mark = (pt, pmid)
        elif pt - mark[0] >= horizon:
            r = (pmid - mark[1]) / mark[1] * 1e4
            var += r * r / (pt - mark[0])
            steps += 1
            mark = (pt, pmid)
    return (var / steps) ** 0.5 if steps >= 4 else None


# Two fills this close in time at one price are the two sides of one execution (a cross on a
# venue), not two trades that the pairing found alike.
CROSS_S = 0.001


def _median(values):
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


class _PairDetector(Detector):
    """Common part of wash trades and painting the tape: both read the same runs of matched
    pairs (matching by the wash-trade parameters). A pair under ``max_lots`` lots is small;
    a run with at least ``min_pairs`` small pairs is painting the tape (its small pairs), and so
    is a run that is a series of one ticket (``_series``: all its pairs, whatever their size);
    every other pair is a wash trade. Painting is reported as soon as the run is painting, wash
    when the run ends (``run_gap_s`` without a further pair: until then it may still become a
    series); with ``series_size_ratio`` None, large pairs are reported at once (the rule
    before)."""

    def __init__(self, params, engine):
        super().__init__(params, engine)
        wash = params if isinstance(params, WashTradeParams) else engine.default_params["wash_trade"]
        self.wash = wash
        self.paint = params if isinstance(params, PaintingTheTapeParams) else engine.default_params["painting_the_tape"]
        self.runs = _PairRuns(wash, self._on_run, engine.quotes, self._on_pair)

    def on_fill(self, t, fill, state, side):
        self.runs.add(t, fill, side, state is not None and state.aggressive)

    def windows_empty(self) -> bool:
        return not self.runs.runs and not self.runs.legs

    def expire(self, t):
        self.runs.expire(t)

    def finish(self):
        self.runs.finish()

    def _lots(self, fill):
        return self._qty_lots(fill.qty, fill.symbol)

    def _qty_lots(self, qty, symbol):
        paint = self.paint
        if paint.max_qty is not None:
            return qty / paint.max_qty
        return qty / lot_size(symbol, paint.lot_sizes)

    def _small_qty(self, qty, symbol) -> bool:
        """Painting's size: under ``max_lots`` lots (or at most ``max_qty``)."""
        if not self.paint.enabled:
            return False
        lots = self._qty_lots(qty, symbol)
        return lots <= 1.0 if self.paint.max_qty is not None else lots < self.paint.max_lots

    def _small(self, pair) -> bool:
        return self._small_qty(pair[0].qty, pair[0].symbol)

    def _small_count(self, run) -> int:
        return len(run.small)

    def _painting_count(self, run) -> bool:
        """Whether the run has painting's count of small pairs: ``min_pairs``, or fewer by
        ``sole_trading_fewer_pairs`` once the run was its accounts' whole trading (``_sole``)."""
        paint = self.paint
        if len(run.small) >= paint.min_pairs:
            return True
        return run.sole_at is not None and paint.sole_trading_fewer_pairs is not None

    def _sole(self, run) -> None:
        """Mark the run (once; the verdict never goes back) when its small pairs of orders number
        ``min_pairs`` less ``sole_trading_fewer_pairs`` or more, every aggressive order its
        accounts sent in the symbol from its first pair to its newest is a leg of its pairs (the
        accounts traded nothing else meanwhile), and no pair of orders hands the position back
        (``_handed_back``: one account bought from the other and sold it back at the same size;
        such a short run is a wash's round trips, one ticket passed back and forth, whoever
        else traded). Read as each pair comes, on the orders tallied for the exclusive share
        (``_PairRuns.collusion_tally``, kept with ``collusion``)."""
        paint = self.paint
        fewer = paint.sole_trading_fewer_pairs
        if run.sole_at is not None or fewer is None or not paint.enabled or not self.runs.collusion:
            return
        need = paint.min_pairs - fewer
        if need < 1 or len(run.small) < need:
            return
        if len({(run.pairs[i][0].order_id, run.pairs[i][1].order_id) for i in run.small}) < need:
            return
        if _handed_back(run, self.wash.qty_tolerance):
            return  # a round trip: one account's position handed back whole, the wash's own mark
        start = run.pairs[0][0].ts.timestamp() - 1e-6
        end = run.last_t + 1e-6
        legs = {x.order_id for a, b, *_ in run.pairs for x in (a, b)}
        for account in run.accounts:
            tally = self.runs.collusion_tally.get((account, run.symbol)) or ()
            if any(start <= x <= end and oid not in legs for x, oid in tally):
                return
        run.sole_at = len(run.pairs)

    def _series(self, run) -> bool:
        """Whether the run is, or once was, a series of one ticket (painting at any size, see
        ``PaintingTheTapeParams.series_size_ratio``): pairs of orders (an order filled in slices
        against another is one, its paired volume whole) of which at least ``min_pairs`` are
        within ``series_size_ratio`` of their median (the ticket printed as many times as
        painting's own count asks: three like sizes among four round trips are not a series),
        and those at least ``series_alike_share`` of them. Checked on each length the run has
        had, so the verdict never goes back (both detectors agree whichever pair they look
        from). A pair of orders weighs the larger of its two orders' whole fills
        (``series_ticket_by_order``: strangers who took slices of the painter's resting ticket
        first leave the partner's order the remainder), and is one pair whichever of its orders
        filled first (``series_pair_unordered``)."""
        paint = self.paint
        if not paint.enabled or paint.series_size_ratio is None:
            return False
        if run.series_at is not None:
            return True
        ratio, share, need = paint.series_size_ratio, paint.series_alike_share, paint.min_pairs
        n = len(run.pairs)
        if n < need:
            return False
        by_order, unordered, filled = paint.series_ticket_by_order, paint.series_pair_unordered, run.filled
        for k in range(max(run.series_checked + 1, need), n + 1):
            paired: dict[tuple[str, str], float] = {}
            for a, b, *_ in run.pairs[:k]:
                x, y = a.order_id, b.order_id
                key = (y, x) if unordered and y < x else (x, y)
                paired[key] = paired.get(key, 0.0) + a.qty
            if len(paired) < need:
                continue
            if by_order:  # each print is the ticket its orders carried, whoever took slices of it
                sizes = [max(q, filled.get(x, 0.0), filled.get(y, 0.0)) for (x, y), q in paired.items()]
            else:
                sizes = list(paired.values())
            mid = _median(sizes)
            alike = sum(1 for q in sizes if mid / ratio <= q <= mid * ratio)
            if alike >= need and alike >= share * len(sizes):
                run.series_at = k
                run.series_qty = mid
                break
        run.series_checked = n
        return run.series_at is not None

    def _classify(self, run) -> None:
        """File the run's newest pair as small or not (once per pair)."""
        i = len(run.pairs) - 1
        if self._small(run.pairs[i]):
            run.small.append(i)
            run.small_todo.append(i)
        else:
            run.large_todo.append(i)

    def _off_ticket(self, run, i) -> bool:
        """A pair of a series over ``series_off_ticket`` times its ticket (by default
        ``series_size_ratio`` squared: further from the ticket than two prints of the series
        may be from each other) is another trade (a wash of the same accounts that the series
        ran into), not a print of the series. Smaller pairs stay the series' (a ticket that
        filled in part, a slice)."""
        paint = self.paint
        ratio = paint.series_off_ticket if paint.series_off_ticket is not None else paint.series_size_ratio**2
        return run.pairs[i][0].qty > ratio * run.series_qty

    def _collusion_ok(self, run) -> bool:
        if not run.collusive:
            return True
        wash = self.wash
        return (
            _order_pairs(run) >= wash.collusion_min_pairs
            and self._exclusive(run) >= wash.collusion_min_exclusive
            and (not run.crossed or _handed_back(run, wash.qty_tolerance, filled=_tickets(run, wash)))
        )

    def _exclusive(self, run) -> float:
        return _exclusive_share(self.runs, run)

    def _on_pair(self, run):
        raise NotImplementedError

    def _on_run(self, run):
        raise NotImplementedError

    def _evidence(self, run, pairs):
        lots = [self._lots(a) for a, _b, *_ in pairs]
        evidence = {
            "matched_pairs": len(pairs),
            "run_pairs": len(run.pairs),
            "collusive": run.collusive,
            "accounts": sorted(run.accounts),
            "median_pair_lots": round(_median(lots), 4),
            "printed_volume": sum(a.qty + b.qty for a, b, *_ in pairs),
            "net_position_change": round(
                sum((x.qty if x.side == "buy" else -x.qty) for a, b, *_ in pairs for x in (a, b)), 6
            ),
            "max_seconds_apart": round(max(g for *_, g, _q, _p in pairs), 6),
            "window_s": self.wash.window_s,
            "max_qty_gap": round(max(q for *_, q, _p in pairs), 4),
            "qty_tolerance": self.wash.qty_tolerance,
            "max_price_gap_bps": bps(max(pg for *_, pg in pairs)),
            "price_tolerance_bps": self.wash.price_tolerance_bps,
            "price_tolerance_spreads": self.wash.price_tolerance_spreads,
            "run_gap_s": self.wash.run_gap_s,
            "pairs": [[_fill_evidence(a), _fill_evidence(b)] for a, b, *_ in pairs[:50]],
        }
        if run.collusive:
            evidence["collusion_min_pairs"] = self.wash.collusion_min_pairs
            evidence["collusion_exclusive_share"] = round(self._exclusive(run), 4)
            evidence["collusion_min_exclusive"] = self.wash.collusion_min_exclusive
        return evidence

    def _emit(self, run, indexes, score_of):
        pairs = [run.pairs[i] for i in indexes]
        run.emitted.update(indexes)
        accounts = sorted({x.account for a, b, *_ in pairs for x in (a, b)})
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=",".join(accounts),
                owner=run.owner,
                symbol=run.symbol,
                order_ids=[x.order_id for a, b, *_ in pairs for x in (a, b)],
                score=score_of(pairs),
                start=pairs[0][0].ts,
                end=pairs[-1][1].ts,
                evidence=self._evidence(run, pairs),
            )
        )


def _order_pairs(run, small=None) -> int:
    """The run's pairs of orders: a large order that fills in slices against another one
    sliced alike makes one pair per slice, but it is one trade between the two accounts (two
    strangers crossing once are not a colluding pair, however many slices). With ``small``
    (``small(qty, symbol) -> bool``), only the pairs of orders whose paired volume is not
    small count."""
    if small is None:
        return len({(a.order_id, b.order_id) for a, b, *_ in run.pairs})
    paired: dict[tuple[str, str], float] = {}
    for a, b, *_ in run.pairs:
        key = (a.order_id, b.order_id)
        paired[key] = paired.get(key, 0.0) + a.qty
    return sum(1 for qty in paired.values() if not small(qty, run.symbol))


def _tickets(run, wash) -> dict[str, float] | None:
    """The orders' whole fills for the hand-back (``WashTradeParams.hand_back_by_order``), else None."""
    return run.filled if wash.hand_back_by_order else None


def _handed_back(run, tolerance, indexes=None, filled=None) -> bool:
    """Whether the run's pairs of orders include a round trip: one account bought from the
    other and sold it back at the same size (paired volumes within ``tolerance``). Two strangers
    whose orders met on a venue twice, a market maker's resting quotes and a client hitting them
    at 1.75 and then 0.92 ounces, are a market and its customer; a position handed over and
    handed back whole is the colluding pair's wash (no change in beneficial ownership between
    them). With ``indexes``, only those pairs of the run are read (its crosses: ``run.crossed``).
    With ``filled`` (order id -> the order's whole fill), a pair of orders weighs the larger of
    its two orders' whole fills of which the crossed volume is at least half, not only the
    volume the two crossed (``hand_back_by_order``)."""
    paired: dict[tuple[str, str], list] = {}
    for i, (a, b, *_) in enumerate(run.pairs):
        if indexes is not None and i not in indexes:
            continue
        key = (a.order_id, b.order_id)
        if key not in paired:
            paired[key] = [a.account if a.side == "buy" else b.account, 0.0]
        paired[key][1] += a.qty
    if filled is not None:
        # the ticket: the whole fill of an order whose volume mostly crossed the other's (a
        # resting ticket strangers took slices of first), never that of an order the other
        # only nibbled at (a market maker's large quote met by a client's small trade)
        for (x, y), leg in paired.items():
            crossed = leg[1]
            leg[1] = max([crossed, *(w for o in (x, y) if crossed >= 0.5 * (w := filled.get(o, 0.0)))])
    legs = list(paired.values())
    return any(
        x[0] != y[0] and abs(x[1] - y[1]) <= tolerance * max(x[1], y[1])
        for i, x in enumerate(legs)
        for y in legs[i + 1 :]
    )


def _exclusive_share(runs: _PairRuns, run) -> float:
    """Of the aggressive orders the run's accounts traded in the symbol while it lasted, the
    share that are legs of its pairs (colluders trade with each other; two busy algorithms that
    cross by chance also trade a lot else). Counted by orders, not fills: a large order the
    broker fills in slices is one trade, whether all its slices paired or some did not."""
    start = run.pairs[0][0].ts.timestamp() - 1e-6
    end = run.last_t + 1e-6
    orders: set[str] = set()
    for account in run.accounts:
        tally = runs.collusion_tally.get((account, run.symbol))
        if tally:
            orders.update(oid for x, oid in tally if start <= x <= end)
    if not orders:
        return 1.0
    legs = {x.order_id for a, b, *_ in run.pairs for x in (a, b)}
    return min(1.0, len(legs) / len(orders))


class WashTradeDetector(_PairDetector):
    """Wash trades (MAR Annex I 1(a); 2016/522 Annex II 1(a)): matched pairs (see
    ``_PairRuns``) with no change in beneficial ownership that are not painting the tape. A
    colluding pair of distinct owners needs ``collusion_min_pairs`` pairs in its run, one of
    them over painting's size, and the pairs must be at least ``collusion_min_exclusive`` of the
    two accounts' aggressive trading in the symbol meanwhile. The engine merges the reports of
    one subject and symbol into one alert until ``QUIET_S`` passes without one."""

    alert_type = "wash_trade"

    def _collusion_ok(self, run) -> bool:
        """A colluding pair's run is a wash only when at least one of its pairs of orders is
        over painting's size (the orders' paired volume, so an order filled in slices is
        measured whole), besides the repetition and exclusivity every colluding run needs: a
        few small crosses between two strangers are chance (two retail clients or two
        algorithms trading a round 0.1 lot the other way seconds apart), and small matched
        trades between distinct owners alone are painting's to judge, on its own count
        (``PaintingTheTapeParams.min_pairs``). Pairs of one owner are wash at any size, and so
        are a colluding pair's crosses that hand the position back (one account's order met the
        other's and a later cross between them returned the same size,
        ``collusion_cross_back_any_size``): the two traded with each other both ways, not by
        chance at the same moment."""
        if not super()._collusion_ok(run):
            return False
        if not run.collusive or not self.paint.enabled or _order_pairs(run, small=self._small_qty) >= 1:
            return True
        return (
            self.p.collusion_cross_back_any_size
            and bool(run.crossed)
            and _handed_back(run, self.wash.qty_tolerance, set(run.crossed), filled=_tickets(run, self.wash))
        )

    def _score(self, pairs):
        p = self.p
        closeness = 0.0
        for _a, _b, gap, qty_gap, price_gap in pairs:
            closeness += (
                (1 - gap / p.window_s)
                + (1 - qty_gap / p.qty_tolerance if p.qty_tolerance else 1.0)
                + (1 - min(1.0, price_gap / p.price_tolerance_bps) if p.price_tolerance_bps else 1.0)
            ) / 3
        return 0.5 + 0.5 * closeness / len(pairs)

    def _on_pair(self, run):
        self._classify(run)
        self._sole(run)
        if self.paint.enabled and self.paint.series_size_ratio is not None:
            return  # any run may still become a series of one ticket: reported when it ends
        if not run.large_todo or not self._collusion_ok(run):
            return
        pending, run.large_todo = run.large_todo, []
        self._emit(run, pending, self._score)

    def _unmatched_orders(self, run) -> set[tuple[str, str]]:
        """The run's pairs of orders that do not offset and never met: an order's whole fill and
        the whole fills of the orders it paired with in the run differ, the smaller under
        ``order_matched_share`` of the larger (for either order of the pair), and no fill of the
        one crossed a fill of the other (at one instant and one price, as two orders meet on a
        venue). A wash's two orders each undo the other (whatever slices the fills came in); an
        11-lot sale filled in two slices, one of which is answered by the owner's other account
        buying 5.6 lots two seconds later, is a partial hedge at another size (the owner's
        position moved 5.4 lots), whatever the slice sizes say. Two of an owner's orders that
        crossed each other are a trade with no change of beneficial ownership for the volume
        they crossed, whatever else either order did."""
        need = self.p.order_matched_share
        if need is None:
            return set()
        partners: dict[str, set[str]] = {}
        crossed: set[tuple[str, str]] = set()
        for a, b, gap, *_ in run.pairs:
            x, y = a.order_id, b.order_id
            partners.setdefault(x, set()).add(y)
            partners.setdefault(y, set()).add(x)
            if gap <= CROSS_S and a.price == b.price:
                crossed.add((x, y))
        filled = run.filled

        def offset(oid) -> bool:
            own = filled.get(oid, 0.0)
            other = sum(filled.get(p, 0.0) for p in partners[oid])
            return min(own, other) >= need * max(own, other)

        return {
            (a.order_id, b.order_id)
            for a, b, *_ in run.pairs
            if (a.order_id, b.order_id) not in crossed and not (offset(a.order_id) and offset(b.order_id))
        }

    def _on_run(self, run):
        # Small pairs of a run with enough of them are painting's (the size rule); its other
        # pairs are wash, when their two orders offset.
        small = set(run.small) if self.paint.enabled and self._painting_count(run) else set()
        if small and self.paint.series_size_ratio is None:
            return  # the rule before: the run's large pairs were reported as they came
        unmatched = self._unmatched_orders(run)
        if unmatched:  # not a wash's pairs: left out like painting's
            small |= {i for i, (a, b, *_) in enumerate(run.pairs) if (a.order_id, b.order_id) in unmatched}
        if self._series(run):
            # A series of one ticket is painting the tape's, whatever its size; a pair well over
            # its ticket is another trade, a wash.
            pending = [
                i for i in range(len(run.pairs)) if i not in run.emitted and i not in small and self._off_ticket(run, i)
            ]
            if pending and self._collusion_ok(run):
                self._emit(run, pending, self._score)
            return
        if not self._collusion_ok(run):
            return
        pending = [i for i in range(len(run.pairs)) if i not in run.emitted and i not in small]
        if pending:
            self._emit(run, pending, self._score)


class PaintingTheTapeDetector(_PairDetector):
    """Painting the tape (MAR Annex I 1(a), 2016/522 Annex II 1(a)(iii)): a run of at least
    ``min_pairs`` matched pairs under ``max_lots`` lots each, or a series of one ticket at any
    size (``series_size_ratio``; see ``_PairDetector._series``): volume printed with no change of
    ownership. Reported as soon as the run has them, then each further pair of it extends the
    same alert (the engine merges them; the wash-trade detector leaves these pairs alone)."""

    alert_type = "painting_the_tape"

    def _on_pair(self, run):
        p = self.p
        self._classify(run)
        self._sole(run)
        if self._series(run):
            # A series of one ticket: all its pairs, whatever their size.
            if not self._collusion_ok(run):
                return
            pending = [i for i in range(len(run.pairs)) if i not in run.emitted and not self._off_ticket(run, i)]
            run.small_todo, run.large_todo = [], []
            if pending:
                n = len(run.pairs)
                self._emit(run, pending, lambda _pairs: excess_score(n, p.min_pairs))
            return
        if not self._painting_count(run) or not run.small_todo or not self._collusion_ok(run):
            return
        pending, run.small_todo = run.small_todo, []
        n_small = len(run.small)
        # a run painting by its accounts' sole trading is scored on the count it needed
        need = p.min_pairs if n_small >= p.min_pairs else p.min_pairs - (p.sole_trading_fewer_pairs or 0)
        self._emit(run, pending, lambda _pairs: excess_score(n_small, need))

    def _on_run(self, run):
        return

    def _collusion_ok(self, run) -> bool:
        """Besides the colluding run every detector accepts (``_PairDetector._collusion_ok``):
        with ``colluders_cross_both_ways``, a colluding pair's run whose crosses on the venue
        (one account's resting order met by the other's, ``run.crossed``) number ``min_pairs``
        pairs of orders or more and go both ways (each account bought from the other), with the
        repetition and exclusivity every colluding run needs: two owners printing a series to
        each other, whether or not a same-size round trip hands the position back."""
        if super()._collusion_ok(run):
            return True
        if not (self.p.colluders_cross_both_ways and run.collusive and run.crossed):
            return False
        crossed = [run.pairs[i] for i in sorted(set(run.crossed))]
        buyers = {a.account if a.side == "buy" else b.account for a, b, *_ in crossed}
        wash = self.wash
        return (
            len(buyers) >= 2
            and len({(a.order_id, b.order_id) for a, b, *_ in crossed}) >= self.p.min_pairs
            and _order_pairs(run) >= wash.collusion_min_pairs
            and self._exclusive(run) >= wash.collusion_min_exclusive
        )

    def _evidence(self, run, pairs):
        evidence = super()._evidence(run, pairs)
        p = self.p
        evidence.update({"small_pairs_in_run": self._small_count(run), "min_pairs": p.min_pairs})
        if p.sole_trading_fewer_pairs is not None:
            evidence["sole_trading"] = run.sole_at is not None
            evidence["sole_trading_fewer_pairs"] = p.sole_trading_fewer_pairs
        if p.max_qty is None:
            evidence["max_lots"] = p.max_lots
        else:
            evidence["max_qty"] = p.max_qty
        return evidence


class _Chain:
    __slots__ = (
        "burst_end",
        "burst_peak",
        "core_n",
        "exit_ids",
        "exit_notional",
        "exit_qty",
        "fills",
        "fresh",
        "flow0",
        "flow1",
        "ignited",
        "last_t",
        "peak_mid",
        "quoting",
        "rev_ids",
        "rev_mid",
        "rev_notional",
        "rev_qty",
        "run_peak",
        "side",
        "spread",
        "start_mid",
        "symbol",
        "two_way",
    )

    def __init__(self, side, symbol):
        self.side = side
        self.symbol = symbol
        self.fills: list = []  # (t, fill, order id)
        self.ignited = False
        self.start_mid = None
        self.peak_mid = None
        self.burst_peak = None  # the peak mid until ``burst_settle_s`` after the burst's last order
        self.spread = None
        self.rev_qty = 0.0
        self.rev_notional = 0.0  # sum of qty x price of the reversal's fills
        self.rev_ids: list[str] = []
        self.rev_mid = None  # the mid when the reversal's first fill came
        # The account's exit filled inside the burst (``exit_in_burst``): its resting orders the
        # other way that filled while the chain had not yet ignited, counted toward the reversal.
        self.exit_qty = 0.0
        self.exit_notional = 0.0
        self.exit_ids: list[str] = []
        # The account provides liquidity (its resting orders filled in the ``two_way_window_s``
        # before the chain, or the chain's way while it formed): its passive fills are its routine
        # flow, not an exit; none counts.
        self.quoting = False
        self.last_t = 0.0
        # With ``burst_pause_s``: the burst's own orders are the first ``core_n`` fills (None while
        # the burst goes on); later same-way orders are the account carrying on, not the burst.
        self.core_n = None
        self.burst_end = 0.0  # the burst's last order (``last_t`` while the burst goes on)
        self.run_peak = None  # the peak mid until ``burst_settle_s`` after the chain's last order
        # (bought, sold) by the account in ``two_way_window_s`` before the chain's first order
        self.two_way = (0.0, 0.0)
        # The symbol's aggressive volume the chain's way (everyone's, ``MomentumIgnitionDetector.
        # flow``) before its first order, and as it stood at the burst's end (``burst_settle_s``
        # after its last order): what the crowd traded beside the burst (``crowd_multiple``)
        self.flow0 = 0.0
        self.flow1 = 0.0
        # A newcomer to the symbol (``fresh_series_s``): the account had no fill in it, either way,
        # in the ``fresh_series_s`` before the chain's first order; its orders may come up to
        # ``lead_pause_s`` apart.
        self.fresh = False

    def qty(self) -> float:
        """The chain's quantity: the burst and the same-way orders carried on after it (the
        position its reversal is measured against)."""
        return sum(f.qty for _t, f, _o in self.fills)

    def reversal(self) -> tuple[float, float]:
        """The reversal's quantity and notional, with the exit filled inside the burst
        (``exit_in_burst``)."""
        return self.rev_qty + self.exit_qty, self.rev_notional + self.exit_notional

    def burst_fills(self):
        return self.fills if self.core_n is None else self.fills[: self.core_n]


class MomentumIgnitionDetector(Detector):
    """Momentum ignition (2016/522 Annex II 1(b)): a chain of at least ``min_aggressive_orders``
    aggressive orders on one side, each at most ``max_gap_s`` after the one before; the mid
    moves their way, measured on the quote stream (the peak mid from the first order's arrival
    until ``burst_settle_s`` after the last: the burst's own impact; or, with it None, until the
    reversal), by at least ``min_move_bps`` and ``min_move_spreads`` spreads (the
    narrowest spread any of the burst's orders met on arrival: a burst that starts inside a news
    spread is measured against the usual one); and within ``reversal_window_s`` of the burst's
    last order the same account trades the other way for at least ``min_reversal_fraction`` of
    the burst quantity (passive fills included: an exit resting at the moved price). The move
    must also reach ``min_move_sigma`` standard deviations of the mid over the span it was
    measured on (the instrument's own volatility over the ``vol_lookback_s`` before the burst). The
    account's other trading in between (small trades either way, a new chain) does not end
    the wait: the burst stays parked until its reversal or the window's end. Once ignited, the
    burst ends at its first pause over ``burst_pause_s``: later same-way orders are the account
    carrying on (slicing, accumulating), not the burst; the burst alone and the whole one-way run
    must each make the move, and the reversal must cover the run; a same-way order more than
    ``carry_on_s`` after the chain's last order begins a chain of its own. Held bursts and one-way
    accumulation (no reversal), bursts in a flat market (no move) and the bursts of an account
    that was already trading both ways (``two_way_fraction``: its turn is its routine) are not
    alerted. The order that turns a burst that was not ignition opens the account's next chain
    (``turn_opens_chain``): it is not spent on that burst's "reversal". An exit resting the other
    way and filled while the chain formed counts toward the reversal (``exit_in_burst``; not for
    an account whose resting orders fill as its routine), and a move of ``floor_waived_spreads``
    spreads or more passes without the bps floor (on a one-tick book many spreads are a move). A
    stop-out is not alerted (``stop_out``): the reversal closed the whole position at once, at a
    loss (ignition unwinds into the move it made; with ``stop_out_needs_move_back`` the mid must
    also be back beyond where the burst began). On an order book a burst of orders that walked the
    levels moved the book when the mid, or its own furthest fill (``sweep_prints``), stood
    ``min_move_spreads`` beyond where it began (``sweep_levels``); and a burst of
    ``attempt_min_orders`` or more, one at least through the touch, turned though it moved
    nothing, is an attempt (MAR Art. 15)."""

    alert_type = "momentum_ignition"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.chains: dict[tuple[str, str], _Chain] = {}
        # An ignited burst the account has moved on from (a newer chain began, however small: an
        # active account's other trading goes on around an ignition) still waits for its
        # reversal here, until ``reversal_window_s`` after its last order.
        self.awaiting: dict[tuple[str, str], _Chain] = {}
        # symbol -> ignited chains whose peak the quotes update (the engine hands this detector a
        # symbol's quotes only while it has such a chain: most quotes cost it nothing)
        self.watching: dict[str, list] = {}
        self.quotes = engine.quotes
        self._watch = self.on_watched_quote
        self._next_sweep = -inf
        self._now = -inf  # event time of the last fill or sweep
        # (account, symbol) -> the account's fills (t, side, qty) of the last ``two_way_window_s``:
        # what it was doing before a burst (``two_way_fraction``)
        self.recent: dict[tuple[str, str], deque] = {}
        # symbol -> [aggressive volume bought, sold] by every account since the start (``crowd_multiple``)
        self.flow: dict[str, list[float]] = {}
        # (account, symbol) -> the account's last fill in the symbol, kept ``fresh_series_s``
        # (only with it on): whether a chain's account is a newcomer to the symbol
        self.last_fill: dict[tuple[str, str], float] = {}
        # The learned gate's loose candidate stage (``gate`` or ``gate_candidates``): the chains'
        # orders may come ``gate_max_gap_s`` apart; with ``gate_candidates`` every assessed
        # candidate is kept here (a dict of its features, the hand test that stopped it, its
        # order ids) for the gate's fit.
        self.loose = params.gate or params.gate_candidates
        self.candidates: list[dict] = []
        self.gate_model = MOMENTUM_GATE
        self.gate_threshold = params.gate_threshold if params.gate_threshold is not None else MOMENTUM_GATE["threshold"]
        self.move_gate_threshold = (
            params.move_gate_threshold if params.move_gate_threshold is not None else MOMENTUM_GATE_OTC["threshold"]
        )
        self.rev_window = self._reversal_window()  # read per fill: computed once
        if params.min_move_sigma > 0:  # the mid path before the burst, through to its reversal
            self.mid_history_s = params.vol_lookback_s + self.rev_window + 600.0

    def on_watched_quote(self, t, quote):
        chains = self.watching.get(quote.symbol)
        if not chains:
            return
        mid = (quote.bid + quote.ask) * 0.5
        settle = self.p.burst_settle_s
        for ch in chains:
            if ch.side * (mid - ch.peak_mid) > 0:
                ch.peak_mid = mid
            if settle is not None and t <= ch.last_t + settle:
                if ch.side * (mid - ch.run_peak) > 0:
                    ch.run_peak = mid
                if t <= ch.burst_end + settle and ch.side * (mid - ch.burst_peak) > 0:
                    ch.burst_peak = mid

    def _watch_chain(self, ch) -> None:
        watching = self.watching.get(ch.symbol)
        if watching is None:
            watching = self.watching[ch.symbol] = []
            self.engine.quote_watch(ch.symbol, self._watch)
        watching.append(ch)

    def _drop(self, key, ch, *, park=True):
        del self.chains[key]
        if park and ch.ignited and self._park(key, ch):
            return
        self._unwatch(ch)

    def _park(self, key, ch) -> bool:
        """Keep an ignited chain the account moved on from waiting for its reversal (a newer
        chain takes its place); False when its reversal window is over."""
        if ch.last_t + self.rev_window < self._now:
            return False
        old = self.awaiting.get(key)
        if old is not None and old is not ch:
            self._unwatch(old)
        self.awaiting[key] = ch
        return True

    def _unwatch(self, ch):
        if ch.ignited:
            watching = self.watching.get(ch.symbol)
            if watching and ch in watching:
                watching.remove(ch)
                if not watching:
                    del self.watching[ch.symbol]
                    self.engine.quote_unwatch(ch.symbol, self._watch)

    def windows_empty(self) -> bool:
        return not (self.chains or self.awaiting or self.recent or self.last_fill)

    def expire(self, t):
        # Chains past their horizon go (the next fill on their key would drop them anyway): an
        # ignited one that never saw that fill would keep its symbol's quotes coming for nothing.
        if t < self._next_sweep or self.windows_empty():  # one test with the engine's (SurveillanceEngine)
            return
        self._next_sweep = t + 10.0
        self._now = t
        p = self.p
        for key, ch in list(self.chains.items()):
            if t - ch.last_t > self._horizon(ch):
                self._drop(key, ch)
        for key, ch in list(self.awaiting.items()):
            if t - ch.last_t > self.rev_window:
                del self.awaiting[key]
                self._unwatch(ch)
        if self.recent:
            horizon = t - p.two_way_window_s
            for key in [k for k, fills in self.recent.items() if fills[-1][0] < horizon]:
                del self.recent[key]
        if self.last_fill:
            horizon = t - p.fresh_series_s
            for key in [k for k, last in self.last_fill.items() if last < horizon]:
                del self.last_fill[key]

    def on_fill(self, t, fill, state, side):
        p = self.p
        self._now = t
        key = state.key if state is not None else (fill.account, fill.symbol)
        recent = None
        passive = state is not None and not state.aggressive
        if p.two_way_fraction is not None or p.exit_in_burst:
            recent = self.recent.get(key)
            if recent is None:
                recent = self.recent[key] = deque()
            horizon = t - p.two_way_window_s
            while recent and recent[0][0] < horizon:
                recent.popleft()
            # (t, side, the fill's quantity, passive, the order's quantity, the order id): the order's
            # size and id for ``parent_slices_apart`` (a parent's slices are orders of one size)
            recent.append((t, side, fill.qty, passive, state.qty if state is not None else fill.qty, fill.order_id))
        fresh = False
        if p.fresh_series_s is not None:
            last = self.last_fill.get(key)
            fresh = last is None or t - last > p.fresh_series_s
            self.last_fill[key] = t
        cum = None
        if p.crowd_multiple is not None and state is not None and state.aggressive:
            flow = self.flow.get(fill.symbol)
            if flow is None:
                flow = self.flow[fill.symbol] = [0.0, 0.0]
            way = 0 if side > 0 else 1
            flow[way] += fill.qty
            cum = flow[way]
            settle = p.burst_settle_s or 0.0
            for w in self.watching.get(fill.symbol, ()):
                if w.side == side and t <= w.burst_end + settle:
                    w.flow1 = cum
        if self.awaiting:
            aw = self.awaiting.get(key)
            if aw is not None:
                if t - aw.last_t > self.rev_window:
                    del self.awaiting[key]
                    self._unwatch(aw)
                elif side != aw.side and self._reverse(aw, fill):  # the other way: the parked burst's reversal
                    del self.awaiting[key]
                    self._unwatch(aw)
                    self._assess(fill, aw, t)
        ch = self.chains.get(key)
        if ch is not None and t - ch.last_t > self._horizon(ch):
            self._drop(key, ch)
            ch = None
        if ch is not None and ch.ignited and side != ch.side:
            own = p.turning_orders_open_chain and state is not None and state.aggressive
            if not self._reverse(ch, fill):
                if not own or (p.min_cut_fraction is not None and ch.rev_qty < p.min_cut_fraction * ch.qty()):
                    return
                # ``turning_orders_open_chain``: the aggressive order counts toward the ignited
                # chain's turn (which waits for the rest of it, parked) and is also the first of
                # the account's chain its own way: a burst the other way is a push of its own
                # even while an earlier chain takes it as its turn. Not while what the account
                # traded the other way is under ``min_cut_fraction`` of the chain: that is its
                # other business (``small_turn_after_ignition``), and the chain carries on.
                self._drop(key, ch)
                ch = None
            else:
                self._drop(key, ch, park=False)
                alerts = len(self.out)
                self._assess(fill, ch, t)
                if not own and (not p.turn_opens_chain or len(self.out) > alerts):
                    return
            # The burst was not ignition (it moved nothing, or the crowd or the account's own
            # two-way flow did): the order that completed its "reversal" is the account's next
            # trade, and when aggressive the first order of its next push (an accumulation that
            # moved nothing, then a quick burst the other way, is a push from its first order).
            ch = None
        if passive and p.exit_in_burst and ch is not None and not ch.ignited:
            # The account's resting order filled while its chain was forming. The other way, it is
            # the exit the burst pushes the price into (filled inside the burst, before the chain
            # ignited): it counts toward the reversal (``exit_in_burst``). The chain's way, the
            # account's resting orders fill both ways: a liquidity provider's routine, none counts.
            if side != ch.side and not ch.quoting:
                ch.exit_qty += fill.qty
                ch.exit_notional += fill.qty * fill.price
                ch.exit_ids.append(fill.order_id)
            elif side == ch.side:
                ch.quoting = True
                ch.exit_qty, ch.exit_notional, ch.exit_ids = 0.0, 0.0, []
        if state is None or not state.aggressive:
            return
        if (
            p.parent_slices_apart
            and recent is not None
            and self._parent_slice(t, side, state.qty, fill.order_id, ch, recent)
        ):
            # A slice of the account's execution parent: kept out of every chain (it neither opens,
            # extends, leads nor carries on one); the burst is measured on its own orders.
            return
        if (
            ch is not None
            and not ch.ignited
            and side != ch.side
            and p.min_cut_fraction is not None
            and fill.qty < p.min_cut_fraction * ch.qty()
        ):
            return  # a small order the other way does not cut a burst's lead
        if (
            ch is not None
            and ch.ignited
            and side == ch.side
            and ch.rev_qty > 0
            and p.small_turn_after_ignition
            and p.min_cut_fraction is not None
            and ch.rev_qty < p.min_cut_fraction * ch.qty()
        ):
            # The same reading once the chain has ignited: what the account traded the other way
            # since is under ``min_cut_fraction`` of the chain and it goes on the chain's way, so
            # that was its other business, not the reversal begun. The chain carries on (the
            # ``carry_on_s`` test below still applies) and the reversal starts afresh.
            ch.rev_qty, ch.rev_notional, ch.rev_ids, ch.rev_mid = 0.0, 0.0, [], None
        # A new chain: the first order, a turn, a same-way order once the reversal has begun, or one
        # more than ``carry_on_s`` after an ignited chain's last order (a fresh push after the
        # account fell silent, not its execution algorithm's parent carried on: the old chain waits
        # for its reversal, parked).
        if (
            ch is None
            or side != ch.side
            or (ch.ignited and (ch.rev_qty > 0 or (p.carry_on_s is not None and t - ch.last_t > p.carry_on_s)))
        ):
            if ch is not None:
                self._drop(key, ch)
            ch = self.chains[key] = _Chain(side, fill.symbol)
            ch.fresh = fresh
            if recent is not None:
                # What the account did before this chain (this fill excluded)
                bought = sum((e[2] for e in recent if e[1] > 0), 0.0)
                sold = sum((e[2] for e in recent if e[1] < 0), 0.0)
                ch.two_way = (bought - fill.qty, sold) if side > 0 else (bought, sold - fill.qty)
                # A liquidity provider: its resting orders filled in the window before the chain
                ch.quoting = any(e[3] for e in recent)
            if cum is not None:
                ch.flow0 = cum - fill.qty
        if ch.start_mid is None and state.arr_mid is not None:
            ch.start_mid = state.arr_mid
            ch.peak_mid = state.arr_mid
            ch.burst_peak = ch.run_peak = state.arr_mid
            ch.spread = state.arr_ask - state.arr_bid
        elif state.arr_mid is not None and ch.spread is not None:
            # The spread the move is counted in: the narrowest any of the burst's orders met (a
            # burst that starts inside a news spread is measured against the market's usual one).
            spread = state.arr_ask - state.arr_bid
            if 0 < spread < ch.spread:
                ch.spread = spread
            if ch.core_n is None and ch.side * (state.arr_mid - ch.burst_peak) > 0:
                ch.burst_peak = state.arr_mid
            if ch.side * (state.arr_mid - ch.run_peak) > 0:
                ch.run_peak = state.arr_mid
        if ch.ignited and ch.core_n is None and p.burst_pause_s is not None and t - ch.last_t > self._burst_pause():
            # The burst is over: the account carries on the same way after a pause (slicing a
            # parent, accumulating). Those orders are not the burst whose move is measured, but
            # they are its position: the reversal must cover them too.
            ch.core_n = len(ch.fills)
        ch.fills.append((t, fill, fill.order_id))
        ch.last_t = t
        if ch.core_n is None:
            ch.burst_end = t
        if cum is not None and t <= ch.burst_end + (p.burst_settle_s or 0.0):
            ch.flow1 = cum
        if not ch.ignited and ch.start_mid is not None and self._burst_orders(ch) >= p.min_aggressive_orders:
            ch.ignited = True
            self._watch_chain(ch)
            quote = self.quotes.get(fill.symbol)
            if quote is not None and side * (quote[2] - ch.peak_mid) > 0:
                ch.peak_mid = quote[2]
            if quote is not None and side * (quote[2] - ch.burst_peak) > 0:
                ch.burst_peak = quote[2]
            if quote is not None and side * (quote[2] - ch.run_peak) > 0:
                ch.run_peak = quote[2]

    def _parent_slice(self, t, side, qty, order_id, ch, recent) -> bool:
        """Whether an aggressive order is a slice of the account's execution parent
        (``parent_slices_apart``): the order is the third (or later) of a series at a cadence.
        The account's previous aggressive order the same way in the symbol (leaving out those
        under ``max_gap_s`` before it and the current chain's burst: the orders it came quickly
        after, and the burst's own, equal orders of one burst being still the burst) and the one
        before that (leaving out those under ``max_gap_s`` before the previous) were both of the
        same size (within ``min_cut_fraction`` of the larger), within the ``two_way_window_s``
        the ``recent`` fills keep, and the order's gap from the previous is at most ``max_gap_s``
        longer than the gap between those two (the cadence, read one way: a parent may speed up,
        a pause is not its cadence). One earlier order of the size is not a cadence: a fixed-lot
        trader's (every order 1 million) burst after a buy 160 s before was all "slices" with
        mom48's rule (wip/momb48)."""
        p = self.p
        tol = p.min_cut_fraction or 0.0
        burst_ids = {o for _t, _f, o in ch.burst_fills()} if ch is not None and ch.side == side else ()
        series = [t]
        for e in reversed(recent):
            if e[1] != side or e[3] or e[5] == order_id or series[-1] - e[0] < p.max_gap_s or e[5] in burst_ids:
                continue
            if abs(e[4] - qty) > tol * max(e[4], qty):
                return False
            series.append(e[0])
            if len(series) == 3:
                return series[0] - series[1] <= series[1] - series[2] + p.max_gap_s
        return False

    def _reverse(self, ch, fill) -> bool:
        """Count ``fill`` toward ``ch``'s reversal; True once the reversal covers
        ``min_reversal_fraction`` of the chain's position."""
        if not ch.rev_ids:
            ch.rev_mid = self._mid(fill.symbol)
        ch.rev_qty += fill.qty
        ch.rev_notional += fill.qty * fill.price
        ch.rev_ids.append(fill.order_id)
        return ch.reversal()[0] >= self.p.min_reversal_fraction * ch.qty()

    def _reversal_window(self) -> float:
        """How long after its last order an ignited chain waits for its reversal:
        ``reversal_window_s``, or ``late_reversal_s`` when longer (a late turn, judged in
        ``_assess``). The learned gate's loose stage keeps ``reversal_window_s``: the late turn
        is a hand rule, and the gate (the order book's profile) was fitted on that window."""
        p = self.p
        if p.late_reversal_s is not None and p.late_reversal_s > p.reversal_window_s and not self.loose:
            return p.late_reversal_s
        return p.reversal_window_s

    def _one_pause(self, ch) -> bool:
        """Whether the orders an ignited chain carried on after its burst (``burst_pause_s``) are
        the burst's own continuation: after one pause of at most ``lead_pause_s`` (``max_gap_s``
        without it), each within ``max_gap_s`` of the one before, as a lead's one pause before the
        burst is (``lead_pause_s``). Orders that paused again and again are the account carrying
        on (slicing a parent, accumulating): ``move_gate_run``."""
        p = self.p
        if ch.core_n is None:
            return True
        starts = list({o: ft for ft, _f, o in reversed(ch.fills)}.values())[::-1]
        n_burst = len({o for _t, _f, o in ch.burst_fills()})
        if n_burst >= len(starts):
            return True
        gaps = [b - a for a, b in zip(starts[n_burst - 1 :], starts[n_burst:], strict=False)]
        return gaps[0] <= max(p.lead_pause_s or 0.0, p.max_gap_s) and all(g <= p.max_gap_s for g in gaps[1:])

    def _burst_pause(self) -> float:
        """The pause that ends an ignited burst: ``burst_pause_s``, or in the gate's loose stage
        no shorter than ``gate_max_gap_s`` (a slow series is one burst)."""
        p = self.p
        return max(p.burst_pause_s, p.gate_max_gap_s) if self.loose else p.burst_pause_s

    def _gap(self, ch) -> float:
        """The longest pause between a chain's orders: ``max_gap_s``, or ``lead_pause_s`` for the
        chain of a newcomer to the symbol (``fresh_series_s``) once one of its orders walked the
        book (filled at ``sweep_levels`` prices or more)."""
        p = self.p
        if self.loose:
            return max(p.gate_max_gap_s, p.max_gap_s)
        return self._hand_gap(ch)

    def _hand_gap(self, ch) -> float:
        p = self.p
        if ch.fresh and p.lead_pause_s is not None and self._swept(ch.fills) >= 1:
            return max(p.lead_pause_s, p.max_gap_s)
        return p.max_gap_s

    def _lead_n(self, ch) -> int:
        """The fills before the lead pause of a chain that has not ignited (0: no pause yet)."""
        fills, gap = ch.fills, self._gap(ch)
        for i in range(1, len(fills)):
            if fills[i][0] - fills[i - 1][0] > gap:
                return i
        return 0

    def _horizon(self, ch) -> float:
        """How long after its last order a chain waits for the next: the reversal window once
        ignited; before, ``max_gap_s``, or ``lead_pause_s`` while the chain has had no pause (the
        orders so far may be the burst's lead)."""
        p = self.p
        if ch.ignited:
            return self.rev_window
        if p.lead_pause_s is not None and not self._lead_n(ch):
            return max(p.lead_pause_s, p.gate_max_gap_s if self.loose else p.max_gap_s)
        return self._gap(ch)

    def _burst_orders(self, ch) -> int:
        """The orders of a chain that count toward its ignition: those after its lead pause."""
        fills = ch.fills
        if self.p.lead_pause_s is not None:
            fills = fills[self._lead_n(ch) :]
        return len({o for _t, _f, o in fills})

    def _mid(self, symbol):
        quote = self.quotes.get(symbol)
        return None if quote is None else quote[2]

    def _swept(self, burst) -> int:
        """The burst's orders that filled at ``sweep_levels`` or more distinct prices (0: off)."""
        levels = self.p.sweep_levels
        if levels is None:
            return 0
        prices: dict[str, set] = {}
        for _t, f, o in burst:
            prices.setdefault(o, set()).add(f.price)
        return sum(len(v) >= levels for v in prices.values())

    @staticmethod
    def _print_spreads(ch, burst):
        """How far the burst's furthest fill stood beyond the mid at its first order, its way, in
        spreads (the narrowest its orders met); None without a spread."""
        if not ch.spread or ch.start_mid is None:
            return None
        prices = [f.price for _t, f, _o in burst]
        furthest = max(prices) if ch.side > 0 else min(prices)
        return ch.side * (furthest - ch.start_mid) / ch.spread

    def _move(self, ch, peak, end_t):
        """(the move in bps, in spreads, the volatility evidence, whether it passes) from the
        chain's first order to ``peak``, the volatility over the span up to ``end_t``."""
        p = self.p
        move = ch.side * (peak - ch.start_mid) / ch.start_mid * 1e4
        spreads = ch.side * (peak - ch.start_mid) / ch.spread if ch.spread else None
        # The bps floor is waived for a move of ``floor_waived_spreads`` spreads or more: on a book
        # whose touch is a tick wide, that many spreads is a move in the book's own unit however
        # few bps it is (the noise test below still applies).
        waived = p.floor_waived_spreads is not None and spreads is not None and spreads >= p.floor_waived_spreads
        if (move < p.min_move_bps and not (waived and move > 0)) or (
            spreads is not None and spreads < p.min_move_spreads
        ):
            return move, spreads, None, False
        vol = None
        if p.min_move_sigma > 0:
            first_t = ch.fills[0][0]
            span = max(end_t - first_t, 30.0)
            sigma = sigma_bps(self.engine, ch.symbol, first_t - p.vol_lookback_s, first_t, min(span, 300.0))
            if sigma is not None:
                vol = {
                    "volatility_bps_per_sqrt_s": round(sigma, 5),
                    "move_sigma": round(move / (sigma * span**0.5), 3) if sigma > 0 else None,
                    "min_move_sigma": p.min_move_sigma,
                }
                if move < p.min_move_sigma * sigma * span**0.5:
                    return move, spreads, vol, False
        return move, spreads, vol, True

    def _assess(self, fill, ch, t):
        p = self.p
        # The move: to the peak until the reversal or, with ``burst_settle_s``, to the peak the
        # burst itself reached (its orders and the ``burst_settle_s`` after the last): a move that
        # comes minutes later, from someone else's flow or news, is not the burst's impact.
        settle = p.burst_settle_s
        peak = ch.peak_mid if settle is None else ch.burst_peak
        move, spreads, vol, ok = self._move(ch, peak, t if settle is None else ch.burst_end + settle)
        burst = ch.burst_fills()
        # On an order book the burst's orders show their push themselves: each that took the
        # touch and walked on through the levels behind it (``sweep_levels`` prices or more)
        # bought (sold) through the book's liquidity. A burst of such orders that moved the mid
        # its way ``min_move_spreads`` spreads has moved the book, whether or not the move also
        # clears the bps floor and the noise test (a deep book refilled by the other participants
        # within seconds, its touch a tick or two wide, keeps the mid's move small).
        swept = self._swept(burst)
        # With ``sweep_prints``, the sweep's move is also read from its own prints: its furthest
        # fill beyond the mid at its first order (the tape moved though the book refilled).
        prints = self._print_spreads(ch, burst) if p.sweep_prints and p.sweep_levels is not None else None
        by_sweep = (
            not ok
            and p.sweep_levels is not None
            and swept >= p.min_aggressive_orders
            and (
                (spreads is not None and spreads >= p.min_move_spreads)
                or (prints is not None and prints >= p.min_move_spreads)
            )
        )
        # An attempt (``attempt_min_orders``): a longer one-way series on the book that moved nothing
        n_burst = len({o for _t, _f, o in burst})
        attempt_orders = p.attempt_min_orders
        # From flat (``attempt_from_flat_orders``): the account had no fill in the symbol in the
        # ``two_way_window_s`` before the chain (its ``recent`` fills are kept for the two-way and
        # exit tests; without them "flat" cannot be read and the rule stays off).
        from_flat = (
            p.attempt_from_flat_orders is not None
            and p.attempt_min_orders is not None
            and (p.two_way_fraction is not None or p.exit_in_burst)
            and ch.two_way == (0.0, 0.0)
            and not ch.quoting
        )
        if from_flat and p.attempt_from_flat_orders < attempt_orders:
            attempt_orders = p.attempt_from_flat_orders  # a relaxation of the attempt test: off with it
        by_attempt = (
            not ok
            and not by_sweep
            and attempt_orders is not None
            and p.sweep_levels is not None
            and swept >= 1
            and n_burst >= attempt_orders
        )
        # The hand tests: the first that stops the candidate (None: all pass). Without the gate's
        # loose stage the first failure ends the assessment; with it every figure is read (the
        # gate's features) and the hand test that stopped it is recorded beside them.
        loose = self.loose
        stop = "gap" if loose and self._slow_for_hand(ch, burst) else None
        # The FX books' move gate (``move_gate``): a burst only the move tests stopped is read on
        # (every later figure measured and none of the later tests applied, as the gate's loose
        # stage recorded its candidates) and scored by ``MOMENTUM_GATE_OTC`` below: alerted at or
        # over its threshold. A burst the move tests passed keeps every hand test.
        rescue = False
        if not ok and not by_sweep and not by_attempt:
            stop = stop or "move"
            # Not a move of ``floor_waived_spreads`` or more: the one-tick book's regime, which the
            # waiver and the noise test decide (1 of the fit's 4,732 candidates had it)
            rescue = (
                not loose
                and p.move_gate
                and not (p.floor_waived_spreads is not None and (spreads or 0.0) >= p.floor_waived_spreads)
            )
            if not loose and not rescue:
                return
        run = None
        if ch.core_n is not None and settle is not None and not by_sweep and not by_attempt:
            # The account carried on the same way after the burst (``burst_pause_s``): the burst
            # alone made the move (above), and so did the whole one-way run, measured the same
            # way over its longer span. An execution algorithm slicing a parent over minutes
            # whose first child orders came quickly made no move of its own beyond the market's.
            run_move, _spreads, run_vol, run_ok = self._move(ch, ch.run_peak, ch.last_t + settle)
            if not run_ok:
                stop = stop or "run_move"
                # ``move_gate_run``: the move gate reads on a burst whose own move was weak, never
                # one the account then carried on the same way, pausing again and again, whose whole
                # run made no move either (its turn is the turn of a one-way execution, not of the
                # burst); a burst with one pause inside is still one burst (``_one_pause``)
                if not loose and (not rescue or (p.move_gate_run and not self._one_pause(ch))):
                    return
            run = {"run_move_bps": bps(run_move), "run_move_sigma": (run_vol or {}).get("move_sigma")}
        first_t = burst[0][0]
        burst_qty = sum(f.qty for _t, f, _o in burst)
        # A two-way trader's turn is its routine: it had bought and sold, each way at least
        # ``two_way_fraction`` of the burst, in the ``two_way_window_s`` before the burst (a market
        # maker, a two-way algorithm). Its trade back is the next leg of that flow, not the
        # unwinding of a position the burst built; ignition pushes from a quiet or one-way book.
        bought_before, sold_before = ch.two_way
        if p.two_way_fraction is not None and min(bought_before, sold_before) >= p.two_way_fraction * burst_qty:
            stop = stop or "two_way"
            if not loose and not rescue:
                return
        # The move is the crowd's: while the burst went on (to ``burst_settle_s`` after its last
        # order) the other accounts bought (sold) aggressively at least ``crowd_multiple`` times the
        # burst's quantity. The account traded with a market others were moving; it did not move it.
        crowd = None
        if p.crowd_multiple is not None:
            end = ch.burst_end + (p.burst_settle_s or 0.0)
            own = sum(f.qty for ft, f, _o in ch.fills if ft <= end)
            crowd = max(0.0, ch.flow1 - ch.flow0 - own)
            if crowd >= p.crowd_multiple * burst_qty:
                stop = stop or "crowd"
                if not loose and not rescue:
                    return
        # The position the reversal is measured against: the burst and the same-way orders the
        # account carried on with after it (``burst_pause_s``).
        position_qty = ch.qty()
        # Sold into the move (or bought back into it): the reversal's average price beyond the
        # burst's average price, the burst's way, by at least ``min_reversal_capture`` of the
        # move. A scalper out again at about the price it paid, or a position cut once the move
        # has faded, captured nothing of it.
        burst_px = sum(f.qty * f.price for _t, f, _o in burst) / burst_qty
        rev_qty, rev_notional = ch.reversal()
        rev_px = rev_notional / rev_qty if rev_qty > 0 else fill.price
        move_px = ch.side * (peak - ch.start_mid)
        capture = ch.side * (rev_px - burst_px) / move_px if move_px > 0 else None
        if p.min_reversal_capture is not None and (capture is None or capture < p.min_reversal_capture):
            stop = stop or "capture"
            if not loose and not rescue:
                return
        # How much of the burst's move was left when the account turned (named in the evidence;
        # with ``min_move_left`` a rule: a position held and cut once the move had faded, a
        # stop-out, turned in a market back where the burst began).
        left = ch.side * (ch.rev_mid - ch.start_mid) / move_px if ch.rev_mid is not None and move_px > 0 else None
        if p.min_move_left is not None and left is not None and left < p.min_move_left:
            stop = stop or "move_left"
            if not loose and not rescue:
                return
        # A late turn (``late_reversal_s``): completed after ``reversal_window_s``, it counts only
        # when the account turned into the move (the mid still held ``late_min_move_left`` of it
        # and the turn's price stood ``late_min_capture`` of it beyond the burst's): a turn once
        # the move has faded is a held position cut.
        late = not loose and t - ch.last_t > p.reversal_window_s
        if rescue and late:  # the move gate reads the turns of ``reversal_window_s``, as its candidates had
            return
        if late and not (
            left is not None and left >= p.late_min_move_left and capture is not None and capture >= p.late_min_capture
        ):
            stop = stop or "late_turn"
            if not loose and not rescue:
                return
        # A stop-out, not a sale into the move (``stop_out``): the reversal closed the whole position
        # at once, at a loss (with ``stop_out_needs_move_back``, only with the mid back beyond where
        # the burst began). Ignition unwinds into the move it made; a position cut in full at a loss
        # got nothing out of it: a stop-loss. Only for a move the mid made: a burst that moved the
        # book by its sweep (the mid, refilled, moved a tick or two) has no move of the mid to come
        # back from (its "left" and "capture" are ratios to those ticks).
        if (
            p.stop_out
            and not by_sweep
            and not by_attempt
            and (not p.stop_out_needs_move_back or (left is not None and left < 0))
            and capture is not None
            and capture < 0
            and rev_qty >= position_qty
        ):
            stop = stop or "stop_out"
            if not loose and not rescue:
                return
        gate = None
        if loose or rescue:  # the gates' features (a rescued burst's hand test stopped it: "move")
            features = self._gate_features(
                ch,
                burst,
                t,
                n_burst=n_burst,
                swept=swept,
                spreads=spreads,
                prints=prints,
                move=move,
                burst_qty=burst_qty,
                crowd=crowd,
                position_qty=position_qty,
                rev_qty=rev_qty,
                capture=capture,
                hand_passed=stop is None,
            )
        if loose:
            if p.gate_candidates:
                self.candidates.append(
                    {
                        "account": fill.account,
                        "symbol": fill.symbol,
                        "t": t,
                        "hand_stop": stop,
                        "order_ids": list(dict.fromkeys([o for _t, _f, o in ch.fills] + ch.exit_ids + ch.rev_ids)),
                        "features": features,
                    }
                )
            if p.gate:
                gate = momentum_gate_score(features, self.gate_model, self.gate_threshold)
                gate["hand_test_stopped"] = stop
                if gate["probability"] < gate["threshold"]:
                    return
            elif stop is not None:
                return
        elif rescue:
            gate = momentum_gate_score(features, MOMENTUM_GATE_OTC, self.move_gate_threshold)
            gate["hand_test_stopped"] = stop
            gate["model"] = "move_gate"
            if gate["probability"] < gate["threshold"]:
                return
        order_ids = list(dict.fromkeys(o for _t, _f, o in burst))
        carried_on = list(dict.fromkeys(o for _t, _f, o in ch.fills[len(burst) :]))
        first = burst[0][1]
        last_t = burst[-1][0]
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=fill.account,
                owner=fill.owner,
                symbol=fill.symbol,
                order_ids=order_ids + carried_on + ch.exit_ids + ch.rev_ids,
                # Moved by its sweep: scored on the orders that walked the book (0.5 at the minimum)
                score=excess_score(gate["probability"], gate["threshold"])
                if gate is not None
                else excess_score(swept, p.min_aggressive_orders)
                if by_sweep
                else excess_score(n_burst, attempt_orders)
                if by_attempt
                else excess_score(move, p.min_move_bps),
                start=first.ts,
                end=fill.ts,
                evidence={
                    "burst_side": "buy" if ch.side > 0 else "sell",
                    "burst_orders": len(order_ids),
                    "min_aggressive_orders": p.min_aggressive_orders,
                    "max_gap_s": p.max_gap_s,
                    "burst_seconds": round(last_t - first_t, 6),
                    "burst_qty": burst_qty,
                    "burst_pause_s": p.burst_pause_s,
                    "lead_pause_s": p.lead_pause_s,
                    "carry_on_s": p.carry_on_s,
                    "carried_on_orders": len(carried_on),
                    "carried_on_qty": position_qty - burst_qty,
                    "start_mid": ch.start_mid,
                    "peak_mid": ch.peak_mid,
                    "burst_peak_mid": ch.burst_peak,
                    "burst_settle_s": p.burst_settle_s,
                    "move_bps": bps(move),
                    "swept_orders": swept,
                    "sweep_levels": p.sweep_levels,
                    "move_by_sweep": by_sweep,
                    "burst_print_spreads": None if prints is None else round(prints, 3),
                    "attempt": by_attempt,
                    "attempt_min_orders": p.attempt_min_orders,
                    "attempt_from_flat_orders": p.attempt_from_flat_orders,
                    "came_from_flat": from_flat,
                    # A newcomer (``fresh_series_s``), and whether its series took pauses over
                    # ``max_gap_s`` (the newcomer's allowance)
                    "newcomer_to_symbol": ch.fresh,
                    "fresh_series": ch.fresh
                    and any(b[0] - a[0] > p.max_gap_s for a, b in zip(burst, burst[1:], strict=False)),
                    "fresh_series_s": p.fresh_series_s,
                    "sweep_prints": p.sweep_prints,
                    "min_move_bps": p.min_move_bps,
                    "move_spreads": None if spreads is None else round(spreads, 3),
                    "min_move_spreads": p.min_move_spreads,
                    "reversal_qty": rev_qty,
                    "reversal_fraction": round(rev_qty / position_qty, 4),
                    "exit_in_burst_qty": ch.exit_qty,
                    "exit_in_burst_order_ids": ch.exit_ids,
                    "exit_in_burst": p.exit_in_burst,
                    "min_reversal_fraction": p.min_reversal_fraction,
                    "reversal_order_ids": ch.rev_ids,
                    "reversal_price": fill.price,
                    "burst_average_price": round(burst_px, 8),
                    "reversal_average_price": round(rev_px, 8),
                    "reversal_capture_of_move": None if capture is None else round(capture, 4),
                    "mid_at_reversal": ch.rev_mid,
                    "move_left_at_reversal": None if left is None else round(left, 4),
                    "min_move_left": p.min_move_left,
                    "min_reversal_capture": p.min_reversal_capture,
                    "stop_out": p.stop_out,
                    "reversal_after_burst_s": round(t - ch.last_t, 6),
                    "reversal_window_s": p.reversal_window_s,
                    "late_reversal_s": p.late_reversal_s,
                    "late_turn": late,
                    "bought_before": bought_before if p.two_way_fraction is not None else None,
                    "sold_before": sold_before if p.two_way_fraction is not None else None,
                    "two_way_window_s": p.two_way_window_s,
                    "two_way_fraction": p.two_way_fraction,
                    "crowd_qty": crowd,
                    "crowd_multiple": p.crowd_multiple,
                }
                | (vol or {})
                | (run or {})
                | ({"gate": gate} if gate is not None else {}),
            )
        )

    def _slow_for_hand(self, ch, burst) -> bool:
        """Whether the hand rules' chain would have broken inside this (loose) burst: a pause over
        ``_hand_gap`` between its orders (the first pause may be the lead's, up to
        ``lead_pause_s``)."""
        p = self.p
        starts = list({o: ft for ft, _f, o in reversed(burst)}.values())[::-1]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        if not gaps:
            return False
        gap = self._hand_gap(ch)
        lead = max(p.lead_pause_s or 0.0, gap)
        return gaps[0] > lead or any(g > gap for g in gaps[1:])

    def _gate_features(
        self,
        ch,
        burst,
        t,
        *,
        n_burst,
        swept,
        spreads,
        prints,
        move,
        burst_qty,
        crowd,
        position_qty,
        rev_qty,
        capture,
        hand_passed,
    ) -> dict[str, float]:
        """The candidate's figures the gate reads (``MOMENTUM_GATE``), each a plain number: the
        series (orders, their longest pause, the share that walked the book), the move (mid and
        prints in spreads, in the instrument's own noise), the account's share of the aggressive
        flow, the turn (how long after, how much of the position, at what capture, a loss closed
        in full), the account's business in the symbol before (a newcomer in the
        ``fresh_series_s``, flat in the ``two_way_window_s``, its two-way and total volume then
        against the burst), and whether the hand tests passed it."""
        p = self.p
        first_t = burst[0][0]
        starts = list({o: ft for ft, _f, o in reversed(burst)}.values())[::-1]
        max_gap = max((b - a for a, b in zip(starts, starts[1:], strict=False)), default=0.0)
        span = max(ch.burst_end + (p.burst_settle_s or 0.0) - first_t, 30.0)
        sigma = sigma_bps(self.engine, ch.symbol, first_t - p.vol_lookback_s, first_t, min(span, 300.0))
        move_sigma = move / (sigma * span**0.5) if sigma else 0.0
        bought, sold = ch.two_way
        carried = len({o for _t, _f, o in ch.fills}) - n_burst

        def clip(x, lo, hi):
            return lo if x < lo else hi if x > hi else x

        return {
            "orders": log1p(n_burst),
            "max_gap_s": max_gap,
            "walked_share": swept / n_burst if n_burst else 0.0,
            "move_spreads": clip(spreads or 0.0, -10.0, 20.0),
            "print_spreads": clip(prints or 0.0, -10.0, 20.0),
            "move_sigma": clip(move_sigma, -5.0, 10.0),
            "own_share": burst_qty / (burst_qty + crowd) if crowd is not None else 1.0,
            "turn_log_s": log1p(max(0.0, t - ch.last_t)),
            "turned": clip(rev_qty / position_qty, 0.0, 2.0) if position_qty else 0.0,
            "capture": clip(capture, -3.0, 3.0) if capture is not None else 0.0,
            "loss_closed": float(capture is not None and capture < 0 and rev_qty >= position_qty),
            "newcomer": float(ch.fresh),
            "from_flat": float(ch.two_way == (0.0, 0.0) and not ch.quoting),
            "prior_two_way": clip(min(bought, sold) / burst_qty, 0.0, 3.0),
            "prior_volume": log1p((bought + sold) / burst_qty),
            "carried_on": log1p(max(0, carried)),
            "hand_passed": float(hand_passed),
        }


def linear_gate(features: dict[str, float], intercept: float, terms) -> tuple[float, dict[str, float]]:
    """A learned gate's log-odds (plain Python, the fit's standardisation applied): the intercept
    plus, per ``(name, mean, scale, coef)`` term, ``coef * (feature - mean) / scale``; and each
    term's contribution, unrounded (the evidence rounds what it shows)."""
    z = intercept
    contributions = {}
    for name, mean, scale, coef in terms:
        c = coef * (features[name] - mean) / scale
        contributions[name] = c
        z += c
    return z, contributions


def momentum_gate_score(features: dict[str, float], model: dict, threshold: float) -> dict:
    """The gate's logistic score of a candidate (plain Python): each model feature standardised
    by the fit's mean and scale, times its coefficient; the probability against ``threshold``.
    The evidence names each feature's value and contribution (to the log-odds, the threshold's
    log-odds beside them), so an officer sees what carried the alert."""
    z, parts = linear_gate(features, model["intercept"], ((name, *term) for name, term in model["features"].items()))
    contributions = {
        name: {"value": round(features[name], 4), "contribution": round(c, 4)} for name, c in parts.items()
    }
    prob = 1.0 / (1.0 + exp(-z)) if z > -700 else 0.0
    thr = min(max(threshold, 1e-9), 1 - 1e-9)
    return {
        "probability": round(prob, 6),
        "threshold": threshold,
        "log_odds": round(z, 4),
        "threshold_log_odds": round(log(thr / (1 - thr)), 4),
        "intercept": model["intercept"],
        "contributions": contributions,
    }


# The learned gate of marking the close (``close_gate``; 2026-12-06 09:00 round, wip/close40):
# the figures the detector measures for every push at a print, as the gate reads them. Each is
# bounded (a ratio clipped, a count or a rate on a log scale) so that one extreme figure cannot
# carry the score alone.
CLOSE_GATE_FEATURES = (
    "share",
    "window_share",
    "one_sided",
    "log_orders",
    "log_concentration",
    "move_ratio",
    "reversal_ratio",
    "log_position",
    "continuation",
    "log_span",
    "hand_pass",
    "ok_orders",
    "ok_one_sided",
    "ok_share",
    "ok_concentration",
    "ok_position",
    "ok_print",
    "ok_continuation",
)
# The hand rules' cut points (their defaults) read as votes: each figure on the hand rules' side
# of its threshold counts 1 (``ok_*``), so the gate can weigh a push that fails one test by a
# little and passes the rest (the hand rules drop it) against one that fails several.
GATE_CUTS = {
    "ok_orders": ("log_orders", log(2.0)),
    "ok_one_sided": ("one_sided", 0.8),
    "ok_share": ("share", 0.25),
    "ok_concentration": ("log_concentration", log(5.0)),
    "ok_position": ("log_position", log(1.05)),
    "ok_continuation": ("continuation", None),
}


def close_gate_features(ev: dict, continuation: float, reversal: float) -> dict[str, float]:
    """The gate's features of one push, from its evidence and the flow and mid after the print."""
    threshold = ev["move_threshold_bps"] or 1.0
    conc = ev["concentration"]
    features = {
        # the account's share of the firm's aggressive volume over the push, and over the window
        "share": float(ev["share_of_aggressive_volume"]),
        "window_share": float(ev["share_of_window_aggressive_volume"]),
        # one-way: |net| / gross over the window or over the push, the higher
        "one_sided": max(float(ev["one_sided"]), float(ev["push_one_sided_figure"])),
        "log_orders": log(ev["push_orders"]),
        # the push's rate against the account's pace before it (no pace before: 1,000)
        "log_concentration": log(min(max(conc, 0.1), 1000.0)) if conc is not None else log(1000.0),
        # the print's move from where the push began, and its distance from the mid after, in thresholds
        "move_ratio": min(max(ev["move_bps"] / threshold, -3.0), 5.0),
        "reversal_ratio": min(max(reversal / threshold, -3.0), 5.0),
        # the position the push favoured (held, built, built since any moment), in pushes
        "log_position": log(1.0 + min(max(ev["position_favoured_qty_ratio"], 0.0), 20.0)),
        # the same-way flow after the print, in pushes
        "continuation": min(continuation, 3.0),
        "log_span": log(1.0 + ev["push_span_s"]),
    }
    features.update(close_gate_votes(features))
    # today's hand rules alert it (1) or one of their tests stops it (0)
    features["hand_pass"] = 1.0 if ev["hand_stop"] is None else 0.0
    return features


def close_gate_votes(features: dict[str, float]) -> dict[str, float]:
    """Each hand test's figure on its passing side (1) or not (0), from the gate's features."""
    votes = {
        name: float(features[figure] <= 0.5 if cut is None else features[figure] >= cut)
        for name, (figure, cut) in GATE_CUTS.items()
    }
    votes["ok_print"] = float(
        (features["move_ratio"] >= 1.0 or features["reversal_ratio"] >= 1.0) and features["move_ratio"] >= 0.0
    )
    return votes


def close_gate_score(features: dict[str, float], gate: dict) -> tuple[float, dict[str, float]]:
    """The gate's linear score (log-odds) and each feature's contribution to it (its
    standardised value x its coefficient; the intercept named as such)."""
    z, parts = linear_gate(
        features, gate["intercept"], zip(gate["features"], gate["mean"], gate["scale"], gate["coef"], strict=True)
    )
    return z, {"intercept": round(gate["intercept"], 4), **{name: round(c, 4) for name, c in parts.items()}}


def _cv(values: list[float]) -> float:
    """The coefficient of variation (population standard deviation / mean; 0 for a zero mean)."""
    mean = sum(values) / len(values)
    if mean <= 0:
        return 0.0
    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 / mean


class MarkingTheCloseDetector(Detector):
    """Marking the close (MAR Annex I 2(b), 2016/522 Annex II 1(c)): on a close or fixing print,
    an account that pushed the print with aggressive one-way trading just before it, in favour
    of a position it already held.

    The push is the account's net aggressive flow in one direction that ends at the print, from
    where that flow (counted back from the print, within ``window_s``) was largest: a smaller
    trade the other way inside it does not end it, one that outweighs what came after does. At
    least ``min_orders`` orders that way, ``min_one_sided`` of its aggressive volume in the
    window that way (or, for a push that is a series of at least ``one_sided_push_min_orders``
    orders that way, of its volume over the push: the account's business the other way before
    the series began does not make it two-way), ``min_share`` of the firm's aggressive volume in
    the symbol over the push.
    The print is measured against the instrument's own volatility, not an absolute figure: the
    move from the mid when the push began to the print, or the print's distance from the mid
    ``after_s`` later (a print pushed away from the market comes back), must reach (for a
    fixing, an average of the market over a window before the print that the push moves only in
    part, the mid the push left at the print is measured the same way, and the higher figure
    counts) ``min_move_sigma`` x the mid's standard deviation over a horizon as long as the push
    (from the per-second mid path of the ``vol_lookback_s`` before it), and at least
    ``min_move_bps``; with ``price_over_tails``, a push that fails it is measured again from
    where each later part of it began (at least ``min_orders`` orders to the print), over that
    part's length, and counts if the print itself stands that part's threshold from there (a
    mark that opens with an order minutes before its bulk). Concentrated into the close: the
    push's rate (volume per second) at least
    ``min_concentration`` x the account's aggressive rate before it, the higher of its rate over
    the ``window_s`` and over the ``vol_lookback_s`` before the push (a flow sliced evenly over
    an hour, or one that only carries on into the close, is not marking), each order before the
    push counted up to ``prior_order_cap`` x the push's largest order (a block bigger than that
    is a position taken at once, not a pace of trading). In favour of a
    position: held before the push, or built over the ``position_lookback_s`` before it (the
    account's own net fills: an exposure built for the fixing by an account whose older business
    leaves it the other way), the same way, at least ``min_position`` x the push; or built the
    push's way since any moment of that look-back (its net fills from then on, at their largest),
    at least ``position_since_any`` x the push (a block taken for the print that the hour's older
    business outweighs); or built all the push's way since the account last traded the other way,
    at least ``min_position`` x the push, and then held untouched for ``position_build_held_s``
    before the push (a position taken and held for the print). The print itself
    stood the push's way from where the push began (at least ``min_print_move_bps``): a print
    the market took the other way was not pushed, however far the mid moved after it; except
    for a dominant push, at least ``dominant_window_share`` of the firm's aggressive volume in the
    symbol over the whole window (with ``dominant_net_window`` each other account's at its net: a
    two-way account's round trips put no pressure on the print), for a position at least
    ``dominant_min_position`` x the push (or for a position held the push's way when it began, at
    least ``dominant_min_held`` x the push: the position the print values, which a push on an
    order book often outweighs; or, with ``dominant_one_way_build``, for a position held the
    push's way of any size that the account's fills over the position look-back built all one way
    and then held, nothing traded, for ``dominant_build_held_s`` before the push), which passing
    every other test is alerted whatever the print did (an attempt: a mark the market absorbed).
    Aimed at the print: the alert waits ``after_s`` and is dropped if the account kept trading
    the same way (more than ``max_continuation`` x the push, or ``dominant_max_continuation``
    for an alert whose print did not move), as a flow that runs on through the print was not aimed at it.
    With ``reversal_min_window_share`` set (off by default), the print's distance from the mid
    after it counts as its move only for a push at least that share of the window's aggressive
    volume (counted as for the dominant push): the market's move after a print that others' flow
    made is not the push coming back."""

    alert_type = "marking_the_close"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.fills: dict[str, deque] = {}
        self.positions = engine.positions
        # The engine's mid path: the push's start, the volatility before it, the mid after the print.
        self.mid_history_s = params.window_s + params.vol_lookback_s + params.after_s
        self._keep_s = params.window_s + max(params.vol_lookback_s, params.position_lookback_s or 0.0)
        # Pushes found at a print, waiting ``after_s`` to see whether the flow carries on:
        # [deadline, account, symbol, direction, push qty, qty after, alert]
        self.pending: list[list] = []
        # With ``gate_candidates``: every push settled at a print, its gate features and the hand
        # test that stopped it (an offline record for fitting the gate; not in the snapshot).
        self.candidates: list[dict] = []

    def windows_empty(self) -> bool:
        return not self.pending

    def expire(self, t):
        if self.windows_empty():  # one test with the engine's (SurveillanceEngine)
            return
        keep = []
        for entry in self.pending:
            if entry[0] < t:
                self._settle(entry)
            else:
                keep.append(entry)
        self.pending = keep

    def _settle(self, entry) -> None:
        deadline, _account, symbol, direction, push, after, alert = entry
        p = self.p
        continuation = after / push if push else 0.0
        ev = alert.evidence
        ev["same_way_after_print_qty"] = after
        ev["continuation_after_print"] = round(continuation, 4)
        collect = "hand_stop" in ev  # carried past the hand tests (the gate, or its candidates)
        if continuation > p.max_continuation and not collect:
            return  # the flow went on through the print: not aimed at it
        mid_after = self.engine.mid_in_force(symbol, deadline)
        close_price = ev["close_price"]
        # How far the print (or, for a fixing, the mid the push left at it) stood from the market after.
        at_print = max(close_price * direction, (ev.get("mid_at_print") or close_price) * direction) * direction
        reversal = direction * (at_print - mid_after) / at_print * 1e4 if mid_after else 0.0
        ev["mid_after_print"] = mid_after
        ev["reversal_after_print_bps"] = bps(reversal)
        # The print is where the market was before the push and after it, or it went the other
        # way from where the push began: not marked, unless the push was dominant (an attempt).
        # The print's distance from the market after it is the push's doing only for a push that
        # was most of the window's one-way pressure into the print: a minority push in a print
        # others moved (or sold into) is not shown to be pushed by the market's move after it.
        came_back = reversal >= ev["move_threshold_bps"] and (
            p.reversal_min_window_share is None
            or ev["share_of_window_aggressive_volume"] >= p.reversal_min_window_share
        )
        moved = (ev["move_bps"] >= ev["move_threshold_bps"] or came_back) and (
            p.min_print_move_bps is None or ev["move_bps"] >= p.min_print_move_bps
        )
        if collect:
            self._decide(alert, continuation, reversal, not moved)
            return
        if moved:
            alert.score = excess_score(max(ev["move_bps"], reversal), ev["move_threshold_bps"])
        elif ev.get("dominant_push"):
            if p.dominant_max_continuation is not None and continuation > p.dominant_max_continuation:
                # an unmoved print is evidence only through the push's shape: a flow that went on
                # after it was working through the print, not aimed at it
                return
            alert.score = excess_score(ev["share_of_window_aggressive_volume"], p.dominant_window_share)
        else:
            return
        ev["print_moved"] = moved
        self.out.append(alert)

    def _decide(self, alert, continuation: float, reversal: float, unmoved: bool) -> None:
        """A push carried past the hand tests (``close_gate`` or ``gate_candidates``): the hand
        rules' verdict (the first test it fails, ``hand_stop``; None: today's rules alert it),
        recorded as a candidate with its gate features when asked, and alerted by the gate when
        it is on (its linear score against its threshold, each feature's contribution named),
        else by the hand rules."""
        p = self.p
        ev = alert.evidence
        stop = ev["hand_stop"]
        if stop is None and continuation > p.max_continuation:
            stop = "max_continuation"
        hand_score = None
        if stop is None:
            if not unmoved:
                hand_score = excess_score(max(ev["move_bps"], reversal), ev["move_threshold_bps"])
            elif not ev.get("dominant_push"):
                stop = "print_move"
            elif p.dominant_max_continuation is not None and continuation > p.dominant_max_continuation:
                stop = "dominant_max_continuation"
            else:
                hand_score = excess_score(ev["share_of_window_aggressive_volume"], p.dominant_window_share)
        ev["hand_stop"] = stop
        ev["print_moved"] = not unmoved
        features = close_gate_features(ev, continuation, reversal)
        if p.gate_candidates:
            self.candidates.append(
                {
                    "account": alert.account,
                    "symbol": alert.symbol,
                    "close_ts": ev["close_ts"],
                    "order_ids": list(alert.order_ids),
                    "hand_stop": stop,
                    "hand_score": hand_score,
                    "features": features,
                    "purpose": {k: v for k, v in ev.items() if k.startswith("purpose_")},
                }
            )
        if not p.close_gate:
            if stop == "print_move" and p.print_purpose_gate and self._stake_for_print(ev):
                # every other hand test passed and the position is a stake taken for the print:
                # an attempt whatever the print did, scored as the dominant push's is
                ev["print_purpose_gate"] = True
                stop = None
                hand_score = excess_score(ev["share_of_window_aggressive_volume"], p.dominant_window_share or 0.6)
            if stop is not None:
                return
            alert.score = hand_score
            self.out.append(alert)
            return
        gate = CLOSE_GATE
        threshold = gate["threshold"] if p.close_gate_threshold is None else p.close_gate_threshold
        z, contributions = close_gate_score(features, gate)
        ev["close_gate_score"] = round(z, 4)
        ev["close_gate_threshold"] = threshold
        ev["close_gate_contributions"] = contributions
        ev["close_gate_fitted"] = gate["fitted"]
        if z < threshold:
            return
        # The definition of the abuse, which the gate may not override (off by default): the
        # print, or the mid at it, moved the push's way, and the account holds a position it favours.
        if p.close_gate_print_moved:
            ev["close_gate_print_moved"] = True
            if ev["move_bps"] <= 0:
                return
        if p.close_gate_position_favoured:
            ev["close_gate_position_favoured"] = True
            if ev["favoured_position_qty"] <= 0:
                return
        # An execution parent's equal slices whose favoured position is the parent's own earlier
        # slices: a benchmark order worked into the print, not a push for a stake.
        if p.close_gate_parent_slices is not None and self._parent_slices(ev):
            return
        # The hand rules' floor of a position (``min_position`` x the push) holds under the gate too.
        if p.close_gate_min_position:
            ev["close_gate_min_position"] = True
            if ev["favoured_position_qty"] < p.min_position * ev["push_qty"]:
                return
        alert.score = 1.0 / (1.0 + exp(-z))
        self.out.append(alert)

    def on_fill(self, t, fill, state, side):
        if self.pending:
            aggressive_fill = state is not None and state.aggressive
            for entry in self.pending:
                if entry[1] != fill.account or entry[2] != fill.symbol:
                    continue
                if entry[3] == side:
                    if aggressive_fill:
                        entry[5] += fill.qty
                elif "purpose_unwind_qty" in entry[6].evidence:
                    # the account's fills the other way after the print (any, passive too): an
                    # unwind of what the push built (recorded with the gate's candidates only)
                    entry[6].evidence["purpose_unwind_qty"] += fill.qty
        dq = self.fills.get(fill.symbol)
        if dq is None:
            dq = self.fills[fill.symbol] = deque()
        aggressive = state is not None and state.aggressive
        dq.append((t, fill, side, aggressive, state.arr_mid if aggressive else None))
        edge = t - self._keep_s  # the window and the look-backs before it (concentration, position)
        while dq[0][0] < edge:
            dq.popleft()

    def _parent_slices(self, ev: dict) -> bool:
        """``close_gate_parent_slices``'s test: the account's orders the push's way over the
        ``vol_lookback_s`` before the print (the push's among them) are at least that many, of one
        size (``PARENT_SLICE_SIZE_CV``), and the position the print favours, less what those orders
        bought before the push began, is under ``min_position`` x the push (no stake of its own).
        Records the figures in the evidence."""
        p = self.p
        stake = ev["favoured_position_qty"] - ev["purpose_schedule_qty_before_push"]
        ev["close_gate_parent_slices"] = p.close_gate_parent_slices
        ev["parent_stake_qty"] = stake
        cv = ev["purpose_schedule_size_cv"]
        return (
            ev["purpose_schedule_orders"] >= p.close_gate_parent_slices
            and cv is not None
            and cv <= PARENT_SLICE_SIZE_CV
            and stake < p.min_position * ev["push_qty"]
        )

    def _stake_for_print(self, ev: dict) -> bool:
        """The print gate's test (``print_purpose_gate``): the position the push favours stood its
        way for ``purpose_min_age_s`` to ``purpose_max_age_s`` before it, and the account unwound
        less than ``purpose_max_unwind`` x the push after the print."""
        p = self.p
        age = ev["purpose_position_age_s"]
        push = ev["purpose_push_qty"]
        unwind = ev["purpose_unwind_qty"] / push if push else 0.0
        ev["purpose_unwind_ratio"] = round(unwind, 4)
        return p.purpose_min_age_s <= age < p.purpose_max_age_s and unwind < p.purpose_max_unwind

    def _purpose(self, fills, account, direction, began, t, held_before, push) -> dict:
        """Figures of why the account traded, from its own tape before the push (2026-12-06 10:00
        round, wip/close43; recorded with the gate's candidates, named ``purpose_*``):
        the age of the position the push favours (how long, counted back from the push, the
        account's position stood the push's way without a break, within the fills kept: at most
        ``window_s`` + the look-back) and how it was built (its orders over that stretch, the
        first to the last), the account's orders the push's way over the ``vol_lookback_s``
        before the print as a schedule (their count, and the spread of the gaps between them
        and of their sizes: an execution parent slices evenly at regular intervals), and a
        counter of its fills the other way after the print (``purpose_unwind_qty``, added to
        while the push waits ``after_s``)."""
        p = self.p
        own = [f for f in fills if f[1].account == account and f[0] < began]
        pos = held_before
        age_from = began
        build_orders: set[str] = set()
        build_first = build_last = None
        if pos * direction > 0:
            for f in reversed(own):
                if f[2] == direction:
                    build_orders.add(f[1].order_id)
                    build_first = f[0]
                    build_last = build_last or f[0]
                pos -= f[2] * f[1].qty
                if pos * direction <= 1e-12:
                    age_from = f[0]
                    break
            else:
                age_from = began - self._keep_s  # the stretch runs past the fills kept: at least that old
        firsts: dict[str, list] = {}
        for f in fills:
            if f[1].account == account and f[2] == direction and f[3] and t - p.vol_lookback_s <= f[0] <= t:
                entry = firsts.get(f[1].order_id)
                if entry is None:
                    firsts[f[1].order_id] = [f[0], f[1].qty]
                else:
                    entry[1] += f[1].qty
        sched = sorted(firsts.values())
        gaps = [b[0] - a[0] for a, b in zip(sched, sched[1:], strict=False)]
        sizes = [e[1] for e in sched]
        qty = sum(f[1].qty for f in push if f[2] == direction)
        if p.close_gate_parent_slices is not None:  # named only with the rule on (off: main's fields)
            before = {"purpose_schedule_qty_before_push": sum(e[1] for e in sched if e[0] < began)}
        else:
            before = {}
        return {
            **before,
            "purpose_position_age_s": round(began - age_from, 3),
            "purpose_build_orders": len(build_orders),
            "purpose_build_span_s": round(build_last - build_first, 3) if build_first is not None else None,
            "purpose_schedule_orders": len(sched),
            "purpose_schedule_gap_cv": round(_cv(gaps), 4) if len(gaps) >= 2 else None,
            "purpose_schedule_size_cv": round(_cv(sizes), 4) if len(sizes) >= 2 else None,
            "purpose_schedule_span_s": round(sched[-1][0] - sched[0][0], 3) if sched else 0.0,
            "purpose_push_qty": qty,
            "purpose_unwind_qty": 0.0,
        }

    def _sigma_bps(self, symbol, start, end, horizon) -> float | None:
        return sigma_bps(self.engine, symbol, start, end, horizon)

    def _move_threshold(self, symbol, look_from, began, length) -> tuple[float | None, float]:
        """The mid's volatility over ``look_from``..``began`` (bps per root second, on a horizon
        of ``length`` held to 30-300 s) and the move a push of that ``length`` must make: at least
        ``min_move_bps`` and ``min_move_sigma`` x that volatility over its length."""
        p = self.p
        sigma = self._sigma_bps(symbol, look_from, began, min(max(length, 30.0), 300.0))
        return sigma, max(p.min_move_bps, p.min_move_sigma * sigma * length**0.5 if sigma is not None else 0.0)

    @staticmethod
    def _order_sizes(push, direction) -> dict[str, float]:
        """The push's orders the push's way: order id -> filled quantity (its fills summed)."""
        sizes: dict[str, float] = {}
        for f in push:
            if f[2] == direction:
                sizes[f[1].order_id] = sizes.get(f[1].order_id, 0.0) + f[1].qty
        return sizes

    def _bulk_concentration(self, t, push, direction, prior, prior_near) -> float | None:
        """The push's rate from where its bulk began against the account's rate before: the
        push's leading orders smaller than ``bulk_min_order`` x its largest (an active
        account's small business before it starts pushing) are counted as the flow before the
        bulk, not as the push's start. None when the push has no such lead, or its bulk fewer
        than ``min_orders`` orders."""
        p = self.p
        sizes = self._order_sizes(push, direction)
        firsts: dict[str, float] = {}
        for f in push:
            if f[2] == direction and f[1].order_id not in firsts:
                firsts[f[1].order_id] = f[0]
        largest = max(sizes.values())
        ordered = sorted((firsts[oid], size) for oid, size in sizes.items())
        k = next(i for i, (_at, size) in enumerate(ordered) if size >= p.bulk_min_order * largest)
        if k == 0 or len(ordered) - k < p.min_orders:
            return None
        cap = p.prior_order_cap * largest if p.prior_order_cap is not None else inf
        lead = sum(min(size, cap) for _at, size in ordered[:k])
        bulk = sum(size for _at, size in ordered[k:])
        rate = max((prior + lead) / p.vol_lookback_s, (prior_near + lead) / p.window_s)
        return (bulk / max(t - ordered[k][0], 1.0)) / rate if rate > 0 else None

    def _pace_before(self, fills, account, until, cap) -> tuple[float, float]:
        """The account's aggressive quantity in the ``vol_lookback_s`` and in the ``window_s``
        before ``until`` (its pace, for the concentration test). ``cap`` None: every fill as it
        came; else per order, each counted up to ``cap`` and placed at its first fill."""
        p = self.p
        look_from, near_from = until - p.vol_lookback_s, until - p.window_s
        prior = prior_near = 0.0
        if cap is None:
            for f in fills:
                if f[3] and look_from <= f[0] < until and f[1].account == account:
                    prior += f[1].qty
                    if f[0] >= near_from:
                        prior_near += f[1].qty
            return prior, prior_near
        before: dict[str, list] = {}
        for f in fills:
            if f[3] and look_from <= f[0] < until and f[1].account == account:
                entry = before.get(f[1].order_id)
                if entry is None:
                    before[f[1].order_id] = [f[0], f[1].qty]
                else:
                    entry[1] += f[1].qty
        for at, size in before.values():
            size = min(size, cap)
            prior += size
            if at >= near_from:
                prior_near += size
        return prior, prior_near

    def _run_concentration(
        self, t, fills, account, direction, began, push, qty, block_build, share, mid_at_print, within_s, min_share
    ):
        """A push that opened before the window (``push_run_within_s``, or with the gate on
        ``close_gate_push_run_s``): the account's own run of fills the push's way just before
        ``began`` (none the other way, no gap longer than ``window_s`` between them), begun within
        ``within_s`` of the print after a quiet ``window_s`` or after its last trade the other
        way, by an account that was the market into the print (``share`` of the aggressive volume
        from the push's first order at least ``min_share``: ``push_run_min_share``, or 0 for the
        gate's run, whose share terms judge that) and with the mid at the print standing the
        run's way from where the run began (and, with ``push_run_min_stake``, for a position the
        account held the run's way when it began). Returns (the run's first fill time, its
        concentration: the run's aggressive rate to the print against the account's pace before
        the run, None when it had none), or
        None when there is no such run (no order before the push, a flow running on one way from
        earlier: an execution parent, a minority push, or a price the run did not carry)."""
        p = self.p
        own = [f for f in fills if f[1].account == account and f[0] < began]
        start, i = began, len(own) - 1
        while i >= 0:
            f = own[i]
            if f[2] != direction or start - f[0] > p.window_s:
                break
            start = f[0]
            i -= 1
        if start == began:
            return None
        if t - start > within_s:
            return None  # one way from earlier than the run allows: a flow, not a run for the print
        if share < min_share:
            return None  # not the market into the print: a minority flow's earlier orders are its pace
        from_mid = self.engine.mid_in_force(push[0][1].symbol, start)
        if mid_at_print is None or not from_mid or direction * (mid_at_print - from_mid) <= 0:
            return None  # the price at the print does not stand the run's way from where it began
        lead_qty = sum(f[1].qty for f in own[i + 1 :] if f[3])
        if p.push_run_min_stake is not None:
            # The position the run serves is the one held when it began: the account's net position
            # now less its own fills since the run's first (the run builds none of its stake).
            since = sum(f[2] * f[1].qty for f in fills if f[1].account == account and f[0] >= start)
            stake = direction * (self.positions.get((account, push[0][1].symbol), 0.0) - since)
            if stake <= 0 or stake < p.push_run_min_stake * qty:
                return None  # no position the run's way before it: the run builds what the print values
        if p.push_run_no_slower and qty / max(t - began, 1.0) < lead_qty / max(began - start, 1.0):
            return None  # the run slowed into the print: its bulk traded before the push, a position taken
        run_qty = qty + lead_qty
        cap = p.prior_order_cap * max(self._order_sizes(push, direction).values()) if p.prior_order_cap else inf
        prior, prior_near = (0.0, 0.0) if block_build else self._pace_before(own[: i + 1], account, start, cap)
        rate = max(prior / p.vol_lookback_s, prior_near / p.window_s)
        return start, ((run_qty / max(t - start, 1.0)) / rate if rate > 0 else None)

    def on_close(self, t, close):
        p = self.p
        fills = self.fills.get(close.symbol)
        edge = t - p.window_s
        start_mid = self.engine.mid_in_force(close.symbol, edge)
        if not fills or start_mid is None:
            return
        window = [f for f in fills if f[0] >= edge]
        quote = self.engine.quotes.get(close.symbol)
        mid_at_print = quote[2] if quote is not None else None
        by_account: dict[str, list] = {}
        for f in window:
            by_account.setdefault(f[1].account, []).append(f)
        # Each account's net aggressive flow in the window (buys less sells): the push's own
        # direction, and the other accounts' pressure on the print (``dominant_net_window``).
        nets = {a: sum(f[2] * f[1].qty for f in mine if f[3]) for a, mine in by_account.items()}
        window_gross = sum(f[1].qty for f in window if f[3])
        # With the learned gate (``close_gate``) or the candidates asked for (``gate_candidates``)
        # every push is carried to the print's settlement, the first hand test it fails named
        # (``hand_stop``) instead of dropping it there.
        collect = p.close_gate or p.gate_candidates or p.print_purpose_gate
        for account, mine in by_account.items():
            aggr = [f for f in mine if f[3]]
            if not aggr:
                continue
            net = nets[account]
            gross = sum(f[1].qty for f in aggr)
            if net == 0:
                continue
            direction = 1 if net > 0 else -1
            one_sided = abs(net) / gross
            # The push: the account's net flow this way that ends at the print, from where it
            # was largest (counted back from the print). A small trade the other way inside it
            # (an active account's other business) does not end it; one that outweighs what
            # came after it does.
            run_from, acc, best = len(aggr), 0.0, 0.0
            for i in range(len(aggr) - 1, -1, -1):
                acc += aggr[i][2] * direction * aggr[i][1].qty
                if acc > best:
                    run_from, best = i, acc
            push = aggr[run_from:]
            push_ids = {f[1].order_id for f in push if f[2] == direction}
            push_one_sided = None
            if (
                p.one_sided_push_min_orders is not None
                and one_sided < p.min_one_sided
                and len(push_ids) >= p.one_sided_push_min_orders
            ):
                # The account's business the other way before a series of orders into the print
                # began is not the push: one-way is judged over the push, from its first order to
                # the print (its net over its gross there), when the window as a whole is two-way.
                push_gross = sum(f[1].qty for f in push)
                push_one_sided = abs(sum(f[2] * f[1].qty for f in push)) / push_gross if push_gross else 0.0
            stop = None
            if len(push_ids) < p.min_orders:
                stop = "min_orders"
            elif max(one_sided, push_one_sided or 0.0) < p.min_one_sided:
                stop = "min_one_sided"
            if stop is not None and not collect:
                continue
            began = push[0][0]
            qty = sum(f[1].qty for f in push if f[2] == direction)
            # Its share of the aggressive volume over the push (the flow that moves a print;
            # passive market-maker fills are counted out).
            total = sum(f[1].qty for f in window if f[3] and f[0] >= began)
            share = qty / total if total > 0 else 0.0
            if share < p.min_share:
                if not collect:
                    continue
                stop = stop or "min_share"
            net_all = sum(f[2] * f[1].qty for f in mine if f[0] >= began)
            held_before = self.positions.get((account, close.symbol), 0.0) - net_all
            # In favour of a position: the one held when the push began (everything the engine
            # has seen since it started) or the one built over the look-back before it (the
            # account's own fills), either the push's way. With the look-back off, the change
            # over the volatility look-back is still named for the analyst.
            build_from = began - (p.position_lookback_s or p.vol_lookback_s)
            own_before = [f for f in fills if build_from <= f[0] < began and f[1].account == account]
            built = sum(f[2] * f[1].qty for f in own_before)
            # The position built the push's way since any moment of the look-back (the account's
            # net fills from then to the push, at its largest): a block taken for the print is
            # the position it favours even when older business in the hour outweighs it.
            built_since = acc_since = 0.0
            for f in reversed(own_before):
                acc_since += f[2] * f[1].qty
                if acc_since * direction > built_since * direction:
                    built_since = acc_since
            floor = p.min_position * qty
            favoured = (held_before, built) if p.position_lookback_s else (held_before,)
            since_ok = (
                p.position_lookback_s is not None
                and p.position_since_any is not None
                and built_since * direction >= p.position_since_any * qty
            )
            # The position built one way since the account last traded the other way (every fill
            # of its own since then the push's way), at least ``min_position`` x the push, and then
            # held, nothing traded, for ``position_build_held_s`` before the push: a position
            # taken and held for the print, however the account's older business leaves it net.
            trail_qty, trail_n = 0.0, 0
            for f in reversed(own_before):
                if f[2] != direction:
                    break
                trail_qty += f[1].qty
                trail_n += 1
            trail_ok = (
                p.position_build_held_s is not None
                and trail_n > 0
                and trail_qty >= floor
                and began - own_before[-1][0] >= p.position_build_held_s
            )
            # The push's share of the firm's aggressive volume over the whole window. With
            # ``dominant_net_window`` every other account's flow counts at its net (its aggressive
            # buys less its sells in the window, either way): a two-way account's round trips (a
            # market maker's or an algorithm's churn) put no pressure on the print, so they do not
            # make a push that was the market's one-way pressure into it any less the market.
            if p.dominant_net_window:
                window_total = qty + sum(abs(v) for a, v in nets.items() if a != account)
            else:
                window_total = window_gross
            window_share = qty / window_total if window_total > 0 else 0.0
            held_way = held_before * direction
            # A dominant push for a position built one way: the account holds a position the
            # push's way, every fill of its own over the look-back before the push was the push's
            # way (a build, not business both ways), and the build was then held, untouched, for
            # at least ``dominant_build_held_s`` before the push (a position taken and held for
            # the print, not an order in the run-up to it): whatever the stake's size.
            build_orders = {f[1].order_id for f in own_before}
            one_way_build = (
                p.dominant_one_way_build
                and p.dominant_window_share is not None
                and window_share >= p.dominant_window_share
                and held_way > 0
                and bool(own_before)
                and all(f[2] == direction for f in own_before)
                and (p.dominant_build_held_s is None or began - own_before[-1][0] >= p.dominant_build_held_s)
            )
            if (
                not one_way_build
                and not since_ok
                and not trail_ok
                and not any(x * direction > 0 and abs(x) >= floor for x in favoured)
            ):
                if not collect:
                    continue
                stop = stop or "position"
            look_from = began - p.vol_lookback_s
            # Concentrated into the close: the push's rate against the account's own before it.
            span = max(t - began, 1.0)
            # The usual flow in orders no larger than the push's largest: a block bigger than that
            # is a position taken at one time (often the one the print favours), not a pace of
            # trading, and counts as one order of the push's size.
            cap = (
                None
                if p.prior_order_cap is None
                else p.prior_order_cap * max(self._order_sizes(push, direction).values())
            )
            prior, prior_near = self._pace_before(fills, account, began, cap)
            # A block build is the stake, not the pace: a position held the push's way that the
            # account's own fills over the position look-back built all one way, in one block (the
            # first of them at most ``block_build_span_s`` before the last) and then held, nothing
            # traded, for at least ``block_build_held_s`` before the push, is the position the
            # print serves; its orders are not the account's pace (an execution parent slicing
            # one way through the hour is, and keeps the test).
            block_build = (
                p.block_build_span_s is not None
                and held_way > 0
                and bool(own_before)
                and all(f[2] == direction for f in own_before)
                and began - own_before[-1][0] >= p.block_build_held_s
                and own_before[-1][0] - own_before[0][0] <= p.block_build_span_s
            )
            if block_build:
                prior = prior_near = 0.0
            prior_rate = max(prior / p.vol_lookback_s, prior_near / p.window_s)
            concentration = (qty / span) / prior_rate if prior_rate > 0 else None
            if concentration is not None and concentration < p.min_concentration and p.bulk_min_order is not None:
                concentration = self._bulk_concentration(t, push, direction, prior, prior_near) or concentration
            run_began = None
            # The run asked for (``push_run_within_s``, with its share), or, with the gate on, the
            # gate's run (``close_gate_push_run_s``: no share asked, the gate's share terms judge it).
            run_within_s, run_min_share = p.push_run_within_s, p.push_run_min_share
            if run_within_s is None and p.close_gate and p.close_gate_push_run_s is not None:
                run_within_s, run_min_share = p.close_gate_push_run_s, 0.0
            if concentration is not None and concentration < p.min_concentration and run_within_s is not None:
                run = self._run_concentration(
                    t,
                    fills,
                    account,
                    direction,
                    began,
                    push,
                    qty,
                    block_build,
                    share,
                    mid_at_print,
                    run_within_s,
                    run_min_share,
                )
                if run is not None:
                    run_began, run_concentration = run
                    concentration = inf if run_concentration is None else max(concentration, run_concentration)
            if concentration is not None and concentration < p.min_concentration:
                if not collect:
                    continue
                stop = stop or "min_concentration"
            # The print against the quote path and the instrument's own volatility.
            base = push[0][4] if push[0][4] is not None else start_mid
            move_print = direction * (close.price - base) / base * 1e4
            # A fixing averages the market over a window before the print, so the push shows
            # only in part in the print: the mid the push left at the print counts too.
            move_mid = direction * (mid_at_print - base) / base * 1e4 if mid_at_print is not None else move_print
            move = max(move_print, move_mid)
            sigma, threshold = self._move_threshold(close.symbol, look_from, began, span)
            price_from = began
            if p.price_over_tails and move < threshold:
                # A mark may open with an order minutes before its bulk: its price effect is
                # measured from where each later part of the push began too (at least
                # ``min_orders`` orders to the print), over that part's length. A part counts
                # only if the print itself moved its threshold from there (not the mid's
                # distance after the print, the weaker evidence); the strongest counts.
                firsts: dict[str, tuple] = {}
                for f in push:
                    if f[2] == direction and f[1].order_id not in firsts:
                        firsts[f[1].order_id] = f
                parts = sorted(firsts.values(), key=lambda f: f[0])
                best = 1.0
                for f0 in parts[1 : len(parts) - p.min_orders + 1]:
                    b = f0[4] if f0[4] is not None else self.engine.mid_in_force(close.symbol, f0[0])
                    if not b:
                        continue
                    length = max(t - f0[0], 1.0)
                    m_print = direction * (close.price - b) / b * 1e4
                    m_mid = direction * (mid_at_print - b) / b * 1e4 if mid_at_print is not None else m_print
                    _sg, th = self._move_threshold(close.symbol, look_from, began, length)
                    if th > 0 and max(m_print, m_mid) / th >= best:
                        best, base, move_print, move_mid = max(m_print, m_mid) / th, b, m_print, m_mid
                        move, threshold, price_from = max(m_print, m_mid), th, f0[0]
            # A dominant push (the account was the market into the print, for a position at
            # least as large as the push, or for one it held the push's way when the push began
            # of at least ``dominant_min_held`` x the push) is an attempt to mark whatever the
            # print did.
            favoured_qty = max(held_before * direction, built * direction, built_since * direction)
            dominant = one_way_build or (
                p.dominant_window_share is not None
                and window_share >= p.dominant_window_share
                and (
                    favoured_qty >= p.dominant_min_position * qty
                    or (p.dominant_min_held is not None and held_way > 0 and held_way >= p.dominant_min_held * qty)
                )
            )
            print_floor = p.min_print_move_bps if p.min_print_move_bps is not None else -inf
            # judged at the print (no wait after it): a print that did not move is alerted only
            # for a dominant push, scored on its share of the window
            unmoved = p.after_s <= 0 and (move < threshold or move < print_floor)
            if unmoved and not dominant:
                if not collect:
                    continue
                stop = stop or "print_move"
            score = excess_score(window_share, p.dominant_window_share) if unmoved else excess_score(move, threshold)
            ids = [f[1].order_id for f in mine if f[0] >= began]
            alert = SurveillanceAlert(
                self.alert_type,
                account=account,
                owner=push[0][1].owner,
                symbol=close.symbol,
                order_ids=ids,
                score=score,
                start=push[0][1].ts,
                end=close.ts,
                evidence={
                    "close_price": close.price,
                    "close_ts": iso(close.ts),
                    "mid_at_window_start": start_mid,
                    "mid_at_push_start": base,
                    "move_bps": bps(move),
                    "print_move_bps": bps(move_print),
                    "mid_at_print": mid_at_print,
                    "mid_move_at_print_bps": bps(move_mid),
                    "move_from_window_start_bps": bps(direction * (close.price - start_mid) / start_mid * 1e4),
                    "volatility_bps_per_sqrt_s": None if sigma is None else round(sigma, 5),
                    "move_threshold_bps": bps(threshold),
                    "price_over_tails": p.price_over_tails,
                    "price_measured_from_s_before_print": round(t - price_from, 3),
                    "min_move_bps": p.min_move_bps,
                    "min_move_sigma": p.min_move_sigma,
                    "window_s": p.window_s,
                    "push_orders": len(push_ids),
                    "min_orders": p.min_orders,
                    "push_qty": qty,
                    "net_aggressive_qty_in_window": net,
                    "one_sided": round(one_sided, 4),
                    "min_one_sided": p.min_one_sided,
                    "share_of_aggressive_volume": round(share, 4),
                    "min_share": p.min_share,
                    "share_of_window_aggressive_volume": round(window_share, 4),
                    "share_of_window_gross_aggressive_volume": round(qty / window_gross, 4) if window_gross else 0.0,
                    "dominant_net_window": p.dominant_net_window,
                    "dominant_window_share": p.dominant_window_share,
                    "reversal_min_window_share": p.reversal_min_window_share,
                    "favoured_position_qty": favoured_qty,
                    "dominant_min_position": p.dominant_min_position,
                    "dominant_min_held": p.dominant_min_held,
                    "dominant_push": dominant,
                    "dominant_one_way_build": one_way_build,
                    "build_orders": len(build_orders),
                    "build_ended_s_before_push": round(began - own_before[-1][0], 3) if own_before else None,
                    "build_began_s_before_push": round(began - own_before[0][0], 3) if own_before else None,
                    "push_span_s": round(t - began, 3),
                    "aggressive_qty_before_push": prior,
                    "aggressive_qty_window_before_push": prior_near,
                    "vol_lookback_s": p.vol_lookback_s,
                    "block_build": block_build,
                    "concentration": None if concentration is None or concentration == inf else round(concentration, 3),
                    "push_run_within_s": p.push_run_within_s,
                    "push_run_min_share": p.push_run_min_share,
                    "push_run_began_s_before_print": None if run_began is None else round(t - run_began, 3),
                    "min_concentration": p.min_concentration,
                    "prior_order_cap": p.prior_order_cap,
                    "position_before_push": held_before,
                    "position_change_over_lookback": built,
                    "position_built_since_any": built_since,
                    "position_since_any": p.position_since_any,
                    "position_built_one_way_since_other_way": trail_qty * direction,
                    "position_build_held_s": p.position_build_held_s,
                    "position_built_one_way_held": trail_ok,
                    "position_lookback_s": p.position_lookback_s,
                    "min_print_move_bps": p.min_print_move_bps,
                    "min_position": p.min_position,
                    "position_at_close": held_before + net_all,
                    "after_s": p.after_s,
                    "max_continuation": p.max_continuation,
                },
            )
            if p.close_gate and p.close_gate_push_run_s is not None:  # named only with the rule on
                alert.evidence["close_gate_push_run_s"] = p.close_gate_push_run_s
            if p.push_run_min_stake is not None:  # named only with the rule on (off: main's fields)
                alert.evidence["push_run_min_stake"] = p.push_run_min_stake
            if p.one_sided_push_min_orders is not None:  # named only with the rule on (off: main's fields)
                alert.evidence["push_one_sided"] = None if push_one_sided is None else round(push_one_sided, 4)
            if collect:  # named only with the gate or the candidates asked for (off: main's fields)
                alert.evidence["hand_stop"] = stop
                alert.evidence["push_one_sided_figure"] = round(
                    abs(sum(f[2] * f[1].qty for f in push)) / max(sum(f[1].qty for f in push), 1e-12), 4
                )
                alert.evidence["position_favoured_qty_ratio"] = round(favoured_qty / qty, 4) if qty else 0.0
                alert.evidence.update(self._purpose(fills, account, direction, began, t, held_before, push))
                if p.after_s <= 0:
                    self._decide(alert, 0.0, 0.0, unmoved)
                    continue
            if p.after_s > 0:
                self.pending.append([t + p.after_s, account, close.symbol, direction, qty, 0.0, alert])
            else:
                self.out.append(alert)
