"""Writers of the trading reference data: instruments and accounts. Keyword-only, atomic.

Also the replay checkpoint (how far a replay of recorded market data got). Orders, fills and
positions are written by the order path, ``trading.orders.services``; risk
limits and the kill switch by ``trading.controls.services``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from tradeops.core.clock import utcnow
from tradeops.core.errors import Conflict
from trading.errors import OrderValidationError
from trading.models import Instrument, ReplayCheckpoint, TradingAccount


@transaction.atomic
def instrument_upsert(*, symbol: str, **spec) -> tuple[Instrument, bool]:
    """Create or update an instrument specification by symbol."""
    instrument, created = Instrument.objects.update_or_create(symbol=symbol, defaults=spec)
    return instrument, created


@transaction.atomic
def account_upsert(*, mt5_server: str, mt5_login: int, **fields) -> tuple[TradingAccount, bool]:
    """Create or update a trading account by its MT5 login and server."""
    from tradeops.core.identifiers import lei_is_valid

    lei = fields.get("firm_lei", "")
    if lei and not lei_is_valid(lei):
        raise OrderValidationError(f"firm LEI {lei!r} fails the ISO 17442 check digits", code="invalid_lei")
    return TradingAccount.objects.update_or_create(mt5_server=mt5_server, mt5_login=mt5_login, defaults=fields)


@transaction.atomic
def replay_checkpoint_save(
    *, symbol: str, timeframe: str, source: str, first_bar_at: datetime, last_bar_at: datetime, bars: int
) -> ReplayCheckpoint:
    """Record that a replay of ``symbol``/``timeframe`` got to the bar opening at ``last_bar_at``
    (its consequences recorded), ``bars`` bars in all. Called by the embedded run as it goes and
    on the way out (``workers.replay_checkpoint``). Market time in the books only moves forward,
    so a save behind the stored bar is refused (``Conflict``, code ``replay_checkpoint_behind``)."""
    checkpoint = ReplayCheckpoint.objects.select_for_update().filter(symbol=symbol, timeframe=timeframe).first()
    if checkpoint is None:
        checkpoint = ReplayCheckpoint(symbol=symbol, timeframe=timeframe, first_bar_at=first_bar_at)
    elif last_bar_at < checkpoint.last_bar_at:
        raise Conflict(
            f"the {symbol} {timeframe} replay checkpoint is at {checkpoint.last_bar_at.isoformat()}: "
            f"a save at {last_bar_at.isoformat()} would move market time back",
            code="replay_checkpoint_behind",
        )
    checkpoint.source = source
    checkpoint.last_bar_at = last_bar_at
    checkpoint.bars = bars
    checkpoint.saved_at = utcnow()
    checkpoint.save()
    return checkpoint
