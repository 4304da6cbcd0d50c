"""The execution worker: prediction-events in, orders at the broker and trading-events out.

    signal.validated ──► Strategy ──► OrderIntent ──► PreTradeGate (risk checks + compliance checks)
        ──► Broker.send_order (paper | MT5) ──► order_commit: ONE write with the order, its
        decision, fills, position, the account's marks and risk snapshot, audit records and
        outbox rows ──► trading-events (the outbox relay publishes them)

A runner: it wires the pure handlers (``trading.strategy``, ``trading.risk``, ``trading.gate``,
``trading.orders.outcome``) to a broker and to the system of record through services
(``trading.orders``, ``trading.controls``), loops over events and calls them. No business rule
and no ORM query live here. It runs as the ``execution`` stage (``manage.py
run_execution_worker`` on the configured bus, or inside the embedded pipeline).

Time: the worker is given a ``Clock`` (``tradeops.core.clock``) by whoever runs it. Live, event
time is the wall clock at the moment; in a replay (``ReplayClock``) it is the market time of the
event being handled, which the worker tells the clock before handling it, and the paper broker
runs on the same clock, so a replay's orders, fills and records carry the replayed time.

Hot state (limits, positions and their marks, open orders, kill switches, quotes, equity) lives
in memory, loaded at start (``trading.orders.selectors``) and kept current by events: ticks and
bars mark positions in memory, ``killswitch.changed`` engages/releases the mirror and cancels
what is still open at our brokers, ``risk.limit_changed`` reloads the limits,
``risk.drawdown_rebased`` re-bases an account's peak equity (four eyes upstream). Nothing is written
per tick: marks and the account's risk snapshot are written with every fill (inside the order's
own write), at most once per ``snapshot_interval`` of wall clock per account otherwise, and at
shutdown (``close``).

Exactly-once at the broker (RTS 6 Art. 17): ``client_order_id`` is derived from (signal id,
account), travels to the broker as the order comment, and is unique in the database. The order
is written AFTER the broker answered, so a crash in between leaves an order the broker has and
we do not; ``trading.orders.reconcile.order_reconcile`` (at start, after a reconnect, after a
failed commit or an unknown broker state) settles it. The ids of recent orders are held in
memory so a redelivered signal is never sent twice. An answer whose write failed is kept until
written, in memory and on disk (``workers.unrecorded_spool``): a refusal leaves no trace at the broker.

Start-up with a backlog: a restarted worker has no quote until market data arrives, and the bus
may hand it the signals of the backlog before the ticks and bars they were made from. It never
decides on that: the last quote is seeded from the broker at start (``Broker.quote``), and a
signal whose symbol has no quote yet, or only one older than the signal by more than
``stale_after``, is HELD (in arrival order) until market data that covers it has arrived, for at
most ``market_data_wait`` of wall-clock time; only then does it go through the strategy and the
gate. So a restart never refuses a signal as ``risk.stale_market_data``; a signal is refused for
stale market data (that instrument only; the breaker is not involved) only when no market data
came for that long (a feed that is really down).
While it holds signals the worker says so (``holding``) and the runner does not commit offsets,
so a crash meanwhile re-delivers them (at-least-once; ``known_ids`` dedupes).

One worker per account: two workers on one account would each keep their own risk state and
book (issue 19, finding 6). The runners take ``execution_account_locks`` before starting the
worker (a PostgreSQL advisory lock per account, a lock file on SQLite); a second worker is told
who holds the account and exits (or waits, ``--wait``). The worker re-checks its locks every few
seconds; one lost with its database session (a restart) is taken again, or, if another worker
took it meanwhile, the worker stops (``LockLost``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils.module_loading import import_string

from tradeops.breaker import BreakerState
from tradeops.bus.runner import RecentIds
from tradeops.core.clock import Clock, ClockNotStarted, WallClock, utcnow
from tradeops.core.locks import LockHeld, LockKey, NamedLock
from tradeops.events import (
    Bar,
    DrawdownRebased,
    Envelope,
    KillSwitchChanged,
    OrderRequested,
    RiskLimitChanged,
    Signal,
    Tick,
    bar_end,
    make_event,
)
from tradeops.observability import metrics
from tradeops.observability.orderpath import OrderPathMeter
from tradeops.observability.tracing import traceparent_current
from trading.brokers import Broker, BrokerConnectionError, BrokerError, Deal, OrderRequest, OrderResult, OrderType
from trading.brokers import Quote as BrokerQuote
from trading.console.selectors import EXECUTION_LOCK_CLASS as CONSOLE_EXECUTION_LOCK_CLASS
from trading.controls.drawdown import drawdown_rebase_applied_record
from trading.controls.selectors import drawdown_rebases_to_apply, trading_breakers_last_moves
from trading.controls.services import (
    LIMIT_VALUE_FIELDS,
    kill_switch_cancel_at_broker,
    signal_skips_record,
    trading_breaker_change_record,
    trading_breaker_restore_record,
)
from trading.gate import GateDecision, PreTradeGate, failed
from trading.intents import InstrumentSpec, OrderIntent, Quote, intent_of_request, magic_for
from trading.marketdata.sessions import compile_hours
from trading.models import Instrument, Order, TradingAccount
from trading.order_states import OrderStatus
from trading.orders import selectors
from trading.orders.marks import AccountState, Mark, RiskFigures
from trading.orders.outcome import fill_of, outcome_of, outcome_refused, stops_reanchored
from trading.orders.plan import OrderDraft
from trading.orders.reconcile import (
    ReconcileReport,
    market_order_expire,
    order_reconcile,
    positions_compare,
    reconciliation_mismatch_raise,
    reconciliation_order_not_at_broker_raise,
    unwritable_order_raise,
    unwritable_orders_clear,
    unwritable_orders_forget,
)
from trading.orders.requests import EXPIRED, REFUSED, TAKEN, order_request_close, order_request_closing
from trading.orders.services import OrderCommit, account_state_save, execution_record, order_commit
from trading.orders.unrecorded import (
    Settlement,
    UnrecordedOrder,
    broker_answer_of,
    positions_judge,
    unconfirmed_filled_of,
    unrecorded_settlement,
    unrecorded_trial_outcome,
)
from trading.position_math import PositionState
from trading.risk import (
    BreakerBook,
    KillSwitchBook,
    LimitBook,
    OpenOrder,
    RiskLimits,
    RiskManager,
    TradingBreaker,
    risk_checks,
)
from trading.risk.headroom import order_headroom
from trading.strategy import Strategy, StrategyConfig
from workers.unrecorded_spool import UnrecordedBook

logger = logging.getLogger(__name__)

ACTOR = "service:execution-worker"
# The advisory lock class of "one execution worker per account" ("trex"; the console reads who holds it)
EXECUTION_LOCK_CLASS = CONSOLE_EXECUTION_LOCK_CLASS
LOCK_CHECK_SECONDS = 5.0
_NEVER = float("-inf")


def _snapshot_interval() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "EXECUTION_SNAPSHOT_SECONDS", 1.0)))


def _market_order_timeout() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "EXECUTION_MARKET_ORDER_TIMEOUT_SECONDS", 30.0)))


def _max_signal_age() -> timedelta | None:
    seconds = float(getattr(settings, "EXECUTION_MAX_SIGNAL_AGE_SECONDS", 900.0))
    return timedelta(seconds=seconds) if seconds > 0 else None


@dataclass(frozen=True)
class ExecutionConfig:
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    # Firm-wide limits where no RiskLimit row says otherwise (rows override field by field).
    default_limits: RiskLimits = field(
        default_factory=lambda: RiskLimits(
            max_position_lots=Decimal(20),
            max_drawdown=Decimal("0.25"),
            max_submits_per_second=50,
            max_modifies_per_second=50,
            max_open_orders=100,
        )
    )
    # The trading breaker, one per account (``BreakerBook``): what opens one halts that account only.
    breaker_failures: int = 5
    breaker_cool_down: timedelta = timedelta(seconds=30)
    loss_threshold: Decimal | None = None  # realised loss that opens the breaker
    # Quote age at decision time past which an order on that instrument is refused
    # (risk.stale_market_data; the instrument only: it does not open the breaker).
    stale_after: timedelta | None = timedelta(seconds=30)
    # Signal older than the latest quote: refused. Setting EXECUTION_MAX_SIGNAL_AGE_SECONDS (0 = no
    # limit: a replay flat out across processes, where quotes overtake the signals they lead to).
    max_signal_age: timedelta | None = field(default_factory=_max_signal_age)
    # WALL-clock time a signal is held while no market data covers it (none yet for its symbol,
    # or only older than the signal by more than ``stale_after``): a restart's backlog waits for
    # the ticks and bars behind it instead of being refused; past it the signal is decided as it
    # stands (a feed that is really down: refused as risk.stale_market_data).
    market_data_wait: timedelta = timedelta(seconds=30)
    max_held_signals: int = 100_000  # bound on what is held in memory (older ones are decided first)
    auto_kill_on_loss: bool = True  # engage the account's kill switch when losses open its breaker
    # Engage the account's kill switch when reconciliation finds its positions differ from the
    # broker's (RTS 6 Art. 17): orders sized on a wrong position must not go out. A risk manager
    # releases it once the difference is explained.
    auto_kill_on_position_mismatch: bool = True
    # WALL-clock time between two writes of an account's marks and risk snapshot (fills and
    # shutdown write them too): bounds the writes whatever the feed's pace (a replay flat out, a
    # busy live feed). Setting EXECUTION_SNAPSHOT_SECONDS.
    snapshot_interval: timedelta = field(default_factory=_snapshot_interval)
    # Wall-clock time between two safety re-reads of the engaged kill switches. Changes arrive as
    # ``killswitch.changed`` events; the re-read bounds how long a block can wait if the bus or
    # the relay is down (RTS 6 Art. 12: the switch must never depend on the bus alone), at one
    # query per interval, never per event.
    kill_switch_reread: timedelta = timedelta(seconds=5)
    reconcile_lookback: timedelta = timedelta(hours=24)  # > prediction-events retention (12 h)
    unknown_grace: timedelta = timedelta(seconds=30)  # how long an unanswered order may stay invisible
    # WALL-clock time a market order may stay SUBMITTED without a fill (accepted and not executed,
    # or its answer lost) before it is expired with the reason (``market_order_expire``): a market
    # order is immediate or cancel, never left waiting for a price that may never come (a replay
    # that ended, a feed that stopped). Wall clock, because event time stops with the feed.
    # Setting EXECUTION_MARKET_ORDER_TIMEOUT_SECONDS.
    market_order_timeout: timedelta = field(default_factory=_market_order_timeout)
    # WALL-clock time an order whose write failed after the broker accepted it (or whose answer
    # was unknown) may stay missing from the broker's deal history (MT5's lags) before the worker
    # stops waiting for it: the account stays "needs reconcile" (nothing sent) until then; past it
    # the order is written from the answer the worker kept, with an alert (``_unrecorded_settle``).
    unrecorded_wait: timedelta = timedelta(seconds=60)
    deviation_points: int = 20
    source: str = "execution-worker"


class ReportedUnseen(NamedTuple):
    """An order recorded SUBMITTED from an answer that reported a filled volume its deals did not
    show (MT5 ``deals_confirmed=False``): held, not expired, for ``unrecorded_wait`` from its send."""

    account_id: int
    sent: float  # monotonic time the order left for the broker
    symbol: str
    side: str
    volume: Decimal  # the volume reported filled that no deal showed


@dataclass
class WorkerStats:
    signals: int = 0
    intents: int = 0
    duplicates: int = 0
    approved: int = 0
    rejected: int = 0
    sent: int = 0
    broker_refused: int = 0
    fills: int = 0
    unknown_state: int = 0
    commit_failures: int = 0
    reconciled_orders: int = 0
    reconciled_fills: int = 0
    position_mismatches: int = 0
    positions_held: int = 0  # differences exactly the fills of unrecorded orders waited for: not raised
    kill_cancels: int = 0
    one_statement_commits: int = 0  # orders written by the one-statement writer (PostgreSQL)
    state_writes: int = 0  # marks and risk snapshots written on the cadence or at shutdown
    held_signals: int = 0  # signals that waited for market data (start-up, a lagging feed)
    market_orders_expired: int = 0  # market orders left SUBMITTED without a fill, expired
    quotes_seeded: int = 0  # symbols whose last quote came from the broker at start
    unrecorded_written: int = 0  # orders whose write failed, written later from the answer kept
    unrecorded_gave_up: int = 0  # of those, written past ``unrecorded_wait`` without the broker's trace


class ExecutionWorker:
    """One worker owns one broker session per account it trades (``brokers``: account id → Broker)."""

    def __init__(
        self,
        *,
        brokers: Mapping[int, Broker],
        config: ExecutionConfig | None = None,
        extra_checks: Iterable = (),
        crash_hook: Callable[[str, OrderIntent], None] | None = None,
        clock: Clock | None = None,
        locks: Iterable[NamedLock] = (),
        state_dir: str | Path | None = None,
    ):
        self.brokers = dict(brokers)
        # The worker's local state (its spool of unrecorded orders): ``EXECUTION_STATE_DIR``.
        self.state_dir = Path(state_dir if state_dir is not None else settings.EXECUTION_STATE_DIR)
        self.locks = list(locks)  # the accounts' locks (execution_account_locks), released at close
        self._locks_checked_at = time.monotonic()
        self.config = config or ExecutionConfig()
        self.extra_checks = list(extra_checks)
        self.crash_hook = crash_hook  # tests: kill the process at a named point
        self.clock = clock or WallClock()
        self.stats = WorkerStats()
        self.meter = OrderPathMeter()  # order path latency and outcomes, kill switches engaged
        self.started = False
        self.states: dict[int, AccountState] = {}
        self._needs_reconcile: set[int] = set()
        self._written_at: dict[int, float] = {}  # account id -> monotonic time of its last state write
        self._switches_read_at = 0.0
        self.known_ids: set[str] = set()
        self.algo_by_magic: dict[int, str] = {}
        self._fed = RecentIds(capacity=200_000)
        self._fed_ids = self._fed._ids  # its integers: one C-level lookup per event
        self._held: deque[tuple[float, Envelope]] = deque()  # (monotonic time held, signal event)
        self._monotonic = time.monotonic  # tests replace it to pass the market-data wait
        # Market orders written SUBMITTED without a fill: client order id -> (account id, monotonic
        # time sent, what the broker said). Expired past ``market_order_timeout``.
        self._unsettled_market: dict[str, tuple[int, float, str]] = {}
        # Recorded SUBMITTED from an answer that reported a filled volume its deals did not show
        # (MT5 ``deals_confirmed=False``): coid -> ``ReportedUnseen``. Held, not expired, for
        # ``unrecorded_wait`` (in memory: a restart reconciles and closes it as before this was kept).
        self._reported_unseen: dict[str, ReportedUnseen] = {}
        # A breaker's trial order whose write failed after the broker answered: account id ->
        # (client order id, the answer accepted it, the answer). Resolved by the reconciliation
        # that settles the account (``_trial_resolve``); until then the trial is out.
        self._unrecorded_trials: dict[int, tuple[str, bool, str]] = {}
        # Every order whose write failed after the broker answered, by client order id: what to
        # write, in memory and in its account's spool on disk (a restart takes them back). The
        # account stays marked "needs reconcile" while one of its entries is here.
        self._unrecorded = UnrecordedBook(
            self.state_dir, monotonic=lambda: self._monotonic(), metrics_enabled=self.meter.enabled
        )
        # Of those, the ones this process cannot write for a reason retrying will not change (their
        # instrument not loaded, a row the database refuses): client order id -> the reason, said
        # once (``_unwritable_keep``), then retried each turn without another word.
        self._unwritable: dict[str, str] = {}

    def _now(self):
        """Event time now; before a replay's first event (start-up), the wall clock."""
        return self.clock.now() if self.clock.started else utcnow()

    # ================================================================ start-up and shutdown

    def start(self) -> ExecutionWorker:
        """Connect, load hot state, reconcile every account. Call once before ``handle``."""
        for account_id, broker in self.brokers.items():
            try:
                broker.connect()
            except BrokerConnectionError:
                logger.exception("execution: broker for account %s unreachable at start", account_id)
                self._needs_reconcile.add(account_id)
        self._load()
        for account_id in list(self.brokers):
            if account_id not in self._needs_reconcile:
                self.reconcile(account_id)
        self._restore_breakers()
        # What the previous process spooled (after the breakers' restore: a spooled refusal is told
        # to the breaker as restored): known, so a redelivered signal is a duplicate, and settled as
        # that process would have by its account's reconciliation (now, or once its broker answers).
        restored = {e.client_order_id: e.account_id for e in self._unrecorded.restore(self.accounts)}
        self.known_ids |= set(restored)
        unwritable_orders_forget(account_ids=list(self.accounts), keep=set(restored))  # no spool holds them
        for account_id in sorted(set(restored.values()) - self._needs_reconcile):
            self.reconcile(account_id)
        self._seed_quotes()
        self.apply_drawdown_rebases()  # approved while no worker held the account
        self.started = True
        return self

    def _restore_breakers(self) -> None:
        """Each account's trading breaker as the previous process left it (RTS 6 Art. 12: a
        restart does not lift a halt), from the audit trail's latest ``trading_breaker.*`` record
        of this worker's breaker of the account (one query): open or half-open starts open, its
        cool-down counted on the wall clock from when it opened (past already: half-open, one
        trial order); closed, or no record: closed. Each restore is logged, audited
        (``trading_breaker.restored``), published (``breaker.changed``) and in the account's risk
        snapshot at once. A record from before 2026-12-06 names no account (one breaker halted
        every account): nothing is restored from it, and a log line says so."""
        moves = trading_breakers_last_moves(source=self.config.source, account_ids=self.accounts)
        newest_of_an_account = max((m.sequence for m in moves if m.account_id is not None), default=0)
        wall_now, now = utcnow(), self._now()
        for move in moves:
            if move.state not in (BreakerState.OPEN, BreakerState.HALF_OPEN):
                continue
            if move.account_id is None:
                if move.sequence > newest_of_an_account:  # the worker's last breaker move before this start
                    logger.warning(
                        "execution: the worker's one trading breaker was %s (%s; audit record #%s, %s) when it "
                        "stopped: a record from before breakers were per account names no account, so no "
                        "account's breaker is restored from it",
                        move.state,
                        move.reason,
                        move.sequence,
                        move.occurred_at.isoformat(),
                    )
                continue
            breaker = self.risk.breakers.for_account(move.account_id)
            open_for = None if move.opened_recorded_at is None else wall_now - move.opened_recorded_at
            breaker.restore(reason=move.reason, open_for=open_for, now=now)
            state = breaker.state(now)
            logger.warning(
                "execution: account %s's trading breaker restored %s (%s; opened %s, audit record #%s)",
                move.account_id,
                state,
                move.reason,
                "before its cool-down's length" if open_for is None else f"{open_for.total_seconds():.1f}s ago",
                move.sequence,
            )
            try:
                trading_breaker_restore_record(
                    account_id=move.account_id,
                    state=str(state),
                    reason=move.reason,
                    opened_recorded_at=move.opened_recorded_at,
                    restored_from=move.sequence,
                    at=now,
                    source=self.config.source,
                    actor=ACTOR,
                )
            except Exception:  # the breaker is restored all the same: the halt does not wait on the record
                logger.exception("execution: could not record account %s's restored breaker", move.account_id)
            self._state_write(move.account_id)

    def _seed_quotes(self) -> None:
        """The broker's latest quote per instrument, so a restart does not wait for the feed
        where the broker can tell (MT5's last tick; a paper broker's last quote). A broker with
        none for a symbol leaves it to the market data (signals on it are held until then)."""
        for symbol in self.instruments:
            for broker in self.brokers.values():
                if not broker.connected:
                    continue
                try:
                    quote = broker.quote(symbol)
                except (BrokerError, ClockNotStarted):  # none yet; a replay's broker before its first event
                    continue
                if quote is not None:
                    self.risk.on_quote(Quote(quote.symbol, quote.bid, quote.ask, quote.ts))
                    self.stats.quotes_seeded += 1
                    break

    def _load(self) -> None:
        cfg = self.config
        self.instruments: dict[str, Instrument] = selectors.instruments_active()
        self.specs = {s: spec_of(i) for s, i in self.instruments.items()}
        self.accounts: dict[int, TradingAccount] = selectors.accounts_active(ids=self.brokers)
        missing = set(self.brokers) - set(self.accounts)
        if missing:
            raise ValueError(f"execution: no active trading account with id {sorted(missing)}")
        breakers = BreakerBook(
            failure_threshold=cfg.breaker_failures,
            cool_down=cfg.breaker_cool_down,
            loss_threshold=cfg.loss_threshold,
            # The cool-down also ends on the wall clock: a finished replay's event time never moves.
            wall_clock=lambda: self._monotonic(),
            listeners=[self._on_breaker_change],
        )
        self.risk = RiskManager(
            limits=LimitBook(cfg.default_limits),
            breakers=breakers,
            kill_switch=KillSwitchBook(),
            max_signal_age=cfg.max_signal_age,
            stale_after=cfg.stale_after,
        )
        self.reload_limits()
        self.refresh_kill_switches()
        for spec in self.specs.values():
            self.risk.add_instrument(spec)
        now = self._now()
        for account_id in self.accounts:
            balance, currency = Decimal(0), self.accounts[account_id].base_currency
            broker = self.brokers[account_id]
            if broker.connected:
                info = broker.account_info()
                balance, currency = info.balance, info.currency
            self.risk.add_account(account_id, balance=balance, currency=currency, now=now)
            self._load_account_state(account_id, restore=True)
        # Redelivery is a wall-clock matter: the orders first written in the last lookback.
        since = utcnow() - cfg.reconcile_lookback
        self.known_ids = selectors.client_order_ids_recorded_since(account_ids=self.accounts, since=since)
        algo_ids = selectors.algo_ids_known() | set(cfg.strategy.algo_ids or ())
        self.algo_by_magic = {magic_for(a): a for a in algo_ids}
        self.strategy = Strategy(
            instruments=self.specs,
            accounts=list(self.accounts),
            equity_of=lambda account_id: self.risk.account(account_id).equity(),
            headroom_of=functools.partial(order_headroom, self.risk),
            config=cfg.strategy,
        )
        self.gate = PreTradeGate(risk_checks(self.risk))
        for check in [*self.extra_checks, *compliance_checks()]:
            self.gate.add(check)

    def _load_account_state(self, account_id: int, *, restore: bool = False) -> None:
        """(Re)load one account's positions (with their marks) and open orders from the system of
        record; with ``restore`` also its peak equity and start-of-day equity from its last risk
        snapshot, so a restart loses no figure a decision depends on."""
        book = self.risk.account(account_id)
        book.clear_state()
        rows = selectors.account_positions(account_id=account_id)
        for position in rows.values():
            symbol = position.instrument.symbol
            if symbol in book.specs:
                book.load_position(
                    symbol, PositionState(position.net_quantity, position.average_price), position.mark_price
                )
        for order in selectors.orders_open(account_id=account_id):
            book.order_opened(
                OpenOrder(
                    client_order_id=order.client_order_id,
                    symbol=order.instrument.symbol,
                    side=order.side,
                    remaining=order.remaining_quantity,
                    algo_id=order.algo_id,
                    trader_id=order.trader_id,
                )
            )
        state = self.states.get(account_id)
        if state is None:
            state = self.states[account_id] = AccountState(account_id)
        state.reload(rows)
        if restore:
            snapshot = selectors.risk_snapshot_get(account_id=account_id)
            if snapshot is not None:
                book.restore(
                    peak_equity=snapshot.peak_equity,
                    day=snapshot.as_of.date(),
                    day_start_equity=snapshot.equity - snapshot.daily_pnl,
                )

    def reload_limits(self) -> None:
        book = self.risk.limits
        book.clear()
        for row in selectors.risk_limits_active():
            values = {name: getattr(row, name) for name in LIMIT_VALUE_FIELDS}
            book.set(account_id=row.account_id, symbol=row.instrument.symbol if row.instrument_id else None, **values)

    def apply_drawdown_rebases(self) -> int:
        """Re-base the peak equity of this worker's accounts for every approved re-base not yet
        applied (``trading.controls.drawdown``; four eyes upstream): on ``risk.drawdown_rebased``
        (no restart, as ``risk.limit_changed`` reloads the limits) and at start-up (approved
        while the worker was down). The peak becomes the equity the risk book holds now, so the
        drawdown is 0 and a REDUCING it caused ends with the next decision; the figures are
        recorded (``drawdown_rebase.applied``: peak and drawdown before and after, event time and
        wall clock) and the account's risk snapshot rewritten at once, for the console and a
        restart. Returns how many were applied."""
        applied = 0
        for rebase in drawdown_rebases_to_apply(account_ids=self.accounts):
            account_id = rebase.account_id
            book = self.risk.account(account_id)
            drawdown = book.drawdown()
            before, after = self.risk.peak_equity_rebase(account_id)
            at = self._now()
            logger.warning(
                "execution: account %s's peak equity re-based %s -> %s (drawdown %.4f%% acknowledged; re-base %s)",
                account_id,
                before,
                after,
                drawdown * 100,
                rebase.pk,
            )
            drawdown_rebase_applied_record(
                rebase_id=rebase.pk,
                peak_before=before,
                peak_after=after,
                drawdown_before=drawdown,
                at=at,
                actor=ACTOR,
                source=self.config.source,
            )
            self._state_write(account_id)
            applied += 1
        return applied

    def refresh_kill_switches(self) -> None:
        self.risk.kill_switch.replace(selectors.kill_switches_engaged())
        self._switches_read_at = time.monotonic()
        self.meter.kill_switches(self.risk.kill_switch.engaged)

    def idle(self) -> None:
        """Nothing to handle (the feed paused, a replay ended): decide held signals whose wait is
        over, and write the marks and snapshots still pending once their wall-clock interval has
        passed, so the dashboard catches up."""
        if not self.started:
            return
        self.locks_check()
        if self._held:
            self._release_held()
        if self._needs_reconcile:  # nothing else may come to retry it (a replay ended, a quiet feed)
            self._retry_reconcile()
        if self._unsettled_market:
            self._expire_market_orders()
        now = time.monotonic()
        interval = self.config.snapshot_interval.total_seconds()
        for account_id, state in self.states.items():
            if state.dirty and now - self._written_at.get(account_id, float("-inf")) >= interval:
                self._state_write(account_id)

    def close(self) -> None:
        """Shutdown: write every account's marks and risk snapshot (what a restart reloads),
        then release the accounts' locks."""
        try:
            if self.started:
                for account_id in self.accounts:
                    self._state_write(account_id)
        finally:
            for lock in self.locks:
                lock.release()

    def locks_check(self) -> None:
        """Every ``LOCK_CHECK_SECONDS``: are the accounts still ours? (``NamedLock.check``:
        raises ``LockLost`` if another worker took one while our database session was gone.)"""
        now = time.monotonic()
        if not self.locks or now - self._locks_checked_at < LOCK_CHECK_SECONDS:
            return
        for lock in self.locks:
            lock.check()
        self._locks_checked_at = now

    # ================================================================ the stage handler

    # The payloads ``handle`` acts on itself; any other reaches the gate's checks only.
    ACTS_ON: tuple[type, ...] = (
        Tick,
        Bar,
        Signal,
        OrderRequested,
        KillSwitchChanged,
        RiskLimitChanged,
        DrawdownRebased,
    )

    def wants(self, kind: type) -> bool:
        """Whether events with payloads of class ``kind`` can change anything here: the ones
        ``handle`` acts on, and those a gate check's ``on_event`` acts on (``PreTradeGate.wants``).
        The others (the predictions beside the signals on their topic) only give the wall-clock
        chores (the kill-switch reread, the account locks' check) a turn, which the next quote
        gives them too. Asked once per payload class by the embedded dispatcher
        (``tradeops.bus.runner.handler_wants``); before ``start`` (no gate yet) the answer is yes."""
        if not self.started:
            return True
        return issubclass(kind, self.ACTS_ON) or self.gate.wants(kind)

    def handle(self, event: Envelope) -> list[Envelope]:
        """Consume one event. Everything it produces goes through the outbox (same transaction as
        the write), so it returns no events to the runner. Offsets are committed by the runner
        after this returns, i.e. after the order's transaction committed."""
        if not self.started:
            self.start()
        if self.locks:  # a worker that holds account locks checks them now and then
            self.locks_check()
        payload = event.payload
        if isinstance(payload, Tick):
            self.clock.observe(payload.ts)
            self.on_quote(BrokerQuote(payload.symbol, payload.bid, payload.ask, payload.ts))
        elif isinstance(payload, Signal):
            if self._held or self._awaits_market_data(payload):
                self._held.append((self._monotonic(), event))
                self.stats.held_signals += 1
                if len(self._held) == 1:
                    logger.info(
                        "execution: holding signals until market data for %s arrives (latest quote: %s)",
                        payload.symbol,
                        self.risk.quotes.get(payload.symbol),
                    )
                self._release_held()  # past the bound, the oldest go now
                return []
            self._on_signal(event)
            self._after_event(event)
            return []
        elif isinstance(payload, Bar):
            # A bar's close is the price at its END (``ts`` is its open); where ticks flow, they are newer.
            closed_at = bar_end(payload)
            self.clock.observe(closed_at)
            current = self.risk.quotes.get(payload.symbol)
            if current is None or current.ts < closed_at:
                # A bar without its spread (the shipped bars) keeps the last quote's: a buy on the
                # bar's close must not fill at the bid.
                spread = payload.spread or (current.ask - current.bid if current is not None else Decimal(0))
                self.on_quote(BrokerQuote(payload.symbol, payload.close, payload.close + spread, closed_at))
        elif isinstance(payload, OrderRequested):
            self.on_order_requested(payload)  # received on the wall clock: not a market time to observe
        elif isinstance(payload, KillSwitchChanged):
            self.on_kill_switch(payload)
        elif isinstance(payload, RiskLimitChanged):
            self.reload_limits()
        elif isinstance(payload, DrawdownRebased) and payload.account_id in self.accounts:
            self.apply_drawdown_rebases()
        self._after_event(event)
        if self._held and isinstance(payload, Tick | Bar):
            self._release_held()
        return []

    def _after_event(self, event: Envelope) -> None:
        if time.monotonic() - self._switches_read_at >= self.config.kill_switch_reread.total_seconds():
            self.refresh_kill_switches()
        if self._unsettled_market:
            self._expire_market_orders()
        if event.event_id.int in self._fed_ids:
            return  # our own event back from the bus: the gate saw it at commit
        self.gate.on_event(event)

    def _on_signal(self, event: Envelope) -> None:
        payload = event.payload
        self.clock.observe(payload.ts)
        self.stats.signals += 1
        try:
            self._retry_reconcile()
            for intent in self.strategy.on_signal(payload):
                self.execute(intent)
            if self.strategy.last_skips:
                signal_skips_record(skips=self.strategy.last_skips, actor=ACTOR)
        except BaseException:
            # Not handled to the end (the database went away): when the runner delivers it again
            # the strategy must see it afresh; orders already written or sent are in known_ids.
            self.strategy.forget(payload.signal_id)
            raise

    # ================================================================ signals waiting for market data

    def _awaits_market_data(self, signal: Signal) -> bool:
        """No quote for the signal's symbol yet, or only one older than the signal by more than
        ``stale_after``: deciding now would be deciding blind (``risk.stale_market_data``)."""
        quote = self.risk.quotes.get(signal.symbol)
        if quote is None:
            return True
        stale_after = self.config.stale_after
        return stale_after is not None and signal.ts - quote.ts > stale_after

    @property
    def holding(self) -> int:
        """Signals held for market data: the runner commits no offset while this is not zero."""
        return len(self._held)

    def _release_held(self) -> None:
        """Decide the held signals, oldest first, while the oldest is covered by market data now,
        has waited ``market_data_wait`` (wall clock), or the queue is over its bound."""
        wait = self.config.market_data_wait.total_seconds()
        held = self._held
        while held:
            held_at, event = held[0]
            covered = not self._awaits_market_data(event.payload)
            expired = self._monotonic() - held_at >= wait
            if not (covered or expired or len(held) > self.config.max_held_signals):
                return
            if not covered:
                logger.warning(
                    "execution: no market data covering signal %s (%s) after %.0f s; deciding it as it stands",
                    event.payload.signal_id,
                    event.payload.symbol,
                    self._monotonic() - held_at,
                )
            self._on_signal(event)  # raises (database away): it stays first in line
            held.popleft()
            self._after_event(event)
        logger.info("execution: held signals released; market data covers them")

    def _feed_gate(self, events) -> None:
        """Hand the events of a committed order to the gate's checks at once (compliance checks
        count fills and track positions from them), remembering their ids so the copies the
        relay brings back over the bus are not counted twice."""
        for event in events:
            self._fed.add(event.event_id)
            self.gate.on_event(event)

    # ================================================================ the order path

    def on_order_requested(self, request: OrderRequested) -> Order | None:
        """An order asked for over the integration API: the same path as the strategy's intents
        (gate, broker, one write), by the worker that trades the account; a redelivered request
        is a duplicate (``known_ids``), never a second order. Before the gate the request is
        closed once (``order_request_close``): taken up, refused (an instrument this worker does
        not trade) or expired (past ``expires_at`` on the wall clock: never sent late); a request
        already refused or expired (the sweep, the client's read) is left alone."""
        if request.account_id not in self.accounts:
            return None  # another worker trades this account
        key = request.client_order_id
        if key in self.known_ids:
            return self.execute(intent_of_request(request, quote=None, at=self._now()))  # a duplicate
        wall = utcnow()
        if request.symbol not in self.specs:
            logger.error(
                "execution: order %s asks for %s, which this worker did not load: refused (restart it to trade it)",
                key,
                request.symbol,
            )
            order_request_close(
                client_order_id=key,
                outcome=REFUSED,
                actor=ACTOR,
                at=self._now(),
                code="instrument_not_traded",
                reason=f"{request.symbol} is not traded by the execution worker of account {request.account_id}",
            )
            return None
        if request.expires_at is not None and wall >= request.expires_at:
            order_request_close(
                client_order_id=key,
                outcome=EXPIRED,
                actor=ACTOR,
                at=wall,
                code="order_request_expired",
                reason=f"taken up at {wall.isoformat()}, past its expiry {request.expires_at.isoformat()}",
            )
            return None
        taken = order_request_close(client_order_id=key, outcome=TAKEN, actor=ACTOR, at=self._now())
        if not taken and order_request_closing(key) != TAKEN:
            return None  # refused or expired before this worker met it
        # taken now, or before (this worker before a restart): the order's unique key decides below
        return self.execute(intent_of_request(request, quote=self.risk.quotes.get(request.symbol), at=self._now()))

    def execute(self, intent: OrderIntent) -> Order | None:
        """strategy intent → gate → broker → one write. Returns the order (None: duplicate)."""
        self.stats.intents += 1
        if intent.client_order_id in self.known_ids:
            self.stats.duplicates += 1
            return None
        account_id = intent.account_id
        if account_id in self._needs_reconcile:
            self._retry_reconcile()
        received_at = self.clock.now()  # RTS 25: the moment the order was received
        timer = self.meter.timer()
        quote = self.risk.quotes.get(intent.symbol)
        intent = stops_reanchored(intent, quote, self.specs[intent.symbol])
        ctx = self.risk.context(intent)
        decision = self.gate.evaluate(intent, ctx)
        if account_id in self._needs_reconcile:
            # Never send while our records may disagree with the broker's (RTS 6 Art. 17).
            pending = failed(
                "broker_session",
                "execution.reconciliation_pending",
                f"account {account_id}: broker unreachable or not yet reconciled",
            )
            decision = GateDecision(False, (*decision.checks, pending))
        decided_at = self.clock.now()
        timer.step("gate")
        self.known_ids.add(intent.client_order_id)
        if not decision.approved:
            self.stats.rejected += 1
            outcome = outcome_refused(reason=decision.reason, at=decided_at)
            try:
                written = self._commit(intent, received_at, decided_at, decision, str(ctx.trading_state), outcome)
            except BaseException:
                # Nothing went to the broker: the refusal is decided and recorded afresh when the
                # signal comes again (a sent order stays known: reconciliation records it).
                self.known_ids.discard(intent.client_order_id)
                raise
            timer.step("write")
            self.meter.order_done(timer, status=written.order.status, reject_reason=written.order.reject_reason)
            self._feed_gate(written.events)
            return written.order
        self.stats.approved += 1
        self.gate.on_sent(intent, ctx)
        self.risk.on_order_sent(intent)
        sent_at = self.clock.now()  # RTS 25: the moment the order left for the broker
        sent_mono = self._monotonic()
        result, error = self._send(intent)
        timer.step("broker")
        if self.crash_hook is not None:
            self.crash_hook("after_send", intent)
        outcome = outcome_of(
            result=result,
            error=error,
            decided_at=decided_at,
            sent_at=sent_at,
            arrival_mid=ctx.quote.mid if ctx.quote is not None else None,
            arrival_bid=ctx.quote.bid if ctx.quote is not None else None,
            arrival_ask=ctx.quote.ask if ctx.quote is not None else None,
            rests_at_broker=self._rests_at_broker(intent, result),
        )
        deals = {d.deal_id: d for d in result.deals} if result is not None else {}
        realised = self._book_fills(
            account_id, intent.client_order_id, [deals[f.broker_deal_id] for f in outcome.fills]
        )
        try:
            written = self._commit(intent, received_at, decided_at, decision, str(ctx.trading_state), outcome)
        except Exception:
            # The broker may hold an order we could not record: settle it from the broker's side
            # (reconciliation also reloads the risk book, which already took the fills).
            self.stats.commit_failures += 1
            self._needs_reconcile.add(account_id)
            answer_accepted, refused, answer = broker_answer_of(result, error)
            trial = self.risk.breakers.for_account(account_id).trial_order_id == intent.client_order_id
            if trial:
                self._unrecorded_trials[account_id] = (intent.client_order_id, answer_accepted, answer)
            logger.exception(
                "execution: recording %s failed; will reconcile account %s", intent.client_order_id, account_id
            )
            self._unrecorded.keep(  # in memory and on disk before the failure is raised
                UnrecordedOrder(
                    intent=intent,
                    received_at=received_at,
                    decided_at=decided_at,
                    decision=decision,
                    trading_state=str(ctx.trading_state),
                    outcome=outcome,
                    answer_accepted=answer_accepted,
                    refused=refused,
                    answer=answer,
                    trial=trial,
                    failed_at=utcnow(),
                    traceparent=traceparent_current() or "",
                    unconfirmed_filled=unconfirmed_filled_of(result),
                )
            )
            raise
        timer.step("write")
        self.meter.order_done(timer, status=written.order.status, reject_reason=written.order.reject_reason)
        if not written.created or len(written.fills) < len(outcome.fills):
            self._needs_reconcile.add(account_id)  # the book took fills the write did not: reload it
        self._feed_gate(written.events)
        self._after_commit(intent, written.order, result, error, realised, len(written.fills))
        reported = unconfirmed_filled_of(result)
        if reported > 0 and not written.fills and not written.order.is_terminal:
            # The broker's position holds a fill our records do not: trade on nothing until its
            # deals are attached by reconciliation (or the wait ends: a mismatch, RTS 6 Art. 17).
            self._reported_unseen[intent.client_order_id] = ReportedUnseen(
                account_id, sent_mono, intent.symbol, str(intent.side), reported
            )
            self._needs_reconcile.add(account_id)
            logger.warning(
                "execution: %s answered %s lots filled but its deals did not show before the poll timeout; "
                "account %s held until reconciliation attaches them",
                intent.client_order_id,
                reported,
                account_id,
            )
        if intent.order_type == OrderType.MARKET and (
            (written.order.status == OrderStatus.SUBMITTED and not written.fills)
            or written.order.status == OrderStatus.PARTIALLY_FILLED
        ):
            # Not executed (or, a RETURN remainder, not all of it) and perhaps working at the
            # broker: expired after market_order_timeout of wall clock unless executed by then.
            why = f"{error.code}: {error}" if error is not None else f"broker {result.outcome}: {result.message}"
            self._unsettled_market[intent.client_order_id] = (account_id, self._monotonic(), why)
        return written.order

    def _book_fills(self, account_id: int, client_order_id: str, deals: list[Deal]) -> Decimal:
        """The risk book takes the deals before the write, so the risk snapshot written with them
        is after them. Returns the realised P&L they booked (for the breaker, after the write)."""
        book = self.risk.account(account_id)
        before = book.realised_since_load
        for deal in deals:
            self.risk.on_fill(
                account_id=account_id,
                client_order_id=client_order_id,
                symbol=deal.symbol,
                side=deal.side,
                quantity=deal.volume,
                price=deal.price,
                fee=-deal.fee,
            )
        if deals:
            state = self.states[account_id]
            for symbol in {deal.symbol for deal in deals}:  # the mark the fill was valued at goes with it
                quote = self.risk.quotes.get(symbol)
                instrument = self.instruments.get(symbol)
                if quote is not None and instrument is not None:
                    state.mark(instrument.pk, Mark(quote.mid.quantize(instrument.tick_size), quote.ts))
            state.figures_set(self._figures(account_id))
        return book.realised_since_load - before

    def _send(self, intent: OrderIntent) -> tuple[OrderResult | None, BrokerError | None]:
        request = OrderRequest(
            client_order_id=intent.client_order_id,
            symbol=intent.symbol,
            side=intent.side,
            volume=intent.quantity,
            order_type=intent.order_type,
            price=intent.limit_price,
            stop_loss=intent.stop_loss,
            take_profit=intent.take_profit,
            deviation_points=self.config.deviation_points,
            magic=magic_for(intent.algo_id) if intent.algo_id else 0,
        )
        if intent.algo_id:
            self.algo_by_magic.setdefault(request.magic, intent.algo_id)
        self.stats.sent += 1
        try:
            return self.brokers[intent.account_id].send_order(request), None
        except BrokerError as exc:
            logger.warning("execution: send %s failed: %s: %s", intent.client_order_id, exc.code, exc)
            return None, exc

    def _rests_at_broker(self, intent: OrderIntent, result: OrderResult | None) -> bool:
        if result is None or not (result.remaining_volume > 0 and result.filled_volume > 0):
            return False
        broker = self.brokers[intent.account_id]
        return any(o.comment == intent.client_order_id for o in broker.open_orders(intent.symbol))

    def _commit(
        self, intent: OrderIntent, received_at, decided_at, decision, trading_state: str, outcome, traceparent=None
    ) -> OrderCommit:
        """The one write per order: order, decision, steps, fills, position, marks, events
        (``traceparent``: the signal's trace, the current one when None; a late write's, kept)."""
        draft = OrderDraft(
            client_order_id=intent.client_order_id,
            account=self.accounts[intent.account_id],
            instrument=self.instruments[intent.symbol],
            side=intent.side,
            quantity=intent.quantity,
            at=received_at,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            stop_loss=intent.stop_loss,
            take_profit=intent.take_profit,
            algo_id=intent.algo_id,
            trader=_trader_ref(intent.trader_id),
            desk=intent.desk,
            signal_id=intent.signal_id,
            traceparent=traceparent_current() if traceparent is None else traceparent,  # in its audit records
        )
        payload = decision.to_payload(intent, trading_state=trading_state, at=decided_at)
        decision_event = make_event(payload, source=self.config.source, key=str(intent.account_id))
        written = order_commit(
            draft=draft,
            steps=outcome.steps,
            fills=outcome.fills,
            after_fills=outcome.after_fills,
            events=[decision_event],
            actor=ACTOR,
            state=self.states[intent.account_id],
        )
        if written.one_statement:
            self.stats.one_statement_commits += 1
        if written.fills:
            self._written_at[intent.account_id] = time.monotonic()
        return written

    def _after_commit(self, intent, order: Order, result, error, realised: Decimal, fills: int) -> None:
        now = result.ts if result is not None else intent.ts
        self.stats.fills += fills
        breaker = self.risk.breakers.for_account(intent.account_id)
        if realised:
            breaker.record_pnl(realised, now=now)
        if order.is_terminal:
            self.risk.on_order_closed(intent.account_id, intent.client_order_id)
        if error is not None or (result is not None and result.state_unknown):
            self.stats.unknown_state += 1
            breaker.record_failure(error.code if error else str(result.outcome), now=intent.ts)
            self._needs_reconcile.add(intent.account_id)
            if isinstance(error, BrokerConnectionError):
                return  # reconnect and reconcile on the next event
            self._retry_reconcile()
        elif result.accepted or result.deals:
            breaker.record_success(now=now)
        else:
            self.stats.broker_refused += 1
            breaker.record_failure(str(result.outcome), now=intent.ts)

    # ================================================================ market orders left without a fill

    def _expire_market_orders(self) -> None:
        """Market orders SUBMITTED without a fill, or PARTIALLY_FILLED with their rest working at
        the broker (the RETURN filling mode), for ``market_order_timeout`` (wall clock): the
        account is reconciled first (a deal the broker booked is recorded), then each is expired
        with its reason (``market_order_expire``; one still resting at the broker is cancelled
        there, what was executed is kept). One the broker cannot be asked about now waits for the
        next turn."""
        timeout = self.config.market_order_timeout.total_seconds()
        now = self._monotonic()
        wait = self.config.unrecorded_wait.total_seconds()

        def is_due(coid: str, sent: float) -> bool:
            # a reported fill is waited for its deals until ``unrecorded_wait``, not expired before
            return now - sent >= (max(timeout, wait) if coid in self._reported_unseen else timeout)

        due = [(coid, entry) for coid, entry in self._unsettled_market.items() if is_due(coid, entry[1])]
        for coid, (account_id, sent, why) in due:
            unseen = self._reported_unseen.get(coid)
            if unseen is not None:
                why = (
                    f"the broker reported {format(unseen.volume.normalize(), 'f')} lots filled (deals not "
                    f"confirmed) and no deal of it showed within {wait:g} s; {why}"
                )
            broker = self.brokers[account_id]
            try:
                if not broker.connected:
                    broker.connect()
                self.reconcile(account_id)
                expired = market_order_expire(
                    account=self.accounts[account_id],
                    client_order_id=coid,
                    broker=broker,
                    at=self._now(),
                    waited=timedelta(seconds=now - sent),
                    why=why,
                    since=self._now() - self.config.reconcile_lookback,
                    actor=ACTOR,
                )
            except BrokerError as exc:
                logger.warning("execution: market order %s: broker not reachable (%s); asked again later", coid, exc)
                continue
            del self._unsettled_market[coid]
            self._reported_unseen.pop(coid, None)
            if expired is not None:
                self.stats.market_orders_expired += 1
                self.risk.on_order_closed(account_id, coid)
                if account_id in self._needs_reconcile:
                    self.reconcile(account_id)  # it was awaiting this order: the account is settled now

    # ================================================================ reconciliation

    def _retry_reconcile(self) -> None:
        for account_id in sorted(self._needs_reconcile):
            broker = self.brokers[account_id]
            try:
                if not broker.connected:
                    broker.connect()
                self.reconcile(account_id)
            except BrokerError:
                logger.warning("execution: account %s still unreachable; orders wait for reconciliation", account_id)

    def reconcile(self, account_id: int) -> ReconcileReport:
        """Settle the account with its broker (``order_reconcile``, RTS 6 Art. 17), reload the
        account's hot state, settle its unrecorded orders (``_unrecorded_settle``), then judge the
        position differences (``_positions_judge``): one the waited-for unrecorded fills explain
        holds the account, any other is a mismatch (alert, automatic kill)."""
        broker = self.brokers[account_id]
        report = order_reconcile(
            account=self.accounts[account_id],
            broker=broker,
            instruments=self.instruments,
            now=self.clock.now() if self.clock.started else None,
            lookback=self.config.reconcile_lookback,
            unknown_grace=self.config.unknown_grace,
            algo_by_magic=self.algo_by_magic,
            actor=ACTOR,
            keep_open={c for c, e in self._reported_unseen.items() if e.account_id == account_id},
        )
        reported = self._reported_unseen_settle(account_id)
        self._load_account_state(account_id)
        # The broker's balance already holds every realised P&L it booked: start counting afresh.
        book = self.risk.account(account_id)
        book.balance, book.realised_since_load = broker.account_info().balance, Decimal(0)
        self.known_ids |= set(report.recovered_orders)
        self.stats.reconciled_orders += len(report.recovered_orders)
        self.stats.reconciled_fills += len(report.recovered_fills)
        self._trial_resolve(account_id)
        waiting, within_wait, written = self._unrecorded_settle(account_id)
        if written:  # written from the answers kept: compare with what the records now hold
            report.position_mismatches = positions_compare(account_id=account_id, broker=broker)
        self._positions_judge(account_id, report, within_wait, reported)
        if report.awaiting or waiting or report.positions_held:
            self._needs_reconcile.add(account_id)
        else:
            self._needs_reconcile.discard(account_id)
        return report

    def _reported_unseen_settle(self, account_id: int) -> list[tuple[str, str, Decimal]]:
        """The account was reconciled: its orders recorded from an answer whose reported fill had
        no deals (``_reported_unseen``) that now have their fills or are closed are done; returns
        (symbol, side, volume) of those still within ``unrecorded_wait`` of their send, whose
        reported volume explains a position difference (``positions_judge``)."""
        mine = {c: e for c, e in self._reported_unseen.items() if e.account_id == account_id}
        if not mine:
            return []
        orders = selectors.orders_by_client_id(account_id=account_id, client_order_ids=set(mine))
        now, wait = self._monotonic(), self.config.unrecorded_wait.total_seconds()
        within: list[tuple[str, str, Decimal]] = []
        for coid, unseen in mine.items():
            order = orders.get(coid)
            if order is None or order.is_terminal or order.filled_quantity > 0:
                del self._reported_unseen[coid]  # its deals were attached (or it was closed otherwise)
            elif now - unseen.sent < wait:
                within.append((unseen.symbol, unseen.side, unseen.volume))
        return within

    def _positions_judge(
        self,
        account_id: int,
        report: ReconcileReport,
        waiting: list[UnrecordedOrder],
        reported: Iterable[tuple[str, str, Decimal]] = (),
    ) -> None:
        """Act on the reconciliation's position differences (``positions_judge``): one exactly
        the fills of the account's unrecorded orders still waited for (MT5's deal history lags its
        positions) is held, logged at WARNING with its figures, the account kept marked (the next
        reconciliation decides again); any other raises the mismatch (alert, automatic kill).
        Until 2026-12-07 the held ones engaged the kill switch too."""
        judged = positions_judge(mismatches=report.position_mismatches, waiting=waiting, reported=reported)
        report.position_mismatches, report.positions_held = judged.mismatches, judged.held
        if judged.held:
            self.stats.positions_held += len(judged.held)
            logger.warning(
                "execution: account %s positions differ from the broker's by exactly the fills of unrecorded "
                "orders %s still waited for (the broker's deal history lags): %s; not a mismatch yet, the "
                "account stays held until the next reconciliation",
                account_id,
                sorted(e.client_order_id for e in waiting),
                "; ".join(f"{s} ours {o} broker {b} waited-for fills {w}" for s, (o, b, w) in judged.held.items()),
            )
        if not judged.mismatches:
            return
        self.stats.position_mismatches += len(report.position_mismatches)
        killed = reconciliation_mismatch_raise(
            account_id=account_id,
            mismatches=report.position_mismatches,
            at=self._now(),
            source=self.config.source,
            actor=ACTOR,
            auto_kill=self.config.auto_kill_on_position_mismatch,
            broker_for=self.broker_for,
        )
        if killed is not None:
            self.risk.kill_switch.engage("account", str(account_id))  # at once, before the event comes back
            self.meter.kill_switches(self.risk.kill_switch.engaged)
            self.stats.kill_cancels += len(killed.cancelled)
            self._load_account_state(account_id)  # the orders the kill cancelled are closed now

    # ================================================================ orders answered, their write failed

    def _unrecorded_settle(self, account_id: int) -> tuple[list[str], list[UnrecordedOrder], bool]:
        """The account was reconciled: settle each order of it whose write failed after the broker
        answered (``_unrecorded``) by ``unrecorded_settlement``'s rules: found in our records,
        nothing more; refused by the broker, the REJECTED order written now from the answer kept
        (its steps at the refusal's event time, its decision, audit records and events, recorded at
        the wall clock of this write); accepted or unknown and not in the broker's history yet,
        waited for (the account kept marked) until ``unrecorded_wait`` of wall clock, then written
        from the answer kept with an error log and a ``reconciliation_order_not_at_broker`` alert.
        Exactly once: ``client_order_id`` is unique, so a write that finds the order written
        settles the entry. A write that fails again keeps it for the next turn. An entry leaves
        the account's spool once written or found. Returns the client order ids still waited for
        (a write that failed again included), the entries within ``unrecorded_wait``
        (``Settlement.WAIT``: their fills explain a position difference, ``positions_judge``), and
        whether any was written now.
        Regulation: RTS 25 (every order, refused ones too, with its times), RTS 6 Art. 17."""
        entries = self._unrecorded.of_account(account_id)
        if not entries:
            return [], [], False
        recorded = selectors.orders_by_client_id(account_id=account_id, client_order_ids={c for c, _, _ in entries})
        waiting: list[str] = []
        within_wait: list[UnrecordedOrder] = []
        settled: list[str] = []
        written_any = False
        wait = self.config.unrecorded_wait.total_seconds()
        for coid, e, waited in entries:
            settlement = unrecorded_settlement(entry=e, recorded=coid in recorded, waited=waited, wait=wait)
            if settlement is Settlement.WAIT:
                waiting.append(coid)
                within_wait.append(e)
                continue
            if settlement is not Settlement.FOUND:
                unwritable = self._unwritable_before_write(e)
                if unwritable is None:
                    try:
                        written = self._commit(
                            e.intent, e.received_at, e.decided_at, e.decision, e.trading_state, e.outcome, e.traceparent
                        )
                    except Exception as exc:
                        unwritable = unwritable_because(exc)
                        if unwritable is None:  # the database away again: worth a line each turn
                            logger.exception(
                                "execution: writing unrecorded order %s failed again; kept for the next turn", coid
                            )
                            waiting.append(coid)
                            continue
                if unwritable is not None:
                    self._unwritable_keep(e, unwritable)
                    waiting.append(coid)
                    continue
                written_any = True
                if written.created:  # else written already (the failed write had committed after all): once only
                    self._unrecorded_written(e, written, settlement, waited)
            settled.append(coid)
        if settled:
            self._unrecorded.settled(account_id, settled)
            for coid in settled:
                self._unwritable.pop(coid, None)
            # said in this process or an earlier one: the console stops showing them
            unwritable_orders_clear(account_id=account_id, client_order_ids=settled)
            self._unwritable_count(account_id)
            self._load_account_state(account_id)  # the book as the records now stand
        return waiting, within_wait, written_any

    def _unwritable_before_write(self, entry: UnrecordedOrder) -> str | None:
        """Why ``entry`` cannot be written by this process whatever the database says, or None:
        its instrument is not one this worker loaded (deactivated since, or removed)."""
        if entry.intent.symbol not in self.instruments:
            return (
                f"its instrument {entry.intent.symbol} is not loaded by this execution worker "
                "(not an active instrument now)"
            )
        return None

    def _unwritable_keep(self, entry: UnrecordedOrder, reason: str) -> None:
        """``entry`` cannot be written, for ``reason``, which retrying will not change: the account
        stays blocked (the caller keeps the entry waiting), and that is said ONCE
        (``unwritable_order_raise``: the console's account row, a high alert, an error log; not
        again after a restart either: its row says it was said); later turns retry it silently.
        A database that cannot take the row now: said at a later turn."""
        coid = entry.client_order_id
        if coid in self._unwritable:
            return
        try:
            unwritable_order_raise(entry=entry, reason=reason, at=self._now(), source=self.config.source)
        except DatabaseError:
            logger.warning(
                "execution: order %s cannot be written (%s), and saying so failed too; said at a later turn",
                coid,
                reason,
                exc_info=True,
            )
            return
        self._unwritable[coid] = reason
        self._unwritable_count(entry.account_id)

    def _unwritable_count(self, account_id: int) -> None:
        if self.meter.enabled:
            held = sum(1 for c, e, _ in self._unrecorded.of_account(account_id) if c in self._unwritable)
            metrics.execution_unrecorded_unwritable.labels(str(account_id)).set(held)

    def _unrecorded_written(self, entry: UnrecordedOrder, written: OrderCommit, settlement: Settlement, waited):
        """What a late write of ``entry`` wrote is told: to the gate's checks (its events); past
        the wait, to a person (``reconciliation_order_not_at_broker_raise``); a refusal, to the
        account's breaker (a trial's is told by the trial's resolution instead)."""
        self.stats.unrecorded_written += 1
        self._feed_gate(written.events)
        if settlement is Settlement.WRITE_GIVEN_UP:
            self.stats.unrecorded_gave_up += 1
            reconciliation_order_not_at_broker_raise(
                entry=entry,
                waited=waited,
                written_as=str(written.order.status),
                at=self._now(),
                source=self.config.source,
            )
            return
        logger.warning(
            "execution: refused order %s (broker answer %s), unrecorded when its write failed, written "
            "after reconciliation",
            entry.client_order_id,
            entry.answer,
        )
        self.stats.broker_refused += 1
        if not entry.trial:  # the refusal counts towards the breaker as it would have (``_after_commit``)
            self.risk.breakers.for_account(entry.account_id).record_failure(entry.answer, now=entry.intent.ts)

    def _trial_resolve(self, account_id: int) -> None:
        """The account was reconciled: a breaker trial whose write failed is settled with the
        broker now, so resolve it as its outcome would have (``unrecorded_trial_outcome``):
        accepted closes the breaker, refused opens it again, heard by ``_on_breaker_change``
        (audited, ``breaker.changed``) like any other move. Until 2026-12-07 nobody told the
        breaker, and the account's signals were skipped (``strategy.breaker_trial``) until a
        restart."""
        entry = self._unrecorded_trials.pop(account_id, None)
        if entry is None:
            return
        coid, answer_accepted, answer = entry
        order = selectors.orders_by_client_id(account_id=account_id, client_order_ids={coid}).get(coid)
        accepted, reason = unrecorded_trial_outcome(
            client_order_id=coid, order=order, answer_accepted=answer_accepted, answer=answer
        )
        if self.risk.breakers.for_account(account_id).trial_resolve(
            coid, succeeded=accepted, reason=reason, now=self._now()
        ):
            logger.warning("execution: account %s's breaker trial resolved late: %s", account_id, reason)

    # ================================================================ market data and marks

    def on_quote(self, quote: BrokerQuote) -> None:
        """A quote marks positions in memory (risk book, pending marks) and, on the paper broker,
        may fill resting orders. Writes only when an account's state is due (wall clock)."""
        instrument = self.instruments.get(quote.symbol)
        if instrument is None:
            return
        current = self.risk.quotes.get(quote.symbol)
        if current is not None and quote.ts < current.ts:
            return  # out of order: the newer quote stands
        risk = self.risk
        mid = (quote.bid + quote.ask) / 2  # Quote.mid's arithmetic, once for the book and the marks
        risk.on_quote(Quote(quote.symbol, quote.bid, quote.ask, quote.ts), mid=mid)
        for account_id, broker in self.brokers.items():
            feed = getattr(broker, "update_quote", None)  # the paper broker fills resting orders on quotes
            if feed is not None and broker.connected:
                deals = feed(quote)
                if deals:
                    self._record_resting_fills(account_id, deals)
        mark = None
        now = time.monotonic()
        interval = self.config.snapshot_interval.total_seconds()
        written_at = self._written_at
        books = risk.accounts
        symbol = quote.symbol
        for account_id, state in self.states.items():
            if books[account_id].position(symbol) != 0:
                mark = mark or Mark(mid.quantize(instrument.tick_size), quote.ts)
                state.mark(instrument.id, mark)
            if now - written_at.get(account_id, _NEVER) >= interval:
                self._state_write(account_id)

    def _state_write(self, account_id: int) -> None:
        """Write the account's pending marks and its risk snapshot now."""
        state = self.states[account_id]
        state.figures_set(self._figures(account_id))
        account_state_save(state=state)
        self._written_at[account_id] = time.monotonic()
        self.stats.state_writes += 1

    def _figures(self, account_id: int) -> RiskFigures:
        book = self.risk.account(account_id)
        now = self._now()
        equity = book.equity()
        return RiskFigures(
            balance=book.balance + book.realised_since_load,
            equity=equity,
            unrealised_pnl=book.unrealised(),
            peak_equity=book.peak_equity,
            drawdown=book.drawdown(),
            daily_pnl=equity - book.day_start_equity,
            used_margin=book.used_margin(),
            trading_state=str(self.risk.trading_state(account_id, now)),
            breaker_state=str(self.risk.breakers.for_account(account_id).state(now)),
            as_of=now,
        )

    def _record_resting_fills(self, account_id: int, deals: list[Deal]) -> None:
        for deal in deals:
            order = selectors.order_of_deal(account_id=account_id, client_order_id=deal.comment)
            if order is None:
                self._needs_reconcile.add(account_id)
                continue
            realised = self._book_fills(account_id, deal.comment, [deal])
            fill = execution_record(order=order, fill=fill_of(deal), actor=ACTOR, state=self.states[account_id])
            if not fill.created:
                self._needs_reconcile.add(account_id)  # recorded before: the book took it twice, reload it
                continue
            self.stats.fills += 1
            if realised:
                self.risk.breakers.for_account(account_id).record_pnl(realised, now=deal.ts)
            if fill.order.is_terminal:
                self.risk.on_order_closed(account_id, deal.comment)
                self._unsettled_market.pop(deal.comment, None)  # a market order's rest executed in time

    # ================================================================ kill switch and breaker

    def broker_for(self, account: TradingAccount) -> Broker | None:
        broker = self.brokers.get(account.pk)
        return broker if broker is not None and broker.connected else None

    def on_kill_switch(self, payload: KillSwitchChanged) -> None:
        """Mirror the change; on an engage, cancel what is still open in scope at our brokers."""
        if not payload.engaged:
            self.risk.kill_switch.release(payload.scope, payload.scope_value)
            self.meter.kill_switches(self.risk.kill_switch.engaged)
            return
        self.risk.kill_switch.engage(payload.scope, payload.scope_value)
        self.meter.kill_switches(self.risk.kill_switch.engaged)
        cancelled, failures = kill_switch_cancel_at_broker(
            scope=payload.scope,
            scope_value=payload.scope_value,
            broker_for=self.broker_for,
            account_ids=set(self.brokers),
            actor=ACTOR,
            at=self._now(),
        )
        self.stats.kill_cancels += len(cancelled)
        for account_id in self.accounts:
            self._load_account_state(account_id)
        if failures:
            logger.error(
                "execution: kill switch %s:%s could not cancel %s", payload.scope, payload.scope_value, failures
            )

    def _on_breaker_change(self, breaker: TradingBreaker, old: BreakerState, new: BreakerState, reason: str) -> None:
        account_id = breaker.account_id
        logger.warning("execution: account %s's trading breaker %s -> %s (%s)", account_id, old, new, reason)
        try:
            killed = trading_breaker_change_record(
                account_id=account_id,
                old=str(old),
                new=str(new),
                reason=reason,
                at=self._now(),
                source=self.config.source,
                actor=ACTOR,
                auto_kill_on_loss=self.config.auto_kill_on_loss,
                broker_for=self.broker_for,
            )
        except Exception:
            logger.exception("execution: could not record the breaker change")
            return
        if killed is not None:
            self.risk.kill_switch.engage(killed.switch.scope, killed.switch.scope_value)  # at once, before the event
            self.meter.kill_switches(self.risk.kill_switch.engaged)
            self.stats.kill_cancels += len(killed.cancelled)

    def status(self) -> dict:
        """Per account: equity, drawdown, trading state, its breaker; plus the worst breaker of
        all (``breaker``, ``breaker_reason``: open before half-open before closed) and counters."""
        now = self._now()
        breakers = {account_id: b for account_id, b in self.risk.breakers.items()}
        severity = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
        worst = max(breakers.values(), key=lambda b: severity[b.state(now)], default=None)
        return {
            "breaker": str(worst.state(now)) if worst is not None else str(BreakerState.CLOSED),
            "breaker_reason": worst.reason if worst is not None else "",
            "kill_switches": sorted(self.risk.kill_switch.engaged),
            "accounts": {
                account_id: {
                    "equity": str(book.equity()),
                    "peak_equity": str(book.peak_equity),
                    "drawdown": f"{book.drawdown():.6f}",
                    "daily_loss": str(book.daily_loss()),
                    "open_orders": len(book.open_orders),
                    "trading_state": str(self.risk.trading_state(account_id, now)),
                    "breaker": str(breakers[account_id].state(now)),
                    "breaker_reason": breakers[account_id].reason,
                }
                for account_id, book in self.risk.accounts.items()
            },
            "stats": self.stats.__dict__.copy(),
        }


