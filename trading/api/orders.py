"""Orders (list, detail, and placing one), executions (fills) and positions with P&L. Views
call one selector or service each.

Placing an order (``POST /api/v1/orders/``) publishes a request for the execution worker that
trades the account (``trading.orders.requests.order_request``): the order then goes through the
same pre-trade gate, broker and write as the worker's own (RTS 6 Art. 15), idempotent by
``client_order_id``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView
from trading.api.filters import ExecutionFilter, OrderFilter, PositionFilter
from trading.models import Execution, Order, OrderType, Position, Side, TradingAccount
from trading.orders.requests import order_request, order_request_expire
from trading.selectors import (
    executions_visible_to,
    order_request_visible_get,
    order_visible_get,
    orders_visible_to,
    positions_visible_to,
)


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


class OrderRequestOutput(serializers.Serializer):
    client_order_id = serializers.CharField()
    requested = serializers.BooleanField(
        help_text="A new request was published by this call (false: a retry or a read)"
    )
    requested_at = serializers.DateTimeField(help_text="When the first request was received (UTC)")
    requested_by = serializers.CharField(help_text="Who asked (the audit record's actor)")
    status = serializers.CharField(
        help_text='"requested" until the execution worker wrote the order, then its status; "refused" '
        '(the worker does not trade the instrument) or "expired" (not taken up by expires_at) when it never will'
    )
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Past this time (UTC) no execution worker takes the request up: it expires"
    )
    reason = serializers.CharField(allow_blank=True, help_text="Why it was refused or expired (else empty)")
    order = OrderOutput(allow_null=True, help_text="The order once the worker wrote it (gate decision included)")


def _request_body(result) -> dict:
    return OrderRequestOutput(
        {
            "client_order_id": result.client_order_id,
            "requested": result.requested,
            "requested_at": result.requested_at,
            "requested_by": result.requested_by,
            "status": result.status,
            "expires_at": result.expires_at,
            "reason": result.reason,
            "order": result.order,
        }
    ).data


class OrderListPlace(ApiListView):
    """GET: orders, newest first, with their reject reason and two times: the lifecycle's event
    times (``created_at`` ... ``closed_at``: in a replay, the replayed market time) and the
    record times (``recorded_at``, ``updated_at``: wall clock). UTC, µs.

    POST: place an order (traders). It is handed to the execution worker that trades the account
    and meets the same pre-trade gate as the worker's own orders (every risk and compliance
    check: refused orders are recorded REJECTED with each failing check), is attributed to you,
    and is idempotent by ``client_order_id``: a retry with the same terms publishes nothing new
    (202 while the worker has not written it, then 200 with the order); other terms are refused
    with 409 (``client_order_id_reused``). Follow ``Location``:
    ``/api/v1/order-requests/{client_order_id}/``."""

    matrix = {"GET": ("orders", "read"), "POST": ("orders", "create")}
    serializer_class = OrderOutput
    filterset_class = OrderFilter

    class InputSerializer(StrictInputSerializer):
        client_order_id = serializers.CharField(max_length=27, help_text="Your idempotency key (1-27 characters)")
        account = serializers.PrimaryKeyRelatedField(queryset=TradingAccount.objects.all())
        symbol = serializers.CharField(
            max_length=32, help_text="An instrument's symbol (unknown: 400 unknown_instrument)"
        )
        side = serializers.ChoiceField(choices=Side.choices)
        quantity = serializers.DecimalField(max_digits=20, decimal_places=6, help_text="Lots, on the volume grid")
        order_type = serializers.ChoiceField(
            choices=[(OrderType.MARKET, "Market"), (OrderType.LIMIT, "Limit")], default=OrderType.MARKET
        )
        limit_price = serializers.DecimalField(max_digits=24, decimal_places=10, required=False, allow_null=True)
        stop_loss = serializers.DecimalField(max_digits=24, decimal_places=10, required=False, allow_null=True)
        take_profit = serializers.DecimalField(max_digits=24, decimal_places=10, required=False, allow_null=True)
        algo_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        desk = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def select(self):
        return orders_visible_to(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={202: OrderRequestOutput, 200: OrderRequestOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = order_request(
            requested_by=request.user,
            client_order_id=values["client_order_id"],
            account=values["account"],
            instrument=values["symbol"],  # a symbol: an unknown one is refused and audited
            side=values["side"],
            quantity=values["quantity"],
            order_type=values["order_type"],
            limit_price=values.get("limit_price"),
            stop_loss=values.get("stop_loss"),
            take_profit=values.get("take_profit"),
            algo_id=values["algo_id"],
            desk=values["desk"],
        )
        code = status.HTTP_200_OK if result.order is not None else status.HTTP_202_ACCEPTED
        response = Response(_request_body(result), status=code)
        response["Location"] = f"/api/v1/order-requests/{result.client_order_id}/"
        return response


class OrderRequestDetail(ApiDetailView):
    """An order requested over the API and what became of it: ``status`` is ``requested`` until
    the execution worker has run it through the gate and written the order, then the order's
    status (``REJECTED`` with the failing checks in ``reject_reason``, ``FILLED``...)."""

    matrix = {"GET": ("orders", "read")}

    @extend_schema(responses={200: OrderRequestOutput})
    def get(self, request, client_order_id):
        result = order_request_visible_get(user=request.user, client_order_id=client_order_id)
        return Response(_request_body(order_request_expire(result=result)))  # past its expiry: expired now


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
            "arrival_bid",
            "arrival_ask",
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
    cache_pages = True  # positions, accounts, instruments: all move the data version (tradeops.api.cache)

    def select(self):
        return positions_visible_to(user=self.request.user)
