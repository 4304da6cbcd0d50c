"""Builders for the pure risk tests: an instrument spec, a risk manager with one account, intents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.gate import PreTradeGate
from trading.intents import InstrumentSpec, IntentAction, OrderIntent, Quote
from trading.risk import BreakerBook, LimitBook, RiskLimits, RiskManager, risk_checks

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACCOUNT = 1

EURUSD = InstrumentSpec(
    symbol="EURUSD",
    contract_size=Decimal(100000),
    tick_size=Decimal("0.00001"),
    volume_step=Decimal("0.01"),
    min_volume=Decimal("0.01"),
    max_volume=Decimal(100),
    margin_rate=Decimal("0.0333"),
)
GBPUSD = InstrumentSpec(
    symbol="GBPUSD",
    contract_size=Decimal(100000),
    tick_size=Decimal("0.00001"),
    volume_step=Decimal("0.01"),
    min_volume=Decimal("0.01"),
    max_volume=Decimal(100),
    margin_rate=Decimal("0.0333"),
)


def manager(balance: Decimal = Decimal(100000), breakers: BreakerBook | None = None, **limits) -> RiskManager:
    book = LimitBook(RiskLimits(**{"duplicate_window_ms": None, **limits}))
    m = RiskManager(limits=book, breakers=breakers)
    m.add_instrument(EURUSD)
    m.add_instrument(GBPUSD)
    m.add_account(ACCOUNT, balance=balance, now=T0)
    m.on_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    m.on_quote(Quote("GBPUSD", Decimal("1.30000"), Decimal("1.30002"), T0))
    return m


_counter = iter(range(1, 10**9))


def intent(
    side: str = "BUY",
    qty: str = "1",
    symbol: str = "EURUSD",
    at: datetime = T0,
    price: str = "1.10001",
    action: IntentAction = IntentAction.SUBMIT,
    **extra,
) -> OrderIntent:
    return OrderIntent(
        client_order_id=extra.pop("client_order_id", f"C{next(_counter)}"),
        account_id=extra.pop("account_id", ACCOUNT),
        symbol=symbol,
        side=side,
        quantity=Decimal(qty),
        reference_price=Decimal(price),
        ts=at,
        action=action,
        **extra,
    )


def gate_for(m: RiskManager) -> PreTradeGate:
    return PreTradeGate(risk_checks(m))


def decide(m: RiskManager, gate: PreTradeGate, i: OrderIntent, *, send: bool = True):
    """Evaluate; if approved and ``send``, count it as sent and open (what the worker does)."""
    ctx = m.context(i)
    decision = gate.evaluate(i, ctx)
    if decision.approved and send:
        gate.on_sent(i, ctx)
        m.on_order_sent(i)
    return decision


def fill(m: RiskManager, i: OrderIntent, price: str | None = None, qty: str | None = None, at=None):
    return m.on_fill(
        account_id=i.account_id,
        client_order_id=i.client_order_id,
        symbol=i.symbol,
        side=i.side,
        quantity=Decimal(qty) if qty else i.quantity,
        price=Decimal(price) if price else i.reference_price,
        now=at or i.ts + timedelta(milliseconds=1),
    )


def codes(decision) -> set[str]:
    return {c.code for c in decision.failures}
