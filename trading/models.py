"""The system of record for trading: instruments, accounts, orders, fills, positions.

Money, prices and quantities are Decimal; every timestamp is aware UTC with microseconds
(RTS 25). Services in ``trading.services`` are the only writers.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.order_states import TERMINAL, OrderStatus

PRICE = {"max_digits": 24, "decimal_places": 10}
QTY = {"max_digits": 20, "decimal_places": 6}
MONEY = {"max_digits": 24, "decimal_places": 6}


class AssetClass(models.TextChoices):
    FX = "FX", "FX"
    CFD_INDEX = "CFD_INDEX", "CFD on an index"
    CFD_EQUITY = "CFD_EQUITY", "CFD on an equity"
    COMMODITY = "COMMODITY", "Commodity"


class Instrument(models.Model):
    """A tradable symbol as the broker specifies it (MT5 ``symbol_info``)."""

    symbol = models.CharField(max_length=32, unique=True)
    description = models.CharField(max_length=200, blank=True)
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices)
    isin = models.CharField("ISIN", max_length=12, blank=True, help_text="ISO 6166, where one exists")
    cfi_code = models.CharField("CFI code", max_length=6, blank=True, help_text="ISO 10962")
    currency = models.CharField(max_length=3, help_text="Base currency (FX) or the instrument's currency")
    quote_currency = models.CharField(max_length=3, help_text="Currency prices and P&L are quoted in")
    tick_size = models.DecimalField(**PRICE)
    digits = models.PositiveSmallIntegerField(default=5)
    contract_size = models.DecimalField(**QTY, help_text="Units per lot")
    min_volume = models.DecimalField(**QTY, default=Decimal("0.01"))
    max_volume = models.DecimalField(**QTY, default=Decimal("100"))
    volume_step = models.DecimalField(**QTY, default=Decimal("0.01"))
    margin_rate = models.DecimalField(
        max_digits=8,
        decimal_places=6,
        default=Decimal("0.033333"),
        help_text="Initial margin as a fraction of notional",
    )
    venue_mic = models.CharField(
        "venue MIC", max_length=4, default="XXXX", help_text="ISO 10383 MIC, or XOFF / XXXX when traded off venue"
    )
    trading_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text='UTC sessions per weekday, e.g. {"mon": [["00:05", "23:55"]], ...}; empty means always open',
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(tick_size__gt=0), name="instrument_tick_size_positive"),
            models.CheckConstraint(condition=Q(contract_size__gt=0), name="instrument_contract_size_positive"),
            models.CheckConstraint(condition=Q(min_volume__gt=0), name="instrument_min_volume_positive"),
            models.CheckConstraint(condition=Q(max_volume__gte=models.F("min_volume")), name="instrument_volume_range"),
        ]

    def __str__(self) -> str:
        return self.symbol


class MarginMode(models.TextChoices):
    NETTING = "NETTING", "Netting"
    HEDGING = "HEDGING", "Hedging"


class TradingAccount(models.Model):
    """An MT5 trading account and whose it is (firm LEI, client) for reporting and surveillance."""

    name = models.CharField(max_length=100)
    mt5_login = models.BigIntegerField("MT5 login")
    mt5_server = models.CharField("MT5 server", max_length=100)
    firm_lei = models.CharField("firm LEI", max_length=20, help_text="ISO 17442 legal entity identifier")
    client_id = models.CharField("client identifier", max_length=64)
    beneficial_owner = models.CharField(
        max_length=64, blank=True, help_text="Owner key shared by linked accounts (wash-trade surveillance)"
    )
    margin_mode = models.CharField(max_length=8, choices=MarginMode.choices, default=MarginMode.NETTING)
    base_currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["mt5_server", "mt5_login"], name="account_unique_login")]

    def __str__(self) -> str:
        return f"{self.name} ({self.mt5_login}@{self.mt5_server})"


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OrderType(models.TextChoices):
    MARKET = "MARKET", "Market"
    LIMIT = "LIMIT", "Limit"
    STOP = "STOP", "Stop"


class TimeInForce(models.TextChoices):
    GTC = "GTC", "Good till cancelled"
    DAY = "DAY", "Day"
    IOC = "IOC", "Immediate or cancel"
    FOK = "FOK", "Fill or kill"


class Order(models.Model):
    """An order and its lifecycle. ``client_order_id`` is the idempotency key end to end.

    ``algo_id``, ``trader`` and ``desk`` record who decided it (RTS 6 Art. 12 attribution).
    ``status`` moves only through ``trading.order_states``; use ``order_transition``.
    """

    client_order_id = models.CharField(max_length=64, unique=True)
    broker_order_id = models.CharField(max_length=64, blank=True)  # no query filters on it (trading 0006)
    broker_deal_id = models.CharField(max_length=64, blank=True)
    # Indexed by the leading column of (account, status) and (instrument, created_at) (trading 0006).
    account = models.ForeignKey(TradingAccount, on_delete=models.PROTECT, related_name="orders", db_index=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders", db_index=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=8, choices=OrderType.choices, default=OrderType.MARKET)
    quantity = models.DecimalField(**QTY, help_text="Lots")
    filled_quantity = models.DecimalField(**QTY, default=Decimal(0))
    average_fill_price = models.DecimalField(**PRICE, null=True, blank=True)
    limit_price = models.DecimalField(**PRICE, null=True, blank=True)
    stop_price = models.DecimalField(**PRICE, null=True, blank=True)
    stop_loss = models.DecimalField(**PRICE, null=True, blank=True)
    take_profit = models.DecimalField(**PRICE, null=True, blank=True)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    algo_id = models.CharField("algorithm id", max_length=64, blank=True)  # indexed in Meta (order_algo_idx)
    trader = models.ForeignKey(  # indexed in Meta, its non-null ids only (order_trader_idx)
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="orders", db_index=False
    )
    desk = models.CharField(max_length=64, blank=True)
    signal_id = models.CharField(max_length=64, blank=True, help_text="Prediction that led to it")  # order_signal_idx
    status = models.CharField(max_length=16, choices=[(s.value, s.value) for s in OrderStatus], default=OrderStatus.NEW)
    reject_reason = models.TextField(blank=True)
    # Stage timestamps: EVENT times (UTC, microseconds; RTS 25): when the order was received,
    # decided, sent, filled, closed. In a replay, the replayed market time.
    created_at = models.DateTimeField(db_index=True, help_text="Received (event time)")
    decided_at = models.DateTimeField(null=True, blank=True, help_text="Risk/compliance decision (event time)")
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="Sent to the broker (event time)")
    first_fill_at = models.DateTimeField(null=True, blank=True)
    last_fill_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Reached a terminal state (event time)")
    # Record times: the wall clock of the first and of the last write.
    recorded_at = models.DateTimeField(help_text="Wall clock of the first write")
    updated_at = models.DateTimeField(help_text="Wall clock of the last write")

    class Meta:
        ordering = ["-created_at"]
        # Every index is written by every order; each one here serves a query (trading 0006 says
        # which). Exact-match indexes only: no query filters these columns with LIKE 'prefix%'.
        indexes = [
            models.Index(fields=["account", "status"]),
            models.Index(fields=["instrument", "created_at"]),
            models.Index(fields=["algo_id"], name="order_algo_idx"),
            models.Index(fields=["signal_id"], name="order_signal_idx"),
            # An algorithm's order has no trader: only orders with one are indexed (trading 0007).
            models.Index(fields=["trader"], name="order_trader_idx", condition=Q(trader__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(filled_quantity__lte=models.F("quantity")), name="order_not_overfilled"),
            models.CheckConstraint(
                condition=~Q(order_type=OrderType.LIMIT) | Q(limit_price__isnull=False), name="order_limit_has_price"
            ),
            models.CheckConstraint(
                condition=~Q(order_type=OrderType.STOP) | Q(stop_price__isnull=False), name="order_stop_has_price"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.quantity} {self.instrument_id} [{self.status}]"

    @property
    def is_terminal(self) -> bool:
        return OrderStatus(self.status) in TERMINAL

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


class Execution(models.Model):
    """A fill. ``broker_deal_id`` is unique per account: recording the same deal twice is a no-op."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="executions")
    # Indexed by the leading column of execution_unique_deal (account, broker_deal_id) (trading 0006).
    account = models.ForeignKey(TradingAccount, on_delete=models.PROTECT, related_name="executions", db_index=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="executions")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**PRICE)
    fee = models.DecimalField(**MONEY, default=Decimal(0))
    fee_currency = models.CharField(max_length=3, blank=True)
    venue = models.CharField(max_length=4, default="XXXX", help_text="MIC, XOFF or XXXX")
    liquidity_provider = models.CharField(max_length=64, blank=True)
    broker_deal_id = models.CharField(max_length=64)
    arrival_mid = models.DecimalField(**PRICE, null=True, blank=True, help_text="Mid when the order arrived")
    # The touch when the order arrived (ask to buy, bid to sell: the best-execution report's
    # reference); empty on fills recorded before trading 0009 and on fills found by reconciliation.
    arrival_bid = models.DecimalField(**PRICE, null=True, blank=True, help_text="Bid when the order arrived")
    arrival_ask = models.DecimalField(**PRICE, null=True, blank=True, help_text="Ask when the order arrived")
    executed_at = models.DateTimeField(db_index=True, help_text="The deal's time (event time)")
    recorded_at = models.DateTimeField(help_text="Wall clock of the write")

    class Meta:
        ordering = ["-executed_at"]
        constraints = [
            models.UniqueConstraint(fields=["account", "broker_deal_id"], name="execution_unique_deal"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="execution_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="execution_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_deal_id}: {self.side} {self.quantity} @ {self.price}"


class Position(models.Model):
    """Net position per account and instrument, written by the order path (``trading.orders``)
    with every fill, and marked to market on the execution worker's cadence."""

    account = models.ForeignKey(TradingAccount, on_delete=models.PROTECT, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="positions")
    net_quantity = models.DecimalField(**QTY, default=Decimal(0), help_text="Signed lots")
    average_price = models.DecimalField(**PRICE, default=Decimal(0))
    realised_pnl = models.DecimalField(**MONEY, default=Decimal(0))
    unrealised_pnl = models.DecimalField(**MONEY, default=Decimal(0))
    mark_price = models.DecimalField(**PRICE, null=True, blank=True)
    as_of = models.DateTimeField(
        null=True, blank=True, help_text="Event time of the last fill or mark that changed it (null before any)"
    )
    updated_at = models.DateTimeField(help_text="Wall clock of the last write")

    class Meta:
        ordering = ["account", "instrument"]
        constraints = [models.UniqueConstraint(fields=["account", "instrument"], name="position_unique")]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.instrument_id}: {self.net_quantity} @ {self.average_price}"


