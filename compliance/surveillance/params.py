"""Every surveillance threshold, as a typed, validated parameter set per alert type.

These are the ``parameters`` of surveillance ``ComplianceRule`` rows: ``compliance.models``
validates a rule by converting its JSON through the struct of its ``rule_type`` (so a bad value
is refused on save with the field named), and the engine is built from the same structs. The
defaults are calibrated on the scenario library (see docs/compliance-monitor.md); they are
round numbers a compliance officer can defend, not fitted to the generator's exact figures.

Units: seconds (``*_s``), basis points of the mid (``*_bps``), quantities in units of the base
currency or contract (as on the input), ratios as plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

Pos = Annotated[float, msgspec.Meta(gt=0)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=1)]


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    # Seconds of event time without a new detection after which an episode (one alert) closes;
    # None = the alert type's default (``compliance.surveillance.episodes.QUIET_S``).
    episode_quiet_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class WashTradeParams(Params, frozen=True, kw_only=True):
    """MAR Annex I 1(a), 2016/522 Annex II 1(a): no change in beneficial ownership. A pair is a
    buy and a sell in one symbol on two accounts of one beneficial owner (or, collusion, two
    accounts of distinct owners that keep trading against each other, both legs aggressive or
    one resting order met by the other, ``collusion_crosses``),
    close in time, size and price. Pairs of one subject and symbol no more than ``run_gap_s``
    apart form one run; a run that is not painting the tape is a wash-trade episode."""

    # Buy and sell fills at most this far apart: 20 s since the 2026-12-04 late-night round (was
    # 10 s; a second leg sent by hand 10-25 s after the first is still the same trade).
    window_s: Pos = 20.0
    qty_tolerance: Fraction = 0.05  # |q1 - q2| / max(q1, q2)
    price_tolerance_bps: NonNeg = 3.0  # |p1 - p2| / mid
    price_tolerance_spreads: NonNeg = 2.0  # or within this many current spreads (buy at the ask, sell at the bid)
    include_same_account: bool = False  # True: a hedging account's own round trips count too
    run_gap_s: Pos = 600.0  # pairs of one subject this close belong to one run (episode)
    collusion: bool = True  # also pair accounts of distinct owners that trade against each other
    collusion_min_pairs: Count = 2  # pairs between the same two accounts of distinct owners in a run
    collusion_min_exclusive: Fraction = 0.5  # paired fills / all their aggressive fills in the symbol during the run
    # Which earlier fill a leg answers when several could be its other leg (2026-12-05 late
    # morning, wip/paint17): the nearest in time (True) or the oldest (False, the rule before).
    # A second leg answers the trade just before it; a stranger's same-size trade seconds
    # earlier is the coincidence, and taking it broke a colluding pair's run of crosses.
    pair_nearest: bool = True
    # The two orders offset (2026-12-05 evening, wip/wash22): a pair of orders that did not cross
    # each other is a wash only when each order's whole fill and the whole fills of the orders
    # it paired with in the run are alike, the smaller at least this share of the larger. Large
    # orders fill in slices and the slices are matched one by one, so one slice of an owner's
    # 11-lot sale meets his other account's 5.6-lot purchase seconds later within the size
    # tolerance: that is a partial hedge at another size (the independent book's legitimate
    # hedges), not a round trip with no change in beneficial ownership. None: fills alone.
    order_matched_share: Fraction | None = 0.9
    # A colluding pair on a venue (2026-12-05 evening, wip/wash22): two distinct owners' legs are
    # also a pair when one rested and the other met it (one instant, one price: the two sides of
    # one execution), not only when both were aggressive; such a run must hand the position back
    # (a cross back at the same size, within ``qty_tolerance``) besides the repetition and
    # exclusivity every colluding run needs. False: both legs aggressive only (the rule before).
    collusion_crosses: bool = True
    # A colluding round trip by crosses is a wash at any size (2026-12-05 night, wip/wash28):
    # a colluding run needs one pair of orders of a lot or more (two strangers' small trades the
    # other way seconds apart are chance), unless its crosses themselves hand the position back:
    # one account's order met the other's (one instant, one price: each was the other's
    # counterparty) and a later cross between them returned the same size (within
    # ``qty_tolerance``). The two accounts traded with each other both ways and neither holds
    # anything at the end: no change in beneficial ownership between them (MAR Annex I 1(a),
    # 2016/522 Annex II 1(a)), whatever the size. The repetition and exclusivity every colluding
    # run needs still apply. False: one pair of a lot or more always (the rule before).
    collusion_cross_back_any_size: bool = True
    # 2026-12-06 noon (wip/lob45): the hand-back a colluding run's crosses need is read on the
    # tickets the orders carried: a pair of orders weighs the larger of its two orders' whole
    # fills, not only the volume the two crossed. On a venue the colluder's resting order that
    # takes the ticket back is exposed to everyone's flow: strangers take slices of it first and
    # the partner's order meets what is left (the tape printed the whole ticket, as
    # painting's ``series_ticket_by_order`` reads it). The order book's missed colluding round
    # trips (LOB 2: a 2,299-oz cross, the ticket taken back by a 2,293-oz resting order of which
    # the partner sold 1,547 oz; wip/dpaint25's 15097: 1.402 of a 1.507-lot order) were read as
    # not handed back. Only an order whose volume mostly crossed the other's counts whole (a
    # market maker's large quote nibbled by a client's small trades is not a ticket: without
    # that guard a near-miss pair was a wash on LOB 8). Built, **left off**: on the 27 allowed
    # order books it found 2 more of 121 washes (111 -> 113) with no false alert added, but on
    # the CONFIRMATION order books it found none more (36 / 43 either way), so it stays off by
    # the round's protocol. False: the crossed volume alone (the rule before)
    # (docs/surveillance-rounds.md, 12:00 round, wip/lob45).
    hand_back_by_order: bool = False


class PaintingTheTapeParams(Params, frozen=True, kw_only=True):
    """Repeated small matched trades between accounts of one owner (or a colluding pair) that
    print volume with no change of ownership: a run of at least ``min_pairs`` wash pairs that
    are each under ``max_lots`` standard lots. Such pairs are painting, not wash."""

    min_pairs: Count = 4
    max_lots: Pos = 1.0  # 'small': a pair under this many standard lots
    lot_sizes: dict[str, Pos] = {}  # symbol -> units per lot; default 100 for XAU*, 5,000 XAG*, else 100,000
    max_qty: Pos | None = None  # older rules: 'small' in units instead of lots
    # A series of one ticket (2026-12-05 late morning, wip/wash19; afternoon, wip/paint20): a run
    # with at least ``min_pairs`` pairs of orders within a factor ``series_size_ratio`` of the
    # run's median pair size (the ticket printed painting's own count of times), those at least
    # ``series_alike_share`` of its pairs of orders, is painting at any size, from the pair where
    # it first is one: a tape painter prints the same ticket again and again (2016/522 Annex II
    # 1(a)(iii): a series of transactions shown on a public display), where a wash trader's round
    # trips each move what the position needs. None: size alone (the rule before).
    series_size_ratio: Annotated[float, msgspec.Meta(gt=1)] | None = 1.5
    series_alike_share: Fraction = 0.7
    # A pair of a series that is another trade (2026-12-05 evening, wip/wash22): over this many
    # times the ticket. None: ``series_size_ratio`` squared, the span two prints of one series may
    # have (each within 1.5x of the ticket: 2.25x apart); a print 1.6-1.8x the ticket is the
    # series' own (a painter drawing each print at 0.6-1.6x a base, the limit order book's walk),
    # a 9-lot round trip inside a sub-lot series is not. Before: ``series_size_ratio`` (1.5).
    series_off_ticket: Annotated[float, msgspec.Meta(gt=1)] | None = None
    # A print is the ticket its orders carried (2026-12-05 night, wip/paint26, from wip/dpaint25's
    # diagnosis of the limit order book E): the series test sizes each pair of orders by the
    # larger of its two orders' whole fills (``_Run.filled``), not by the volume the two crossed.
    # On a venue the painter's resting ticket is exposed to everyone's flow: strangers take a
    # slice first and the other account's order is sized to what is left, yet the tape printed
    # the whole ticket from the painter's order (MAR Annex I 1(a): the volume shown). False: the
    # crossed volume (the rule before).
    series_ticket_by_order: bool = True
    # One pair of orders is one print of the series whichever of the two filled first (a resting
    # order met by the other account's FOK fills in slices paired either way round). False: keyed
    # by (first leg, second leg), the rule before: one print could count twice.
    series_pair_unordered: bool = True
    # 2026-12-05 late night (wip/lob30): a colluding pair (two owners) whose orders met each other
    # on the venue (one resting, ``_Run.crossed``) as ``min_pairs`` pairs of orders or more, both
    # ways (each account bought from the other), with the repetition and exclusivity every
    # colluding run needs, is printing to each other: painting's, though no same-size round trip
    # hands the position back (wash22's hand-back test, kept for wash: a market maker and its
    # customer meet twice). The LOB's colluders' back-and-forth series at a painter's drawn sizes
    # (26-47 oz) never hand back one size within 5%. False: the hand-back test for painting too
    # (docs/surveillance-rounds-lob30.md).
    colluders_cross_both_ways: bool = True
    # Accounts that traded nothing else (2026-12-05 23:00, wip/paint32): a run whose small pairs
    # of orders number ``min_pairs`` less this many, and whose accounts' every aggressive order in
    # the symbol from the run's first pair to its latest was a leg of its pairs, is painting,
    # unless its pairs hand the position back (one account bought from the other and sold the same
    # size back, within ``qty_tolerance``: a wash's round trips, the limit order book's one ticket
    # passed back and forth three times, LOB dev 9, A 99118, H, N 21728). Two
    # accounts (one owner's, or two owners') that do nothing in the symbol but print small matched
    # trades to each other are printing volume, not trading (MAR Annex I 1(a), 2016/522 Annex II
    # 1(a)(iii)); the approved count stays for accounts that trade besides, where a few small
    # crosses are chance (two algorithms crossing 5k, 6k and 16k at an exclusive share of 0.50,
    # development 103, wip/paint17). Our held-out generator draws painting's prints from 3-13:
    # 17 of its 18 painting misses on the 39 seen books are three prints. None: ``min_pairs``
    # always (the rule before).
    sole_trading_fewer_pairs: Annotated[int, msgspec.Meta(ge=1)] | None = 1


class SpoofingParams(Params, frozen=True, kw_only=True):
    """Spoofing and layering (2016/522 Annex II 1(e)-(g)): orders away from the touch on one side,
    a fill on the other side, then the resting orders cancelled within seconds of that fill."""

    max_lead_s: Pos = 30.0  # the resting orders went in at most this long before the fill
    cancel_within_s: Pos = 5.0  # and were cancelled at most this long after it
    min_away_bps: NonNeg = 0.1  # 'away from the touch': strictly behind the best price
    max_away_bps: Pos = 25.0  # further away than this does not weigh on the book
    min_size_ratio: Pos = 3.0  # cancelled quantity / opposite fill quantity
    # Distinct price levels for 'layering' rather than 'spoofing': orders at more than one price
    # (DOMAIN.md: 'layering: several price levels'); one price, however many orders, is spoofing.
    layering_min_levels: Count = 2
    # Levels as placed (2026-12-05 afternoon, wip/spoof20): the levels are counted on the prices
    # the orders went in at, not where the account moved them since. On an exchange a spoofer
    # keeps its bait off the approaching touch by moving it back (a modify): two orders placed at
    # one price and moved back by different steps are still one price's spoof, and a ladder moved
    # onto one price is still the ladder the book showed (the limit order book, docs/lob-book.md).
    # False counts the prices at the cancel, as before.
    levels_as_placed: bool = True
    # The account's own cancel-rate baseline: its cancels (any symbol) in the ``cancel_within_s``
    # after the fill must be at least ``baseline_multiple`` x its average rate over the
    # ``baseline_s`` before the fill (an account that never cancels has a baseline of zero). An
    # account whose normal business cancels a lot (a market maker re-quoting, an algorithm
    # chasing the touch) cancelling after a fill is doing what it always does, not spoofing.
    baseline_s: Pos = 600.0
    baseline_multiple: NonNeg = 10.0  # 0 turns the rule off
    # The account's own active stretch (2026-12-04 night, wip/slip13): an account that has just
    # begun to quote intensely has 600 s of mostly quiet time behind it, so its 600 s rate says
    # little of what it is doing now. Its cancels before the fill with no gap longer than
    # ``active_gap_s`` between them (and the last within ``active_gap_s`` of the fill) are its
    # current stretch; when it holds at least ``active_min_cancels`` (one or two cancels are not
    # a stretch of activity) their rate over the stretch (at least ``active_gap_s`` long) is a
    # second baseline, and the higher of the two is the one the cancels after the fill must
    # beat ``baseline_multiple`` times. None turns it off.
    active_gap_s: Pos | None = 15.0
    active_min_cancels: Count = 3
    # Chance (2026-12-04 night, wip/spoof9): a busy account that rests ordinary orders and trades
    # often cancels one within seconds of one of its own opposite fills by coincidence. The
    # expected number of such coincidences over the ``baseline_s`` before the fill, if its
    # cancels had nothing to do with its fills, must be at most ``max_expected_by_chance``:
    # (its opposite fills in the symbol in that window, this one included) x P(at least as many
    # cancels as the episode's in ``cancel_within_s``), the cancels a Poisson process at the
    # account's own cancel rate over ``baseline_s`` x the share of its last
    # ``size_history_orders`` orders in the symbol at least as large as the episode's smallest
    # cancelled order ((k + 1) / (n + 2)). A large order from a busy account, or any order from a
    # quiet one, stays far under it; an ordinary-sized order from an account that trades and
    # cancels all the time does not. None turns it off.
    max_expected_by_chance: NonNeg | None = 0.04
    size_history_orders: Count = 50
    # A quiet account's window (2026-12-05 early morning, wip/slip15): an account that cancelled
    # at most ``quiet_max_cancels`` orders (any symbol) in the ``baseline_s`` before the fill
    # has no routine its cancels could belong to, so its bait pulled ``quiet_cancel_within_s``
    # after the fill is as plain as bait pulled at once (another firm's spoofers took 5.4-8.2
    # s). A busy account keeps ``cancel_within_s``: its later cancels blur into its routine.
    # The baseline and chance tests read the window the episode is assessed on. None turns it off.
    # 1: at 2 an honest re-quoter that had replaced its order twice before its first trade was
    # alerted on the development books (2026-12-05, wip/slip15); one cancel is no routine.
    quiet_cancel_within_s: Pos | None = 10.0
    quiet_max_cancels: Annotated[int, msgspec.Meta(ge=0)] = 1
    # A quiet account's withdrawals read later (2026-12-05 afternoon, wip/spoof20): a trader at a
    # screen on an exchange sees the fill and pulls the bait in human time (the limit order book's
    # spoofers 10-16 s after the fill); the legitimate late cancels come minutes after. A quiet
    # account's episode that its ``quiet_cancel_within_s`` reading does not alert is read once
    # more on its withdrawals up to ``quiet_withdrawn_cancel_within_s`` after the fill, as a busy
    # account's is on ``withdrawn_cancel_within_s`` (half the chance budget; the first reading is
    # unchanged, so nothing it alerted is lost), and also when the first reading alerts: the wider
    # reading, when it alerts, is the episode (its later withdrawals and their levels are part of
    # it: a ladder pulled over 9.7-10.3 s is one ladder). 20: on the development and tuning books it loses
    # nothing and adds no false alert; 30 added near-miss alerts on the tuning books. Needs the
    # re-quote rule (``replace_within_s``); None turns it off.
    quiet_withdrawn_cancel_within_s: Pos | None = 20.0
    # The genuine order waited in the queue (2026-12-05 afternoon, wip/spoof20): on an exchange
    # the small order on the other side is a limit that rests until the market comes to it, and
    # the bait stays up all that time: it went in with the genuine order, not within
    # ``max_lead_s`` of its fill. For a quiet account (above) the bait's lead is measured to the
    # arrival of the order that filled (a limit re-priced through the touch keeps its first
    # arrival; a market order's arrival is its fill) when it led the fill by more. A busy
    # account keeps ``max_lead_s`` to the fill: its older resting orders are its routine.
    quiet_lead_to_order_arrival: bool = True
    # One way on the bait's side (2026-12-05 evening, wip/spoof22): the two readings above rest on
    # the account having no routine its orders could belong to. An account that itself traded on
    # the bait's side (a fill of another of its orders there) between the bait's placement and the
    # genuine fill deals both ways in the symbol: its resting order on that side may be its own
    # interest, and the longer links (a bait up more than ``max_lead_s`` before the fill, pulled
    # more than ``quiet_cancel_within_s`` after it) are no evidence for it; it keeps the quiet
    # window and ``max_lead_s``. The other firm's book: two quiet accounts resting small orders on
    # both sides (ping near-misses) were alerted on those readings, each with a fill on the bait's
    # side 5-6 s before the genuine one; no true episode on any book had one. False: not checked.
    quiet_extensions_one_way: bool = True
    # Replaced or withdrawn (2026-12-05 morning, wip/spoof16): a desk tells a re-quoter from a
    # spoofer by what follows the cancel. A cancel is *replaced* when the account puts a new
    # resting order in the symbol on the same side within ``replace_within_s`` after it, priced
    # within ``replace_max_bps`` of the cancelled one (the interest stays on the book); otherwise
    # it is *withdrawn*. An episode whose cancelled quantity is more than ``max_replaced_share``
    # replaced is a re-quote, not alerted. A busy account (not quiet, above) whose withdrawals
    # come after ``cancel_within_s`` is judged on ``withdrawn_cancel_within_s`` (its withdrawals
    # only, and only when the ``cancel_within_s`` reading did not alert: that one loses nothing;
    # optionally with baseline and chance counted over its withdrawals: its re-quotes are routine a withdrawal does not
    # belong to, when ``withdrawn_tests_count_withdrawals``; see below). An episode waits
    # ``replace_within_s`` past its window before it is assessed.
    # None (``replace_within_s``) turns both off; None (``withdrawn_cancel_within_s``) the second.
    replace_within_s: Pos | None = 2.0
    replace_max_bps: Pos = 5.0
    max_replaced_share: NonNeg = 0.5
    # Executed, not withdrawn (2026-12-05 evening, wip/spoof22): a cancel next to (within
    # ``replace_within_s`` before or after) the account's own aggressive order on the same side in
    # the symbol that filled is replaced too: the trader stopped waiting and took its interest to
    # the market (our generator's and the order book's background: a resting buy pulled as the
    # account bought at market, the same instant). False: re-quotes by resting orders only.
    replace_by_execution: bool = True
    withdrawn_cancel_within_s: Pos | None = 10.0
    # The wider reading is a second look at an episode the 5-s reading did not alert: it gets half
    # the chance budget (the 5-s reading keeps its own, so nothing alerted before is lost). Its
    # baseline and chance count all the account's cancels: counting its withdrawals only (True)
    # alerted our re-quoters stopping 5-9 s after a fill (development and tuning books, wip/spoof16).
    withdrawn_max_expected_by_chance: NonNeg | None = 0.02
    withdrawn_tests_count_withdrawals: bool = False
    # One order, one trade (2026-12-05 night, wip/spoof27): an exchange reports an order that
    # fills in parts as several executions, but the account traded once. Cancels that follow
    # different partial fills of the same genuine order, while its episode is open, are one
    # episode: read from its latest fill, its lead counted to its first, its size ratio against
    # the order's quantity filled over those fills. The limit order book split a ladder pulled at
    # once over two partial fills of one order (a one-order 'spoofing' alert beside the layering
    # one, LOB B, D, F). False: one episode per execution report.
    episode_per_order: bool = True
    # The account's record before the trade (2026-12-06, wip/spoof35's patch, wip/spoof36): with
    # ``episode_per_order`` an episode is read from the genuine order's latest partial fill, but
    # the account's pulls between its first fill and that one are the reaction being read, not its
    # routine. True: when every cancel of the account between the order's first fill (in the
    # episode) and its latest was a pull on the bait's side in the symbol, the quiet-account count,
    # the baseline (its active stretch too) and the chance test (its rate and the fills that were
    # chances) read the account's record in the ``baseline_s`` before the FIRST fill (the pulls
    # between count on neither side; the cancels and fills kept reach back that far while the
    # episode is open); otherwise before the latest fill, as False does. LOB U 94280 (3556667
    # USDJPY): six sells pulled 0.5-1.3 s after the first of two fills of one buy, the four pulls
    # before the second made the account 'busy' (baseline 1.5x < 10x): found with it on. Without
    # the bait-side condition a quote stuffer's two-sided flash (LOB 15235) was a false layering
    # alert. Seen LOB A-U: layering 275/281 -> 276/281 (94280), the first ladders of 4 'repeat'
    # episodes alerted too (62562, 84573, 34413, 94280), no alert lost, none strictly false added;
    # development, tuning, LOB dev 1-9, seen held-out and independent: identical. CONFIRMATION (the nine
    # 01:48 sets, once each way): LOB layering 37/43 -> 38/43, alerts 46 -> 47, strictly false
    # 9 -> 9; held-out and independent identical (docs/surveillance-rounds.md, 03:00 round).
    record_before_first_fill: bool = True
    # One depth, one level (2026-12-07, wip/lob52; off by default, on in the order_book profile):
    # a spoofer that adds its bait progressively puts each order the same way behind the touch as it then stands (the
    # order book's `added_progressively` spoofs: 2-3 orders placed 4-10 s apart, each behind the
    # touch of its own moment, at 2-3 prices because the touch moved between them); a layering
    # ladder steps its orders away from the first one (several depths at once). With a number,
    # the cancelled orders' depths behind the touch at their own arrival (bps of the arrival
    # mid) are grouped (an order within this many bps of a group's first is in it) and the
    # episode is ``layering`` only when it has ``layering_min_levels`` depth groups as well as
    # prices; the prices alone decide otherwise. None: the prices alone (as before).
    spoof_one_depth_bps: NonNeg | None = None


class OrderToTradeParams(Params, frozen=True, kw_only=True):
    """RTS 9 (2017/566): (orders / transactions) - 1, by number and by volume, per account and
    instrument, over a rolling ``period_s`` (in ``slot_s`` steps, so an episode that straddles
    a clock hour is seen whole). With no transaction the ratio is the number of orders. A
    breach must be sustained: it must still hold without the busiest few slots (bursts are
    quote stuffing's, not an excessive ratio over the period), and the window must hold at
    least ``min_history_s`` of the account's activity (the first minutes of a quoting session
    are too small a sample)."""

    period_s: Pos = 3600.0
    slot_s: Pos = 60.0
    max_count_ratio: Pos = 100.0
    max_volume_ratio: Pos = 100.0
    min_messages: Count = 100  # below this the window is not assessed (too small a sample)
    min_history_s: NonNeg = 600.0  # nor before the account has this long a history in the window
    sustained_excluding_slots: Annotated[int, msgspec.Meta(ge=0)] = (
        5  # the breach must hold without this many busiest slots
    )
    excluded_cancel_reasons: tuple[str, ...] = ("kill_switch", "disconnect", "expired")
    # A market-making strategy is not an excessive ratio (MiFID II Art. 17(4); RTS 8 Art. 1:
    # simultaneous two-way quotes at competitive prices for at least half the time): a breach
    # is not alerted while the account held a live buy and a live sell, each within
    # ``market_making_max_spreads`` spreads of its side of the touch when last priced, for at
    # least ``market_making_min_share`` of its activity in the window. Orders parked further
    # away, or on one side only, are not a quote anyone deals on. None turns it off.
    market_making_min_share: Fraction | None = 0.5
    market_making_max_spreads: NonNeg = 1.0
    # With nothing executed outside the busiest slots the volume ratio there has no denominator:
    # it is read as RTS 9's count ratio with no transaction is (the number of orders), so a
    # volume breach is sustained when the rest of the window holds over ``max_count_ratio``
    # orders and not one execution (2026-12-05 night, wip/qs28: a limit-order-book
    # ``modify_chase`` at a volume ratio of 2,037 whose only two fills fell in its busiest
    # minutes). False: a window with no execution outside them is never a volume breach.
    no_execution_volume_as_count: bool = True


class QuoteStuffingParams(Params, frozen=True, kw_only=True):
    """Message bursts far above the account's baseline with few executions (2016/522 Annex II 1(d))."""

    window_s: Pos = 1.0
    min_messages: Count = 50  # messages in one window: a burst, for an account with no baseline yet
    # For an account with a baseline (``baseline_min_s`` of history), a burst this large at
    # ``baseline_multiple`` x its own rate is far above it: judged against the account itself.
    min_messages_over_baseline: Count = 30  # 20-30 on the development and tuning books: see docs
    max_fill_ratio: Fraction = 0.05  # executions / messages in the burst
    baseline_multiple: Pos = 10.0  # burst rate vs the account's long-run rate
    baseline_min_s: Pos = 60.0  # history needed before the baseline is used
    # An account with no history before its burst (none of ``baseline_min_s``) whose burst reached
    # ``min_messages_over_baseline`` is judged ``baseline_min_s`` after the burst against its own
    # rate in those seconds (``baseline_multiple`` x): an account that appears, bursts and goes
    # silent is far above its own rate, a new quoter that goes on at a tenth of the burst's rate
    # is not (2026-12-05 evening, wip/qs23: the limit order book's stuffing accounts send their
    # burst first, at 30-49 messages a second, and nothing after). False: only ``min_messages``.
    baseline_after_burst: bool = True
    # A burst sustained over several seconds floods the venue's message capacity as surely as one
    # second at ``min_messages_over_baseline``: at least ``long_min_messages`` messages in
    # ``long_window_s`` (15 a second held for 5 s: half the short window's rate, five times as
    # long) at ``baseline_multiple`` x the account's own rate (before the burst, or after it for
    # an account with no history) with at most ``max_fill_ratio`` executions is a burst too
    # (2026-12-05 evening round 3, wip/qs24: the limit order book's stuffing at 15-25 a second
    # over 5-7 s; our generator's busy quoters reach 12-27 a second over 5 s at 3-12 a second of
    # their own). None turns it off.
    long_window_s: Pos | None = 5.0
    long_min_messages: Count = 75
    # A burst takes in the messages of the window that opened it, and with them that window's
    # fills: the fill ratio is over every message of the burst, not only those sent after it
    # reached its floor (2026-12-05 night, wip/qs28: a two-sided quoter hit three times in the
    # second it re-quoted 33 times was read as 1 fill in 33). False: only fills after opening.
    window_fills: bool = True


