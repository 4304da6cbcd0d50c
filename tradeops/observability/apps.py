from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Turns tracing on when ``TRACING_ENABLED`` (before any request handler loads its
    middleware) and wires the caches' invalidation on writes (``tradeops.observability.cache``)."""

    name = "tradeops.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from tradeops.observability import cache, collectors, tracing

        tracing.tracing_setup()
        cache.invalidation_signals_connect()
        collectors.collectors_register()  # read at scrape time only: registering queries nothing
