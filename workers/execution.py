"""The execution worker: prediction-events in, orders at the broker and trading-events out.

    signal.validated ──► Strategy ──► OrderIntent ──► PreTradeGate (risk checks + compliance checks)
        ──► Broker.send_order (paper | MT5) ──► one DB transaction: order + decision + fills +
        position + outbox rows ──► trading-events (the outbox relay publishes them)

A runner: it wires the pure handlers (``trading.strategy``, ``trading.risk``, ``trading.gate``)
to a broker and to the system of record through ``trading.services``; no business rule lives
here. It runs as the ``execution`` stage (``manage.py run_execution_worker`` on the configured
bus, or inside ``manage.py run_pipeline`` for the embedded run).

Hot state (limits, positions, open orders, kill switches, quotes, equity) lives in memory,
loaded at start and refreshed by events: ticks and bars mark positions, ``killswitch.changed``
engages/releases the mirror and cancels what is still open at our brokers,
``risk.limit_changed`` reloads the limits. The engaged kill switches are also re-read from the
database once per mark interval, so a block never depends on the bus alone.

Exactly-once at the broker (RTS 6 Art. 17 reconciliation). ``client_order_id`` is derived from
(signal id, account), travels to the broker as the order comment, and is unique in the
database. The order, its decision, its fills and the position are written in ONE transaction
AFTER the broker answered, so a crash between the broker's fill and our commit leaves an order
the broker has and we do not. ``reconcile`` (at start, after a reconnect, after any failed
commit or unknown broker state) reads the broker's deals and open orders, matches them by
comment, and records what is missing once (fills are idempotent by broker deal id); the ids of
recent orders are held in memory so a redelivered signal is never sent twice.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from tradeops.breaker import BreakerState
from tradeops.bus.runner import RecentIds
from tradeops.core.clock import utcnow
from tradeops.events import (
    BAR_SECONDS,
    Alert,
    Bar,
    Envelope,
    KillSwitchChanged,
    RiskLimitChanged,
    Signal,
    Tick,
    make_event,
)
from trading.brokers import (
    Broker,
    BrokerConnectionError,
    BrokerError,
    Deal,
    OrderRequest,
    OrderResult,
)
from trading.brokers import Quote as BrokerQuote
from trading.controls.services import signal_skips_record
from trading.gate import GateDecision, PreTradeGate, failed
from trading.intents import InstrumentSpec, OrderIntent, Quote, magic_for
from trading.models import Execution, Instrument, KillSwitch, Order, Position, RiskLimit, TradingAccount
from trading.order_commit import FillDraft, OrderCommit, OrderDraft, OrderStep, order_commit
from trading.order_states import OrderStatus
from trading.position_math import PositionState
from trading.risk import KillSwitchBook, LimitBook, OpenOrder, RiskLimits, RiskManager, TradingBreaker, risk_checks
from trading.risk.headroom import order_headroom
from trading.strategy import Strategy, StrategyConfig

logger = logging.getLogger(__name__)

ACTOR = "service:execution-worker"


def fill_of(deal: Deal, *, arrival_mid: Decimal | None = None) -> FillDraft:
    """A broker deal as a fill of ours. Broker fees are negative money (MT5 convention); ours
    are positive costs, hence the sign flip here only."""
    return FillDraft(
        broker_deal_id=deal.deal_id,
        quantity=deal.volume,
        price=deal.price,
        executed_at=deal.ts,
        fee=-deal.fee,
        arrival_mid=arrival_mid,
    )


def deal_record(*, order: Order, deal: Deal, arrival_mid: Decimal | None = None):
    """Record a broker deal as a fill of an existing ``order`` (idempotent by deal id)."""
    from trading.services import execution_record

    return execution_record(order=order, **fill_of(deal, arrival_mid=arrival_mid).kwargs(), actor=ACTOR)


BAR_LENGTH = {name: timedelta(seconds=seconds) for name, seconds in BAR_SECONDS.items()}
LIMIT_VALUE_FIELDS = (
    "max_position_lots",
    "max_gross_exposure",
    "max_net_exposure",
    "check_margin",
    "daily_loss_limit",
    "max_drawdown",
    "max_submits_per_second",
    "max_modifies_per_second",
    "max_open_orders",
    "duplicate_window_ms",
)


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
    breaker_failures: int = 5
    breaker_cool_down: timedelta = timedelta(seconds=30)
    loss_threshold: Decimal | None = None  # realised loss that opens the breaker
    stale_after: timedelta | None = timedelta(seconds=30)  # quote age that opens the breaker
    max_signal_age: timedelta | None = timedelta(minutes=15)  # signal older than the latest quote: refused
    auto_kill_on_loss: bool = True  # engage the kill switch (all) when losses open the breaker
    # Engage the account's kill switch when reconciliation finds its positions differ from the
    # broker's (RTS 6 Art. 17): orders sized on a wrong position must not go out. A risk manager
    # releases it once the difference is explained.
    auto_kill_on_position_mismatch: bool = True
    mark_interval: timedelta = timedelta(seconds=1)  # event time between DB marks per symbol
    reconcile_lookback: timedelta = timedelta(hours=24)  # > prediction-events retention (12 h)
    unknown_grace: timedelta = timedelta(seconds=30)  # how long an unanswered order may stay invisible
    deviation_points: int = 20
    source: str = "execution-worker"


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
    kill_cancels: int = 0
    pipelined_commits: int = 0  # orders written by order_commit's two-round-trip path (PostgreSQL)


@dataclass
class ReconcileReport:
    account_id: int
    recovered_orders: list[str] = field(default_factory=list)
    recovered_fills: list[str] = field(default_factory=list)
    closed_orders: list[str] = field(default_factory=list)
    awaiting: list[str] = field(default_factory=list)  # sent moments ago, not yet visible at the broker
    position_mismatches: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol -> (ours, broker's)


class ExecutionWorker:
    """One worker owns one broker session per account it trades (``brokers``: account id → Broker)."""

    def __init__(
        self,
        *,
        brokers: Mapping[int, Broker],
        config: ExecutionConfig | None = None,
        extra_checks: Iterable = (),
        crash_hook: Callable[[str, OrderIntent], None] | None = None,
    ):
        self.brokers = dict(brokers)
        self.config = config or ExecutionConfig()
        self.extra_checks = list(extra_checks)
        self.crash_hook = crash_hook  # tests: kill the process at a named point
        self.stats = WorkerStats()
        self.started = False
        self._needs_reconcile: set[int] = set()
        self._last_mark: dict[str, datetime] = {}
        self._last_switch_refresh: datetime | None = None
        self.known_ids: set[str] = set()
        self.algo_by_magic: dict[int, str] = {}
        self._fed = RecentIds(capacity=200_000)

    # ================================================================ start-up

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
        self.started = True
        return self

    def _load(self) -> None:
        cfg = self.config
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in Instrument.objects.filter(is_active=True)}
        self.specs = {s: spec_of(i) for s, i in self.instruments.items()}
        self.accounts: dict[int, TradingAccount] = {
            a.pk: a for a in TradingAccount.objects.filter(pk__in=list(self.brokers), is_active=True)
        }
        missing = set(self.brokers) - set(self.accounts)
        if missing:
            raise ValueError(f"execution: no active trading account with id {sorted(missing)}")
        breaker = TradingBreaker(
            failure_threshold=cfg.breaker_failures,
            cool_down=cfg.breaker_cool_down,
            loss_threshold=cfg.loss_threshold,
            stale_after=cfg.stale_after,
            listeners=[self._on_breaker_change],
        )
        self.risk = RiskManager(
            limits=LimitBook(cfg.default_limits),
            breaker=breaker,
            kill_switch=KillSwitchBook(),
            max_signal_age=cfg.max_signal_age,
        )
        self.reload_limits()
        self.refresh_kill_switches()
        for spec in self.specs.values():
            self.risk.add_instrument(spec)
        now = utcnow()
        for account_id in self.accounts:
            balance, currency = Decimal(0), self.accounts[account_id].base_currency
            broker = self.brokers[account_id]
            if broker.connected:
                info = broker.account_info()
                balance, currency = info.balance, info.currency
            self.risk.add_account(account_id, balance=balance, currency=currency, now=now)
            self._load_account_state(account_id)
        since = now - cfg.reconcile_lookback
        self.known_ids = set(
            Order.objects.filter(account_id__in=list(self.accounts), created_at__gte=since).values_list(
                "client_order_id", flat=True
            )
        )
        algo_ids = set(Order.objects.exclude(algo_id="").values_list("algo_id", flat=True).distinct())
        algo_ids |= set(cfg.strategy.algo_ids or ())
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

    def _load_account_state(self, account_id: int) -> None:
        """(Re)load one account's positions and open orders from the system of record."""
        book = self.risk.account(account_id)
        book.clear_state()
        for position in Position.objects.filter(account_id=account_id).select_related("instrument"):
            symbol = position.instrument.symbol
            if symbol in book.specs:
                book.load_position(
                    symbol, PositionState(position.net_quantity, position.average_price), position.mark_price
                )
        unexecuted = [s.value for s in (OrderStatus.RISK_APPROVED, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)]
        for order in Order.objects.filter(account_id=account_id, status__in=unexecuted).select_related("instrument"):
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

    def reload_limits(self) -> None:
        book = self.risk.limits
        book.clear()
        for row in RiskLimit.objects.filter(is_active=True).select_related("instrument"):
            values = {name: getattr(row, name) for name in LIMIT_VALUE_FIELDS}
            book.set(account_id=row.account_id, symbol=row.instrument.symbol if row.instrument_id else None, **values)

    def refresh_kill_switches(self) -> None:
        engaged = KillSwitch.objects.filter(engaged=True).values_list("scope", "scope_value")
        self.risk.kill_switch.replace(engaged)

    # ================================================================ the stage handler

    def handle(self, event: Envelope) -> list[Envelope]:
        """Consume one event. Everything it produces goes through the outbox (same transaction as
        the write), so it returns no events to the runner. Offsets are committed by the runner
        after this returns, i.e. after the order's transaction committed."""
        if not self.started:
            self.start()
        payload = event.payload
        if isinstance(payload, Signal):
            self.stats.signals += 1
            self._retry_reconcile()
            for intent in self.strategy.on_signal(payload):
                self.execute(intent)
            if self.strategy.last_skips:
                signal_skips_record(skips=self.strategy.last_skips, actor=ACTOR)
        elif isinstance(payload, Tick):
            self.on_quote(BrokerQuote(payload.symbol, payload.bid, payload.ask, payload.ts), tick=True)
        elif isinstance(payload, Bar):
            # A bar's close is the price at its END (``ts`` is its open); where ticks flow, they are newer.
            spread = payload.spread or Decimal(0)
            closed_at = payload.ts + BAR_LENGTH.get(payload.timeframe, timedelta(0))
            current = self.risk.quotes.get(payload.symbol)
            if current is None or current.ts < closed_at:
                self.on_quote(BrokerQuote(payload.symbol, payload.close, payload.close + spread, closed_at), tick=False)
        elif isinstance(payload, KillSwitchChanged):
            self.on_kill_switch(payload)
        elif isinstance(payload, RiskLimitChanged):
            self.reload_limits()
        if event.event_id in self._fed:
            return []  # our own event back from the bus: the gate saw it at commit
        self.gate.on_event(event)
        return []

    def _feed_gate(self, events) -> None:
        """Hand the events of a committed order to the gate's checks at once (compliance checks
        count fills and track positions from them), remembering their ids so the copies the
        relay brings back over the bus are not counted twice."""
        for event in events:
            self._fed.add(event.event_id)
            self.gate.on_event(event)

    # ================================================================ the order path

    def execute(self, intent: OrderIntent) -> Order | None:
        """strategy intent → gate → broker → one transaction. Returns the order (None: duplicate)."""
        self.stats.intents += 1
        if intent.client_order_id in self.known_ids:
            self.stats.duplicates += 1
            return None
        account_id = intent.account_id
        if account_id in self._needs_reconcile:
            self._retry_reconcile()
        received_at = utcnow()
        quote = self.risk.quotes.get(intent.symbol)
        self.risk.breaker.observe_quote_age(quote.ts if quote else None, intent.ts)
        intent = self._anchor_stops(intent, quote)
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
        decided_at = utcnow()
        self.known_ids.add(intent.client_order_id)
        if not decision.approved:
            self.stats.rejected += 1
            written = self._commit(
                intent, received_at, decision, ctx, steps=[OrderStep(OrderStatus.REJECTED, decided_at, decision.reason)]
            )
            self._feed_gate(written.events)
            return written.order
        self.stats.approved += 1
        self.gate.on_sent(intent, ctx)
        self.risk.on_order_sent(intent)
        sent_at = utcnow()  # RTS 25: the moment the order left for the broker
        result, error = self._send(intent)
        if self.crash_hook is not None:
            self.crash_hook("after_send", intent)
        try:
            written = self._record_order(intent, decision, ctx, result, error, received_at, decided_at, sent_at)
        except Exception:
            # The broker may hold an order we could not record: settle it from the broker's side.
            self.stats.commit_failures += 1
            self._needs_reconcile.add(account_id)
            logger.exception(
                "execution: recording %s failed; will reconcile account %s", intent.client_order_id, account_id
            )
            raise
        order = written.order
        deals = {d.deal_id: d for d in result.deals} if result is not None else {}
        self._feed_gate(written.events)
        self._after_commit(intent, order, result, error, [deals[f.broker_deal_id] for f in written.fills])
        return order

    def _anchor_stops(self, intent: OrderIntent, quote) -> OrderIntent:
        """Keep the strategy's stop and target *distances* but measure them from the price the
        order will take now (ask to buy, bid to sell) rather than from the signal's price: a
        quote that moved since the signal would otherwise put a stop on the wrong side."""
        if quote is None or (intent.stop_loss is None and intent.take_profit is None):
            return intent
        shift = quote.price_for(intent.side) - intent.reference_price
        if shift == 0:
            return intent
        spec = self.specs[intent.symbol]

        def moved(level):
            return None if level is None else spec.round_price(level + shift)

        return dataclasses.replace(intent, stop_loss=moved(intent.stop_loss), take_profit=moved(intent.take_profit))

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

    def _commit(self, intent: OrderIntent, received_at, decision, ctx, **outcome) -> OrderCommit:
        """Write the order and what happened to it (``outcome``: ``order_commit``'s steps, fills,
        after_fills) in one transaction, with the gate's decision event after its creation."""
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
            desk=intent.desk,
            signal_id=intent.signal_id,
        )
        payload = decision.to_payload(intent, trading_state=str(ctx.trading_state))
        decision_event = make_event(payload, source=self.config.source, key=str(intent.account_id))
        written = order_commit(draft=draft, events=[decision_event], actor=ACTOR, **outcome)
        if written.pipelined:
            self.stats.pipelined_commits += 1
        return written

    def _record_order(self, intent, decision, ctx, result, error, received_at, decided_at, sent_at) -> OrderCommit:
        """The one transaction per order: order, decision, submission, fills, position, events."""
        approved = OrderStep(OrderStatus.RISK_APPROVED, decided_at)
        if result is None or result.state_unknown:
            why = f"{error.code}: {error}" if error is not None else f"{result.outcome}: {result.message}"
            submitted = OrderStep(
                OrderStatus.SUBMITTED, sent_at, reason=f"broker state unknown ({why}); reconciliation settles it"
            )
            return self._commit(intent, received_at, decision, ctx, steps=[approved, submitted])
        submitted = OrderStep(OrderStatus.SUBMITTED, sent_at, broker_order_id=result.broker_order_id)
        if not (result.accepted or result.deals):
            refused = OrderStep(OrderStatus.REJECTED, result.ts, reason=f"broker {result.outcome}: {result.message}")
            return self._commit(intent, received_at, decision, ctx, steps=[approved, submitted, refused])
        quote = ctx.quote
        arrival_mid = quote.mid if quote is not None else None
        fills = [fill_of(deal, arrival_mid=arrival_mid) for deal in result.deals]
        after = []
        if result.remaining_volume > 0 and result.filled_volume > 0 and not self._rests_at_broker(intent):
            after.append(OrderStep(OrderStatus.CANCELLED, result.ts, reason=result.message))
        return self._commit(
            intent, received_at, decision, ctx, steps=[approved, submitted], fills=fills, after_fills=after
        )

    def _rests_at_broker(self, intent: OrderIntent) -> bool:
        broker = self.brokers[intent.account_id]
        return any(o.comment == intent.client_order_id for o in broker.open_orders(intent.symbol))

    def _after_commit(self, intent, order: Order, result, error, deals: list[Deal]) -> None:
        now = result.ts if result is not None else intent.ts
        for deal in deals:
            self.stats.fills += 1
            self._risk_fill(intent.account_id, intent.client_order_id, deal)
        if order.is_terminal:
            self.risk.on_order_closed(intent.account_id, intent.client_order_id)
        if error is not None or (result is not None and result.state_unknown):
            self.stats.unknown_state += 1
            self.risk.breaker.record_failure(error.code if error else str(result.outcome), now=intent.ts)
            self._needs_reconcile.add(intent.account_id)
            if isinstance(error, BrokerConnectionError):
                return  # reconnect and reconcile on the next event
            self._retry_reconcile()
        elif result.accepted or result.deals:
            self.risk.breaker.record_success(now=now)
        else:
            self.stats.broker_refused += 1
            self.risk.breaker.record_failure(str(result.outcome), now=intent.ts)

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
        """Make our records agree with the broker (RTS 6 Art. 17): record every deal of ours the
        broker booked and we did not (creating the order if the crash came before its commit),
        close orders the broker no longer holds, compare positions. Idempotent."""
        from trading.services import order_create, order_transition

        broker = self.brokers[account_id]
        account = self.accounts[account_id]
        report = ReconcileReport(account_id=account_id)
        now = utcnow()
        since = now - self.config.reconcile_lookback
        deals = [d for d in broker.deals_since(since) if d.comment]
        resting = {o.comment: o for o in broker.open_orders() if o.comment}
        deals_by_order: dict[str, list[Deal]] = {}
        for deal in deals:
            deals_by_order.setdefault(deal.comment, []).append(deal)
        ids = set(deals_by_order) | set(resting)
        orders = {o.client_order_id: o for o in Order.objects.filter(account_id=account_id, client_order_id__in=ids)}
        recorded = set(
            Execution.objects.filter(account_id=account_id, broker_deal_id__in=[d.deal_id for d in deals]).values_list(
                "broker_deal_id", flat=True
            )
        )
        note = "recovered by reconciliation: at the broker but not in our records"
        for coid in sorted(ids):
            order_deals = deals_by_order.get(coid, [])
            missing = [d for d in order_deals if d.deal_id not in recorded]
            open_order = resting.get(coid)
            order = orders.get(coid)
            if order is not None and not missing and (open_order is not None or order.is_terminal):
                continue
            first = order_deals[0] if order_deals else None
            symbol = open_order.symbol if open_order else first.symbol
            if symbol not in self.instruments:
                logger.error("execution: broker order %s on unknown symbol %s left alone", coid, symbol)
                continue
            with transaction.atomic():
                if order is None:
                    quantity = (
                        open_order.volume_initial if open_order else sum((d.volume for d in order_deals), Decimal(0))
                    )
                    magic = open_order.magic if open_order else first.magic
                    order, _ = order_create(
                        client_order_id=coid,
                        account=account,
                        instrument=self.instruments[symbol],
                        side=open_order.side if open_order else first.side,
                        quantity=quantity,
                        order_type=str(open_order.order_type) if open_order else "MARKET",
                        limit_price=open_order.price if open_order and open_order.order_type == "LIMIT" else None,
                        stop_price=open_order.price if open_order and open_order.order_type == "STOP" else None,
                        algo_id=self.algo_by_magic.get(magic, f"magic:{magic}" if magic else ""),
                        at=(open_order.ts if open_order else first.ts),
                        actor=ACTOR,
                    )
                    order_transition(order=order, to=OrderStatus.RISK_APPROVED, reason=note, actor=ACTOR)
                    report.recovered_orders.append(coid)
                if order.status in (OrderStatus.NEW, OrderStatus.RISK_APPROVED):
                    if order.status == OrderStatus.NEW:
                        order_transition(order=order, to=OrderStatus.RISK_APPROVED, reason=note, actor=ACTOR)
                    broker_order_id = open_order.ticket if open_order else first.order_id
                    order_transition(
                        order=order, to=OrderStatus.SUBMITTED, broker_order_id=broker_order_id, reason=note, actor=ACTOR
                    )
                elif order.status == OrderStatus.SUBMITTED and not order.broker_order_id:
                    order.broker_order_id = open_order.ticket if open_order else first.order_id
                    order.save(update_fields=["broker_order_id"])
                for deal in missing:
                    if order.is_terminal or deal.volume > order.remaining_quantity:
                        logger.error("execution: deal %s does not fit order %s (%s)", deal.deal_id, coid, order.status)
                        continue
                    fill = deal_record(order=order, deal=deal)
                    if fill.created:
                        report.recovered_fills.append(deal.deal_id)
                if open_order is None and not order.is_terminal:
                    order_transition(
                        order=order,
                        to=OrderStatus.CANCELLED,
                        reason="reconciliation: no longer open at the broker; remainder not executed",
                        actor=ACTOR,
                    )
                    report.closed_orders.append(coid)
        # Our open orders the broker does not know (and never filled): they never got there.
        for order in Order.objects.filter(
            account_id=account_id,
            created_at__gte=since,
            status__in=[
                OrderStatus.NEW,
                OrderStatus.RISK_APPROVED,
                OrderStatus.SUBMITTED,
                OrderStatus.PARTIALLY_FILLED,
            ],
        ).exclude(client_order_id__in=ids):
            sent = order.submitted_at or order.created_at
            if order.status == OrderStatus.SUBMITTED and now - sent < self.config.unknown_grace:
                # Sent moments ago with no answer: the broker's history may not show it yet (MT5
                # polls deals). Keep it, and the account blocked, until it shows or the grace ends.
                report.awaiting.append(order.client_order_id)
                continue
            with transaction.atomic():
                target = OrderStatus.REJECTED if order.status == OrderStatus.NEW else OrderStatus.CANCELLED
                order_transition(
                    order=order, to=target, reason="reconciliation: the broker has no trace of this order", actor=ACTOR
                )
            report.closed_orders.append(order.client_order_id)
        self._compare_positions(account_id, report)
        self._load_account_state(account_id)
        # The broker's balance already holds every realised P&L it booked: start counting afresh.
        book = self.risk.account(account_id)
        book.balance, book.realised_since_load = broker.account_info().balance, Decimal(0)
        if report.awaiting:
            self._needs_reconcile.add(account_id)
        else:
            self._needs_reconcile.discard(account_id)
        self.known_ids |= ids
        self.stats.reconciled_orders += len(report.recovered_orders)
        self.stats.reconciled_fills += len(report.recovered_fills)
        if report.recovered_orders or report.recovered_fills or report.closed_orders:
            logger.warning(
                "execution: reconciled account %s: recovered orders %s, fills %s, closed %s",
                account_id,
                report.recovered_orders,
                report.recovered_fills,
                report.closed_orders,
            )
        return report

    def _compare_positions(self, account_id: int, report: ReconcileReport) -> None:
        broker_net: dict[str, Decimal] = {}
        for position in self.brokers[account_id].positions():
            broker_net[position.symbol] = broker_net.get(position.symbol, Decimal(0)) + position.signed_volume
        ours = {
            p.instrument.symbol: p.net_quantity
            for p in Position.objects.filter(account_id=account_id).select_related("instrument")
        }
        for symbol in sorted(set(broker_net) | set(ours)):
            a, b = ours.get(symbol, Decimal(0)), broker_net.get(symbol, Decimal(0))
            if a != b:
                report.position_mismatches[symbol] = (str(a), str(b))
        if report.position_mismatches:
            self.stats.position_mismatches += len(report.position_mismatches)
            logger.error(
                "execution: account %s positions differ from the broker: %s", account_id, report.position_mismatches
            )
            evidence = {s: {"ours": o, "broker": b} for s, (o, b) in report.position_mismatches.items()}
            self._alert(
                alert_type="reconciliation_position_mismatch",
                severity="high",
                account=str(account_id),
                evidence=evidence,
            )
            if self.config.auto_kill_on_position_mismatch:
                differences = ", ".join(f"{s} ours {o} broker {b}" for s, (o, b) in report.position_mismatches.items())
                self._auto_kill(
                    f"automatic: positions differ from the broker's after reconciliation ({differences})",
                    scope="account",
                    scope_value=str(account_id),
                )

    # ================================================================ market data and marks

    def on_quote(self, quote: BrokerQuote, *, tick: bool) -> None:
        if quote.symbol not in self.specs:
            return
        current = self.risk.quotes.get(quote.symbol)
        if current is not None and quote.ts < current.ts:
            return  # out of order: the newer quote stands
        self.risk.on_quote(Quote(quote.symbol, quote.bid, quote.ask, quote.ts))
        for account_id, broker in self.brokers.items():
            feed = getattr(broker, "update_quote", None)  # the paper broker fills resting orders on quotes
            if feed is not None and broker.connected:
                deals = feed(quote)
                if deals:
                    self._record_resting_fills(account_id, deals)
        last = self._last_mark.get(quote.symbol)
        if last is None or quote.ts - last >= self.config.mark_interval or quote.ts < last:
            self._last_mark[quote.symbol] = quote.ts
            self._mark(quote.symbol, quote)

    def _record_resting_fills(self, account_id: int, deals: list[Deal]) -> None:
        for deal in deals:
            order = Order.objects.filter(account_id=account_id, client_order_id=deal.comment).first()
            if order is None:
                self._needs_reconcile.add(account_id)
                continue
            with transaction.atomic():
                fill = deal_record(order=order, deal=deal)
            if fill.created:
                self.stats.fills += 1
                self._risk_fill(account_id, deal.comment, deal)

    def _risk_fill(self, account_id: int, client_order_id: str, deal: Deal) -> None:
        """Feed a recorded deal to the in-memory risk book (same fee sign as ``deal_record``)."""
        self.risk.on_fill(
            account_id=account_id,
            client_order_id=client_order_id,
            symbol=deal.symbol,
            side=deal.side,
            quantity=deal.volume,
            price=deal.price,
            fee=-deal.fee,
            now=deal.ts,
        )

    def _mark(self, symbol: str, quote: BrokerQuote) -> None:
        """Mark positions in the system of record to the mid, and save equity and drawdown."""
        from trading.controls.services import account_risk_snapshot_save
        from trading.services import position_mark

        mid = (quote.bid + quote.ask) / 2
        instrument = self.instruments[symbol]
        for account_id, account in self.accounts.items():
            book = self.risk.account(account_id)
            if book.position(symbol) != 0:
                position_mark(account=account, instrument=instrument, mark_price=mid.quantize(instrument.tick_size))
            breaker_state = self.risk.breaker.state(quote.ts)
            account_risk_snapshot_save(
                account_id=account_id,
                balance=book.balance + book.realised_since_load,
                equity=book.equity(),
                unrealised_pnl=book.unrealised(),
                peak_equity=book.peak_equity,
                drawdown=book.drawdown(),
                daily_pnl=book.equity() - book.day_start_equity,
                used_margin=book.used_margin(),
                trading_state=str(self.risk.trading_state(account_id, quote.ts)),
                breaker_state=str(breaker_state),
            )
        if self._last_switch_refresh is None or abs(quote.ts - self._last_switch_refresh) >= self.config.mark_interval:
            self._last_switch_refresh = quote.ts
            self.refresh_kill_switches()

    # ================================================================ kill switch and breaker

    def broker_for(self, account: TradingAccount) -> Broker | None:
        broker = self.brokers.get(account.pk)
        return broker if broker is not None and broker.connected else None

    def on_kill_switch(self, payload: KillSwitchChanged) -> None:
        """Mirror the change; on an engage, cancel what is still open in scope at our brokers."""
        from trading.controls.services import kill_switch_cancel_in_scope

        if not payload.engaged:
            self.risk.kill_switch.release(payload.scope, payload.scope_value)
            return
        self.risk.kill_switch.engage(payload.scope, payload.scope_value)
        switch = KillSwitch.objects.filter(scope=payload.scope, scope_value=payload.scope_value, engaged=True).first()
        if switch is None:
            return  # released meanwhile
        cancelled, failed = kill_switch_cancel_in_scope(
            switch=switch, broker_for=self.broker_for, actor=ACTOR, account_ids=set(self.brokers)
        )
        self.stats.kill_cancels += len(cancelled)
        for account_id in self.accounts:
            self._load_account_state(account_id)
        if failed:
            logger.error("execution: kill switch %s could not cancel %s", switch, failed)

    def _on_breaker_change(self, breaker: TradingBreaker, old: BreakerState, new: BreakerState, reason: str) -> None:
        from tradeops.audit.services import audit_record_change

        logger.warning("execution: trading breaker %s -> %s (%s)", old, new, reason)
        try:
            with transaction.atomic():
                audit_record_change(
                    action=f"trading_breaker.{new}",
                    actor=ACTOR,
                    object_type="trading_breaker",
                    object_id=self.config.source,
                    before={"state": str(old)},
                    after={"state": str(new), "reason": reason},
                    reason=reason,
                    category="trading",
                )
                if new is BreakerState.OPEN:
                    self._alert(alert_type="trading_breaker_open", severity="high", evidence={"reason": reason})
        except Exception:
            logger.exception("execution: could not record the breaker change")
        if new is BreakerState.OPEN and reason.startswith("loss_threshold") and self.config.auto_kill_on_loss:
            self._auto_kill(f"automatic: trading breaker opened on {reason}")

    def _auto_kill(self, reason: str, *, scope: str = "all", scope_value: str = "") -> None:
        """Engage the kill switch on ``scope`` (audited and published by the service) and block
        the scope here at once, before the event comes back."""
        from trading.controls.services import kill_switch_engage

        result = kill_switch_engage(
            scope=scope,
            scope_value=scope_value,
            actor=ACTOR,
            reason=reason,
            source="automatic",
            broker_for=self.broker_for,
        )
        self.risk.kill_switch.engage(scope, scope_value)
        self.stats.kill_cancels += len(result.cancelled)

    def _alert(self, *, alert_type: str, severity: str, account: str = "", evidence: dict | None = None) -> None:
        from tradeops.outbox.services import outbox_append

        with transaction.atomic():
            outbox_append(
                event=make_event(
                    Alert(
                        alert_type=alert_type,
                        severity=severity,
                        account=account,
                        evidence=evidence or {},
                        ts=utcnow(),
                    ),
                    source=self.config.source,
                    key=account or alert_type,
                )
            )

    def status(self) -> dict:
        """Per account: equity, drawdown, trading state; plus breaker state and counters."""
        now = utcnow()
        return {
            "breaker": str(self.risk.breaker.state(now)),
            "breaker_reason": self.risk.breaker.reason,
            "kill_switches": sorted(self.risk.kill_switch.engaged),
            "accounts": {
                account_id: {
                    "equity": str(book.equity()),
                    "peak_equity": str(book.peak_equity),
                    "drawdown": f"{book.drawdown():.6f}",
                    "daily_loss": str(book.daily_loss()),
                    "open_orders": len(book.open_orders),
                    "trading_state": str(self.risk.trading_state(account_id, now)),
                }
                for account_id, book in self.risk.accounts.items()
            },
            "stats": self.stats.__dict__.copy(),
        }


