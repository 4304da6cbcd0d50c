"""The kill switch as the order path sees it: which scopes are engaged, and what they block.

RTS 6 Art. 12: the firm must be able to cancel at once any or all unexecuted orders and stop new
ones, per algorithm, trader, desk or client. The system of record (``trading.models.KillSwitch``)
is the truth; the execution worker mirrors the engaged rows here and refreshes them on every
``killswitch.changed`` event. Pure.
"""

from __future__ import annotations

from enum import StrEnum

from trading.intents import OrderIntent


class KillScope(StrEnum):
    ALL = "all"
    ACCOUNT = "account"
    INSTRUMENT = "instrument"
    ALGO = "algo"
    TRADER = "trader"


def scope_matches(scope: str, value: str, *, account_id, symbol: str, algo_id: str, trader_id) -> bool:
    """Does a switch engaged on (scope, value) cover an order with these attributes?"""
    if scope == KillScope.ALL:
        return True
    if scope == KillScope.ACCOUNT:
        return str(account_id) == value
    if scope == KillScope.INSTRUMENT:
        return symbol == value
    if scope == KillScope.ALGO:
        return algo_id == value
    if scope == KillScope.TRADER:
        return trader_id is not None and str(trader_id) == value
    raise ValueError(f"unknown kill switch scope {scope!r}; expected one of {[s.value for s in KillScope]}")


class KillSwitchBook:
    def __init__(self):
        self.engaged: set[tuple[str, str]] = set()

    def engage(self, scope: str, value: str = "") -> None:
        KillScope(scope)
        self.engaged.add((str(scope), "" if scope == KillScope.ALL else str(value)))

    def release(self, scope: str, value: str = "") -> None:
        self.engaged.discard((str(scope), "" if scope == KillScope.ALL else str(value)))

    def replace(self, engaged) -> None:
        self.engaged = {(str(s), str(v)) for s, v in engaged}

    def blocking(self, intent: OrderIntent) -> tuple[str, str] | None:
        """The first engaged (scope, value) that covers the intent, or None."""
        for scope, value in self.engaged:
            if scope_matches(
                scope,
                value,
                account_id=intent.account_id,
                symbol=intent.symbol,
                algo_id=intent.algo_id,
                trader_id=intent.trader_id,
            ):
                return scope, value
        return None

    def account_halted(self, account_id: int) -> bool:
        return (KillScope.ALL.value, "") in self.engaged or (KillScope.ACCOUNT.value, str(account_id)) in self.engaged
