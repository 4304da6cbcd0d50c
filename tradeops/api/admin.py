"""The admin shows API clients read-only; django-oauth-toolkit's own admin pages are removed, so no
application, token or grant is made or edited outside ``manage.py api_client`` (whose services
bind each client to a role and audit it)."""

from django.contrib import admin
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from tradeops.api.models import ApiClient
from tradeops.core.admin import ReadOnlyAdmin

for model in (
    get_application_model(),
    get_access_token_model(),
    get_grant_model(),
    get_id_token_model(),
    get_refresh_token_model(),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdmin):
    list_display = ("name", "role", "scopes", "throttle_rate", "created_at", "created_by", "revoked_at")
    list_filter = ("role",)
    search_fields = ("name", "application__client_id")
    exclude = ("application",)
    readonly_fields = ("client_id",)

    @admin.display(description="client id")
    def client_id(self, obj):
        return obj.application.client_id