# ---------------------------------------------------------------- wiring


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


def brokers_from_settings(account_ids: Iterable[int] | None = None) -> dict[int, Broker]:
    """One broker session per account: ``BROKER=paper`` gives each active account its own paper
    account (journalled under ``EXECUTION_PAPER_JOURNAL_DIR`` when set, so it survives restarts;
    in memory otherwise); ``BROKER=mt5`` trades the account whose login is ``MT5_LOGIN``."""
    from trading.brokers import get_broker

    accounts = TradingAccount.objects.filter(is_active=True)
    if account_ids:
        accounts = accounts.filter(pk__in=list(account_ids))
    name = getattr(settings, "BROKER", "paper").lower()
    if name == "mt5":
        login = getattr(settings, "MT5_LOGIN", 0)
        account = accounts.filter(mt5_login=login).first()
        if account is None:
            raise ValueError(f"no active trading account has MT5 login {login}")
        return {account.pk: get_broker("mt5")}
    journal_dir = getattr(settings, "EXECUTION_PAPER_JOURNAL_DIR", "")
    brokers: dict[int, Broker] = {}
    for account in accounts:
        if not journal_dir:
            brokers[account.pk] = get_broker("paper")
        else:
            from workers.paper_journal import JournaledPaperBroker

            brokers[account.pk] = JournaledPaperBroker.from_instruments(
                Instrument.objects.filter(is_active=True), path=f"{journal_dir}/account-{account.pk}.jsonl"
            )
    return brokers


def settle_heap() -> int:
    """Collect once, then move every object alive now (Django, the models, the worker's hot state:
    what lives as long as the process) out of the garbage collector's generations, so that a full
    collection later walks only what was allocated since, not the ~250k startup objects (a
    ~150 ms pause in the middle of an order, measured by ``bench/order_path.py``). Call it once
    the worker has started. Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def execution_stage() -> ExecutionWorker:
    """The stage factory (``tradeops.stages``): a started worker on the brokers from settings."""
    account_ids = [int(a) for a in getattr(settings, "EXECUTION_ACCOUNTS", ()) or ()]
    return ExecutionWorker(brokers=brokers_from_settings(account_ids)).start()
