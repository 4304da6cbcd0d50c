"""Brokers: the interface (``base``), MetaTrader 5 (``mt5``) and the paper broker (``paper``).

``get_broker()`` builds the one ``settings.BROKER`` names (``paper``, the default, or ``mt5``).
Import types from here: ``from trading.brokers import OrderRequest, OrderOutcome, get_broker``.
"""

from __future__ import annotations

from typing import Any

from trading.brokers.base import (
    ACCEPTED,
    BUY,
    RETRYABLE,
    SELL,
    UNKNOWN_STATE,
    AccountInfo,
    Broker,
    BrokerConnectionError,
    BrokerError,
    BrokerNotConfigured,
    BrokerPosition,
    BrokerProtocolError,
    BrokerRequestError,
    BrokerUnavailable,
    Deal,
    DealEntry,
    FillingMode,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    OrderResult,
    OrderType,
    Quote,
    SymbolNotFound,
    SymbolSpec,
)

__all__ = [
    "ACCEPTED",
    "BUY",
    "RETRYABLE",
    "SELL",
    "UNKNOWN_STATE",
    "AccountInfo",
    "Broker",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerNotConfigured",
    "BrokerPosition",
    "BrokerProtocolError",
    "BrokerRequestError",
    "BrokerUnavailable",
    "Deal",
    "DealEntry",
    "FillingMode",
    "OpenOrder",
    "OrderOutcome",
    "OrderRequest",
    "OrderResult",
    "OrderType",
    "Quote",
    "SymbolNotFound",
    "SymbolSpec",
    "get_broker",
]


def get_broker(name: str | None = None, **overrides: Any) -> Broker:
    """The broker ``name`` (default ``settings.BROKER``), not yet connected.

    ``paper``: instruments from the database when it has any, else ``trading.seed_data``;
    ``PaperConfig`` fields may be passed as ``config=``. ``mt5``: credentials from
    ``MT5_LOGIN``/``MT5_PASSWORD``/``MT5_SERVER``/``MT5_PATH``, the module from
    ``MT5_MODULE`` (default ``MetaTrader5``) and the trade server's clock from
    ``MT5_SERVER_TZ``. Raises BrokerNotConfigured for anything else."""
    from django.conf import settings

    name = (name or getattr(settings, "BROKER", "paper")).lower()
    if name == "paper":
        from trading.brokers.paper import PaperBroker

        return PaperBroker.from_instruments(_instrument_rows(), **overrides)
    if name == "mt5":
        from trading.brokers.mt5 import MT5Broker

        kwargs: dict[str, Any] = {
            "login": getattr(settings, "MT5_LOGIN", 0),
            "password": getattr(settings, "MT5_PASSWORD", ""),
            "server": getattr(settings, "MT5_SERVER", ""),
            "path": getattr(settings, "MT5_PATH", ""),
            "module_name": getattr(settings, "MT5_MODULE", "MetaTrader5"),
            "server_tz": _zone(getattr(settings, "MT5_SERVER_TZ", "UTC")),
        }
        kwargs.update(overrides)
        return MT5Broker(**kwargs)
    raise BrokerNotConfigured(f"BROKER={name!r} is not a broker; use 'paper' or 'mt5'")


def _zone(name: str):
    from datetime import UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BrokerNotConfigured(f"MT5_SERVER_TZ={name!r} is not a known time zone") from None


def _instrument_rows() -> list:
    from django.db import DatabaseError

    from trading.seed_data import INSTRUMENTS

    try:
        from trading.models import Instrument

        rows = list(Instrument.objects.filter(is_active=True))
    except DatabaseError:  # no tables yet (first run before migrate): the seed specs will do
        rows = []
    return rows or list(INSTRUMENTS)