class PingOrdersParams(Params, frozen=True, kw_only=True):
    """Small orders pulled almost at once, probing for liquidity: at least ``min_count`` orders
    of at most ``max_lots`` lots, cancelled within ``max_life_s`` of entry (a partial fill first
    still counts: the ping found liquidity), within ``window_s``, per account and symbol, sent
    at most ``max_rate_per_s`` on average (faster is a message burst: quote stuffing)."""

    max_lots: Pos = 0.2
    lot_sizes: dict[str, Pos] = {}  # symbol -> units per lot (see painting_the_tape)
    max_life_s: Pos = 2.0
    window_s: Pos = 120.0
    min_count: Count = 8
    min_median_gap_s: NonNeg = 0.2  # median time between the run's orders (milliseconds apart is a burst)
    max_qty: Pos | None = None  # older rules: 'small' in units instead of lots
    # An IOC or FOK that has not filled (in full) this long after entry was killed unfilled: it
    # counts at entry with a life of zero (the venue answers an IOC within milliseconds; a
    # second covers the fill's report arriving after the order's).
    ioc_settle_s: Pos = 1.0
    # An order withdrawn within half a second (an IOC's life is zero) was never there to be traded
    # with: such orders count over 20 minutes, a prober sending one a minute or two. No legitimate
    # account on the development, tuning or limit-order-book dev books has even 4 small orders
    # pulled within 2 s inside 20 minutes (docs/surveillance-rounds.md, wip/ping19).
    fleeting_life_s: NonNeg = 0.5
    fleeting_window_s: Pos = 1200.0
    # An order entered or pulled while its account was sending a message burst on the instrument
    # (at least this many new orders and cancels in the second up to it: quote stuffing's burst
    # floor for an account with a history, ``min_messages_over_baseline``) is one of the burst's
    # messages, quote stuffing's to judge, not a probe sent on its own (2026-12-05 evening,
    # wip/qs23: the small orders of stuffing bursts were alerted as pings). None turns it off.
    burst_messages: Count | None = 30
    # An order resting at least this many spreads (quoted on its entry) behind the touch is not a
    # probe: a ping seeks liquidity where it could trade, at or through the touch or inside the
    # spread; an order two spreads behind cannot trade unless the market moves two spreads through
    # it within its life (2026-12-05 evening round 3, wip/qs24: of 4,225 orders of the true ping
    # alerts on every book of the protocol, 4 rest behind the touch at all, at most 1.53 spreads;
    # LOB dev 8's order-to-trade ``two_sided_far`` quotes rest 2.6-89 spreads, 2.2-4.5 bps,
    # behind). None turns it off.
    max_spreads_behind: NonNeg | None = 2.0


