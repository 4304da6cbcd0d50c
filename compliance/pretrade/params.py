"""Parameters of the pre-trade compliance controls: the ``parameters`` of their ``ComplianceRule``
rows, validated on save by converting through these structs (the error names the field).

Money, prices and quantities are Decimal (exact at the limit: a value equal to the limit passes).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec

PosDecimal = Decimal  # positivity checked in Params.__post_init__ (msgspec has no bounds on Decimal)
Count = Annotated[int, msgspec.Meta(ge=1)]
PosFloat = Annotated[float, msgspec.Meta(gt=0)]


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    def __post_init__(self):
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, Decimal) and not (value.is_finite() and value > 0):
                raise ValueError(f"Expected a positive finite number, got {value} - at `$.{name}`")


class PriceCollarParams(Params, frozen=True, kw_only=True):
    """RTS 6 Art. 15(1)(a), order by order: the order price may differ from the latest mid by at
    most ``max_deviation_bps``; and over a period: from the mid ``period_s`` ago by at most
    ``max_period_deviation_bps`` (both or neither)."""

    max_deviation_bps: PosDecimal
    period_s: PosFloat | None = None
    max_period_deviation_bps: PosDecimal | None = None

    def __post_init__(self):
        super().__post_init__()
        if (self.period_s is None) != (self.max_period_deviation_bps is None):
            raise ValueError("period_s and max_period_deviation_bps go together - at `$.period_s`")


class MaxOrderValueParams(Params, frozen=True, kw_only=True):
    """RTS 6 Art. 15(1)(b): notional (lots x contract size x price) in the quote currency."""

    max_value: PosDecimal


class MaxOrderVolumeParams(Params, frozen=True, kw_only=True):
    """RTS 6 Art. 15(1)(c): lots per order."""

    max_lots: PosDecimal


class MessageRateParams(Params, frozen=True, kw_only=True):
    """RTS 6 Art. 15(1)(d): submissions, modifications and cancellations per window."""

    max_messages: Count
    window_s: PosFloat = 1.0


class ExecutionThrottleParams(Params, frozen=True, kw_only=True):
    """RTS 6 Art. 15(3): more than ``max_executions`` executions of one algorithm within
    ``window_s`` disables it until a designated person re-enables it."""

    max_executions: Count
    window_s: PosFloat = 60.0


class RestrictedListParams(Params, frozen=True, kw_only=True):
    """Restricted symbols are refused; watch-list symbols pass, flagged for compliance."""

    restricted: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    reason: str = ""


class PositionLimitParams(Params, frozen=True, kw_only=True):
    """|net position after the order| in lots; orders that reduce the position always pass."""

    max_net_lots: PosDecimal


PRETRADE_PARAMS: dict[str, type[Params]] = {
    "price_collar": PriceCollarParams,
    "max_order_value": MaxOrderValueParams,
    "max_order_volume": MaxOrderVolumeParams,
    "max_messages_per_account": MessageRateParams,
    "max_messages_per_algo": MessageRateParams,
    "execution_throttle": ExecutionThrottleParams,
    "restricted_list": RestrictedListParams,
    "position_limit": PositionLimitParams,
}


class PretradeParameterError(ValueError):
    pass


def pretrade_params_convert(rule_type: str, raw: dict[str, Any] | None) -> Params:
    cls = PRETRADE_PARAMS.get(rule_type)
    if cls is None:
        raise PretradeParameterError(f"unknown pre-trade control {rule_type!r}")
    try:
        return msgspec.convert(raw or {}, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise PretradeParameterError(f"{rule_type}: {exc}") from None
