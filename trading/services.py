"""Writers of the trading reference data: instruments and accounts. Keyword-only, atomic.

Orders, fills and positions are written by the order path, ``trading.orders.services``; risk
limits and the kill switch by ``trading.controls.services``.
"""

from __future__ import annotations

from django.db import transaction

from trading.errors import OrderValidationError
from trading.models import Instrument, TradingAccount


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
