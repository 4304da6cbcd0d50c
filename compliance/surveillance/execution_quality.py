"""Best-execution monitoring (MiFID II Art. 27, 2017/565 Art. 64(4), ESMA CFD Q&A on slippage).
Pure streaming handlers (see ``base.Detector``)."""

from __future__ import annotations

from collections import OrderedDict
from math import comb, erfc, inf, log2, sqrt
from statistics import NormalDist

from compliance.surveillance.base import (
    MAX_EVIDENCE_ORDERS,
    Detector,
    SurveillanceAlert,
    bps,
    excess_score,
    iso,
    pip_size,
)
from compliance.surveillance.episodes import episode_key


def _pip(cache: dict[str, float], symbol: str, pip_sizes) -> float:
    """The symbol's pip, from ``cache`` (filled on first use)."""
    pip = cache.get(symbol)
    if pip is None:
        pip = cache[symbol] = pip_size(symbol, pip_sizes)
    return pip


def _spreads_pips(state, now, pip: float) -> tuple[float, float]:
    """The spread on the order's arrival and the one prevailing at the fill (``now``: the
    latest quote, (bid, ask, ...); the arrival's when none came), in pips."""
    spread_pips = (state.arr_ask - state.arr_bid) / pip
    return spread_pips, ((now[1] - now[0]) / pip if now is not None else spread_pips)


