"""Pre-trade risk: limits, the per-account hot state, the trading breakers (one per account), the kill switch mirror,
the risk checks the pre-trade gate runs (``risk_checks``) and the headroom those limits leave,
which the strategy sizes within (``order_headroom``). Pure: no Django, no clock."""

from trading.risk.breaker import BreakerBook, TradingBreaker
from trading.risk.headroom import Headroom, order_headroom
from trading.risk.killswitch import KillScope, KillSwitchBook
from trading.risk.limits import LimitBook, RiskLimits
from trading.risk.manager import CODES, RiskManager, TradingState, risk_checks
from trading.risk.state import AccountBook, OpenOrder

__all__ = [
    "CODES",
    "AccountBook",
    "BreakerBook",
    "Headroom",
    "KillScope",
    "KillSwitchBook",
    "LimitBook",
    "OpenOrder",
    "RiskLimits",
    "RiskManager",
    "TradingBreaker",
    "TradingState",
    "order_headroom",
    "risk_checks",
]