class MomentumIgnitionParams(Params, frozen=True, kw_only=True):
    """A burst of aggressive orders moves the price, then the same account reverses: a chain of
    at least ``min_aggressive_orders`` aggressive orders on one side, each at most
    ``max_gap_s`` after the one before; the mid (from the quote stream) moves at least
    ``min_move_bps`` and ``min_move_spreads`` spreads their way from the mid when the first
    arrived; within ``reversal_window_s`` of the burst the account trades the other way for at
    least ``min_reversal_fraction`` of the burst. A burst that is held, or one-way accumulation,
    is not ignition."""

    max_gap_s: Pos = 10.0
    # 3 orders (was 4) and a reversal up to 900 s after the burst (was 300), with the move the
    # burst itself made (``burst_settle_s``) at ``min_move_sigma`` 1.5: chosen on the development
    # and tuning books once the generator drew bursts of 3+ orders and reversals up to ~15 min
    # (docs/surveillance-rounds.md, 2026-12-04 evening round).
    min_aggressive_orders: Count = 3
    min_move_bps: Pos = 3.0
    min_move_spreads: NonNeg = 2.0
    reversal_window_s: Pos = 900.0
    min_reversal_fraction: Fraction = 0.5
    # The move against the instrument's own volatility: at least ``min_move_sigma`` standard
    # deviations of the mid over the burst-to-reversal span (from the per-second mid path of the
    # ``vol_lookback_s`` before the burst); 0 turns it off. A burst in a flat market that the
    # noise happens to carry 3 bps is not ignition. Chosen on the development and tuning books
    # (docs/surveillance-evaluation.md): 1.0 dropped 4 of 11 false alerts (3 on flat-market
    # near-misses) and no true episode; a lower bps floor with it found nothing more. 1.5 since
    # the move is the burst's own (over the burst and ``burst_settle_s``, a shorter span).
    # 1.4 (was 1.5, 2026-12-05 morning, wip/mom16): two development episodes measured 1.43 and
    # 1.47 (the noise is estimated from about 60 steps of 30 s: its own error is near a tenth).
    # Found of 24 / 38 (alerts, false): 1.5 21 (23, 2) / 30 (34, 4); 1.45 22 (24, 2) / 30 (35,
    # 5); 1.3-1.4 23 (25, 2) / 30 (35, 5) (one background sell at 1.48); 1.25 23 (26, 3) / 30
    # (36, 6). 1.4 taken, the nearer to the old value of the plateau.
    min_move_sigma: NonNeg = 1.4
    vol_lookback_s: Pos = 1800.0
    burst_window_s: Pos | None = None  # older rules (the chain's gap replaces it)
    # The reversal captures the move: its average price beyond the burst's average price, the
    # burst's way, at least this fraction of the move (peak mid - mid at the first order);
    # None turns it off. Off: on the development and tuning books 0 dropped as many true
    # episodes as false alerts (any burst the market moved its way and that reversed captures
    # part of the move, abuse or not); the figure is in the evidence.
    min_reversal_capture: float | None = None
    # The move the burst itself made: measured to the peak mid from the first order until this
    # long after the last (and the volatility over that span), not until the reversal (a move that
    # comes minutes later, from other flow or news, is not the burst's); None: until the reversal.
    burst_settle_s: Pos | None = 15.0
    # Sold into the move: when the reversal's first fill came, the mid still stood the burst's way
    # from the mid at its first order by at least this fraction of the burst's move (a position
    # held and cut once the move had faded, a stop-out, turned in a market back where the burst
    # began). None: off; the figure is in the evidence (``move_left_at_reversal``). Off: on the
    # development / tuning books, found of 24 / 38 (alerts, false), off 17 (21, 4) / 31 (39, 8);
    # 0 17 (20, 3) / 30 (37, 7); 0.1-0.2 17 (20, 3) / 30 (36, 6); 0.25 17 (20, 3) / 29 (35, 6):
    # every value costs a tuning episode, and the rule reads a habit of the generator (its
    # abusers hold the move until they reverse) that a failed attempt at ignition, abuse too
    # (MAR Art. 15), does not have (docs/surveillance-rounds.md, 2026-12-04 night round).
    min_move_left: float | None = None
    # The burst ends at its first pause longer than this once it has ignited (``max_gap_s``: what
    # a burst is). Later same-way orders are the account carrying on (slicing a parent,
    # accumulating): the move must be the burst's own (measured on it alone) and the whole
    # one-way run's too, and the reversal must cover the run. None: every same-way order until
    # the reversal is the burst (the stretched chain: three quick child orders and minutes of
    # slicing made one "burst" whose move was the market's over all of it). On the development
    # / tuning books, found of 24 / 38 (alerts, false): None 17 (21, 4) / 31 (39, 8); 10 and 30
    # 17 (19, 2) / 31 (38, 7); 60 17 (20, 3) / 31 (38, 7); 120 as None
    # (docs/surveillance-rounds.md, 2026-12-04 last-evening round).
    burst_pause_s: Pos | None = 10.0
    # A burst may open with a lead: same-way orders, then one pause of at most this long before
    # the quick orders that ignite it (``min_aggressive_orders``, each within ``max_gap_s``). The
    # lead belongs to the push: the move is measured from the mid at its first order. None: a
    # chain broken by a gap over ``max_gap_s`` before it ignited starts afresh (the move measured
    # from the later orders only: a buy, a 20-s pause, three quick buys lost the move the first
    # made). On the development / tuning books, found of 24 / 38 (alerts, false): None 17 (19, 2)
    # / 31 (38, 7); 20, 30 and 60 18 (20, 2) / 31 (38, 7); 30 taken, the middle
    # (docs/surveillance-rounds.md, 2026-12-04 last-evening round, wip/momr11). 45 since
    # 2026-12-05 (wip/mom26): 30 was the development draws' longest pause inside a burst
    # (``u(8, 30)``), so any timing that runs longer (the held-out ranges widen timings by 1.3: up
    # to 39 s) lost its lead and the move measured only the burst's tail (held-out 8696 INS018: a
    # lead 31 s ahead, 2.71 bps from the tail, 5.18 from the lead). A lead is the order that opens
    # the push: seconds to well under a minute ahead. 40, 45 and 30 find the same on development /
    # tuning (22/24, 24 alerts, 2 near-miss / 30/38, 34, 3); 60 loses development 102 C007 (the
    # account's own unrelated 4,000 buy 53 s before the lead took the lead's place, and the real
    # lead was cut by the next pause): a lead that far ahead is the account's other trading.
    lead_pause_s: Pos | None = 45.0
    # Before a chain ignites, an aggressive order the other way smaller than this fraction of the
    # chain's quantity so far does not cut it (a 3,000 sell between a 964,000 lead and the quick
    # buys is the account's other business, not a turn). None: any order the other way cuts it.
    # On the development / tuning books with ``lead_pause_s`` 30, found of 24 / 38 (alerts,
    # false): None 18 (20, 2) / 31 (38, 7); 0.05 and 0.2 19 (21, 2) / 31 (38, 7); 0.05 taken, the
    # smaller (docs/surveillance-rounds.md, 2026-12-04 last-evening round, wip/momr11).
    min_cut_fraction: Fraction | None = 0.05
    # The same reading after the chain ignited (wip/mom28): when the account goes on the chain's
    # way after trading the other way for less than ``min_cut_fraction`` of the chain, the chain
    # carries on and the reversal starts afresh (the small order was its other business, not the
    # reversal begun; ``carry_on_s`` still starts a new chain after a silence). No new threshold.
    # False: any fill the other way after ignition makes the next same-way order start a new chain
    # (held-out 57786 ACT011: an 89,000 buy, 3.7 %, split a true burst in two). On development /
    # tuning, found of 24 / 38 (alerts, on near-misses): False 22 (24, 2) / 30 (34, 3); True 22
    # (23, 1) / 30 (34, 3): a `held` near-miss whose reversal had "begun" with a 3,000 fill 185 s
    # after the burst reads as the stop-out it is (docs/surveillance-rounds-mom28.md).
    small_turn_after_ignition: bool = True
    # Once a chain has ignited, a same-way order more than this long after the chain's last order
    # begins a chain of its own (the old one waits for its reversal): a quick burst minutes after
    # the account's execution algorithm last sliced a parent is a new push, not the parent carried
    # on (its reversal had to cover the parent's slices, and a burst the other way counted only as
    # the parent's reversal). None: every same-way order until the reversal window's end stays in
    # the chain. On the development / tuning books, found of 24 / 38 (alerts, false, on
    # near-misses): None 19 (21, 2, 1) / 31 (38, 7, 5); 60, 90 and 120 21 (23, 2, 1) / 30 (38, 8,
    # 6); 180 21 (23, 2, 1) / 30 (37, 7, 5); 240 20 (22, 2, 1); 300 20 (22, 2, 1) / 30 (37, 7, 5).
    # 180 taken: below it a `held` near-miss's later sells make a chain of their own, above it a
    # development episode 202 s after its account's parent stays absorbed. The tuning episode every
    # value loses was found only because a 9,000 sell five minutes after the burst stretched the
    # reversal window to the reversal 1,199 s later (docs/surveillance-rounds.md, 2026-12-04
    # night round, wip/mom13).
    carry_on_s: Pos | None = 180.0
    # A two-way trader's turn is its routine: when, in the ``two_way_window_s`` before the burst's
    # first order, the account had both bought and sold at least ``two_way_fraction`` of the
    # burst's quantity each way (a market maker, a two-way execution or short-term algorithm),
    # its trade back after the burst is the next leg of that flow, not the unwinding of a position
    # the burst built; not alerted. Ignition starts from a book that is quiet or one-way (an
    # execution parent the other way is one-way). None: off. On the development / tuning books,
    # found of 24 / 38 (alerts, false, on near-misses): off 21 (25, 4, 3) / 30 (38, 8, 6); 300 s
    # with 0.25 or 0.5 21 (23, 2, 2) / 30 (35, 5, 5); 300 s with 0.75 21 (24, 3, 2) / 30 (35, 5,
    # 5), with 1.0 21 (24, 3, 2) / 30 (36, 6, 5); 0.5 with 120 or 180 s 21 (24, 3, 2) / 30 (36, 6,
    # 5), 240 s as 300, 420 and 600 s 20 (22, 2, 2) / 30 (35, 5, 5) (an active account's episode
    # whose two-way trading 5-10 minutes before the burst counted). The true bursts' two-way share
    # at 300 s is at most 0.19 of the burst; 0.5 taken, the further from them of the two that hold
    # (docs/surveillance-rounds.md, 2026-12-05 early-morning round, wip/mom15).
    two_way_window_s: Pos = 300.0
    two_way_fraction: Pos | None = 0.5
    # The move is the crowd's: while the burst went on (to ``burst_settle_s`` after its last
    # order) the other accounts traded aggressively its way at least this many times the burst's
    # quantity; the account traded with a market others moved, and is not alerted. None: off.
    # On the development / tuning books with the two-way rule, found of 24 / 38 (alerts, false,
    # on near-misses): off 21 (23, 2, 2) / 30 (35, 5, 5); 1.5, 2, 3, 5 and 10 21 (23, 2, 2) / 30
    # (34, 4, 4) (a `scalper` near-miss beside 115 times its burst); 1.0 loses a tuning episode
    # (a true burst beside 1.45 times its quantity). 3 taken: twice the largest crowd a true
    # burst had (docs/surveillance-rounds.md, 2026-12-05 early-morning round, wip/mom15).
    crowd_multiple: Pos | None = 3.0
    # The order that turns a burst that was not ignition (no move, the crowd's, a two-way
    # trader's) is the account's next trade: when aggressive it opens the account's next chain.
    # False: the order that completed the "reversal" is spent on it (an accumulation that moved
    # nothing, then a sell burst whose first order covered half of it, left a burst of three
    # with two, and missed). On the development / tuning books, found of 24 / 38 (alerts, false):
    # off 17 (19, 2) / 27 (30, 3), on 20 (22, 2) / 30 (33, 3), with our generator's bursts after
    # the account's own run the other way (``momentum_after_run``); on the books without them
    # identical (docs/surveillance-rounds.md, 2026-12-05 morning round, wip/mom16).
    turn_opens_chain: bool = True
    # The turning orders are a push of their own too (2026-12-06 13:20 round, wip/mom47,
    # docs/surveillance-rounds.md; off by default): an aggressive order the other way of an
    # ignited chain counts toward that chain's turn (the chain waits for the rest of it, parked)
    # and also opens, or extends, the account's chain its own way, whether or not it completes
    # the turn and whether or not that turn was alerted. False: the order is spent on the earlier
    # chain's turn until the turn is complete (only the completing order of a turn that was not
    # ignition opens a chain, ``turn_opens_chain``), so a burst the account made while an earlier
    # chain of its, an execution parent's slices one way say, waited for its turn was taken as
    # that turn and never a chain of its own (held-out 22918 INS017: a three-order buy burst, 0.71
    # million against a 3.3-million sell chain; 98945 INS022: 1.9 million against 12.1 million).
    # Only once the turn so far is ``min_cut_fraction`` of the chain or more (a smaller order the
    # other way is the account's other business, ``small_turn_after_ignition``: without that, a
    # 44,000 sell inside held-out 78045 ACT010's 7.9-million buy burst split it and lost it).
    # Found strict / episodes, alerts, strictly false, off -> on: development 22/24, 23, 1 ->
    # 23/24, 25, 2; tuning 15/19, 21, 6 unchanged; 34 seen held-out books 123/144, 166, 42 ->
    # 124/144, 164, 39 (the two absorbed found, 83422 INS023 lost: its account's parent slices
    # opened a chain the burst joined); the 10:01 row's nine held-out sets 30/40, 42, 12 -> 31/40,
    # 43, 12, its nine independent sets identical. CONFIRMATION (once, as wholes, at 55f41f2):
    # held-out 26/41, 32, 6 -> 26/41, 33, 7; independent and order book identical. Left off (the
    # round's rule: the lead decides at the next fresh draw).
    turning_orders_open_chain: bool = False
    # The account's own execution parent is kept out of a burst's chain (2026-12-06 15:00 round,
    # wip/mom48, docs/surveillance-rounds.md; off by default): an aggressive order of the same size
    # as the account's previous aggressive order the same way in the symbol is a slice of a parent
    # (a TWAP/VWAP-like algorithm's child orders: consecutive orders of one size at a cadence of
    # tens of seconds or more, where a burst is several orders within seconds) and is part of no
    # chain: it neither opens, extends, leads nor carries on one, so a burst's move is measured
    # from the burst's own first order and its turn against the burst (and the account's other
    # carried-on orders), not the parent's quantity. "Previous" leaves out the orders under
    # ``max_gap_s`` before it (a quick series is a burst's, not a cadence) and the current chain's
    # burst (a burst of equal orders spanning more than ``max_gap_s`` is still a burst), and looks
    # back ``two_way_window_s`` (the account's recent fills). "The same size": within
    # ``min_cut_fraction`` of the larger (5 %: the share the detector already reads as negligible
    # beside a quantity; exact with it None). No new threshold. The account's fills still count
    # everywhere else (two-way, flat, newcomer, the crowd, a turn the other way). Needs the recent
    # fills (``two_way_fraction`` or ``exit_in_burst``); without them it does nothing. False: every
    # same-way aggressive order joins the chain (held-out 4504 INS019: two of the parent's 1.31-M
    # slices joined a 5.06-M burst, its turn 3.46 M then 0.45 of the position, missed). A first
    # version matched any earlier same-way order of the size in the window: an active account's
    # unrelated 447,000 buy four minutes before a burst's 441,000 order cut the burst (held-out
    # 23581 ACT012, lost).
    # A parent is a series (2026-12-06 15:40 round, wip/momb48, docs/surveillance-rounds.md; still
    # off): the order is a slice only as the third (or later) of a series at a cadence. The
    # previous same-way order (as above) and the one before it (leaving out those under
    # ``max_gap_s`` before the previous) are both of the size, and the order's gap from the
    # previous is at most ``max_gap_s`` longer than the gap between those two (the cadence, read
    # one way: a parent that speeds up, a VWAP into volume, is still a parent; a pause as long as
    # a burst's gap or longer is not). Why: mom48's rule read ONE earlier order of the size as a
    # cadence, so a fixed-lot trader (retail's 1.00 lot, a desk's clip: every order 1 million)
    # that had bought once in the window had its whole burst kept out and was never alerted
    # (test_momentum_two_way's near-miss with the rule on). Two earlier orders make a cadence to
    # compare with; no new threshold (``max_gap_s`` is what a burst's pause is). Tried first, the
    # cadence both ways (the gap within ``max_gap_s`` of the series' gap): it undid mom48's finds,
    # for the generator's parents are a scatter, not a cadence (child i at i gap U(0.7, 1.3) from
    # the start). Allowed books, found / episodes, alerts, strictly false, off / mom48's / this:
    # development 22/24, 23, 1 / 23/24, 24, 1 / 23/24, 24, 1; tuning 15/19, 21, 6 / 16/19, 22, 6 /
    # 15/19, 21, 6; 34 seen held-out 123/144, 166, 42 / 127/144, 164, 36 / 124/144, 167, 42; the
    # 10:01 row's held-out 30/40, 42, 12 / 30/40, 41, 11 / 30/40, 40, 10; its independent
    # unchanged; the order book's development seeds identical. Lost against mom48's (not traced):
    # tuning 302 INS023, held-out 98945 INS021, 84390 INS017, 76814 INS019 (a parent's first two
    # slices are no series yet and still carry a chain on; the scatter breaks the cadence).
    parent_slices_apart: bool = False
    # The move on an order book: a burst at least ``min_aggressive_orders`` of whose orders each
    # filled at this many distinct prices or more (took the touch and walked the levels behind
    # it) has pushed through the book's liquidity its way; it passes the move tests above even
    # when the mid, refilled by the other participants within seconds, shows less. None: off.
    sweep_levels: Count | None = 2
    # The move by sweep read from the burst's own prints (2026-12-05 23:00 round, wip/mom32): a
    # swept burst (``sweep_levels``) passes when its furthest fill stood ``min_move_spreads``
    # spreads or more beyond the mid at its first order, as well as when the mid did. The sweep's
    # trades printed on the tape at the prices it walked to (what the market's momentum followers
    # read) even where the other participants refilled the book within the second and the
    # outside flow carried the mid back (on the limit order book, bursts of 4-7 orders each
    # walking 2-5 levels measured a mid move of 0.0 spreads). Only for a swept burst: a burst of
    # one-price fills moved nothing. False: the mid alone (the rule as wip/mom19 built it).
    sweep_prints: bool = True
    # An attempt at ignition (MAR Art. 15: an attempt is abuse too) on an order book: a burst of
    # at least this many aggressive orders one way, at least one of which walked the book
    # (filled at ``sweep_levels`` prices or more: the account was taking liquidity through the
    # touch, on a book), that the account then turned (the reversal test), is alerted though the
    # price did not follow. Without a price effect the series itself is the evidence: a longer
    # run than the three orders a burst that moved needs. The two-way and crowd tests apply; the
    # stop-out test does not (there is no move to come back from). None: off (the move is
    # required). Measured on every assessed chain of the development, tuning and seen books
    # (docs/surveillance-rounds-mom32.md): at 5 no development or independent burst takes it, and
    # on the tuning and nine seen held-out sets one each (an asymmetric-slippage `book_walk` client
    # walking a thin book); at 4 also one development and one independent (the same kind of
    # client). The order book's failed attempts draw 3-10 orders.
    attempt_min_orders: Count | None = 5
    # An attempt by an account that came to the symbol flat (2026-12-06 04:00 round, wip/mom36,
    # docs/surveillance-rounds.md): a chain whose account had no fill in the symbol, either way,
    # passive or aggressive, in the ``two_way_window_s`` before its first order passes the attempt
    # test (one order at least walked the book, the account turned) with this many orders instead
    # of ``attempt_min_orders``. An account with no business in the symbol that takes liquidity
    # through the touch and turns gives the false signal of MAR Art. 12(1)(a) (2016/522 Annex II
    # 1(a)-(b): orders that move the price, then the position unwound), however short the series;
    # an account already trading the symbol (two-way, accumulating, a liquidity provider) still
    # needs ``attempt_min_orders``. None: off (and off with ``attempt_min_orders`` None). 3
    # (``min_aggressive_orders``: no new threshold). Found strict / episodes, alerts, strictly
    # false, off -> on: development 22/24, 23, 1 and tuning
    # 15/19, 20, 5 unchanged; 18 seen held-out and 18 seen independent books unchanged but one
    # true independent find (85706 RTL-102); LOB dev 1-9 28/42, 32, 4 -> 29/42, 34, 5 and seen LOB
    # A, S, T, V, W, X 44/80, 55, 11 -> 47/80, 59, 12 (the two strictly false: marking-the-close
    # abusers' pushes at a fix, leniently true); 4 orders found one LOB episode fewer with the
    # same false. CONFIRMATION (once, as wholes): LOB 24/42 -> 26/42 (0.57 -> 0.62), strictly false
    # 3 -> 3; held-out 34/39 unchanged, strictly false 13 -> 14 (one, on a near-miss);
    # independent 36/38, 6 unchanged. Kept on. Measured and dropped: the same without the walk
    # (every order at one price, from flat): development +1 episode for +4 to +9 alerts on
    # near-misses (the generator's `no_move` bursts, turned, read the same on the tape).
    attempt_from_flat_orders: Count | None = 3
    # A newcomer's series (2026-12-06 06:00 round, wip/mom37, docs/surveillance-rounds.md): the chain of an account that
    # had no fill in the symbol, either way, in this long before its first order may space its orders up to
    # ``lead_pause_s`` (45 s) apart instead of ``max_gap_s`` (10 s) once one of its orders walked the book
    # (``sweep_levels`` prices); every other test applies (move, sweep, attempt, two-way, crowd, reversal, stop-out). An
    # account with no business in the symbol for an hour that takes liquidity through the touch with a series of orders
    # and turns the position gives the false signal of MAR Art. 12(1)(a) (2016/522 Annex II 1(a)-(b), (d): position
    # reversals in a short period) whether its orders are 5 or 25 s apart. None: off. **On, by the lead's decision
    # (2026-12-06 06:30)**, though the helper's guardrail (at most one or two new strictly false alerts on any
    # CONFIRMATION book) left it off: the issue's failing target is the per-type recall floor, which this type missed on
    # every LOB draw (0.36 on one set each time) and which the rule lifts on every CONFIRMATION set (0.58, 0.80, 0.36 ->
    # 0.75, 0.87, 0.71), while precision, where the independent book pays (+3 strictly false alerts on nine books:
    # momentum's precision there 0.82 -> 0.77), has slack (macro 0.95); the new false alerts are background accounts
    # walking the book after an hour away and turning, a pattern an officer reviews. The fresh seeds judge it. Found
    # strict / episodes, alerts, strictly false, off -> 3600: development 22/24, 23, 1 unchanged; tuning 15/19, 20, 5 ->
    # 15/19, 21, 6 (an asymmetric-slippage `book_walk` near-miss); 18 seen held-out books 66/82, 84, 18 -> 66/82, 85,
    # 19; 18 seen independent books 72/75, 91, 19 -> 72/75, 93, 21 (background ACT-20x walking XAUUSD from flat); LOB
    # dev 1-9 29/42, 34, 5 -> 35/42, 41, 6; seen LOB A, S, T, V, W, X 47/80, 59, 12 -> 60/80, 72, 12. CONFIRMATION
    # (once, as wholes, at ae1eba6): LOB 24/41 -> 32/41 (0.59 -> 0.78), strictly false 8 -> 8; held-out 33/38, 44, 11
    # unchanged; independent 37/38 unchanged, alerts 45 -> 48, strictly false 8 -> 11. Measured and dropped on the way:
    # the 300-s flat window (wip/mom35's `series_from_flat`, failed its confirmation), 1,800 s (the LOB's
    # marking-the-close pushes, built 300-2,700 s before the fix, come in) and no walk asked (the dealer books'
    # one-price entries from flat: 4 more strictly false on 18 seen held-out books).
    fresh_series_s: Pos | None = 3600.0
    # The exit filled inside the burst: the account's resting order the other way that filled
    # while its chain was forming (before it ignited) counts toward the reversal, as one filled
    # after it does (an exit resting where the burst pushes the price is the textbook ignition:
    # the burst runs into it). Not for a liquidity provider: an account whose resting orders had
    # filled in the ``two_way_window_s`` before the chain, or filled the chain's way while it
    # formed, trades passively both ways as its routine; none of its passive fills counts.
    # False: only fills after the chain ignited count (held-out 7654's C001 USDJPY, 7 buys
    # moving 8.2 bps, half its exit filled 3 s into the burst, was missed at a reversal of 0.31).
    # 2026-12-05 evening round, wip/mom22 (docs/surveillance-rounds-mom22.md).
    exit_in_burst: bool = True
    # A move of at least this many spreads (``min_move_spreads`` and the noise test still apply)
    # passes without the ``min_move_bps`` floor: the floor is a dealer quote's scale (a 3-bps move
    # on a 1-2 bps spread); on a book whose touch is a tick wide a move of many spreads is a move
    # in the book's own unit however few bps it is. None: the floor always applies.
    # 2026-12-05 evening round, wip/mom22 (docs/surveillance-rounds-mom22.md).
    floor_waived_spreads: Pos | None = 10.0
    # A stop-out is not ignition: when the reversal was assessed it closed the whole position at once
    # (the fill that completed ``min_reversal_fraction`` took it to 100 % or more), the mid was
    # back beyond where the burst began (``move_left_at_reversal`` < 0) and the exit was at a loss
    # (``reversal_capture_of_move`` < 0: the reversal's average price the wrong side of the
    # burst's). Ignition unwinds into the move the burst made (2016/522 Annex II 1(b): "an
    # opportunity to unwind ... at a favourable price"); a position cut in full once the price has
    # come back, at a loss, is the stop-loss of a burst that was held (the issue's look-alike). Not
    # for a move by sweep (``sweep_levels``): the mid moved a tick or two, there is no move of the
    # mid to come back from (the order book's abusers close in full at "-50 moves" of a tick).
    # False: off. Chosen on the seen sets' false alerts (2026-12-05 night round, wip/mom27,
    # docs/surveillance-rounds-mom27.md); on the development and tuning books no alert meets all
    # three, on or off. Each test alone was rejected before: ``min_move_left`` (a failed attempt
    # is turned once the move has gone; the independent book's abusers turn at -0.21 to -1.30 of
    # the move left, at a loss, in part: 0.50-0.60 of the position) and ``min_reversal_capture``.
    stop_out: bool = True
    # The stop-out's middle test (the mid back beyond where the burst began) is not needed
    # (wip/mom29): a position closed in full at once, at a loss (the reversal's average price the
    # wrong side of the burst's), got nothing out of the move whichever way the mid stood; no
    # ignition unwinds at a loss in full. True: the mid must be back too (as wip/mom27 built it).
    # The seen held-out sets' `held` near-misses cut in full at a loss with the mid just short of
    # the start (61675 ACT013 left 0.03, 81356 RET005 left 0.05) or still up (73235 ACT012 left
    # 1.23); no true alert of a move the mid made closes in full at a loss on any development,
    # tuning or seen book (docs/surveillance-rounds-mom29.md).
    stop_out_needs_move_back: bool = False
    # A late turn into the move (2026-12-06 12:00 round, wip/mom45, docs/surveillance-rounds.md;
    # off by default): the reversal may complete up to this long after the burst's last order
    # instead of ``reversal_window_s``, but one that completes after ``reversal_window_s`` is
    # alerted only when the account turned into the move the burst made: the mid when it began to
    # turn still held at least ``late_min_move_left`` of the move, and the turn's average price
    # stood the burst's way of the burst's by at least ``late_min_capture`` of it. A late turn once
    # the move has faded is a position held and cut (the `held` look-alike), which the plain
    # longer window admitted (2026-12-06 06:40 round: 900 -> 1200 s, two false alerts on the
    # development books, one at capture -0.91, move left -0.37). None: off (the window is
    # ``reversal_window_s``). A hand rule: the learned gate's loose stage (the order book's
    # profile) keeps ``reversal_window_s``. Found strict / episodes, alerts, strictly false, off ->
    # 1200: development 22/24, 23, 1 -> 22/24, 24, 2; tuning 15/19, 21, 6 unchanged; 34 seen
    # held-out books 123/144, 166, 42 -> 124/144, 169, 44 (+2 late turns found, one episode lost
    # to an earlier chain that waited longer and took its burst as its turn). CONFIRMATION (once,
    # as wholes, at 57f2447): held-out 30/40, 42, 12 -> 31/40, 43, 12 (sets meeting every target
    # 1 -> 2); independent and order book identical. Left off: the allowed books price it at about
    # one false alert per episode found; the lead's decision. On in ``otc`` since 2026-12-06 21:30
    # UTC (``MARKET_PROFILES``: the sets it lifts on our held-out book); off here and on the order book.
    late_reversal_s: Pos | None = None
    late_min_move_left: float = 0.5
    late_min_capture: float = 0.0
    # The learned gate (2026-12-06 09:00 round, wip/mom40; off by default, ON in the order book's
    # market profile, ``MARKET_PROFILES["order_book"]``: the lead's decision on its CONFIRMATION
    # row, order book 28/40 -> 37/40 found and 3 -> 0 strictly false, our held-out 28/38 ->
    # 22/38): a loose candidate stage (orders up to ``gate_max_gap_s`` apart; the turn still
    # ``min_reversal_fraction`` of the position) whose every candidate is scored by a logistic
    # model over standardised features (``MOMENTUM_GATE`` below, fitted by
    # ``surveil_scenarios --fit-momentum-gate``); the score against its threshold replaces the hand
    # tests (move, sweep, attempt, two-way, crowd, stop-out). ``gate_candidates`` records every
    # candidate with its features and the hand test that stopped it (``detector.candidates``), for
    # the fit; it loosens the chains the same way, so it is for the fit only, never for alerts.
    gate: bool = False
    gate_candidates: bool = False
    gate_max_gap_s: Pos = 45.0
    gate_threshold: Fraction | None = None  # None: ``MOMENTUM_GATE["threshold"]``
    # The FX books' move gate (2026-12-07 00:00 round, wip/mom51; docs/surveillance-rounds.md; off
    # by default, ON in ``otc`` by the lead's decision, 2026-12-07 00:25 UTC). The hand rules
    # stay; a burst that only their move tests stopped (``min_move_bps`` 3, ``min_move_spreads`` 2,
    # ``min_move_sigma`` 1.4: fitted thresholds, not the abuse's definition; 17 of the 24 misses
    # left on our held-out book's failing sets, wip/mom50) is read on through the later figures
    # and alerted when ``MOMENTUM_GATE_OTC`` scores it at or over ``move_gate_threshold`` (None: the
    # model's, 0.2). The gate's alerts join the hand rules' as any detection does (one per
    # account and symbol within the quiet period). A late turn (``late_reversal_s``) is not read
    # by it (its candidates turned within ``reversal_window_s``), nor a move of
    # ``floor_waived_spreads`` or more (the one-tick book's regime: 1 of its 4,732 candidates).
    # NOT every canonical near-miss stays quiet with it on: the near-misses that pin the move
    # floor itself are what it reads (test_momentum_floor_waived.py's 1.8-bps burst of 5 spreads,
    # p 0.86; test_momentum_lead.py's two 3-pip bursts, p 0.33-0.34): the abuse's definition or a
    # fitted threshold, the lead's call (test_momentum_move_gate.py names them). CONFIRMATION (the
    # nine 21:32 sets per book, once, as ``--variants``, at b772bd3): our held-out momentum 29 -> 31
    # of 40, strictly false 10 -> 12, sets meeting every target 0 -> 1 of 3 (0.15: 33 of 40, 14,
    # 1 of 3); independent 35 of 37 either way, strictly false 14 -> 15 (0.15: 16), sets 2 of 3
    # unchanged; the order book identical. No new state (``STATE_VERSION`` unchanged).
    move_gate: bool = False
    move_gate_threshold: Fraction | None = None
    # The move gate keeps the run test (2026-12-07 03:00 round, wip/mom53, docs/surveillance-rounds.md;
    # off by default): a burst the move tests stopped that the account then carried on the same way
    # (same-way orders after the burst's pause, ``burst_pause_s``) pausing again and again (more than
    # one pause over ``max_gap_s``, or one over ``lead_pause_s``: slicing a parent, accumulating) is
    # read on by the move gate only when the whole one-way run made the move (the hand rules' run
    # test, which the gate otherwise skips). The definition: a burst of orders within seconds moves
    # the price, then the account turns into the move. A burst that moved the price too little for
    # the hand rules, followed by a one-way series of the account's, is execution whose turn is the
    # run's; the hand rules already refuse a run that made no move after a burst that did. A burst
    # with one pause inside (one pause of at most ``lead_pause_s``, then orders within
    # ``max_gap_s``: the lead's reading the other way round) is still one burst and is read by the
    # gate as before. No new threshold. Found strict / episodes, alerts, strictly false, off -> on
    # (the ``otc`` profile, momentum run again as ``--variants`` does): the 147 allowed held-out
    # books it was not designed on 553/651, 742, 192 -> 553/651, 726, 176 (16 books one false alert
    # fewer: background ALG / INS parents and near-misses; no find lost); the 216 allowed independent
    # books 876/903, 1139, 263 -> 875/903, 1137, 262 (sets 66 of 72 either way); development 23/24,
    # 26, 3 -> 22/24, 24, 2; tuning identical. CONFIRMATION (the 02:46
    # sets, once, as wholes, at b5d9be2): held-out 29/40, 44, 15 -> 29/40, 42, 13, sets 1 -> 1 of 3;
    # independent identical (35/36, 49, 14; 2 of 3). A precision rule: the recall floor that fails
    # our held-out sets is untouched. False: the gate reads every move-stopped burst, carried on or
    # not (as wip/mom51 built it).
    move_gate_run: bool = False


