"""Admin pages: read-mostly views of the system of record. Orders, fills and positions are
written by services only, so their admin is read-only."""

from django.contrib import admin

from trading.models import Execution, Instrument, Order, Position, TradingAccount


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by services only: no add, change or delete through the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "description", "asset_class", "quote_currency", "contract_size", "tick_size", "is_active")
    list_filter = ("asset_class", "quote_currency", "venue_mic", "is_active")
    search_fields = ("symbol", "description", "isin")


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "mt5_login", "mt5_server", "client_id", "margin_mode", "base_currency", "is_active")
    list_filter = ("margin_mode", "base_currency", "is_active", "mt5_server")
    search_fields = ("name", "mt5_login", "client_id", "firm_lei", "beneficial_owner")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "client_order_id",
        "account",
        "instrument",
        "side",
        "order_type",
        "quantity",
        "filled_quantity",
        "status",
        "algo_id",
        "created_at",
    )
    list_filter = ("status", "side", "order_type", "instrument", "account", "algo_id")
    search_fields = ("client_order_id", "broker_order_id", "signal_id", "algo_id", "desk")
    date_hierarchy = "created_at"
    list_select_related = ("account", "instrument")


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = ("broker_deal_id", "order", "instrument", "side", "quantity", "price", "fee", "venue", "executed_at")
    list_filter = ("side", "instrument", "venue", "account")
    search_fields = ("broker_deal_id", "order__client_order_id", "liquidity_provider")
    date_hierarchy = "executed_at"
    list_select_related = ("order", "instrument")


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "instrument",
        "net_quantity",
        "average_price",
        "realised_pnl",
        "unrealised_pnl",
        "mark_price",
        "updated_at",
    )
    list_filter = ("account", "instrument")
    search_fields = ("account__name", "instrument__symbol")
    list_select_related = ("account", "instrument")