# ---------------------------------------------------------------- risk controls (RTS 6 Art. 12, 15, 17)


class RiskLimit(models.Model):
    """Pre-trade risk limits for an account and/or an instrument; empty fields mean "no limit".

    Scope: ``account`` and ``instrument`` both set = that instrument on that account; only
    ``account`` = account-wide; only ``instrument`` = that instrument on every account; neither =
    the firm-wide default. For one control the most specific row with a value wins. The execution
    worker holds them in memory and reloads on change. Change through
    ``trading.controls.services`` (the admin does), which audits before and after.
    """

    account = models.ForeignKey(
        TradingAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="risk_limits"
    )
    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, null=True, blank=True, related_name="risk_limits"
    )
    max_position_lots = models.DecimalField(
        **QTY, null=True, blank=True, help_text="Largest |net position + pending orders| in lots"
    )
    max_gross_exposure = models.DecimalField(**MONEY, null=True, blank=True, help_text="Account currency")
    max_net_exposure = models.DecimalField(**MONEY, null=True, blank=True, help_text="Account currency")
    check_margin = models.BooleanField(default=True, help_text="Refuse orders whose margin exceeds free margin")
    daily_loss_limit = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Loss since 00:00 UTC (positive) that makes the account reduce-only"
    )
    max_drawdown = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Fraction below peak equity (0.10 = 10%) that makes the account reduce-only",
    )
    max_submits_per_second = models.PositiveIntegerField(null=True, blank=True)
    max_modifies_per_second = models.PositiveIntegerField(null=True, blank=True)
    max_open_orders = models.PositiveIntegerField(null=True, blank=True)
    duplicate_window_ms = models.PositiveIntegerField(
        null=True, blank=True, default=1000, help_text="Same symbol/side/size/price within this window is a duplicate"
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField()
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["account", "instrument"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "instrument"],
                condition=Q(account__isnull=False, instrument__isnull=False),
                name="risklimit_unique_account_instrument",
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(account__isnull=False, instrument__isnull=True),
                name="risklimit_unique_account",
            ),
            models.UniqueConstraint(
                fields=["instrument"],
                condition=Q(account__isnull=True, instrument__isnull=False),
                name="risklimit_unique_instrument",
            ),
            models.CheckConstraint(
                condition=Q(max_drawdown__isnull=True) | Q(max_drawdown__gt=0, max_drawdown__lte=1),
                name="risklimit_drawdown_fraction",
            ),
        ]

    def __str__(self) -> str:
        account = self.account.name if self.account_id else "all accounts"
        instrument = self.instrument.symbol if self.instrument_id else "all instruments"
        return f"limits: {account} / {instrument}"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class RiskLimitProposal(models.Model):
    """A proposed change to the risk limits of one scope (account and/or instrument, or the firm),
    applied only when a second risk manager approves it (four eyes on the person, as for
    compliance rules). ``values`` holds the proposed fields as JSON (decimals as strings).
    Written by ``trading.controls.services.risk_limit_change_*`` (audited)."""

    limit = models.ForeignKey(
        RiskLimit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="proposals",
        help_text="The row it changes (empty: it creates one)",
    )
    account = models.ForeignKey(TradingAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    values = models.JSONField(default=dict)
    reason = models.TextField()
    status = models.CharField(
        max_length=8, choices=ProposalStatus.choices, default=ProposalStatus.PENDING, db_index=True
    )
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("proposed_by")),
                name="risklimitproposal_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        account = self.account.name if self.account_id else "all accounts"
        instrument = self.instrument.symbol if self.instrument_id else "all instruments"
        return f"limit change {account} / {instrument} [{self.status}]"