# The momentum gate's model: feature -> (mean, scale, coefficient on the standardised feature),
# the intercept and the threshold on the probability. Fitted 2026-12-06 09:05 UTC (wip/mom40) by
# ``python manage.py surveil_scenarios --skip-checks --fit-momentum-gate /tmp/mom40/cands2.jsonl``
# on 4,468 candidates (389 of them true episodes) of 80 books: LOB dev 1-9, 25 older seen LOB
# sets' books, development, tuning, 18 seen held-out and 18 seen independent books (never the
# 07:00 CONFIRMATION sets nor the fresh seeds). C (0.01) and the threshold (0.45) chosen by
# grouped 5-fold cross-validation, whole books left out, on the order books' episodes found minus
# twice their strictly false alerts: out of fold the gate found 137 of 153 LOB episodes with 3
# strictly false alerts where the hand rules found 119 with 23; on the FX books it lost episodes
# (held-out 66 -> 51), so it is meant for the order book's instruments only (an instrument rule;
# none of its features needs depth: the share of orders that walked the book weighs ~0, the
# prints beyond the mid little; what it reads is the series, the account and the hand tests, and
# the FX books' ignitions are the hand rules' quick bursts it scores lower). Largest weights: whether
# the hand tests passed (+0.60), the number of orders (+0.46), the move in sigma (+0.43), the
# longest pause (-0.39 per 13.7 s), the account's earlier volume in the symbol (-0.43), a newcomer
# to the symbol (+0.37), flat before (+0.32) (docs/surveillance-rounds.md, 09:00 round).
MOMENTUM_GATE: dict = {
    "features": {
        "orders": (1.538996, 0.278189, 0.461823),
        "max_gap_s": (21.073235, 13.696608, -0.393361),
        "walked_share": (0.112237, 0.273073, -0.018638),
        "print_spreads": (3.536823, 4.543371, 0.134008),
        "move_sigma": (0.902238, 1.41017, 0.434943),
        "own_share": (0.747062, 0.311558, 0.246883),
        "newcomer": (0.059311, 0.236205, 0.365218),
        "from_flat": (0.145255, 0.352358, 0.321049),
        "prior_volume": (1.281787, 1.252377, -0.431278),
        "hand_passed": (0.080797, 0.272523, 0.599812),
    },
    "intercept": -3.726453,
    "threshold": 0.45,
}

# The FX books' move gate's model (``move_gate``; same form as ``MOMENTUM_GATE``). Fitted
# 2026-12-06 23:49 UTC (wip/mom51) by ``python manage.py surveil_scenarios --skip-checks
# --fit-momentum-gate /tmp/mom51/fx.jsonl --gate-market otc`` on the 4,732 candidates (93 true
# ignitions) the hand rules' move tests stopped, of 157 FX books: development 101-106, tuning
# 301-304, 102 seen held-out books (wip/rate49's 34 allowed sets) and 45 seen independent books
# (its 15 sets): never the 21:32 CONFIRMATION sets nor the fresh seeds. C (0.01) chosen by grouped
# 5-fold cross-validation, whole books left out, on the FX books' episodes found minus twice the
# strictly false alerts; its threshold there (0.5) adds one held-out and four independent
# ignitions for no strictly false alert. Out of fold, each set of 3 projected with the other
# types as mom50's run measured them: at 0.2 it lifts our held-out book 20 -> 21 of 34 sets
# meeting every target (momentum 371 -> 381 of 451 found, 101 -> 113 strictly false) and keeps
# the independent book's 11 of 15 (176 -> 181 of 189, 35 -> 39), tuning 15 -> 16 of 19 for none,
# development unchanged. It alerts canonical near-misses that pin the move floor (the
# ``move_gate`` comment); at 0.35 (held-out 373 of 451 for 102 strictly false, independent 180
# for 36, no set either way) it still alerts the 1.8-bps one. Largest weights: the orders (+0.34), the
# move in spreads (+0.26), the time to the turn (+0.26), flat before (+0.36), the earlier volume
# (-0.27) and two-way trading (-0.24), the longest pause (-0.22).
MOMENTUM_GATE_OTC: dict = {
    "features": {
        "orders": (1.49738, 0.199025, 0.335139),
        "max_gap_s": (10.075724, 11.928525, -0.216402),
        "walked_share": (0.008066, 0.08296, -0.043703),
        "move_spreads": (0.888414, 1.169275, 0.258509),
        "print_spreads": (1.10972, 0.940187, 0.105379),
        "move_sigma": (0.378049, 0.480254, 0.158387),
        "own_share": (0.78573, 0.280312, 0.149071),
        "turn_log_s": (2.973811, 2.232016, 0.26452),
        "turned": (0.909381, 0.44159, 0.060558),
        "capture": (-0.504116, 1.522004, -0.012243),
        "loss_closed": (0.111792, 0.31511, -0.006078),
        "newcomer": (0.022189, 0.147299, -0.037761),
        "from_flat": (0.086221, 0.280691, 0.355627),
        "prior_two_way": (1.288333, 1.237838, -0.238027),
        "prior_volume": (1.591122, 1.344318, -0.270606),
        "carried_on": (0.09639, 0.336377, 0.073029),
    },
    "intercept": -4.595113,
    "threshold": 0.2,
}


