"""System checks of the compliance settings (``manage.py check``; every management command runs
them before it starts, ``run_stage surveillance`` and ``run_embedded`` among them)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register("compliance")
def surveillance_market_known(app_configs, **kwargs):
    """``SURVEILLANCE_MARKET`` names a market profile (``MARKET_PROFILES``): an unknown one would
    stop the surveillance stage at start with a bare ``ParameterError``, after the processes came
    up; here it is named with the setting and the known ones."""
    from compliance.surveillance.params import MARKET_PROFILES

    market = getattr(settings, "SURVEILLANCE_MARKET", "otc")
    if market in MARKET_PROFILES:
        return []
    return [
        checks.Error(
            f"SURVEILLANCE_MARKET={market!r} names no market profile; known: {', '.join(MARKET_PROFILES)}.",
            hint="Set it to the kind of market the firm's orders trade on: otc (dealer quotes, the default) or "
            "order_book (an exchange-style limit order book); docs/compliance-monitor.md, 'Market profiles'.",
            id="compliance.E001",
        )
    ]
