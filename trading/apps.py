from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading (system of record)"

    # The order path's one-statement write (migration 0003; its messages apart since 0008;
    # tradeops.core.db_roles grants whichever of the two signatures the database holds).
    runtime_functions = ("trading_order_write(jsonb)", "trading_order_write(jsonb,bytea[])")
