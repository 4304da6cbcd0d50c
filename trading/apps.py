from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading (system of record)"

    # The order path's one-statement write (migration 0003; tradeops.core.db_roles grants it).
    runtime_functions = ("trading_order_write(jsonb)",)
