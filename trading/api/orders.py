"""Orders, executions (fills) and positions with P&L (read). Views call one selector each.

Placing an order (``POST /api/v1/orders/``) goes through the execution worker's gate and
services; it is built on the order path of ``trading/orders/`` (see README, "Integration API").
"""

from __future__ import annotations

from rest_framework import serializers

from tradeops.api.views import ApiDetailView, ApiListView
from trading.api.filters import ExecutionFilter, OrderFilter, PositionFilter
from trading.models import Execution, Order, Position
from trading.selectors import executions_visible_to, order_visible_get, orders_visible_to, positions_visible_to


class OrderOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    symbol = serializers.CharField(source="instrument.symbol")
    trader = serializers.CharField(source="trader.username", allow_null=True, help_text="Username, or null")

    class Meta:
        model = Order
        fields = [
            "client_order_id",
            "broker_order_id",
            "account",
            "symbol",
            "side",
            "order_type",
            "quantity",
            "filled_quantity",
            "average_fill_price",
            "limit_price",
            "stop_price",
            "stop_loss",
            "take_profit",
            "time_in_force",
            "algo_id",
            "trader",
            "desk",
            "signal_id",
            "status",
            "reject_reason",
            "created_at",
            "decided_at",
            "submitted_at",
            "first_fill_at",
            "last_fill_at",
            "closed_at",
            "recorded_at",
            "updated_at",
        ]


class OrderList(ApiListView):
    """Orders, newest first, with their reject reason and two times: the lifecycle's event times
    (``created_at`` ... ``closed_at``: in a replay, the replayed market time) and the record
    times (``recorded_at``, ``updated_at``: wall clock). UTC, µs."""

    matrix = {"GET": ("orders", "read")}
    serializer_class = OrderOutput
    filterset_class = OrderFilter

    def select(self):
        return orders_visible_to(user=self.request.user)


class OrderDetail(ApiDetailView):
    """One order by its client order id (the idempotency key end to end)."""

    matrix = {"GET": ("orders", "read")}
    serializer_class = OrderOutput

    def select_one(self, client_order_id):
        return order_visible_get(user=self.request.user, client_order_id=client_order_id)


class ExecutionOutput(serializers.ModelSerializer):
    order = serializers.CharField(source="order.client_order_id")
    account = serializers.IntegerField(source="account_id")
    symbol = serializers.CharField(source="instrument.symbol")

    class Meta:
        model = Execution
        fields = [
            "broker_deal_id",
            "order",
            "account",
            "symbol",
            "side",
            "quantity",
            "price",
            "fee",
            "fee_currency",
            "venue",
            "liquidity_provider",
            "arrival_mid",
            "executed_at",
            "recorded_at",
        ]


class ExecutionList(ApiListView):
    """Fills, newest first: event time (``executed_at``) and record time (``recorded_at``)."""

    matrix = {"GET": ("executions", "read")}
    serializer_class = ExecutionOutput
    filterset_class = ExecutionFilter

    def select(self):
        return executions_visible_to(user=self.request.user)


class PositionOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    account_name = serializers.CharField(source="account.name")
    symbol = serializers.CharField(source="instrument.symbol")
    pnl_currency = serializers.CharField(source="instrument.quote_currency", help_text="P&L is in this currency")

    class Meta:
        model = Position
        fields = [
            "account",
            "account_name",
            "symbol",
            "net_quantity",
            "average_price",
            "mark_price",
            "realised_pnl",
            "unrealised_pnl",
            "pnl_currency",
            "as_of",
            "updated_at",
        ]


class PositionList(ApiListView):
    """Net positions per account and instrument (lots), with realised P&L and unrealised P&L at
    the last mark (``mark_price``), in the instrument's quote currency; ``as_of`` the event time
    of those figures, ``updated_at`` the wall clock of their write."""

    matrix = {"GET": ("positions", "read")}
    serializer_class = PositionOutput
    filterset_class = PositionFilter
    cursor_ordering = "pk"

    def select(self):
        return positions_visible_to(user=self.request.user)