class DrawdownRebase(models.Model):
    """A risk manager's acknowledgement of an account's drawdown: once a DIFFERENT risk manager
    approves it (four eyes on the person, as for limit changes), the execution worker re-bases
    the account's peak equity on its equity at that moment (the drawdown becomes 0, so a
    REDUCING it caused ends, and the drawdown limit counts afresh from there). A flat account
    cannot earn a drawdown back: until 2026-12-07 only a change of the limit ended it.

    ``seen_*``: the account's risk snapshot when it was proposed (what the proposer saw).
    ``peak_before``/``peak_after``/``applied_at`` (event time)/``applied_recorded_at`` (wall
    clock): written by the worker when it applied it. Written by ``trading.controls.drawdown``
    (audited, RTS 6 Art. 15 and 17; 2017/565 Art. 72)."""

    account = models.ForeignKey(TradingAccount, on_delete=models.PROTECT, related_name="drawdown_rebases")
    reason = models.TextField()
    status = models.CharField(
        max_length=8, choices=ProposalStatus.choices, default=ProposalStatus.PENDING, db_index=True
    )
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    seen_peak_equity = models.DecimalField(**MONEY, null=True, blank=True)
    seen_equity = models.DecimalField(**MONEY, null=True, blank=True)
    seen_drawdown = models.DecimalField(max_digits=8, decimal_places=6, null=True, blank=True)
    peak_before = models.DecimalField(**MONEY, null=True, blank=True, help_text="Peak equity the worker re-based")
    peak_after = models.DecimalField(**MONEY, null=True, blank=True, help_text="The equity it re-based it on")
    drawdown_before = models.DecimalField(max_digits=8, decimal_places=6, null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True, help_text="Event time the worker applied it")
    applied_recorded_at = models.DateTimeField(null=True, blank=True, help_text="Wall clock of that write")
    applied_by = models.CharField(max_length=64, blank=True, help_text="The worker that applied it")

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("proposed_by")),
                name="drawdownrebase_four_eyes",
            ),
            models.UniqueConstraint(
                fields=["account"], condition=Q(status="pending"), name="drawdownrebase_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"drawdown re-base {self.account_id} [{self.status}]"


class KillScope(models.TextChoices):
    ALL = "all", "Everything"
    ACCOUNT = "account", "An account (id)"
    INSTRUMENT = "instrument", "An instrument (symbol)"
    ALGO = "algo", "An algorithm (algo id)"
    TRADER = "trader", "A trader (user id)"


class KillSwitch(models.Model):
    """One engagement of the kill switch (RTS 6 Art. 12), from engaging to release.

    While a row is engaged, no new order in its scope passes the pre-trade gate; engaging cancels
    at once every unexecuted order in scope. At most one engaged row per (scope, value). Change
    only through ``trading.controls.services`` (audited, published as ``killswitch.changed``).
    """

    scope = models.CharField(max_length=16, choices=KillScope.choices)
    scope_value = models.CharField(max_length=64, blank=True, help_text="Account id, symbol, algo id or user id")
    engaged = models.BooleanField(default=True)
    engaged_at = models.DateTimeField()
    engaged_by = models.CharField(max_length=150, help_text="user:<name>, or service:<name> when automatic")
    engage_reason = models.TextField()
    source = models.CharField(max_length=16, help_text="admin, api, command or automatic")
    cancelled_orders = models.JSONField(default=list, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_reason = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "kill switches"  # the admin read "Kill switchs"
        ordering = ["-engaged_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "scope_value"], condition=Q(engaged=True), name="killswitch_one_engaged_per_scope"
            ),
            models.CheckConstraint(
                condition=Q(scope="all", scope_value="") | (~Q(scope="all") & ~Q(scope_value="")),
                name="killswitch_scope_value",
            ),
        ]

    def __str__(self) -> str:
        target = self.scope if self.scope == KillScope.ALL else f"{self.scope}={self.scope_value}"
        return f"kill switch {target} ({'engaged' if self.engaged else 'released'})"


class UnwritableOrder(models.Model):
    """An order the broker answered whose write failed, that the execution worker cannot write
    now for a reason retrying will not change (its instrument not loaded by the worker, a row the
    database refuses): its account stays "needs reconcile" (we cannot vouch for its orders) while
    the row exists, the console says why, and the worker retries it silently each turn.

    Written once per entry by ``trading.orders.reconcile.unwritable_order_raise`` (with the one
    alert and error log), deleted by ``unwritable_orders_clear`` when the entry is written or
    found in our records. Both times: ``occurred_at`` the order's event time (received),
    ``failed_at`` the wall clock of the failed write, ``recorded_at`` the wall clock of this row.
    """

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="unwritable_orders")
    client_order_id = models.CharField(max_length=64, unique=True)
    symbol = models.CharField(max_length=32)
    broker_answer = models.CharField(max_length=64)
    reason = models.TextField(help_text="Why the worker cannot write it, in its words")
    occurred_at = models.DateTimeField(help_text="Event time: the order was received")
    failed_at = models.DateTimeField(help_text="Wall clock of the write that failed after the broker answered")
    recorded_at = models.DateTimeField(help_text="Wall clock: the worker found it cannot write it")

    class Meta:
        ordering = ["account_id", "recorded_at"]

    def __str__(self) -> str:
        return f"unwritable order {self.client_order_id} of account {self.account_id}: {self.reason}"


