"""The firm's background client accounts on the limit order book (legitimate behaviour only).

18-24 accounts of several profiles, each a script on the desk with its own random stream and its
own rates, sizes and habits drawn per account:

- retail: a few trades, market or limit entries, often a stop-loss and a take-profit (one
  cancels the other), closed at market when held long enough;
- active: scalping (in and out within minutes, small against the touch) or pyramiding (adding
  while a position runs in its favour, then closing all);
- a market-making client: both sides near the touch, re-priced by modify or cancel/replace when
  the touch moves away, inventory kept small by skewing and flattening;
- algorithmic clients (an ``algo`` id): mean reversion or trend following with IOC entries and
  passive exits;
- institutional clients: parent orders of tens of lots sliced over tens of minutes (TWAP or
  VWAP-like, with an ``algo`` id), passive children re-posted, the rest taken at the end;
- three owners with two accounts each (independent trading, or a legitimate hedge: the second
  account takes part of the opposite exposure minutes later and both are held);
- two accounts of distinct owners (the pair ``desk.colluders()`` names) trading independently.

No abuse here: the labelled episodes are ``episodes.plan_episodes``'.
"""

from __future__ import annotations

import math

SYMBOL_WEIGHTS = (("EURUSD", 0.38), ("GBPUSD", 0.22), ("USDJPY", 0.24), ("XAUUSD", 0.16))


def _pick_symbol(r) -> str:
    u = r.random()
    acc = 0.0
    for sym, w in SYMBOL_WEIGHTS:
        acc += w
        if u < acc:
            return sym
    return SYMBOL_WEIGHTS[-1][0]


def _lots(desk, sym: str, lots: float) -> int:
    """Units of ``lots`` standard lots, at least the minimum (0.01 lot; 1 oz)."""
    return max(lots * desk.lot(sym), 1000 if desk.lot(sym) >= 100_000 else 1)


def _close(desk, acct: str, sym: str, algo: str | None = None) -> str | None:
    pos = desk.position(acct, sym)
    if pos == 0:
        return None
    return desk.submit(acct, sym, "sell" if pos > 0 else "buy", abs(pos), order_type="market", algo=algo)


def _cancel_all(desk, oids) -> None:
    for oid in oids:
        if oid and desk.is_open(oid):
            desk.cancel(oid)


# ---- retail -----------------------------------------------------------------------------------


def retail(desk, acct: str, r, symbols=None):
    """A retail client: a handful of trades, stops and take-profits, closed by hand or by them."""
    symbols = symbols or [_pick_symbol(r) for _ in range(r.randint(1, 3))]
    gap_min = r.uniform(4.0, 25.0)
    size = r.uniform(0.05, 1.5)
    uses_brackets = r.uniform(0.3, 0.95)
    limit_entries = r.uniform(0.0, 0.5)
    while True:
        yield r.expovariate(1.0 / (gap_min * 60.0))
        sym = r.choice(symbols)
        side = r.choice(("buy", "sell"))
        qty = _lots(desk, sym, round(size * math.exp(r.gauss(0.0, 0.5)), 2))
        vol = desk.vol(sym)
        if r.random() < limit_entries:
            bid, ask = desk.touch(sym)
            away = vol * r.uniform(0.5, 3.0)
            price = bid - away if side == "buy" else ask + away
            entry = desk.submit(acct, sym, side, qty, price=price)
            waited = 0.0
            limit_s = r.uniform(300.0, 1800.0)
            while desk.is_open(entry) and waited < limit_s:
                step = r.uniform(10.0, 40.0)
                yield step
                waited += step
            if desk.is_open(entry):
                desk.cancel(entry)
            if desk.position(acct, sym) == 0:
                continue
        else:
            desk.submit(acct, sym, side, qty, order_type="market")
        hold_s = r.uniform(120.0, 5400.0)
        orders = []
        if r.random() < uses_brackets:
            pos = desk.position(acct, sym)
            bid, ask = desk.touch(sym)
            exit_side = "sell" if pos > 0 else "buy"
            sl = vol * r.uniform(4.0, 14.0)
            tp = vol * r.uniform(3.0, 16.0)
            ref = bid if pos > 0 else ask
            stop_px = ref - sl if pos > 0 else ref + sl
            orders.append(desk.submit(acct, sym, exit_side, abs(pos), price=stop_px, order_type="stop"))
            if r.random() < 0.8:
                take_px = ref + tp if pos > 0 else ref - tp
                orders.append(desk.submit(acct, sym, exit_side, abs(pos), price=take_px))
        held = 0.0
        while held < hold_s and desk.position(acct, sym) != 0:
            step = r.uniform(5.0, 30.0)
            yield step
            held += step
        _cancel_all(desk, orders)
        _close(desk, acct, sym)