# One size, for ``close_gate_parent_slices``: a parent's child orders are equal slices of it; 0.01
# leaves room for a partial fill's rounding and none for a trader's clips of different sizes.
PARENT_SLICE_SIZE_CV = 0.01


class MarkingTheCloseParams(Params, frozen=True, kw_only=True):
    """Aggressive one-way trading that pushes a close or fixing print, in favour of a position
    the account already held (the figures against the instrument's own volatility and the
    account's own flow: ``MarkingTheCloseDetector``)."""

    # Chosen on the development and tuning books (docs/surveillance-evaluation.md): each value in
    # the middle of the range where recall and precision on both held.
    window_s: Pos = 300.0  # the push ends at the print and lies within this
    min_orders: Count = 2  # aggressive orders in the push
    min_move_sigma: Pos = 0.75  # the print's move, in standard deviations of the mid over the push's length
    min_move_bps: NonNeg = 0.5  # and at least this (a floor under a very quiet market)
    vol_lookback_s: Pos = 1800.0  # the volatility and the account's own flow before the push
    min_share: Fraction = 0.25  # the account's share of the firm's aggressive volume in the symbol over the push
    min_one_sided: Fraction = 0.8  # |net| / gross of its aggressive volume in the window
    # Or over the push alone (from its first order to the print, its net over its gross there),
    # when the window as a whole is two-way and the push is a series of at least this many orders
    # the push's way: the account's business the other way before the series began (a client's
    # flow, a hedge, an earlier round trip) does not make a series of orders into the print
    # two-way (MAR Annex I 2(b), 2016/522 Annex II: the trading at the close is what is judged);
    # a pair of orders after two-way business is that business's tail, not a push. None: the
    # window as a whole only (main before it). 2026-12-06 06:00 round (wip/close37:
    # docs/surveillance-rounds.md), marking only, true marks found / false alerts added against
    # off: any push (2 orders) on development 101-106 0 / +1, tuning 301-308 0 / +2, the 126 seen
    # independent books +3 / +12, the 15 seen held-out +1 / +2 (the false ones pushes of 2-4
    # orders: accounts' two-way business ending one way into a print); by the push's orders, every
    # book together: 3 +3 / +5; 4 +3 / +2; 5 and 6 +3 / 0 (development and tuning unchanged;
    # independent 26608 LNK-503A and 50793 ACT-202, held-out 43120 INS019 found); 7 none. 5, the
    # lower of 5-6. On the CONFIRMATION sets (the nine 04:25 sets per book, run once, off vs on):
    # independent marking the close 30 -> 31 of 39 (recall 0.77 -> 0.79, precision 0.77 -> 0.78),
    # every other type unchanged; held-out and the limit order book identical. Kept on.
    one_sided_push_min_orders: Count | None = 5
    # The push's rate (volume per second) / the account's aggressive rate before it (the higher
    # of the ``window_s`` and the ``vol_lookback_s`` before the push): steady flow is not marking.
    min_concentration: NonNeg = 5.0
    # The account's flow before the push, counted in orders no larger than this x the push's
    # largest order: a larger one is a block, a position taken at once (often the one the print
    # favours), not the account's pace, and counts as that much. None: every order in full.
    # Development / tuning books with the abusers' position blocks (2026-12-04 last evening),
    # found of 24 / 36 (alerts, false): None 17 (18, 1) / 23 (29, 6); 1 20 (21, 1) / 24 (32, 8);
    # 1.5 20 (21, 1) / 24 (30, 6); 2-3 19 (20, 1) / 24 (30, 6). Under 1.5 an institutional
    # parent's slices before a smaller parent's, or an active account's round trip, count as less
    # than its pace (the two false alerts of 1).
    prior_order_cap: Pos | None = 1.5
    # The position held before, as a fraction of the push. 0.05 (was 0.1): a position built in
    # one order and then pushed with several is often under a tenth of the push (tuning books:
    # 0.1 found 25 of 36 with 3 false alerts, 0.05 27 with 3, 0.03 27 with 4; 0.02 lost
    # precision on the development books).
    min_position: NonNeg = 0.05
    # Or the position the account built over this long before the push (its own net fills), the
    # push's way, at least ``min_position`` x the push: an exposure built for the fixing by an
    # account whose older business leaves it the other way. None: the position held only.
    # Development / tuning books (2026-12-04 night, with the print test below), found of 24 / 36
    # (alerts): 1,800 s 16 (17) / 24 (29); 2,700 s 19 (20) / 24 (31); 3,600 s 20 (21) / 23 (29);
    # 5,400 s (reaches the older business the other way) 14 (15) / 21 (27); off 10 (11) / 18 (23).
    position_lookback_s: Pos | None = 3600.0
    # Or the largest position built the push's way from any moment of that look-back to the push
    # (the account's net fills since then), at least this x the push: a block taken for the print
    # counts even when the hour's older business, the other way, outweighs it. None: off.
    # Development / tuning books (2026-12-04 last evening, wip/close12), found of 24 / 36 (alerts,
    # false): off 20 (21, 1) / 24 (30, 6); 0.05 20 (23, 3) / 26 (36, 10); 0.15 20 (23, 3) /
    # 26 (33, 7); 0.25-0.75 20 (21, 1) / 26 (32, 6); 1.0 20 (21, 1) / 25 (31, 6). 0.5, the middle.
    position_since_any: Pos | None = 0.5
    # Or the position built ALL the push's way since the account last traded the other way (its own
    # fills since then, in the position look-back), at least ``min_position`` x the push, and then
    # held, nothing traded in the symbol, for at least this long before the push (the fixing
    # window's length, as ``dominant_build_held_s``): a position taken and held for the print,
    # however the account's older business leaves it net (the floor of the held position, not the
    # 0.5 of ``position_since_any``, which picks its moment from any business both ways). Our
    # held-out ranges draw the older business the other way 3,077-9,100 s before the print, the
    # development ranges 4,000-7,000 s: inside the 3,600-s look-back it nets the built position
    # away, and a built position of 0.13-0.29x the push stayed under ``position_since_any``
    # (2026-12-06 02:00 round, wip/close35: docs/surveillance-rounds-close35.md). Development /
    # tuning books, found of 24 / 36 (alerts, false, on near-misses): None 21 (24, 3, 0) /
    # 30 (39, 9, 5); 300 s 21 (24, 3, 0) / 30 (40, 10, 6); no hold asked (0) 21 (26, 5, 0) /
    # 30 (40, 10, 6). None: off.
    position_build_held_s: NonNeg | None = 300.0
    # After the print: a flow that carries on the same way (aggressive volume in the push's
    # direction within ``after_s``, as a fraction of the push) was not aimed at the print; the
    # mid then also shows whether the print came back. The alert waits ``after_s``; 0 turns both
    # off (and alerts at the print on the move alone).
    after_s: NonNeg = 300.0
    max_continuation: NonNeg = 0.5
    # The print itself stood the push's way from where the push began (the higher of the print's
    # and the mid's move at it, in bps) by at least this, whatever the mid did after: a print the
    # market took the other way was not pushed, however far the mid then moved. None: off.
    # Development / tuning books: off 22 (27, 5 false) / 25 (33, 8); -1 bps 20 (22, 2) / 24 (31, 7);
    # 0 20 (21, 1) / 23 (29, 6); 0.5 the same; 1.0 19 (20, 1) / 23 (28, 5).
    min_print_move_bps: float | None = 0.0
    # The print's move is also measured from where each later part of the push began (from one
    # of its orders, at least ``min_orders`` orders, to the print), over that part's length, the
    # strongest against its own threshold counting: a mark that opens with an order minutes
    # before its bulk (another firm's book, 2026-12-04 night round, wip/close13). Only when the
    # print itself (not the mid's distance after it) stands the part's threshold: on the
    # development / tuning books with the early-opening marks, found of 24 / 36 (alerts, false,
    # on near-misses): False 19 (20, 1, 0) / 23 (29, 6, 4); True 21 (22, 1, 0) / 28 (35, 7, 4);
    # with the distance after counted too 21 (24, 3, 1) / 28 (36, 8, 5). False: from the push's
    # first order only.
    price_over_tails: bool = True
    # A dominant push: one that made at least ``dominant_window_share`` of the firm's aggressive
    # volume in the symbol over the whole ``window_s`` before the print (the account was the
    # market into it), in favour of a position at least ``dominant_min_position`` x the push
    # (held, built over the look-back or since any moment of it: the print is worth more to the
    # account than its push costs), and passing every other test, is alerted whatever the print
    # did: a mark the market absorbed or a walk swamped is still an attempt (MAR Art. 12(2)(b)
    # "has or is likely to have the effect", Art. 15). A client's fixing order or an unwinding
    # holds no position the push's way and stays out; so does an execution parent building a
    # position smaller than its own slices. Chosen on the development / tuning books with the
    # small-effect marks (2026-12-05 early morning, wip/close15), abuse pushes failing only the
    # price found more (pushes of no abuse alerted more): window share 0.4-0.5 3-4 (0) / 5 (3);
    # 0.6 3 (0) / 5 (1); 0.7 1 (0) / 3 (0), each with the position at 0.5, 1.0 or 1.5 x the
    # push (1.5: one tuning episode fewer). None: off.
    dominant_window_share: Fraction | None = 0.6
    dominant_min_position: NonNeg = 1.0
    # Or for a position HELD the push's way when it began (the account's net position, not a part
    # of it built over the hour while it is net the other way) of at least this x the push: what
    # the print values is what the account holds, and on an order book or a fixing averaged over
    # its window a mark is often many times the position it serves (the stake is the position, a
    # fix-linked trade or a benchmark mark, not the cost of the push), while the market absorbs
    # it. A client's fixing order (flat, or its small business either way: our generator's
    # FIX07 holds 0.06-0.09x) stays under the floor; an account covering a short into the print,
    # long only over the hour (our generator's INS020, 0.22x built, net short), keeps the 1.0x
    # of ``dominant_min_position``. Development / tuning books (2026-12-05 afternoon,
    # wip/close20), found of 24 / 36 (alerts, false, on near-misses): None 18 (20, 2, 0) /
    # 30 (38, 8, 4); 0.05 21 (23, 2, 0) / 30 (39, 9, 5) (FIX07, 0.09x); 0.1, 0.15, 0.2
    # 21 (23, 2, 0) / 30 (38, 8, 4); 0.25 20 (22, 2, 0) / 30 (38, 8, 4). 0.15, the middle of
    # 0.1-0.2. The same floor on any position (held or built) instead: 0.05-0.2 21 (25, 4, 0) on
    # the development books (INS020 twice). None: off (the 1.0x floor only).
    dominant_min_held: NonNeg | None = 0.15
    # The push's concentration is also measured from where its bulk began: its leading orders
    # each under this x its largest order (an active account's small business before it starts
    # pushing, 2026-12-05 early morning, wip/close15) count as the account's flow before it, and
    # the higher of the two counts. Development / tuning books with the small-effect marks and
    # the dominant push, found of 24 / 36 (alerts, false, on near-misses): None 18 (20, 2, 0) /
    # 29 (37, 8, 4); 0.15 the same; 0.25, 0.3, 0.35, 0.5 18 (20, 2, 0) / 30 (38, 8, 4). 0.35,
    # the middle. None: from the push's first order only.
    bulk_min_order: Fraction | None = 0.35
    # A dominant push (window share >= ``dominant_window_share``, every other test passed) for a
    # position HELD the push's way, built by the account's own fills over the position look-back
    # that were ALL the push's way, passes the position test and is dominant whatever the
    # position's size (2026-12-05 evening, wip/close22: docs/surveillance-rounds-close22.md).
    dominant_one_way_build: bool = True
    # ... and the build then held, the account trading nothing in the symbol, for at least this
    # long before the push began (the fixing window's length): a position taken and held for the
    # print, not a stray order of other business placed in the run-up to it. None: no hold asked.
    dominant_build_held_s: NonNeg | None = 300.0
    # An unmoved dominant alert (the print did not move; alerted as an attempt on the push's shape
    # alone) is dropped when the account's same-way aggressive flow after the print exceeds this x
    # the push: a mark stops at the print; a moved alert keeps ``max_continuation``. None: off.
    dominant_max_continuation: NonNeg | None = 0.25
    # A block build is the stake, not the pace (the concentration test): a position held the push's
    # way that the account's own fills over ``position_lookback_s`` built all one way within this
    # long (first to last fill) and then held, nothing traded, for ``block_build_held_s`` before
    # the push, is not counted as the account's earlier flow: the push is concentrated by
    # definition (``prior_order_cap`` says the same of one block; four blocks in 83 s are one).
    # 600 s, two fixing windows: the LOB's builds span up to 370 s (91127 9940865), the
    # institutional parents that slice one way through the hour (what the concentration test is
    # for) 1,333 s and more (tuning 302 INS025, held-out 57786 INS017); any span from 84 s to
    # 1,332 s gives the same on every book (2026-12-05 evening night, wip/close26:
    # docs/surveillance-rounds-close26.md). None: off (every order before the push is its pace).
    block_build_span_s: Pos | None = 600.0
    block_build_held_s: NonNeg = 300.0
    # The window share of ``dominant_window_share`` counts every other account's aggressive flow in
    # the window at its net (buys less sells, either way), not its gross: the print is pushed by
    # one-way pressure, and a two-way account's round trips (a market maker's or an algorithm's
    # churn: our generator's ALG015 / ALG016 buying and selling 5-49 M each way in a fixing
    # window) add none, so they do not make the account that was the one-way market into the
    # print any less dominant. False: the gross volume of everyone (main before 2026-12-05 night).
    # Development / tuning books, marking only, found of 24 / 36 (alerts, false, on near-misses):
    # False 21 (23, 2, 0) / 30 (38, 8, 4); True 21 (24, 3, 0) / 30 (39, 9, 5); every seen book
    # +9 true marks, +3 false alerts (2026-12-05 night, wip/close27:
    # docs/surveillance-rounds-close27.md).
    dominant_net_window: bool = True
    # The print's distance from the mid ``after_s`` later (a pushed print comes back) counts as the
    # print's move only for a push that was at least this share of the window's aggressive volume
    # (``share_of_window_aggressive_volume``, every other account at its net as for the dominant
    # push): a print comes back from where a push put it only if the push was most of the
    # window's one-way pressure into it; when others' flow made most of it (or sold into it while
    # the account bought a little), the market's move after the print is theirs, not the push's.
    # A print that itself moved its threshold is unaffected. The majority of the window (more
    # than everyone else's net flow together), not a figure fitted: on the 92 cached development,
    # tuning and seen books (2026-12-05 late night, wip/close30: docs/surveillance-rounds-close30.md)
    # the 24 alerts raised on the distance after alone are true at 0.57-0.99 (16) and false at
    # 0.02-0.43 (5: held-out 47203 RET010, a 153,000 buy beside a true mark's 5.9 M sell, 0.02;
    # 67773 LNK03B 0.34; 21941 CLDB 0.43; tuning 306 CLI05N 0.34; independent 84283 LNK-502B
    # 0.36) or 0.59-0.88 (3 near-misses, kept); any value above 0.43 up to 0.57 gives the same,
    # the nearest true alert (tuning 302 ACT014, 0.57) the margin. None: off (main before).
    # OFF by default since the late night's final figures (2026-12-05, wip/close31): on the three
    # fresh held-out sets drawn after it was chosen it lost 2 true marks (held-out 68121 ACT009
    # and 34727 RET010, both pushes of 0.34 of the window whose print came back) and removed 2
    # false alerts (0.28, 0.44); its premise, that a print comes back only after a majority push,
    # did not hold on books it had not seen, and a missed mark costs more than a false alert a
    # reviewer closes. Kept as an option (0.5) for a desk that wants fewer alerts.
    reversal_min_window_share: Fraction | None = None
    # A push that opened before the window (2026-12-06 06:40 round, wip/close38, after wip/close36's
    # candidate; docs/surveillance-rounds.md): the account's own run of orders the push's way just
    # before it (no trade of its own the other way, no gap between them longer than ``window_s``)
    # that began within this long of the print, after a quiet ``window_s`` (or after its last trade
    # the other way), is measured as one push: its rate from the run's first order against the
    # account's pace BEFORE the run (capped as ``prior_order_cap``), instead of its own first
    # orders being read as its pace (the group "C / H1" of every marking round since close27). A
    # flow that runs on one way from earlier than this (an execution parent sliced through the
    # hour) is not a run begun for the print and keeps the test. None: off.
    push_run_within_s: Pos | None = None
    # ... and only for an account that was the market into the print (its share of the aggressive
    # volume from the push's first order, the ``min_share`` figure, at least this) whose run the
    # price at the print stands by (the mid at the print the run's way from the mid where the run
    # began): MAR Annex I A(a) / 2016/522 Annex II 2, a significant proportion of the volume that
    # leads to a change in the price, read over the run.
    # 2026-12-06 07:00 round (wip/close39; docs/surveillance-rounds.md), marking only, off -> on at
    # 600 s and 0.8: development 101-106 21/24, 24 alerts (3 strictly false) -> 21/24, 25 (4);
    # tuning 301-308 30/36, 40 (10) -> 30/36, 41 (11); wip/close38's 126 seen independent books
    # +18 true, +5 strictly false; its 15 seen held-out books identical. On the CONFIRMATION sets
    # (the nine 06:37 sets per book, run once, as wholes, off vs on): independent marking the close
    # 29 -> 31 of 37 (0.78 -> 0.84; the failing set 0.58 -> 0.67, still under 0.75), 43 -> 46
    # alerts, strictly false 14 -> 15; held-out 29 -> 30 of 39 (0.74 -> 0.77; its failing set 0.62
    # unchanged), 42 -> 46 alerts, strictly false 13 -> 16; the limit order book identical; every
    # other type identical. It adds strictly false alerts on two books and lifts no failing set over
    # the floor: left off (None) for the lead's decision.
    push_run_min_share: Fraction = 0.8
    # The learned gate (2026-12-06 09:00 round, wip/close40; docs/surveillance-rounds.md): every
    # push at a print is carried past the hand tests above and alerted when the logistic score of
    # its figures (``CLOSE_GATE`` below: share, window share, one-way, orders, concentration, the
    # print's move and its distance from the mid after, the position favoured, the flow after,
    # the push's length) reaches the gate's threshold (``close_gate_threshold``; None: the fitted
    # one), the evidence naming each figure's contribution. OFF by default: on the CONFIRMATION
    # sets (the nine 07:00 sets per book, run once, off vs on) independent marking the close 28 ->
    # 27 of 39, strictly false 13 -> 14; held-out 32 -> 32 of 40, false 16 -> 14; the limit order
    # book 31 -> 33 of 40, false 1 -> 1; every other type identical: it found fewer on the
    # independent book, the round's keep criterion, so it is not kept on (the lead decides).
    close_gate: bool = False
    close_gate_threshold: float | None = None
    # The gate's preconditions (2026-12-06 13:20 round, wip/close47; docs/surveillance-rounds.md):
    # tests the learned gate may not override, because they are the definition of the abuse, not
    # a fitted cut. Marking the close is the print moved in favour of a position: with
    # ``close_gate_print_moved`` the gate alerts only a push whose print, or the mid at the print,
    # stood the push's way of where the push began (``move_bps`` > 0; a print under it, or where
    # it was, is not marked, whatever the push's shape); with ``close_gate_position_favoured``
    # only an account holding a position the print favours (held, built over the look-back, or
    # built since its last trade the other way: ``favoured_position_qty`` > 0). At -1.125 the gate
    # alerted test_detectors.py's near-misses of a print that went the other way and of unmoved
    # prints (a short covered into the print, a small long from business both ways). OFF: on the
    # allowed FX books (close45's 139, projected) the print test loses 40 marks for 27 strictly
    # false alerts fewer (held-out 223 -> 188 of 277): the books label a dominant push into a print
    # the market took the other way as a mark (an attempt; the hand rules alert 41 of the 48 true
    # pushes it drops), and on the CONFIRMATION sets (once, off vs on) independent 31 -> 29 of 37,
    # held-out 32 -> 28 of 38, strictly false 15 -> 14 and 17 -> 14; the position test changes one
    # alert. The hand rules (``close_gate`` off) are untouched by them.
    close_gate_print_moved: bool = False
    close_gate_position_favoured: bool = False
    # The gate's position floor (2026-12-07 00:00 round, wip/close51; docs/surveillance-rounds.md):
    # with ``close_gate_min_position`` the gate alerts only a push whose position the print favours
    # (``favoured_position_qty``: held when the push began, built over the look-back, or built
    # since any moment of it, the push's way) is at least ``min_position`` x the push: the hand
    # rules' own floor of what counts as a position, which the gate may not override. Marking the
    # close is trading at the close to move the price for a position held (MAR Annex I; 2016/522
    # Annex II); a client's fixing order holds none, and the residue of its small business in the
    # hour before is not a position a push of 38-360 times it is for (our held-out generator's
    # fixing clients alerted on the allowed books: 8 of 25 at 0.003-0.026x, which the hand rules'
    # ``dominant_one_way_build`` passes whatever the size). ``close_gate_position_favoured`` asks
    # only that it be above zero. Not a clean separation: the residue reaches 0.44x, and the
    # smallest true alert's position is 0.055x (held-out) and 0.051x (independent). On the 120
    # allowed held-out books (marking alone): 441 of 535 found either way, alerts 672 -> 663,
    # strictly false 231 -> 222; development and tuning identical; 153 allowed independent books
    # 564 of 640 either way, strictly false 231 -> 227. On the CONFIRMATION sets (the nine
    # 21:32-21:37 sets per book, once, as ``--variants``): held-out marking 29 of 43 either way,
    # strictly false 17 -> 16; independent and the order book identical; no set changes. The hand
    # rules (``close_gate`` off) are untouched. OFF: the round's rules stay off (the lead decides
    # at the next fresh draw).
    close_gate_min_position: bool = False
    # An execution parent's slices with no stake of their own (2026-12-07 03:00 round, wip/close53;
    # docs/surveillance-rounds.md): with ``close_gate_parent_slices`` the gate does not alert a push
    # that is the tail of a parent order sliced into equal child orders, when the position the print
    # favours is that parent's own earlier slices: the account's aggressive orders the push's way
    # over the ``vol_lookback_s`` before the print (the push's among them) are at least this many,
    # all of one size (their sizes' coefficient of variation at most ``PARENT_SLICE_SIZE_CV``), and
    # the favoured position less what those orders bought before the push began is under
    # ``min_position`` x the push. Marking the close is trading at the close to move the price for
    # a position held (MAR Annex I 2(b); 2016/522 Annex II); a benchmark order (a TWAP) trades on
    # its own clock in equal slices whatever the print, and the position its earlier slices built
    # is the order being worked, not a stake the print is for (``push_run_min_stake`` asks the same
    # of a run: a stake held before it). A slice schedule with a stake of its own (the true run at
    # one pace of test_marking_push_run.py: long 1,000,000 before eight buys of 300,000) is still
    # judged by the gate. Round clips of one size are common in manual FX trading too, so the count
    # is what says "a parent": 5 (the fewest children our generator's parents have; fixed before
    # the measurement, not fitted). The independent book's parents (a VWAP of varied child sizes)
    # never meet it, so the rule only acts on our held-out generator's TWAP parents. On every
    # allowed FX book (``close_gate.allowed_books()``): held-out (219, marking alone) 797 of 983
    # found either way, alerts 1,216 -> 1,168, strictly false 419 -> 371 (all 48 background
    # institutional parents); independent (216, 72 sets) identical, 66 of 72 sets either way;
    # development 26 -> 25 alerts, 5 -> 4 strictly false; tuning identical. On the CONFIRMATION
    # sets (the nine 02:46-02:51 sets per book, once, as ``--variants``): held-out marking 37 of 42
    # either way, strictly false 19 -> 16, 1 of 3 sets either way; independent identical (2 of 3).
    # OFF: the lead decides (docs/surveillance-rounds.md, the 2026-12-07 03:00 round). None: off.
    close_gate_parent_slices: Count | None = None
    # The gate's concentration over the push's own run (2026-12-06 15:00 round, wip/close48;
    # docs/surveillance-rounds.md): with the gate on, a push that opened before the window is
    # measured as one run from its first order, as ``push_run_within_s`` does with this value, and
    # without ``push_run_min_share``: the concentration test asks whether the push quickened
    # against the account's pace BEFORE it, and a run of the account's own orders the push's way
    # into the print (none the other way, no gap longer than ``window_s``, begun within this long
    # of the print after a quiet spell, the mid at the print standing its way) is the push, not its
    # pace. Whether the account was the market into the print is the gate's own share terms, so
    # the run is not asked for a share. On the allowed independent books (171 seen, less the
    # CONFIRMATION sets), 48 of the gate's 104 missed marks were pushes that opened before the
    # 300-s window, their own first orders read as the account's pace; at 600 s the gate finds
    # 610 -> 641 of 714 marks for 261 -> 290 strictly false alerts, sets of 3 meeting every target
    # 49 -> 54 of 57 (development +0 / +3 false, tuning +0 / +4; our held-out's six newest allowed
    # sets 69 -> 70 of 81, +7 false). On the CONFIRMATION sets (the nine 12:36-12:44 sets per book,
    # run once, off vs on): independent marking the close 31 -> 32 of 37, strictly false 15 -> 16,
    # its failing set 0.62 -> 0.69; held-out and the limit order book identical; every other type
    # identical. OFF: the round's rules stay off (the lead decides at the next fresh draw). The
    # hand rules (``close_gate`` off) are untouched; ``push_run_within_s``, when set, wins (with its
    # share). None: off. On in ``otc`` (600, with ``push_run_min_stake`` 0.15) since 2026-12-06
    # 21:20 UTC (``MARKET_PROFILES``).
    close_gate_push_run_s: Pos | None = None
    # A run that slowed into the print is not one push (2026-12-06 18:00 round, wip/close49;
    # docs/surveillance-rounds.md): with ``push_run_no_slower`` a run (``push_run_within_s`` or
    # ``close_gate_push_run_s``) is measured as one push only when the push inside the window
    # traded at least as fast as the run's orders before it (its quantity over its time to the
    # print against the lead's quantity over its time to the push). Marking the close is trading
    # concentrated into the print; a run whose bulk was traded earlier and which then eased off
    # (a block taken minutes before the push and not held: test_marking_block_build.py's
    # near-miss) is a position taken, its orders the account's pace, and keeps the test. With
    # ``push_run_within_s`` 600 (its share 0.8) it spares both canonical near-misses that keep
    # ``close_gate_push_run_s`` off (a run that was not the market into the print; a block not
    # held), but keeps under a third of that rule's gain: on the allowed independent books (171)
    # +9 marks for +7 strictly false alerts against +31 for +29 (sets meeting every target 49 ->
    # 50 of 57, against 54); our held-out's 84 newest allowed books +2 for +1; development,
    # tuning and the order book's 1-9 unchanged. On the CONFIRMATION sets (the nine 15:54-16:00
    # sets per book, once, off vs on): held-out and the order book identical, independent marking
    # the close 32 of 37 either way for one strictly false alert more (15 -> 16). OFF: the
    # round's rules stay off (the lead decides at the next fresh draw).
    push_run_no_slower: bool = False
    # A run is for a position the account already held (2026-12-06 21:00 round, wip/close50;
    # docs/surveillance-rounds.md): with ``push_run_min_stake`` a run (``push_run_within_s`` or
    # ``close_gate_push_run_s``) is measured as one push only when the account held, when the run
    # began, a position the run's way (its net position in the symbol then, everything the engine
    # has seen) above zero and at least this x the push. Marking the close is trading at the
    # reference time to move the reference price (MAR Annex I; Delegated Regulation 2016/522
    # Annex II), and what it is for is a position the trader holds (or a contract priced off the
    # close): a run that builds from flat (or from a position the other way) everything the print
    # values pays up for every unit it marks: a client's fixing order (the independent book's
    # near-miss), a block bought just before the push (test_marking_block_build.py's near-miss),
    # an unwinding into the fix. The stake is the position before the run, as ``block_build``
    # reads the stake before the push. 0.0: any position the run's way; None: off. With
    # ``close_gate_push_run_s`` 600 at 0.0 it spares test_marking_block_build.py's block not held
    # (flat when its run began) but not test_marking_push_run.py's 0.70-share run (a share, not a
    # position). On the allowed books (marking alone, off -> close48 -> close48 + this): independent
    # (171) 610 -> 641 -> 637 of 714 marks, strictly false 261 -> 290 -> 272, sets meeting every
    # target 49 -> 54 -> 54 of 57; held-out (84) 303 -> 307 -> 307 of 370, false 145 -> 179 -> 157;
    # development / tuning +0 marks, false 5 -> 8 -> 5 and 8 -> 12 -> 9; the order book identical.
    # On the CONFIRMATION sets (the nine 19:08-19:13 sets per book, once, as ``--variants``):
    # independent marking 31 -> 33 -> 33 of 37, false 10 -> 11 -> 10, sets 2 -> 3 -> 3 of 3;
    # held-out 36 of 41 each way, false 23 -> 28 -> 26; the order book identical. OFF: the
    # round's rules stay off (the lead decides at the next fresh draw). On in ``otc`` at 0.15 (the
    # hand rules' ``dominant_min_held``) since 2026-12-06 21:20 UTC (``MARKET_PROFILES``).
    push_run_min_stake: NonNeg | None = None
    # Offline: every push at a print recorded on the detector (``candidates``) with its gate
    # features and the first hand test that stopped it, for ``surveil_scenarios
    # --fit-close-gate``. Alerts are the hand rules' (or the gate's) as without it.
    gate_candidates: bool = False
    # The print gate on the account's purpose (2026-12-06 10:00 round, wip/close43;
    # docs/surveillance-rounds.md): a push that passes every hand test but the print's (orders,
    # one-way, share, position, concentration, the flow after) is alerted, whatever the print did,
    # when the position it favours is a stake taken for the print: the account's position stood
    # the push's way, without a break, for at least ``purpose_min_age_s`` before the push (not a
    # position the push's own run-up built) and less than ``purpose_max_age_s`` (taken within the
    # position look-back, not a standing book the account has held all along), and the account
    # unwound less than ``purpose_max_unwind`` x the push in the ``after_s`` after the print (a
    # flow that turns round at the print was working an order through it). Chosen on 113 allowed
    # books (development, tuning, the order book's 1-9 and 6 seen, 80 seen independent, 8 seen
    # held-out), the print-stopped pushes (episodes the hand rules miss found / pushes / strictly
    # false): every such push +21 / 109 / 88; this rule +17 / 33 / 16; by book development +1 / 3 /
    # 2, tuning 0 / 3 / 3, held-out +3 / 7 / 4, independent +2 / 7 / 5, the order book +11 / 13 / 2.
    # On the FX books the print-stopped pushes are rarely marks (independent 2 of 56), on the
    # order book nearly always (11 of 13). On the CONFIRMATION sets (the nine 07:00 sets per book,
    # run once, off vs on): independent marking the close 28 -> 28 of 39, alerts 41 -> 43, strictly
    # false 13 -> 15; held-out 32 -> 33 of 40, 48 -> 50, 16 -> 17; the limit order book 31 -> 36
    # of 40, 32 -> 38, 1 -> 2 (its first set 0.62 -> at least 0.92: it meets every target); every other type
    # identical. It found no more on the independent book (the keep criterion): OFF by default; on
    # the order book it holds (the lead decides on ``MARKET_PROFILES["order_book"]``).
    print_purpose_gate: bool = False
    purpose_min_age_s: NonNeg = 300.0
    purpose_max_age_s: Pos = 3600.0
    purpose_max_unwind: NonNeg = 0.5