def _bar_pips(p, spread_pips: float, now_spread: float) -> float:
    """Best execution's bar (``BestExecutionParams`` ``p``), in pips past the arrival touch:
    ``max_adverse_pips`` and ``spread_multiple`` x the wider of the two spreads. One definition
    for best execution and for asymmetric slippage's count of its exceptions (``gross_share``)."""
    return max(p.max_adverse_pips, p.spread_multiple * max(spread_pips, now_spread))


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
    adverse fills in one symbol into one alert per run (episode).

    A market order walking the book is not assessed beyond its first level: the later fills of
    one sweep (same instant, same order) whose first fill was at or inside the arrival touch and
    each at or beyond the one before (``walk_exempt``) are the venue's deeper levels its size
    took, the depth the quote stream does not show, not a price the firm set. A fill that breaks
    the walk (priced better than an earlier fill of the sweep, or the sweep's first fill already
    beyond the touch) and every later fill of that sweep are assessed as before; but a sweep
    whose first print is past the touch within the bar (``walk_from_marked_first``) is read on
    that print, and its later levels, each at or beyond the one before, from it.

    One behaviour, one alert (``asymmetric_hold_s``): a detection of a client whose adverse
    slippages in the symbol (asymmetric slippage's tally, this fill included) are mostly within
    the bar (fewer than asymmetric slippage's ``gross_share`` beyond it) is the asymmetric
    pattern's largest mark, not best execution's abuse. Unless a run of the client is already
    open here (holding would only split it), it is *held* (``held``: client and symbol -> time
    first held, detections), with the client's next detections, until asymmetric slippage
    assesses the client. If it alerts, the held detections are folded into its alert's evidence
    (``best_execution_fills``), not raised here; if it clears the client, they are released as
    they were, and the client's next detections are not held (``cleared``) until an assessment
    alerts it; but when it found the client's slippage symmetric (``dismiss_symmetric``), the held
    detections each within the largest improvement the client was given are dismissed, the
    symmetric policy ESMA's CFD Q&A permits, and the next ones held again. Released too,
    unchanged: ``asymmetric_hold_s`` after the first was held, once the client has had no
    slippage in the symbol for asymmetric's ``assess_quiet_s`` with no assessment due (fewer
    slippages than its test can weigh), and at the end of the input after
    asymmetric's last assessments. A client whose adverse fills are mostly beyond the bar
    (best-execution abuse) is not held once one of them is past twice it (with
    ``hold_without_gross``; without it, never), nor is a fill past ``asymmetric_hold_multiple`` x the
    bar (a gross exception in its own right, whatever the client's other fills show: it releases
    the client's held run with it, best execution's case). Only with
    both detectors firm-wide (no scoped rule for either): a scoped rule's instance does not hold.
    """

    alert_type = "best_execution_slippage"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self._pips: dict[str, float] = {}
        self.quotes = engine.quotes
        # The sweep in progress: (order id, event time, last fill price, still a walk) of the
        # last assessed fill; a walk's fills are consecutive records of one instant.
        self.walk: tuple[str, float, float, bool] | None = None
        # Detections held for asymmetric slippage's assessment: (owner, symbol) -> [t first held, alerts]
        self.held: dict[tuple[str, str], list] = {}
        # Clients asymmetric slippage's last assessment cleared: not held until it alerts them
        self.cleared: set[tuple[str, str]] = set()
        self._asym: AsymmetricSlippageDetector | None = None
        self._asym_resolved = False

    def _asymmetric(self) -> AsymmetricSlippageDetector | None:
        """The firm-wide asymmetric slippage detector this one holds detections for (None: none)."""
        if not self._asym_resolved:
            self._asym_resolved = True
            units = self.engine.units
            unit = units.get("asymmetric_slippage")
            if (
                self.p.asymmetric_hold_s is not None
                and units.get(self.alert_type) is self
                and type(unit) is AsymmetricSlippageDetector
                and unit.p.gross_share is not None
            ):
                self._asym = unit
        return self._asym

    def on_fill(self, t, fill, state, side):
        if state is None or not state.aggressive or state.arr_mid is None:
            return
        touch = state.arr_ask if side > 0 else state.arr_bid
        diff = side * (fill.price - touch)
        p = self.p
        symbol = fill.symbol
        pip = _pip(self._pips, symbol, p.pip_sizes)
        if p.walk_exempt:
            tol = 1e-9 * touch
            prev = self.walk
            ref = None
            if state.filled - fill.qty <= 1e-9 * state.qty:  # the order's first fill
                walking = diff <= tol
                if not walking and p.walk_from_marked_first:
                    ref = fill.price  # a marked first print: the sweep's later levels from it
            elif prev is not None and prev[0] == fill.order_id and prev[1] == t and (prev[3] or prev[4] is not None):
                walking = side * (fill.price - prev[2]) >= -tol
                if walking and not prev[3]:  # a later level of a sweep whose first print was marked
                    ref, walking = prev[4], False
            else:
                walking = False
            self.walk = (fill.order_id, t, fill.price, walking, ref)
            if walking:
                return
            if ref is not None and ref != fill.price:
                # the first print is judged against the arrival touch on its own; while it is
                # within the bar, a later level is read from it (the depth its size took)
                first_pips = side * (ref - touch) / pip
                if round(first_pips, 6) <= _bar_pips(p, *_spreads_pips(state, self.quotes.get(symbol), pip)):
                    diff = side * (fill.price - ref)
        if diff <= 0:
            return
        slip_pips = diff / pip
        now = self.quotes.get(symbol)
        spread_pips, now_spread = _spreads_pips(state, now, pip)
        # the touch when it filled (its own slippage when no quote came since arrival)
        now_slip = side * (fill.price - (now[1] if side > 0 else now[0])) / pip if now is not None else slip_pips
        threshold = _bar_pips(p, spread_pips, now_spread)
        if p.bar_exact:
            slip_pips, now_slip = round(slip_pips, 6), round(now_slip, 6)
        if slip_pips <= threshold or now_slip <= p.fill_touch_fraction * threshold:
            return
        mid = state.arr_mid
        slip_bps = diff / mid * 1e4
        if p.max_adverse_bps is not None and slip_bps <= p.max_adverse_bps:
            return
        alert = SurveillanceAlert(
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
        asym = self._asymmetric()
        if asym is not None and slip_pips > p.asymmetric_hold_multiple * threshold:
            if self.held:  # a gross exception: the client's run is best execution's, held part first
                self.release((fill.owner, symbol))
        elif asym is not None and (key := (fill.owner, symbol)) not in self.cleared:
            tally = asym.tallies.get(key)
            adverse, gross = (tally.adverse + 1, tally.gross + 1) if tally is not None else (1, 1)
            held = self.held.get(key)
            if held is not None:  # held until asymmetric's assessment (it weighs the share then)
                held[1].append(alert)
                return
            # asymmetric's case unless best execution's: mostly past the bar and, with its
            # gross_multiple, a gross exception among them (``hold_without_gross``)
            no_far = p.hold_without_gross and asym.p.gross_multiple is not None and not (tally and tally.gross_far)
            if (gross < asym.p.gross_share * adverse or no_far) and episode_key(alert) not in self.engine.merger.open:
                # mostly within the bar: the asymmetric pattern (a run best execution has already
                # opened goes on as its own: holding would only split it)
                self.held[key] = [t, [alert]]
                return
        self.out.append(alert)

    def release(self, key) -> None:
        """The client's held detections go out as best execution's (in the order they came)."""
        held = self.held.pop(key, None)
        if held is not None:
            self.out.extend(held[1])

    def clear(self, key, *, symmetric: bool = False) -> None:
        """Asymmetric slippage assessed the client and did not alert: what was held is best
        execution's, and so are the client's next detections until an assessment alerts it.
        ``symmetric``: it found the client's slippage symmetric (not best execution's case);
        with ``dismiss_symmetric`` the held detections each within the largest improvement the
        client was given in the symbol (bps past the arrival touch) are dismissed, and if none
        is left the client's next detections are held again for its next assessment; a held
        mark past every improvement given is released as before."""
        held = self.held.get(key)
        if symmetric and held is not None and self.p.dismiss_symmetric and (asym := self._asymmetric()) is not None:
            tally = asym.tallies.get(key)
            reach = tally.max_improved * self.p.dismiss_symmetric_reach + 1e-3 if tally is not None else 0.0  # bps
            kept = [a for a in held[1] if a.evidence["slippage_bps"] > reach]
            if not kept:  # each mark within an improvement the client was given: the symmetric policy
                del self.held[key]
                return
            held[1] = kept  # a mark past every improvement given: best execution's, as before
        self.cleared.add(key)
        self.release(key)

    def take_held(self, key) -> list:
        """The client's held detections, handed to asymmetric slippage's alert (not raised here)."""
        self.cleared.discard(key)
        held = self.held.pop(key, None)
        return held[1] if held is not None else []

    def windows_empty(self) -> bool:
        return not self.held

    def expire(self, t):
        if not self.held:
            return
        asym = self._asymmetric()
        cap = self.p.asymmetric_hold_s
        for key in list(self.held):
            first_t = self.held[key][0]
            if asym is None or cap is None:
                self.release(key)
                continue
            if t - first_t > cap:
                self._review(asym, key, f"when best execution's hold reached {cap:g} s")
                continue
            if key in asym.pending:  # asymmetric assesses it when due (its sweep follows this one)
                continue
            tally = asym.tallies.get(key)
            if tally is None or t - tally.last_ts.timestamp() > asym._quiet:
                # no assessment due: too few slippages for the test, or all assessed already
                self._review(asym, key, "with best execution's held fills, quiet")

    def _review(self, asym: AsymmetricSlippageDetector, key, assessed: str) -> None:
        """A held run is not released unreviewed while asymmetric slippage can weigh the client
        (``review_held``): it assesses the client on its history so far, which folds the run
        into its alert or clears it (and releases it here); a client it alerted already (the
        held fills came after that alert: nothing new to assess) is alerted again with them, an
        alert the episode merger joins to the first. Too few slippages for its test: released,
        unless the client's slippage is one way (asymmetric's ``one_way_level``: no
        improvement ever passed on, 5 marks or more, most within the bar, none gross), when
        the run is asymmetric slippage's alert, the held exceptions in its evidence."""
        tally = asym.tallies.get(key)
        if tally is not None and key not in self.cleared:
            weighable = tally.adverse + tally.improved >= asym._floor
            if weighable and self.p.review_held:
                asym.pending.pop(key, None)
                asym._assess(key, tally, assessed=assessed)
            elif not weighable and key in self.held and asym.one_way(tally):
                asym.raise_one_way(key, tally, self.take_held(key), assessed=f"{assessed}, below the test's floor")
        self.release(key)  # what the assessment did not take (nothing, unless it was not run)

    def finish(self):
        asym = self._asymmetric()
        if asym is not None and self.held:
            asym.finish()  # its end-of-input assessments first: they fold or clear what is held
            if asym.p.assess_at_end:
                for key in list(self.held):  # clients it alerted already, with nothing new since
                    self._review(asym, key, "end of input, with best execution's held fills")
        for key in list(self.held):
            self.release(key)


