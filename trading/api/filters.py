"""Filters of the trading API (django-filter). Query parameters only narrow what the selector
returned; they never widen what a role may see."""

from __future__ import annotations

from django_filters import rest_framework as filters

from tradeops.api.filters import IdFilter, UtcDateTimeFilter
from trading.models import (
    AssetClass,
    DrawdownRebase,
    Execution,
    Instrument,
    KillScope,
    KillSwitch,
    Order,
    OrderType,
    Position,
    ProposalStatus,
    RiskLimit,
    RiskLimitProposal,
    Side,
    TradingAccount,
)
from trading.order_states import OrderStatus


class InstrumentFilter(filters.FilterSet):
    asset_class = filters.ChoiceFilter(choices=AssetClass.choices)
    is_active = filters.BooleanFilter()
    quote_currency = filters.CharFilter(max_length=3)

    class Meta:
        model = Instrument
        fields = ["asset_class", "is_active", "quote_currency"]


class AccountFilter(filters.FilterSet):
    is_active = filters.BooleanFilter()
    client_id = filters.CharFilter(max_length=64)

    class Meta:
        model = TradingAccount
        fields = ["is_active", "client_id"]


class OrderFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", max_length=32)
    status = filters.MultipleChoiceFilter(choices=[(s.value, s.value) for s in OrderStatus])
    side = filters.ChoiceFilter(choices=Side.choices)
    order_type = filters.ChoiceFilter(choices=OrderType.choices)
    algo_id = filters.CharFilter(max_length=64)
    signal_id = filters.CharFilter(max_length=64)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["account", "symbol", "status", "side", "order_type", "algo_id", "signal_id"]


class ExecutionFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", max_length=32)
    order = filters.CharFilter(field_name="order__client_order_id", max_length=64)
    side = filters.ChoiceFilter(choices=Side.choices)
    executed_after = UtcDateTimeFilter(field_name="executed_at", lookup_expr="gte")
    executed_before = UtcDateTimeFilter(field_name="executed_at", lookup_expr="lt")

    class Meta:
        model = Execution
        fields = ["account", "symbol", "order", "side"]


class PositionFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", max_length=32)
    open = filters.BooleanFilter(method="filter_open", help_text="true: only non-zero positions")

    class Meta:
        model = Position
        fields = ["account", "symbol", "open"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.exclude(net_quantity=0) if value else queryset.filter(net_quantity=0)


class RiskLimitFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", max_length=32)
    is_active = filters.BooleanFilter()

    class Meta:
        model = RiskLimit
        fields = ["account", "symbol", "is_active"]


class RiskLimitProposalFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", max_length=32)
    status = filters.ChoiceFilter(choices=ProposalStatus.choices)

    class Meta:
        model = RiskLimitProposal
        fields = ["account", "symbol", "status"]


class DrawdownRebaseFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id")
    status = filters.ChoiceFilter(choices=ProposalStatus.choices)
    applied = filters.BooleanFilter(field_name="applied_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = DrawdownRebase
        fields = ["account", "status", "applied"]


class KillSwitchFilter(filters.FilterSet):
    engaged = filters.BooleanFilter()
    scope = filters.ChoiceFilter(choices=KillScope.choices)

    class Meta:
        model = KillSwitch
        fields = ["engaged", "scope"]
