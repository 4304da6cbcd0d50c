from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tradeops.api"
    label = "api"
    verbose_name = "Integration API"
    # the cached pages' data version (migration 0002): moved by its trigger only, read by the API
    runtime_table_privileges = {"api_data_version": ("SELECT",)}

    def ready(self) -> None:
        # The scopes the token endpoint knows are the matrix's, described once (tradeops.api.matrix).
        from django.conf import settings
        from oauth2_provider.settings import oauth2_settings

        from tradeops.api.matrix import SCOPE_DESCRIPTIONS

        if not getattr(settings, "BATCH_CLI", False):  # a batch command builds no OpenAPI schema
            from tradeops.api import schema  # noqa: F401  (registers the OpenAPI authentication extension)

        scopes = {str(scope): text for scope, text in SCOPE_DESCRIPTIONS.items()}
        oauth2_settings.SCOPES = scopes
        oauth2_settings._SCOPES = list(scopes)