# A gross exception: a fill past this multiple of best execution's bar, one no slippage policy
# explains (the books' asymmetric marks stay within 1.9x the 2-pip bar, best-execution abuse
# reaches 2.1x and more). One definition for the two execution detectors' readings of it (wip/exec23;
# they were both 2.0 and said the same thing): best execution holds no such fill for asymmetric
# slippage (``asymmetric_hold_multiple``), and asymmetric slippage leaves a client to best
# execution only with one among its exceptions (``gross_multiple``). Each stays a parameter of its
# detector (a scoped rule may move one); the defaults cannot drift apart.
GROSS_EXCEPTION_MULTIPLE = 2.0


class BestExecutionParams(Params, frozen=True, kw_only=True):
    """MiFID II Art. 27: adverse slippage of an aggressive fill beyond the touch quoted when the
    order arrived (ask to buy, bid to sell; from the quote stream, never from the input's own
    figures), in pips. Adverse when beyond ``max_adverse_pips`` and beyond ``spread_multiple``
    x the spread prevailing on arrival (a fill a fraction of a wide news spread away is the
    market, not the broker). Per client and symbol, a run of adverse fills is one alert."""

    max_adverse_pips: Pos = 2.0
    spread_multiple: NonNeg = 1.0  # x the prevailing spread (wider of arrival and fill)
    fill_touch_fraction: NonNeg = 0.5  # also beyond the touch at the fill by this part of the threshold
    max_adverse_bps: Pos | None = None  # optional extra bar in bps beyond the touch (older rules)
    pip_sizes: dict[str, Pos] = {}  # symbol -> pip; default 0.01 for *JPY, 0.1 for XAU*, else 0.0001
    # 2026-12-05 late morning (wip/exec19): a market order's sweep through the book is priced by
    # the venue's depth, not by the firm. The later fills of one order in one instant, the first
    # at or inside the arrival touch and each at or beyond the one before, are not assessed
    # (docs/surveillance-rounds.md, wip/exec19). False: every fill against the arrival touch.
    walk_exempt: bool = True
    # 2026-12-05 afternoon (wip/bex20): one behaviour, one alert. A detection of a client whose
    # adverse slippages in the symbol, this fill included, are mostly within this bar (fewer than
    # asymmetric slippage's ``gross_share`` beyond it: its pattern, not best execution's abuse),
    # with no run of the client open here, is held with the client's next detections until
    # asymmetric slippage assesses the client: folded into its alert if it alerts, released here
    # if it clears the client (whose next detections are then not held until it alerts them), at
    # the latest this many seconds after the first was held, once the client has had no slippage
    # for asymmetric's ``assess_quiet_s`` with no assessment due, or at the end of the input. A
    # client whose adverse fills are each beyond the bar is never held. 7200: 3600 releases the
    # LOB's asymmetric clients whose runs last over an hour before their review (set C 35 alerts,
    # 7200 and 14400 25); the development / tuning books cannot tell them apart. None: never held
    # (docs/surveillance-rounds-bex20.md).
    asymmetric_hold_s: Pos | None = 7200.0
    # Only fills up to this multiple of the bar are held: the asymmetric policy's largest marks
    # spill just past the tolerance (the LOB's asymmetric clients: 2.0-3.3 pips against the 2-pip
    # bar, 1.65x at most); a fill further out (the books' best-execution abuse: 5.3-11.5 pips,
    # 2.6x and more) is a gross exception in its own right, alerted as best execution's at once
    # with the client's held run (one run, one best-execution alert).
    # (GROSS_EXCEPTION_MULTIPLE: one definition with asymmetric slippage's ``gross_multiple``)
    asymmetric_hold_multiple: Pos = GROSS_EXCEPTION_MULTIPLE
    # 2026-12-05 evening (wip/exec22): a held run is reviewed, not released unreviewed. When
    # the hold reaches ``asymmetric_hold_s``, or the client has been quiet with nothing new for
    # asymmetric slippage to assess, or the input ends, and the client has enough slippages for
    # its test, asymmetric slippage assesses the client then (its history so far): folded if it
    # alerts (a client it alerted already is alerted again with the held fills, joined to that
    # alert's episode), released if it clears the client. The LOB's asymmetric clients trading
    # for over 2 h, and those with later fills after their alert, were alerted twice (LOB dev
    # and seen sets: 10 best-execution alerts on asymmetric episodes the asymmetric alert found).
    # False: released unreviewed as before (docs/surveillance-rounds-exec22.md).
    review_held: bool = True
    # 2026-12-05 evening (wip/exec22), measured, left OFF for the lead: hold a detection too when
    # the client's adverse slippages are mostly past the bar but none yet past asymmetric
    # slippage's ``gross_multiple`` x it (not best execution's case there: its first fills at
    # 1 / 1 would otherwise open a run of their own). No episode lost anywhere; LOB best-execution
    # alerts dev 1-9 70 -> 59, seen A-D 97 -> 86 (all gone on asymmetric episodes); development,
    # tuning, seen held-out and independent tables identical. Its cost: a best-execution abuser
    # whose first exceptions are within twice the bar waits for its first gross one (LOB: 9 runs
    # 0-11 min) or for the review (1 run of marks all 2.5-3.8 pips: 98 min), against the
    # afternoon's "best-execution abuse must not wait" (docs/surveillance-rounds-exec22.md).
    # On since 2026-12-05 night (wip/bex27): the same reading as asymmetric slippage's own
    # ``gross_multiple`` (marks all within twice the bar are the asymmetric policy's until it
    # assesses them). Development, tuning, seen held-out and independent books: identical; LOB
    # best-execution alerts dev 1-9 70 -> 59, seen A-F 136 -> 119, no episode lost; 19 true
    # runs newly held, 0-15 min until their first gross fill, two until asymmetric's review
    # (LOB dev 7: 98 min; tuning 305: 35 min) (docs/surveillance-rounds-bex27.md).
    hold_without_gross: bool = True
    # 2026-12-05 night (wip/bex27): symmetric slippage is the policy ESMA's CFD Q&A permits.
    # When asymmetric slippage assesses a client and finds its slippage symmetric (neither test
    # alerts), the held detections (each within ``asymmetric_hold_multiple`` x the bar: a gross
    # one is never held) that are each no further past the arrival touch (bps) than the largest
    # improvement the client was given in the symbol (asymmetric's tally, first fills) are
    # dismissed, not released as best execution's, and the client's next detections are held
    # again for its next assessment. A held mark past every improvement given, an assessment
    # that leaves the client to best execution (``gross_share``), a hold released unreviewed
    # (too few slippages for the test) and any fill past ``asymmetric_hold_multiple`` x the bar
    # are best execution's as before. Without the improvement bound, development and tuning lost
    # 5 and 3 best-execution episodes (abusers whose 2.5-7.3 pip marks were held and whose
    # background improvements, 0.4-2.7 pips at most, made the count symmetric); with it, both
    # identical; LOB dev 1-9 alerts on near-misses 12 -> 8, seen A-F 23 -> 18, held-out and
    # independent identical. False: released as best execution's
    # (docs/surveillance-rounds-bex27.md).
    dismiss_symmetric: bool = True
    # 2026-12-06 noon (wip/lob45): how far a symmetric client's improvements reach, for
    # ``dismiss_symmetric``: a held mark is the symmetric policy's when it is no further past the
    # arrival touch than this multiple of the largest improvement the client was given. A
    # symmetric policy draws its adverse marks and its improvements alike, so the largest of a
    # client's marks lies past its largest improvement about half the time, and a little past
    # it as often as not: the order book's best-execution alerts on near-misses were symmetric
    # clients' largest marks, 2.1-2.6 pips against the 2-pip bar, 0.9-1.59 times (median 1.2)
    # the largest improvement (27 allowed order books, the 12:00 round's diagnosis: 18 alerts on
    # near-misses -> 2, every episode still found; on the CONFIRMATION order books 5 -> 0,
    # precision strict 0.83 -> 0.93). 1.0: within the largest improvement itself (the rule
    # before). 1.5 in the order book's profile only: on the FX books a client's background
    # improvements can come near a best-execution abuser's marks (development and tuning,
    # wip/bex27); on the order book an abuser is never improved.
    dismiss_symmetric_reach: Annotated[float, msgspec.Meta(ge=1)] = 1.0
    # 2026-12-05 late night (wip/lob30): a sweep whose first print is past the arrival touch but
    # within the bar is still a walk of the venue's levels: the first print is judged against the
    # arrival touch, and each later fill of the sweep (same order, same instant, each at or beyond
    # the one before) by how far it lies beyond that first print, the depth its size took (the
    # reading ``walk_exempt`` gives a sweep whose first print is at the touch). A first print past
    # the bar, or a later fill better than an earlier one (a marked sweep), is assessed against
    # the arrival touch as before. The LOB's symmetric near-misses' sweeps (first print 0.2-0.3
    # pips past, the next level 2.1-2.2 past the arrival touch) were best-execution alerts. False:
    # only a sweep whose first print is at or inside the touch is a walk
    # (docs/surveillance-rounds-lob30.md).
    walk_from_marked_first: bool = True
    # 2026-12-05 late night (wip/lob30): "beyond the bar" is read at 1e-6 pip: a fill exactly
    # ``max_adverse_pips`` past the touch is at the tolerance, not beyond it (price differences in
    # binary floating point put some of them a hair over the bar and some under; LOB H 52855's
    # 2.0-pip mark was an alert); so is the test against the touch at the fill (a fill exactly
    # ``fill_touch_fraction`` of the bar past it is not beyond it: tuning 303's 2.9-pip limit,
    # 1.0 pip past the touch at the fill). Asymmetric slippage's count of best execution's exceptions
    # (``gross_share``, ``gross_multiple``) reads its bar the same way. False: the raw difference.
    bar_exact: bool = True