def sign_flip_tail(values: list[float], level: float) -> float:
    """The exact one-sided sign-flip p-value of ``sum(values)``: the share of the 2^n patterns
    of signs on the values' sizes whose sum reaches the observed one (a fair policy's slippage
    is as likely +s as -s, whatever its size). Counted from the largest sizes down, a branch
    settled by its remaining sizes' total; the count stops once past ``level`` (the p-value
    returned is then only a lower bound, above the level)."""
    sizes = sorted((abs(v) for v in values), reverse=True)
    n = len(sizes)
    observed = sum(values)
    need = observed - 1e-9 * (sum(sizes) or 1.0)  # the observed pattern itself counts
    rest = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        rest[i] = rest[i + 1] + sizes[i]
    cap = int(level * 2.0**n) + 1
    count = 0
    stack = [(0, 0.0)]
    while stack and count <= cap:
        i, partial = stack.pop()
        if partial - rest[i] >= need:
            count += 1 << (n - i)  # every remaining pattern reaches it
        elif partial + rest[i] >= need:  # some do: both signs of the next size
            stack.append((i + 1, partial - sizes[i]))
            stack.append((i + 1, partial + sizes[i]))
    return count / 2.0**n


class _Tally:
    __slots__ = (
        "accounts",
        "adverse",
        "assessed",
        "first_ts",
        "gross",
        "gross_far",
        "improved",
        "last_ts",
        "max_improved",
        "order_ids",
        "slips",
        "sum_adverse",
        "sum_improved",
        "sum_squares",
        "zero",
    )

    def __init__(self, ts):
        self.adverse = self.improved = self.zero = 0
        self.gross = 0  # adverse slippages each beyond best execution's bar (its exceptions)
        self.gross_far = 0  # those past gross_multiple x the bar (gross exceptions)
        self.sum_adverse = self.sum_improved = self.sum_squares = 0.0
        self.max_improved = 0.0  # the largest improvement (bps; best execution's ``dismiss_symmetric``)
        self.last_ts = ts  # the last counted slippage's time (an end-of-input alert ends there)
        self.order_ids: list[str] = []
        # each signed slippage (bps) while the client has fewer than min_fills (the exact test by
        # value); emptied from min_fills on, where the normal approximation runs on the sums
        self.slips: list[float] = []
        self.accounts: set[str] = set()
        self.first_ts = ts
        self.assessed = 0  # the count of slippages at the last assessment (0: never assessed)