class AccountRiskSnapshot(models.Model):
    """The execution worker's latest view of an account's equity, drawdown and trading state.

    Derived data (recomputable from fills and quotes), written by ``trading.orders.services.
    account_state_save`` at most once per wall-clock interval per account, with every fill and at
    the worker's shutdown, for the dashboard, risk managers and the worker's own restart.
    """

    account = models.OneToOneField(TradingAccount, on_delete=models.CASCADE, related_name="risk_snapshot")
    balance = models.DecimalField(**MONEY)
    equity = models.DecimalField(**MONEY)
    unrealised_pnl = models.DecimalField(**MONEY)
    peak_equity = models.DecimalField(**MONEY)
    drawdown = models.DecimalField(max_digits=8, decimal_places=6, help_text="Fraction below peak equity")
    daily_pnl = models.DecimalField(**MONEY, help_text="Equity change since 00:00 UTC")
    used_margin = models.DecimalField(**MONEY, default=Decimal(0))
    trading_state = models.CharField(max_length=8, default="ACTIVE")
    breaker_state = models.CharField(max_length=9, default="closed")
    as_of = models.DateTimeField(help_text="Event time of the figures")
    updated_at = models.DateTimeField(help_text="Wall clock of the write")

    def __str__(self) -> str:
        return f"{self.account_id}: equity {self.equity} dd {self.drawdown} {self.trading_state}"


class ReplayCheckpoint(models.Model):
    """How far a replay of recorded market data got, per symbol and timeframe: the last bar whose
    consequences (and the audit trail's records of them) are in the database, so the next run of
    the embedded replay resumes after it and market time only moves forward in the books.

    Written by ``trading.services.replay_checkpoint_save`` as the replay runs; read by the embedded
    run (``manage.py run_embedded``) before it starts. Market-data events themselves are not
    recorded (they go through the bus), so this row is where the system of record keeps it."""

    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    source = models.CharField(max_length=64, help_text="What was replayed, e.g. 'backtesting EURUSD'")
    first_bar_at = models.DateTimeField(help_text="Open time of the first bar ever replayed")
    last_bar_at = models.DateTimeField(help_text="Open time of the last bar replayed (market time)")
    bars = models.PositiveIntegerField(help_text="Bars replayed, all runs together")
    saved_at = models.DateTimeField(help_text="Wall clock of the write")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "timeframe"], name="replay_checkpoint_once")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} replayed to {self.last_bar_at:%Y-%m-%d %H:%M} ({self.bars} bars)"