class AsymmetricSlippageParams(Params, frozen=True, kw_only=True):
    """ESMA CFD Q&A: adverse slippage passed on while price improvement is kept. Sign test on the
    slippage of aggressive orders' first fills against the arrival touch, per symbol and client."""

    min_fills: Count = 20  # non-zero slippages per assessment (cumulative: assessed at every multiple)
    z_threshold: Pos = 3.0  # one-sided sign test (normal approximation)
    zero_band_bps: NonNeg = 0.05  # |slippage| under this counts as 'at the quote'
    # One observation per order, its first fill: the later fills of a large order that takes
    # the depth are priced further through the book, the cost of its size (judged by best
    # execution), and are not independent draws of the broker's policy, as the sign test
    # assumes. False: every fill (before 2026-12-04 night). Development / tuning books with the
    # book-walking near-misses, strict recall / precision (alerts, on near-misses): every fill
    # 0.92 / 0.79 (28, 5) and 0.97 / 0.77 (44, 8); first fill 0.92 / 0.96 (23, 0) and
    # 0.97 / 0.92 (37, 1), the figures of the books before the near-misses were added.
    one_per_order: bool = True
    # 2026-12-05 morning (wip/exec16): a client's whole history once more at the end of the
    # input (one with 39 slippages was assessed at the 20th only). Development / tuning books
    # (with the by-value stream), found of 30 / 43 (alerts, not strictly true): multiples only
    # 22 (23, 1) / 35 (38, 3); with the end 25 (26, 1) / 37 (41, 4).
    assess_at_end: bool = True
    # 2026-12-05 morning (wip/exec16, second part): the same assessment live. The streaming stage
    # never reaches an end of input, so a client whose tally has slippages not yet assessed is
    # assessed once it has been quiet (no new slippage in the symbol) this long, event time;
    # None: only at the end of the input (batch). Chosen on the development and tuning books:
    # batch tables identical at 900, 1800 and 3600 s; alert episodes raised live before the
    # input ends 26 / 30 and 42 / 45 with none, 30 / 30 and 45 / 45 with 900 or 1800, 29 / 30
    # and 44 / 45 with 3600. 1800: wash trades' and best execution's episode quiet period, the
    # shortest that is not a pause inside a run (docs/surveillance-rounds.md, wip/exec16).
    assess_quiet_s: Pos | None = 1800.0
    # The test by value: z = sum(s) / sqrt(sum(s^2)) over the non-zero slippages (bps), the
    # sign-flip test of a fair policy (+s as likely as -s). None: off. With the end, on these
    # books: 3.0 29 (30, 1) / 41 (45, 4). On the stream's first draft (slippages widened): 2.75
    # 30 (32, 2) / 41 (48, 7); 3.0 29 (30, 1) / 40 (44, 4); 3.25 and 3.5 27 (28, 1) / 40 (44,
    # 4); 4.0 25 (26, 1) / 40 (44, 4). 3.0: the count test's own level, where the gain ends
    # before the false alerts begin.
    value_z_threshold: Pos | None = 3.0
    # 2026-12-05 late morning (wip/exec19): the sign test exact (binomial tail against
    # z_threshold's one-sided level, 0.00135 at 3.0) instead of its normal approximation, which
    # is what ``min_fills`` guarded. A client with fewer than ``min_fills`` slippages (from the
    # fewest that can reach the level, 10 at 3.0) is then assessed too, once, when quiet or at the
    # end: an exchange book prints most fair fills at the touch, so a client's 18-40 orders may
    # leave 10-19 slippages (docs/surveillance-rounds.md, wip/exec19). The test by value stays on
    # ``min_fills`` or more. False: the normal approximation, from ``min_fills`` only. Left off
    # by wip/exec19: on the development / tuning books it added 5 alerts (3 on best execution's
    # 'small' / 'news' near-misses, clients whose 10-12 slippages are all adverse; 2 on
    # best-execution abuse, the related type) and on the LOB book typed every best-execution
    # abuser as asymmetric too. On since 2026-12-05 afternoon (wip/asym20) with ``gross_share``,
    # which leaves best execution's abusers to best execution (docs/surveillance-rounds-asym20.md).
    exact_sign_test: bool = True
    # 2026-12-05 afternoon (wip/asym20): best execution's case. A client whose adverse slippages
    # are, this share or more, each beyond best execution's bar (BestExecutionParams) is not
    # alerted here: each such fill is an Art. 27 exception of its own, alerted by best execution;
    # asymmetric slippage is the policy no single fill shows. None: off
    # (docs/surveillance-rounds-asym20.md).
    gross_share: Fraction | None = 0.75
    # 2026-12-05 evening (wip/exec22): best execution's case needs a gross exception. A client
    # whose adverse slippages are mostly beyond the bar (``gross_share``) is left to best
    # execution only when at least one is past this multiple of the bar (best execution's
    # ``asymmetric_hold_multiple``'s reading: a fill no policy explains). One-way marks all
    # within twice the bar are the asymmetric policy with a tolerance set just past the bar. On
    # the 21 LOB books (dev 1-9, seen A-D): asymmetric clients' marks at most 3.8 pips (1.9x the
    # 2-pip bar), best-execution abusers with 9 or more adverse fills at least one of 4.2 pips
    # or more, median 3.6-9.2 (docs/surveillance-rounds-exec22.md). None: any share, as before.
    # (GROSS_EXCEPTION_MULTIPLE: the same reading as best execution's ``asymmetric_hold_multiple``)
    gross_multiple: Pos | None = GROSS_EXCEPTION_MULTIPLE
    # 2026-12-05 evening round 2 (wip/exec23): the test by value exact under ``min_fills``. A
    # client with 10-19 slippages (``exact_sign_test``'s floor to ``min_fills``) is also
    # assessed by value: the share of the 2^n sign patterns of its own slippages whose sum
    # reaches the observed one (the sign-flip test ``value_z_threshold`` approximates from
    # ``min_fills`` on), against the count test's level (0.00135 at 3.0). The count test cannot
    # tell 11 adverse and one improvement (p 0.0032) from chance; an improvement of 0.1 pip
    # against marks of 1-3 pips is the asymmetric policy by value (docs/surveillance-rounds-exec23.md).
    # False: by value from ``min_fills`` only, as before.
    exact_value_test: bool = True
    # 2026-12-06 (wip/asym35): a client the test cannot weigh (fewer non-zero slippages than
    # its floor, 10 at z 3) whose slippage is one way: no improvement ever passed on (every
    # non-zero slippage adverse), so many marks that all-adverse is itself unlikely under a fair
    # policy at this one-sided level (2^-n: 5 or more at 0.05, the conventional level; the
    # test's own, 0.00135, needs 10), most of them within best execution's bar (fewer than
    # ``one_way_past_share`` beyond it) and none past ``gross_multiple`` x the bar. When best
    # execution's held run of such a client is reviewed (``review_held``: hold cap, quiet, end of
    # input), it is raised here, the held exceptions in its evidence, not released as best
    # execution's: ESMA's CFD Q&A asks that improvement be passed on as adverse slippage is; a
    # client given none, whose few marks past the tolerance are the largest of a one-way run, is
    # that policy failure (one behaviour, one alert), not a per-fill exception. The exception
    # past the bar is what alerts (best execution's alert otherwise); this only types it. A run
    # with a gross exception, a client ever given an improvement, with fewer one-way marks
    # (tuning 305's best-execution client: 2; held-out 56855's: 4) or with half its marks or more
    # past the bar stays best execution's. None: released as best execution's, as before
    # (docs/surveillance-rounds-asym35.md).
    one_way_level: Fraction | None = 0.05
    # Most within the bar: without the test's finding, the marks themselves must say "policy"
    # (more within the tolerance than past it). ``gross_share``'s 3 in 4, read with the test's
    # finding, typed two best-execution abusers reviewed early (held-out 81128 C006 and
    # independent 56316 PRS-5104, 5 of 7 marks past the bar, improvements given later) as
    # asymmetric (docs/surveillance-rounds-asym35.md).
    one_way_past_share: Fraction = 0.5
    # 2026-12-06 noon (wip/lob45): a one-way client (``one_way``: 5 adverse marks or more, no
    # improvement ever passed on, most within the bar, none gross) below the test's floor is
    # reviewed here too when best execution holds nothing of it (no mark past the bar): once it
    # has had no slippage in the symbol for ``assess_quiet_s`` (or at the end of the input), it
    # is raised as ``one_way`` reads it, with no held exception. On the limit order book the
    # firm's fills are at the book's prices unless its policy marks them (the touch never moves
    # between an order's arrival and its fill), so five one-way marks and no improvement are the
    # policy, not the market: 6 of the 14 missed asymmetric episodes on the 27 allowed order
    # books were such clients with no mark past the bar (found with it: 107 -> 113 of 121, one
    # false alert added; CONFIRMATION order books 33 -> 35 of 39, none added). Off by default:
    # on the FX books a fill can slip with the quote during its latency, and a client's five
    # adverse fills are a market's run there; on in the order book's profile
    # (``MARKET_PROFILES["order_book"]``). False: reviewed only with a held run (the rule
    # before) (docs/surveillance-rounds.md, 12:00 round, wip/lob45).
    one_way_unheld: bool = False