class AsymmetricSlippageDetector(Detector):
    """Asymmetric slippage per symbol and client (owner key): of the aggressive orders whose
    first fill's price differs from the touch quoted on arrival (ask to buy, bid to sell) by more
    than ``zero_band_bps``, does the slippage go against the client more than a fair policy's
    would? One order is one observation (``one_per_order``): a large order's later fills, further
    through the book, are the depth its size took, not another draw of the broker's policy.

    Two one-sided tests, on all the client's non-zero slippages so far:
    - by count (sign test): z = (adverse - n/2) / sqrt(n/4) against ``z_threshold``: adverse
      slippage passed on more often than improvement;
    - by value (``value_z_threshold``; None: off): z = sum(s) / sqrt(sum(s^2)), the sign-flip
      test of the slippages themselves (a fair policy's slippage is as likely +s as -s, whatever
      its size): the improvements passed on, but smaller than the adverse slippage, as the pips
      of adverse slippage against the pips of improvement in an RTS 28-style review. A few
      large fills weigh in the denominator too, so one outlier alone cannot carry it. Under
      ``min_fills`` slippages it is exact (``exact_value_test``, wip/exec23): the share of the 2^n
      sign patterns of the client's own slippages whose sum reaches the observed one
      (``sign_flip_tail``), against the count test's level; the tally keeps each slippage until
      ``min_fills``.
    Assessed at every ``min_fills``-th slippage (20, 40, 60...). Evidence gathered after the last
    multiple is otherwise never looked at, so a client with at least ``min_fills`` whose tally has
    slippages not yet assessed is *pending*, and assessed once on its whole history when it has
    been quiet (no new slippage) for ``assess_quiet_s`` of event time (``expire``: the streaming
    stage, which never reaches an end of input) and, what is still pending then, at the end of
    the input (``assess_at_end``: the batch run). As a desk reviews a client's run of orders
    once the client has stopped trading the symbol for a while, not only on every 20th. The
    evidence grows with the client's history; the engine merges the detections into one alert
    (one episode: the alert starts at the client's first slippage).

    Best execution's case (``gross_share``): a client whose adverse slippages are, this share of
    them or more, each beyond best execution's bar (``BestExecutionParams``: ``max_adverse_pips``
    and ``spread_multiple`` x the spread prevailing on arrival or at the fill) is not alerted
    here. Each of those fills is an Art. 27 exception on its own, alerted fill by fill by best
    execution; the asymmetric finding is the policy no single fill shows, marks mostly within
    the tolerance passed on one way only. The same fills are one case, typed once. The bar is the
    firm-wide best-execution rule's (a scoped best-execution rule does not move it). It is best
    execution's case only with a gross exception among them, a fill past ``gross_multiple`` x
    the bar that no policy reading explains: a client whose one-way marks all stay within twice
    the bar, however many spill past it, is a tolerance set just past best execution's, the
    asymmetric policy (and alerted here).

    Best execution's detections of the client's run that it held for this assessment
    (``BestExecutionDetector``, ``asymmetric_hold_s``) are folded into the alert
    (``best_execution_fills``: order, time, pips past the arrival touch against the bar, money)
    and not raised as best execution's; an assessment that clears the client hands them back.

    Pending tallies are kept in the order of their last slippage (``pending``: key -> due time;
    event time only goes forwards, so the first one is the earliest due and a sweep looks at no
    other until it is due)."""

    alert_type = "asymmetric_slippage"

    def __init__(self, params, engine):
        super().__init__(params, engine)
        self.tallies: dict[tuple[str, str], _Tally] = {}
        self.pending: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._quiet = inf if params.assess_quiet_s is None else params.assess_quiet_s
        # The count test's level as a probability (z_threshold one-sided) and, with the exact
        # test, the fewest slippages that can reach it (all adverse: 2^-n <= level; 10 at z 3):
        # a client with fewer could never be found, one with more is assessed when quiet.
        self._level = 0.5 * erfc(params.z_threshold / sqrt(2.0))
        exact_floor = max(1, int(-log2(self._level) - 1e-9) + 1)
        self._floor = min(params.min_fills, exact_floor) if params.exact_sign_test else params.min_fills
        self.best_ex = engine.default_params["best_execution_slippage"]  # its bar (gross_share)
        self.quotes = engine.quotes
        self._pips: dict[str, float] = {}

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
            beyond = self._beyond_best_ex(fill, state, side, touch)
            if beyond:
                tally.gross += 1
                if beyond > 1:
                    tally.gross_far += 1
        elif slip < -band:
            tally.improved += 1
            tally.sum_improved -= slip
            if -slip > tally.max_improved:
                tally.max_improved = -slip
        else:
            tally.zero += 1
            return
        tally.sum_squares += slip * slip
        tally.accounts.add(fill.account)
        tally.last_ts = fill.ts
        if len(tally.order_ids) < MAX_EVIDENCE_ORDERS:
            tally.order_ids.append(fill.order_id)
        n = tally.adverse + tally.improved
        p = self.p
        if p.exact_value_test:  # bounded: at most min_fills - 1 values per client
            if n < p.min_fills:
                tally.slips.append(slip)
            elif tally.slips:
                tally.slips = []
        if n < self._floor:
            if p.one_way_unheld and self.one_way(tally):  # reviewed when quiet (``one_way_unheld``)
                pending = self.pending
                pending.pop(key, None)
                pending[key] = t + self._quiet
            else:
                self.pending.pop(key, None)  # an improvement ended the one-way run: nothing due
            return
        if n < p.min_fills or n % p.min_fills:
            pending = self.pending
            pending.pop(key, None)  # to the back: its due time is now the latest
            pending[key] = t + self._quiet
            return
        if self.pending:
            self.pending.pop(key, None)
        self._assess(key, tally, assessed="at the {n}th slippage")

    def _beyond_best_ex(self, fill, state, side, touch) -> int:
        """Is this adverse first fill beyond best execution's bar (its pips past the arrival
        touch over ``max_adverse_pips`` and ``spread_multiple`` x the wider of the spreads on
        arrival and at the fill), as ``BestExecutionDetector`` judges it? 0: no, 1: yes, 2: also
        past ``gross_multiple`` x the bar (a gross exception)."""
        bx = self.best_ex
        pip = _pip(self._pips, fill.symbol, bx.pip_sizes)
        spread_pips, now_spread = _spreads_pips(state, self.quotes.get(fill.symbol), pip)
        pips, bar = side * (fill.price - touch) / pip, _bar_pips(bx, spread_pips, now_spread)
        if bx.bar_exact:
            pips = round(pips, 6)
        if pips <= bar:
            return 0
        far = self.p.gross_multiple
        return 2 if far is None or pips > far * bar else 1

    def windows_empty(self) -> bool:
        # Nothing pending, or no quiet assessment (assess_quiet_s None: only the end assesses)
        return not self.pending or self._quiet == inf

    def pending_restore(self) -> None:
        """Rebuild ``pending`` from the tallies (after ``state`` restores them): each client with
        slippages not yet assessed, due ``assess_quiet_s`` after its last one, earliest first."""
        quiet, min_fills, unheld = self._quiet, self._floor, self.p.one_way_unheld
        due = [
            (tally.last_ts.timestamp() + quiet, key)
            for key, tally in self.tallies.items()
            if ((n := tally.adverse + tally.improved) >= min_fills or (unheld and self.one_way(tally)))
            and n != tally.assessed
        ]
        due.sort(key=lambda x: x[0])  # stable: a tie keeps the saved order
        self.pending = OrderedDict((key, t) for t, key in due)

    def expire(self, t):
        pending = self.pending
        while pending:
            key, due = next(iter(pending.items()))
            if due > t:
                return
            pending.popitem(last=False)
            self._due(key, self.tallies[key], assessed=f"after {self.p.assess_quiet_s:g} s without a slippage")

    def finish(self):
        pending, self.pending = self.pending, OrderedDict()
        if not self.p.assess_at_end:
            return
        for key in pending:
            self._due(key, self.tallies[key], assessed="end of input")

    def _due(self, key, tally, *, assessed: str) -> None:
        """A pending client's review: the test on its history when it can weigh it; below the
        test's floor (pending only with ``one_way_unheld``), raised as ``one_way`` reads it,
        best execution's held exceptions of the client (if any) in its evidence."""
        if tally.adverse + tally.improved >= self._floor:
            self._assess(key, tally, assessed=assessed)
            return
        if not self.one_way(tally) or tally.adverse == tally.assessed:
            return
        bx = self.engine.units.get("best_execution_slippage")
        held = bx.take_held(key) if type(bx) is BestExecutionDetector and bx._asymmetric() is self else []
        self.raise_one_way(key, tally, held, assessed=f"{assessed}, below the test's floor, one way")

    def _assess(self, key, tally, *, assessed):
        """Both tests on the client's whole history so far; the alert ends at its last slippage."""
        p = self.p
        n = tally.adverse + tally.improved
        tally.assessed = n
        z = (tally.adverse - n / 2) / sqrt(n / 4)
        z_value = (tally.sum_adverse - tally.sum_improved) / sqrt(tally.sum_squares) if tally.sum_squares else 0.0
        p_value = None
        if p.exact_sign_test:
            # Exact one-sided binomial tail P(X >= adverse | n, 1/2), against z_threshold's level;
            # z is then the normal quantile of that tail (for the evidence and the score).
            p_value = sum(comb(n, k) for k in range(tally.adverse, n + 1)) / 2.0**n
            by_count = p_value <= self._level * (1 + 1e-9)
            z = -NormalDist().inv_cdf(min(max(p_value, 1e-300), 1.0 - 1e-12))
        else:
            by_count = z >= p.z_threshold
        # The test by value is a normal approximation from min_fills slippages on; under it,
        # exact (``exact_value_test``): the sign-flip tail of the client's own slippages.
        value_p = None
        if p.value_z_threshold is None:
            by_value = False
        elif n >= p.min_fills:
            by_value = z_value >= p.value_z_threshold
        elif p.exact_value_test and len(tally.slips) == n:
            value_p = sign_flip_tail(tally.slips, self._level)
            by_value = value_p <= self._level * (1 + 1e-9)
            if by_value:
                z_value = -NormalDist().inv_cdf(min(max(value_p, 1e-300), 1.0 - 1e-12))
        else:
            by_value = False
        bx = self.engine.units.get("best_execution_slippage")
        if type(bx) is not BestExecutionDetector or bx._asymmetric() is not self:
            bx = None
        if not (by_count or by_value):
            if bx is not None:
                bx.clear(key, symmetric=True)  # cleared: what best execution held for this is its own
            return
        if (
            p.gross_share is not None
            and tally.adverse
            and tally.gross >= p.gross_share * tally.adverse
            and tally.gross_far  # a gross exception among them (gross_multiple None: every one)
        ):
            if bx is not None:
                bx.clear(key)
            return  # best execution's case: its exceptions, alerted there fill by fill
        held = bx.take_held(key) if bx is not None else []
        score = max(
            excess_score(z, p.z_threshold) if by_count else 0.0,
            excess_score(z_value, p.value_z_threshold) if by_value else 0.0,
        )
        by = " and ".join(name for name, on in (("count", by_count), ("value", by_value)) if on)
        self._raise(
            key,
            tally,
            held,
            score=score,
            z=z,
            p_value=p_value,
            z_value=z_value,
            value_p=value_p,
            by=by,
            assessed=assessed.format(n=n),
        )

    def one_way(self, tally) -> bool:
        """``one_way_level``: every non-zero slippage of the client's adverse (no improvement
        ever passed on), so many that all-adverse reaches that one-sided level (2^-n), its
        adverse marks mostly within best execution's bar (fewer than ``one_way_past_share``
        beyond it) and none past ``gross_multiple`` x the bar: the asymmetric pattern by this
        detector's own readings, short of the test's floor."""
        p = self.p
        return bool(
            p.one_way_level is not None
            and tally.adverse
            and not tally.improved
            and 0.5**tally.adverse <= p.one_way_level * (1 + 1e-9)
            and tally.gross < p.one_way_past_share * tally.adverse
            and not tally.gross_far
        )

    def raise_one_way(self, key, tally, held: list, *, assessed: str) -> None:
        """Best execution's held run of a client the test cannot weigh (fewer non-zero
        slippages than its floor) whose slippage is ``one_way``: one asymmetric-slippage alert,
        the held exceptions in its evidence (their strongest excess over the bar is its score),
        the exact tail of its count for the record (not against the level)."""
        n = tally.adverse
        tally.assessed = n
        self.pending.pop(key, None)  # reviewed now (a held run's review may come before it is due)
        p_value = 0.5**n  # every non-zero slippage adverse: P(X >= n | n, 1/2)
        z = -NormalDist().inv_cdf(min(max(p_value, 1e-300), 1.0 - 1e-12))
        z_value = (tally.sum_adverse - tally.sum_improved) / sqrt(tally.sum_squares) if tally.sum_squares else 0.0
        score = max((a.score for a in held), default=0.5)
        self._raise(
            key,
            tally,
            held,
            score=score,
            z=z,
            p_value=p_value,
            z_value=z_value,
            value_p=None,
            by="one way, below the test's floor" + (", with best execution's exceptions" if held else ""),
            assessed=assessed,
        )

    def _raise(self, key, tally, held, *, score, z, p_value, z_value, value_p, by, assessed) -> None:
        """The alert on the client's whole history so far; it ends at its last slippage."""
        p = self.p
        owner, symbol = key
        ts = tally.last_ts
        n = tally.adverse + tally.improved
        order_ids = tally.order_ids
        if held:  # best execution's detections of this client's run: named here, not alerted there
            order_ids = list(dict.fromkeys([*order_ids, *(oid for a in held for oid in a.order_ids)]))
        accounts = sorted(tally.accounts)
        self.out.append(
            SurveillanceAlert(
                self.alert_type,
                account=",".join(accounts),
                owner=owner,
                symbol=symbol,
                order_ids=order_ids,
                score=score,
                start=tally.first_ts,
                end=ts,
                evidence={
                    "adverse_fills": tally.adverse,
                    "improved_fills": tally.improved,
                    "at_quote_fills": tally.zero,
                    "mean_adverse_bps": bps(tally.sum_adverse / tally.adverse) if tally.adverse else 0.0,
                    "mean_improvement_bps": bps(tally.sum_improved / tally.improved) if tally.improved else 0.0,
                    "adverse_bps_total": bps(tally.sum_adverse),
                    "improvement_bps_total": bps(tally.sum_improved),
                    "adverse_beyond_best_execution": tally.gross,
                    "adverse_past_gross_multiple": tally.gross_far,
                    "gross_multiple": p.gross_multiple,
                    "gross_share": p.gross_share,
                    "best_execution_fills_held": len(held),
                    "best_execution_fills": [
                        {
                            "order_id": a.order_ids[0] if a.order_ids else None,
                            "fill_ts": iso(a.end),
                            "side": a.evidence.get("side"),
                            "slippage_pips": a.evidence.get("slippage_pips"),
                            "threshold_pips": a.evidence.get("threshold_pips"),
                            "slippage_money": a.evidence.get("slippage_money"),
                        }
                        for a in held
                    ],
                    "z": round(z, 3),
                    "sign_test": "exact binomial" if p_value is not None else "normal approximation",
                    "p_value": p_value,
                    "z_threshold": p.z_threshold,
                    "z_value": round(z_value, 3),
                    "value_z_threshold": p.value_z_threshold,
                    "value_test": "exact sign-flip" if value_p is not None else "normal approximation",
                    "value_p_value": value_p,
                    "asymmetric_by": by,
                    "min_fills": p.min_fills,
                    "assessed": assessed,
                    "slippages_assessed": n,
                    "reference": "touch quoted on arrival (ask to buy, bid to sell)",
                    "accounts": accounts,
                    "until": iso(ts),
                },
            )
        )
