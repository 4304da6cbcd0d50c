"""Root URLs. Apps are wired by dotted string so that core never imports a domain app."""

from django.contrib import admin
from django.urls import include, path

from tradeops.core import signin
from tradeops.core import views as core_views
from tradeops.core.metrics import metrics

admin.site.site_header = "tradeops administration"
admin.site.site_title = "tradeops"

urlpatterns = [
    # Integration API v1 (docs/api.md): OAuth2 token endpoint, then one module per app.
    # First: integrations call at a high rate, and no other route starts with these prefixes.
    path("o/", include("tradeops.api.oauth_urls")),
    path("api/v1/", include("tradeops.api.urls")),
    path("api/v1/", include("trading.api.urls_v1")),
    path("api/v1/", include("compliance.api.urls")),
    path("api/v1/", include("compliance.reports.api.urls")),
    path("api/v1/audit/", include("tradeops.audit.api.urls")),
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    # One sign-in page for the screens and the admin (tradeops/core/signin.py).
    path("login/", signin.sign_in, name="sign-in"),
    path("logout/", signin.sign_out, name="sign-out"),
    path("admin/login/", signin.sign_in),
    path("admin/", admin.site.urls),
    path("", include("trading.urls")),
    path("api/trading/", include("trading.api.urls")),  # the first kill switch routes, kept
    path("compliance/audit/", include("compliance.audit_urls")),
    path("compliance/", include("compliance.urls")),
    path("orders/<str:client_order_id>/", include("compliance.story_urls")),
    path("metrics", metrics, name="prometheus-django-metrics"),
]

handler404 = "tradeops.core.views.not_found"
handler500 = "tradeops.core.views.server_error"