# The gate of marking the close (``MarkingTheCloseParams.close_gate``, off by default): a logistic
# regression of "the push names a marking-the-close episode's orders" over standardised figures of
# every push at a print (trade_detectors.CLOSE_GATE_FEATURES: ten figures, the seven hand tests'
# cut points as votes, and today's verdict), fitted 2026-12-06 09:18 UTC by ``surveil_scenarios --fit-close-gate``
# (scikit-learn LogisticRegression, L2, C 1.0; C and the threshold chosen by grouped
# cross-validation, whole books left out) on 222 allowed books: development 101-106, tuning 301-304,
# the order book's 1-9 and 25 of its seen seeds, 153 seen independent books and 25 seen held-out
# books, none of the 07:00 CONFIRMATION sets (21,218 pushes: 974 true, 4,153 near-miss, 16,091
# other). Out of fold (5 folds by book, docs/surveillance-rounds.md, 2026-12-06 09:00 round,
# wip/close40): hand rules 778 / 946 episodes found, 1,043 pushes alerted, 265 strictly false;
# the gate 783, 1,035, 252. The score is z = intercept + sum(coef x (value - mean) / scale);
# alerted at z >= threshold (log-odds; -0.75 is a probability of 0.32). The figures that carry it:
# the flow after the print (continuation, against), one-way, the push's orders, the position
# favoured, the share; the print's move and its distance after carry almost none once the rest
# is known.
# share              mean    0.3117 scale   0.3449 coef  +0.1331
# window_share       mean    0.2355 scale   0.2916 coef  +0.5322
# one_sided          mean    0.9001 scale   0.2384 coef  +0.8714
# log_orders         mean    0.5284 scale   0.6753 coef  +0.7377
# log_concentration  mean    2.0115 scale   2.4710 coef  +0.4630
# move_ratio         mean    0.5122 scale   1.6862 coef  +0.0572
# reversal_ratio     mean    0.3363 scale   2.0110 coef  -0.0021
# log_position       mean    1.1987 scale   1.1140 coef  -0.2133
# continuation       mean    0.4905 scale   0.8994 coef  -1.7569
# log_span           mean    4.9230 scale   0.8430 coef  +0.0437
# hand_pass          mean    0.0492 scale   0.2162 coef  +0.4348
# ok_orders          mean    0.4591 scale   0.4983 coef  +0.1892
# ok_one_sided       mean    0.8442 scale   0.3627 coef  -0.1816
# ok_share           mean    0.4023 scale   0.4904 coef  +0.6833
# ok_concentration   mean    0.4317 scale   0.4953 coef  +0.1847
# ok_position        mean    0.7548 scale   0.4302 coef  +0.9420
# ok_print           mean    0.4121 scale   0.4922 coef  +0.1567
# ok_continuation    mean    0.7411 scale   0.4380 coef  +0.3425
CLOSE_GATE: dict[str, Any] = {
    "fitted": "2026-12-06 09:18 UTC",
    "features": [
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
    ],
    "mean": [
        0.311651,
        0.235451,
        0.900069,
        0.528436,
        2.011525,
        0.512165,
        0.33633,
        1.198668,
        0.490461,
        4.922996,
        0.049156,
        0.459138,
        0.844189,
        0.4023,
        0.431709,
        0.754831,
        0.412103,
        0.741069,
    ],
    "scale": [
        0.344917,
        0.291597,
        0.238358,
        0.675282,
        2.470988,
        1.686248,
        2.010978,
        1.113961,
        0.899354,
        0.84299,
        0.216194,
        0.498328,
        0.362676,
        0.490362,
        0.495314,
        0.430187,
        0.492213,
        0.438048,
    ],
    "coef": [
        0.133103,
        0.532156,
        0.871364,
        0.737746,
        0.46299,
        0.057179,
        -0.002052,
        -0.213263,
        -1.756886,
        0.043708,
        0.434837,
        0.18918,
        -0.181605,
        0.683314,
        0.184749,
        0.942027,
        0.156688,
        0.342525,
    ],
    "intercept": -6.950891,
    "threshold": -0.75,
    "C": 1.0,
}

DETECTOR_PARAMS: dict[str, type[Params]] = {
    "wash_trade": WashTradeParams,
    "painting_the_tape": PaintingTheTapeParams,
    "spoofing": SpoofingParams,  # also raises "layering"
    "excessive_order_to_trade": OrderToTradeParams,
    "quote_stuffing": QuoteStuffingParams,
    "ping_orders": PingOrdersParams,
    "momentum_ignition": MomentumIgnitionParams,
    "marking_the_close": MarkingTheCloseParams,
    "best_execution_slippage": BestExecutionParams,
    "asymmetric_slippage": AsymmetricSlippageParams,
}

ALERT_TYPES: tuple[str, ...] = (
    "wash_trade",
    "spoofing",
    "layering",
    "excessive_order_to_trade",
    "quote_stuffing",
    "ping_orders",
    "momentum_ignition",
    "marking_the_close",
    "painting_the_tape",
    "best_execution_slippage",
    "asymmetric_slippage",
)


class ParameterError(ValueError):
    """Parameters that do not validate; the message names the detector and the field."""


# Market profiles: the detectors' default parameters for a kind of market, under every rule in
# force (firm, instrument, account and algorithm scope) and every ``--params``: a parameter a rule
# sets wins, one it leaves out keeps the profile's value, as it would the detector's default (a
# rule changing one threshold of momentum ignition does not switch the order book's gate off; one
# that sets ``gate: false`` does). ``otc``: dealer quotes, the FX books the thresholds were chosen
# on. ``order_book``: an exchange-style limit order book, where prices form by matching (docs/lob-book.md) and
# momentum ignition is judged by its learned gate (``MOMENTUM_GATE``, wip/mom40): out of fold on
# the seen order books it found 137 of 153 ignitions with 3 strictly false alerts where the hand
# rules found 119 with 23, and on the 07:00 CONFIRMATION order books 37 of 40 with 0 false where
# the hand rules found 28 with 3; on the FX books it finds fewer than the hand rules (our held-out
# 28 -> 22 of 38), so it is the order book's profile, not the firm-wide default (2026-12-06, the
# lead's decision on wip/mom40's row; docs/surveillance-rounds.md, 09:00 round). And marking the
# close there takes a push stopped only by the print test when the account's position had stood
# the push's way 300-3,600 s and it unwound under half the push after the print
# (``print_purpose_gate``, wip/close43): the order book's fixing is a median of the mid over five
# minutes, which a push moves less than a last-price or short-average print, and on the order
# books 11 of 13 print-stopped pushes were marks against 2 of 56 on the independent book. On the
# 07:00 CONFIRMATION order books it found 36 of 40 with 2 strictly false alerts, against 31 with 1;
# on the FX books nothing more (independent 28 -> 28 of 39, 13 -> 15 false), so order book only
# (2026-12-06 10:05 UTC, the lead's decision on wip/close43's row; the rounds page, 10:00 round).
# A firm sets its market with ``SURVEILLANCE_MARKET`` (the streaming stage) or ``surveil --market``.
#
# ``otc``'s marking the close is judged by the learned gate (``close_gate``, ``CLOSE_GATE``) at a
# lower operating point, log-odds -1.125 instead of its fitted -0.75 (2026-12-06 12:00 round,
# wip/close45; docs/surveillance-rounds.md): on the FX books every set of 3 meets issue 16's macro
# targets with room, and what fails them is marking the close's recall floor, so the round spent
# precision on recall. Measured on 139 allowed FX books (development 101-106, tuning 301-304, 43
# sets of 3 of the seen independent and held-out books less the CONFIRMATION sets, newest first),
# every hand stop loosened and the gate's threshold lowered, each set's macro projected with the
# other types as they are; the margin: every set keeps macro strict precision >= 0.88 and
# lenient >= 0.91 (or its own figure, where it is under that already), to two places. Every hand
# stop loosened far enough to find more breaks it on 3 sets or more (min_concentration 4: +17
# marks for +58 strictly false, 7 sets); the gate at -1.125 finds +24 marks (independent +11,
# held-out +13) for +13 strictly false and breaks none (-1.0 +20 for +3; -1.1875 +25 for +21, 1
# set breaks; -1.25 +25 for +27, 2). On the CONFIRMATION sets (the nine 10:01 sets per book, run
# once, off vs on): independent marking the close 34 -> 36 of 39, strictly false 15 -> 15, sets
# meeting every target 2 -> 3 of 3; held-out 31 -> 35 of 41, false 7 -> 10, sets 1 -> 2 of 3; the
# limit order book identical; every other type identical. The round's own margin failed on one
# set (independent 56633, 30008, 75105: macro lenient precision 0.91 -> 0.90, one false alert
# more, still meeting the issue's 0.90); on by the lead's decision (2026-12-06 12:30 UTC): the
# recall floor, not precision, is what fails sets, and 5 of the 6 FX CONFIRMATION sets met every
# target with it against 3 without. The order book keeps its hand rules and print gate.
# The gate's run (``close_gate_push_run_s`` 600, wip/close48) with its stake (``push_run_min_stake``
# 0.15, wip/close50) is on in ``otc`` by the lead's decision (2026-12-06 21:20 UTC, before the
# draw of 17:46 ran): a push that opened before the window is measured as one run into the print
# when the account held, as the run began, a position the run's way of at least 0.15 x the push
# (the hand rules' own floor for a dominant push's position, ``dominant_min_held``): what marking
# the close is for. A run that buys nearly everything the print values pays up for every unit it
# marks (test_episodes.py's steady flow with a tenth of the push held; test_marking_block_build.py's
# block not held). The run alone had gained sets and lost none over the two fresh draws run since
# it was built (+2 sets, +4 marks, +8 strictly false alerts); with the stake at 0.15, on the allowed
# independent books +22 marks for +8 strictly false (sets meeting every target 49 -> 53 of 57),
# our held-out's +4 for +11, development and tuning unchanged (close50's table); on the 19:08
# CONFIRMATION sets (once, 21:17-21:19 UTC, as ``--variants``) independent marking 31 -> 33 of 37
# for no strictly false alert more (sets 2 -> 3 of 3), held-out 36 of 41 either way for 3 strictly
# false alerts more (23 -> 26). The 0.70-share run of test_marking_push_run.py, for a position
# held before it, is alerted under ``otc`` (its share into a print it moved is a mark by the
# definition; the hand rules' 0.8 share cut spares it with the gate off).
# The late turn into the move (``late_reversal_s`` 1200, wip/mom45) is on in ``otc`` by the lead's
# decision (2026-12-06 21:30 UTC, before the 17:46 draw ran): momentum ignition's recall floor
# fails our held-out book's sets most (8 of 34 allowed sets), and of the three momentum rules
# built and left off it is the one that lifts sets (rate49 and mom50, in-sample on its design
# book: 18 -> 20 of 34 sets, +6 ignitions of 451 for +4 strictly false; mom47's and momb48's rules
# add no set to it). Its out-of-sample record over three CONFIRMATION runs: +1 ignition and +1 set
# (12:10), +0 for +1 strictly false (18:13), +0 for -1 (21:10, with mom47); the independent book
# +1 strictly false over 189 found. The order book keeps its learned gate's window.
# The FX books' move gate (``move_gate``, its model's 0.2, wip/mom51) is on in ``otc`` by the
# lead's decision (2026-12-07 00:25 UTC, before the 20:31 draw ran): momentum ignition's recall
# floor still fails our held-out book's sets (5 of 37 allowed sets with today's rules, rate51),
# and 17 of the 24 misses left on the failing sets are the hand rules' move tests, fitted
# thresholds (mom50). Out of fold on the allowed FX books (its threshold chosen on them): held-out
# 371 -> 381 of 451 found for 101 -> 113 strictly false, sets 20 -> 21 of 34; independent 176 ->
# 181 of 189 for 35 -> 39, sets 11 of 15 either way. On the 21:32 CONFIRMATION sets (once, at
# b772bd3): held-out 29 -> 31 of 40, strictly false 10 -> 12, sets 0 -> 1 of 3; independent 35 of
# 37 either way, 14 -> 15 strictly false. The near-misses that pinned the 3-bps floor are alerted
# under ``otc`` (the lead burst's 3 pips a minute after its own 2.5-pip lead, sold into ten minutes
# later; a 1.8-bps move of five spreads sold into): an account that moves the price by its own
# quick orders and trades the other way into the move is the abuse however few bps the move is;
# the floor was a threshold, not the definition. The tests say so. ``close_gate_min_position``
# (wip/close51) stays off: it saves 4-9 of 231 strictly false marking alerts and finds nothing,
# and its floor (0.05) sits just under the smallest true alert's position on both FX books (0.051,
# 0.055), so on a fresh book it is the rule likeliest to lose a mark, which is what fails sets.
# The order book's one depth, one level (``spoof_one_depth_bps`` 0.01, wip/lob52) is on in
# ``order_book`` by the lead's decision (2026-12-07 02:55 UTC, before the 23:26 draw ran): on 69
# allowed order books 29 of the 33 spoofing misses were the generator's progressive spoofs named
# layering because the touch moved between the orders; with the rule spoofing 236 -> 262 of 266
# found, layering 263 -> 261 of 275, strictly false layering alerts 31 -> 2 and spoofing 16 -> 19.
# On the 20:31 CONFIRMATION order books (once, as ``--variants``) spoofing 33 -> 39 of 40, layering
# 40 of 41 either way, strictly false layering 6 -> 0; the FX books identical, so order book only
# (its books are the ones whose spoofers add their bait behind a moving touch).
MARKET_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "otc": {
        "marking_the_close": {
            "close_gate": True,
            "close_gate_threshold": -1.125,
            "close_gate_push_run_s": 600,
            "push_run_min_stake": 0.15,
        },
        "momentum_ignition": {"late_reversal_s": 1200, "move_gate": True},
    },
    "order_book": {
        "momentum_ignition": {"gate": True},
        "marking_the_close": {"print_purpose_gate": True},
        "asymmetric_slippage": {"one_way_unheld": True},
        "best_execution_slippage": {"dismiss_symmetric_reach": 1.5},
        "spoofing": {"spoof_one_depth_bps": 0.01},
    },
}


def market_profile(market: str) -> dict[str, dict[str, Any]]:
    """The ``market`` profile: detector name -> its defaults there (``ParameterError`` naming the
    known markets for an unknown one)."""
    profile = MARKET_PROFILES.get(market)
    if profile is None:
        raise ParameterError(f"unknown market {market!r}; known: {', '.join(MARKET_PROFILES)}")
    return profile


def _over_profile(defaults: Mapping[str, Any] | None, raw: Any) -> Any:
    """One detector's parameters over its profile defaults, parameter by parameter. A ``Params``
    struct is a whole parameter set already (every field chosen by whoever built it): kept as is."""
    if not defaults:
        return raw
    if raw is None:
        return dict(defaults)
    if isinstance(raw, Mapping):
        return {**defaults, **raw}
    return raw


def market_params(market: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``params`` (detector name -> parameters) over the ``market`` profile's defaults, parameter
    by parameter (``ParameterError`` for an unknown market)."""
    profile = market_profile(market)
    merged = dict(params or {})
    for name, defaults in profile.items():
        merged[name] = _over_profile(defaults, merged.get(name))
    return merged


def market_scoped_params(market: str, scoped: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Scoped rules (detector name -> {symbol, account or algorithm -> parameters}) each over the
    ``market`` profile's defaults for its detector, as ``market_params`` does for the firm's: the
    most specific rule applies as a whole parameter set, and its profile is the market's."""
    profile = market_profile(market)
    return {
        name: {key: _over_profile(profile.get(name), raw) for key, raw in (by_key or {}).items()}
        for name, by_key in (scoped or {}).items()
    }


# Alert types raised by another detector: their thresholds live under that detector's name.
RAISED_BY = {"layering": "spoofing"}


def params_convert(detector: str, raw: dict[str, Any] | None) -> Params:
    """Validate ``raw`` for ``detector``: an unknown detector, a value that is not an object, an
    unknown parameter name or a bad value -> ``ParameterError`` naming it (and what is known)."""
    cls = DETECTOR_PARAMS.get(detector)
    if cls is None:
        hint = ""
        if detector in RAISED_BY:
            by = RAISED_BY[detector]
            hint = f" ({detector} alerts are raised by the {by} detector: set them under {by!r})"
        raise ParameterError(f"unknown detector {detector!r}{hint}; known: {', '.join(DETECTOR_PARAMS)}")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParameterError(f"{detector}: parameters must be an object of name: value, not {type(raw).__name__}")
    unknown = [name for name in raw if name not in cls.__struct_fields__]
    if unknown:
        raise ParameterError(
            f"{detector}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(cls.__struct_fields__)}"
        )
    try:
        return msgspec.convert(raw, cls)
    except msgspec.ValidationError as exc:
        raise ParameterError(f"{detector}: {exc}") from None


def params_check(raw: Any) -> dict[str, Params]:
    """Validate a whole parameter set (detector name -> parameters), as read from a ``--params``
    file: every detector name must be known and every parameter set valid."""
    if not isinstance(raw, dict):
        raise ParameterError(f"expected an object of detector: parameters, not {type(raw).__name__}")
    return {name: params_convert(name, value) for name, value in raw.items()}