# ---- active: scalping and pyramiding ----------------------------------------------------------


def scalper(desk, acct: str, r, symbols=None):
    """In and out within minutes, small against the touch, in sessions with pauses."""
    symbols = symbols or [_pick_symbol(r) for _ in range(r.randint(1, 2))]
    size = r.uniform(0.2, 3.0)
    while True:
        yield r.uniform(60.0, 2400.0)  # a pause between sessions
        session_end = desk.t + r.uniform(600.0, 2700.0)
        sym = r.choice(symbols)
        while desk.t < session_end:
            yield r.expovariate(1.0 / r.uniform(30.0, 150.0))
            touch_qty = (desk.depth(sym, "ask", 1) or [(0.0, 0)])[0][1]
            qty = _lots(desk, sym, round(size * r.uniform(0.5, 1.5), 2))
            if touch_qty:
                qty = min(qty, max(touch_qty // 2, _lots(desk, sym, 0.01)))
            side = r.choice(("buy", "sell"))
            desk.submit(acct, sym, side, qty, order_type="market")
            # take profit passively a little away, else leave at market
            bid, ask = desk.touch(sym)
            pos = desk.position(acct, sym)
            if pos == 0:
                continue
            gain = desk.vol(sym) * r.uniform(0.3, 1.2)
            exit_px = ask + gain if pos > 0 else bid - gain
            tp = desk.submit(acct, sym, "sell" if pos > 0 else "buy", abs(pos), price=exit_px)
            hold = r.uniform(10.0, 300.0)
            held = 0.0
            while held < hold and desk.is_open(tp):
                step = r.uniform(2.0, 10.0)
                yield step
                held += step
            _cancel_all(desk, [tp])
            _close(desk, acct, sym)


def pyramider(desk, acct: str, r, symbols=None):
    """Opens, adds while the position runs in its favour, then closes all (or is stopped)."""
    symbols = symbols or [_pick_symbol(r)]
    size = r.uniform(0.3, 2.5)
    while True:
        yield r.expovariate(1.0 / r.uniform(300.0, 1200.0))
        sym = r.choice(symbols)
        side = r.choice(("buy", "sell"))
        sign = 1 if side == "buy" else -1
        qty = _lots(desk, sym, round(size, 2))
        desk.submit(acct, sym, side, qty, order_type="market")
        entry = desk.mid(sym)
        step_px = desk.vol(sym) * r.uniform(1.5, 4.0)
        adds = 0
        max_adds = r.randint(1, 4)
        horizon = desk.t + r.uniform(900.0, 3600.0)
        while desk.t < horizon:
            yield r.uniform(20.0, 90.0)
            move = (desk.mid(sym) - entry) * sign
            if move > step_px * (adds + 1) and adds < max_adds:
                desk.submit(acct, sym, side, qty, order_type="market")
                adds += 1
            elif move < -step_px * 2.5:
                break
        _close(desk, acct, sym)


# ---- the market-making client -------------------------------------------------------------------


def market_maker(desk, acct: str, r, sym: str):
    """Quotes both sides near the touch and re-prices when the touch leaves its quotes."""
    tick = desk.tick(sym)
    size = _lots(desk, sym, round(r.uniform(0.5, 3.0), 2))
    by_modify = r.random() < 0.5
    max_inv = size * r.randint(3, 6)
    unit = max(1, round(desk.spread(sym) / tick)) if desk.spread(sym) > 0 else 1
    drift_ticks = r.randint(1, 3) * unit  # how far the touch may move before re-pricing
    min_gap = r.uniform(0.5, 2.5)
    improve = r.uniform(0.0, 0.3)
    back = r.randint(1, 4) * unit  # ticks behind the touch it quotes  # how often it steps inside a wide spread
    refill_s = r.uniform(3.0, 20.0)  # after a fill, how long before quoting that side again
    yield r.uniform(0.0, 300.0)
    quotes = {"buy": None, "sell": None}
    prices = {"buy": 0.0, "sell": 0.0}
    gone = {"buy": None, "sell": None}
    while True:
        bid, ask = desk.touch(sym)
        if bid <= 0 or ask <= 0:
            yield min_gap
            continue
        pos = desk.position(acct, sym)
        if abs(pos) > max_inv:
            _cancel_all(desk, quotes.values())
            quotes = {"buy": None, "sell": None}
            desk.submit(acct, sym, "sell" if pos > 0 else "buy", abs(pos) - max_inv // 2, order_type="market")
            yield r.uniform(5.0, 20.0)
            continue
        skew = round(-pos / max_inv * 2) * tick  # lean against the inventory
        spread_ticks = round((ask - bid) / tick)
        inside = tick if spread_ticks >= 3 and r.random() < improve else 0.0
        if not inside:
            inside = -back * tick
        want = {"buy": bid + inside + min(skew, 0.0), "sell": ask - inside + max(skew, 0.0)}
        for side in ("buy", "sell"):
            oid = quotes[side]
            if oid is not None and not desk.is_open(oid):
                if gone[side] is None:
                    gone[side] = desk.t
                if desk.t - gone[side] < refill_s:
                    continue  # filled lately: wait before quoting that side again
            if oid is not None and desk.is_open(oid):
                if abs(want[side] - prices[side]) < drift_ticks * tick:
                    continue
                if by_modify:
                    desk.modify(oid, price=want[side])
                    prices[side] = want[side]
                    continue
                desk.cancel(oid)
            quotes[side] = desk.submit(acct, sym, side, size, price=want[side])
            prices[side] = want[side]
            gone[side] = None
        yield r.uniform(min_gap, min_gap * 3.0)


# ---- algorithmic clients --------------------------------------------------------------------------


def algo_trader(desk, acct: str, r, sym: str, algo: str, style: str):
    """Mean reversion (fades a stretch away from a slow average) or trend following."""
    size = _lots(desk, sym, round(r.uniform(0.5, 4.0), 2))
    alpha = r.uniform(0.01, 0.04)
    k = r.uniform(1.5, 3.0)
    avg = None
    while True:
        yield r.uniform(20.0, 60.0)
        mid = desk.mid(sym)
        avg = mid if avg is None else avg + alpha * (mid - avg)
        stretch = (mid - avg) / max(desk.vol(sym), 1e-12)
        if abs(stretch) < k or desk.position(acct, sym) != 0:
            continue
        up = stretch > 0
        side = ("sell" if up else "buy") if style == "reversion" else ("buy" if up else "sell")
        bid, ask = desk.touch(sym)
        desk.submit(acct, sym, side, size, price=ask if side == "buy" else bid, order_type="ioc", algo=algo)
        if desk.position(acct, sym) == 0:
            continue
        hold = r.uniform(120.0, 900.0) if style == "reversion" else r.uniform(600.0, 3000.0)
        yield hold
        # passive exit, re-posted a few times, then at market
        for _ in range(r.randint(1, 4)):
            pos = desk.position(acct, sym)
            if pos == 0:
                break
            bid, ask = desk.touch(sym)
            exit_side = "sell" if pos > 0 else "buy"
            oid = desk.submit(acct, sym, exit_side, abs(pos), price=ask if pos > 0 else bid, algo=algo)
            yield r.uniform(15.0, 60.0)
            _cancel_all(desk, [oid])
        _close(desk, acct, sym, algo=algo)


# ---- institutional clients ----------------------------------------------------------------------


def institutional(desk, acct: str, r, algo_name: str):
    """Parent orders sliced over tens of minutes: passive children at the own touch, re-posted,
    the remainder taken at the end of each slice."""
    while True:
        yield r.uniform(300.0, 2400.0)
        sym = _pick_symbol(r)
        side = r.choice(("buy", "sell"))
        parent = _lots(desk, sym, round(r.uniform(8.0, 60.0), 1))
        minutes = r.uniform(15.0, 60.0)
        slices = max(4, int(minutes * r.uniform(0.4, 1.2)))
        vwap = algo_name.startswith("VWAP")
        weights = [1.0 + (0.6 * math.cos(math.pi * 2 * i / slices) if vwap else 0.0) for i in range(slices)]
        total_w = sum(weights)
        start_pos = desk.position(acct, sym)
        sign = 1 if side == "buy" else -1
        interval = minutes * 60.0 / slices
        for i in range(slices):
            target = parent * sum(weights[: i + 1]) / total_w
            done = (desk.position(acct, sym) - start_pos) * sign
            child = target - done
            if child < _lots(desk, sym, 0.01):
                yield interval
                continue
            bid, ask = desk.touch(sym)
            oid = desk.submit(acct, sym, side, child, price=bid if side == "buy" else ask, algo=algo_name)
            waited = 0.0
            while waited < interval * 0.8 and desk.is_open(oid):
                step = r.uniform(10.0, 30.0)
                yield step
                waited += step
                b, a = desk.touch(sym)
                px = b if side == "buy" else a
                if desk.is_open(oid) and abs(px - (bid if side == "buy" else ask)) > desk.tick(sym) * 0.5:
                    desk.modify(oid, price=px)
                    bid, ask = b, a
            if desk.is_open(oid):
                desk.cancel(oid)
                left = child - desk.filled(oid)
                if left >= _lots(desk, sym, 0.01):
                    desk.submit(acct, sym, side, left, order_type="market", algo=algo_name)
            yield max(interval - waited, 1.0)
        # the position is the client's investment: held, unwound much later or not at all
        if r.random() < 0.3:
            yield r.uniform(1800.0, 5400.0)
            _close(desk, acct, sym, algo=algo_name)


# ---- linked accounts: a legitimate hedge -------------------------------------------------------


def hedger(desk, first: str, second: str, r):
    """The first account takes a position; minutes later the second takes part of the opposite
    exposure (a hedge); both are held, then unwound separately."""
    while True:
        yield r.uniform(900.0, 3600.0)
        sym = _pick_symbol(r)
        side = r.choice(("buy", "sell"))
        qty = _lots(desk, sym, round(r.uniform(0.5, 5.0), 2))
        desk.submit(first, sym, side, qty, order_type="market")
        yield r.uniform(180.0, 1500.0)
        hedge = _lots(desk, sym, round(qty / desk.lot(sym) * r.uniform(0.3, 0.8), 2))
        opp = "sell" if side == "buy" else "buy"
        bid, ask = desk.touch(sym)
        if r.random() < 0.5:
            desk.submit(second, sym, opp, hedge, order_type="market")
        else:
            oid = desk.submit(second, sym, opp, hedge, price=bid if opp == "buy" else ask)
            yield r.uniform(60.0, 600.0)
            if desk.is_open(oid):
                desk.cancel(oid)
        yield r.uniform(1200.0, 4000.0)
        _close(desk, first, sym)
        yield r.uniform(60.0, 1200.0)
        _close(desk, second, sym)


def start(desk, rng) -> None:
    """Create the background accounts (18-24, profiles drawn per seed) and spawn their scripts."""
    total = rng.randint(18, 24)
    n_active = rng.randint(2, 4)
    n_mm = 1 if rng.random() < 0.5 else 2
    n_algo = rng.randint(2, 3)
    n_inst = rng.randint(2, 3)
    fixed = n_active + n_mm + n_algo + n_inst + 6 + 2
    n_retail = max(3, total - fixed)

    def spawn(gen, delay_max=900.0):
        desk.spawn(gen, at=desk.t + rng.uniform(0.0, delay_max))

    for _ in range(n_retail):
        acct, _owner = desk.account("retail")
        spawn(retail(desk, acct, desk.rng(f"bg:{acct}")))
    for i in range(n_active):
        acct, _owner = desk.account("active")
        script = scalper if i % 2 == 0 else pyramider
        spawn(script(desk, acct, desk.rng(f"bg:{acct}")))
    for i in range(n_mm):
        acct, _owner = desk.account("mm")
        sym = ("EURUSD", "USDJPY", "GBPUSD", "XAUUSD")[(i + rng.randrange(4)) % 4]
        spawn(market_maker(desk, acct, desk.rng(f"bg:{acct}"), sym), 60.0)
    for i in range(n_algo):
        acct, _owner = desk.account("algo")
        style = ("reversion", "trend")[(i + rng.randrange(2)) % 2]
        algo = f"{'MR' if style == 'reversion' else 'TF'}-{rng.randrange(100, 999)}"
        spawn(algo_trader(desk, acct, desk.rng(f"bg:{acct}"), _pick_symbol(rng), algo, style))
    for _ in range(n_inst):
        acct, _owner = desk.account("institutional")
        algo = f"{rng.choice(('TWAP', 'VWAP'))}-{rng.randrange(10, 99)}"
        spawn(institutional(desk, acct, desk.rng(f"bg:{acct}"), algo))
    styles = ["hedge", "hedge", "independent"]
    rng.shuffle(styles)
    for style in styles:
        first = desk.account(rng.choice(("retail", "active")))
        second = desk.account(rng.choice(("retail", "active")), owner=first[1])
        desk.add_linked(first, second)
        if style == "hedge":
            spawn(hedger(desk, first[0], second[0], desk.rng(f"bg:{first[0]}")))
        else:
            spawn(retail(desk, first[0], desk.rng(f"bg:{first[0]}")))
            spawn(scalper(desk, second[0], desk.rng(f"bg:{second[0]}")))
    pair = (desk.account("active"), desk.account("retail"))
    desk.set_colluders(*pair)
    spawn(scalper(desk, pair[0][0], desk.rng(f"bg:{pair[0][0]}")))
    spawn(retail(desk, pair[1][0], desk.rng(f"bg:{pair[1][0]}")))