# ---------------------------------------------------------------- wiring


def unwritable_because(exc: BaseException) -> str | None:
    """Why a late write of an unrecorded order failed for good, or None when retrying may help:
    the database away (``OperationalError``, ``InterfaceError``) or a disk error. Anything else (a
    row the database refuses, a value the write cannot take, a missing grant) does not change by
    retrying: the reason in words."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return None
    return f"the write fails with {type(exc).__name__}: {exc}"


def _trader_ref(trader_id: int | None):
    """The user an order is attributed to (RTS 6 Art. 12), by id only: no query."""
    if trader_id is None:
        return None
    from django.contrib.auth import get_user_model

    return get_user_model()(pk=trader_id)


def spec_of(instrument: Instrument) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=instrument.symbol,
        contract_size=instrument.contract_size,
        tick_size=instrument.tick_size,
        volume_step=instrument.volume_step,
        min_volume=instrument.min_volume,
        max_volume=instrument.max_volume,
        margin_rate=instrument.margin_rate,
        quote_currency=instrument.quote_currency,
        trading_hours=compile_hours(instrument.trading_hours or {}),
    )


def compliance_checks() -> list:
    """Pre-trade compliance checks named by ``settings.PRETRADE_COMPLIANCE_CHECKS`` (dotted paths
    to zero-argument factories returning one check or a list of them). Trading never imports
    compliance: the runner composes the gate."""
    checks: list = []
    for path in getattr(settings, "PRETRADE_COMPLIANCE_CHECKS", ()) or ():
        made = import_string(path)()
        checks.extend(made if isinstance(made, list | tuple) else [made])
    return checks


def brokers_from_settings(account_ids: Iterable[int] | None = None, *, clock: Clock | None = None) -> dict[int, Broker]:
    """One broker session per account: ``BROKER=paper`` gives each active account its own paper
    account (journalled under ``EXECUTION_PAPER_JOURNAL_DIR`` when set, so it survives restarts;
    in memory otherwise) running on ``clock`` (the worker's: a replay's paper fills carry the
    replayed time); ``BROKER=mt5`` trades the account whose login is ``MT5_LOGIN``."""
    from trading.brokers import get_broker
    from trading.brokers.paper import paper_faults_parse

    name = getattr(settings, "BROKER", "paper").lower()
    if name == "mt5":
        login = getattr(settings, "MT5_LOGIN", 0)
        account = selectors.account_with_login(login=login)
        if account is None or (account_ids and account.pk not in set(account_ids)):
            raise ValueError(f"no active trading account has MT5 login {login}")
        return {account.pk: get_broker("mt5")}
    now = (clock or WallClock()).now
    journal_dir = getattr(settings, "EXECUTION_PAPER_JOURNAL_DIR", "")
    instruments = list(selectors.instruments_active().values())
    brokers: dict[int, Broker] = {}
    for account_id in selectors.account_ids_active(ids=account_ids):
        if not journal_dir:
            brokers[account_id] = get_broker("paper", clock=now)
        else:
            from workers.paper_journal import JournaledPaperBroker

            brokers[account_id] = JournaledPaperBroker.from_instruments(
                instruments, path=f"{journal_dir}/account-{account_id}.jsonl", clock=now
            )
    for fault in paper_faults_parse(getattr(settings, "PAPER_BROKER_FAULTS", "")):  # a drill (docs/topology.md)
        for broker in brokers.values():
            broker.inject(fault.outcome, times=fault.times, executed=fault.executed)
    return brokers


def execution_account_locks(
    account_ids: Iterable[int], *, wait: bool = False, poll: float = 2.0, on_wait: Callable[[str], None] | None = None
) -> list[NamedLock]:
    """Take the lock of every account (one execution worker per account), in id order. Raises
    ``LockHeld`` naming the holder if one is taken, or with ``wait`` stands by until all are free
    (``on_wait`` hears who holds them, every 30 s). Locks taken before a refusal are released."""
    locks = [
        NamedLock(
            LockKey(f"execution worker for account {a}", EXECUTION_LOCK_CLASS, int(a) & 0x7FFF_FFFF),
            application_name=f"tradeops-execution-worker:{a}",
        )
        for a in sorted(set(account_ids))
    ]
    told = float("-inf")
    try:
        for lock in locks:
            while not lock.try_acquire():
                if not wait:
                    raise LockHeld(lock.key.name, lock.holder())
                if time.monotonic() - told >= 30:
                    told = time.monotonic()
                    message = f"{lock.key.name}: held by {lock.holder()}; standing by"
                    logger.warning("execution: %s", message)
                    if on_wait is not None:
                        on_wait(message)
                time.sleep(poll)
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    return locks


def execution_stage(clock: Clock | None = None) -> ExecutionWorker:
    """The stage factory (``tradeops.stages``): a started worker on the brokers from settings,
    on ``clock`` (the wall clock unless the runner replays: then a ``ReplayClock``), holding its
    accounts' locks (``LockHeld`` if another worker trades one of them)."""
    clock = clock or WallClock()
    account_ids = [int(a) for a in getattr(settings, "EXECUTION_ACCOUNTS", ()) or ()]
    brokers = brokers_from_settings(account_ids, clock=clock)
    locks = execution_account_locks(brokers)
    try:
        return ExecutionWorker(brokers=brokers, clock=clock, locks=locks).start()
    except BaseException:
        for lock in locks:
            lock.release()
        raise
