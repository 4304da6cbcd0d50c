"""The API's own documents under ``/api/v1/`` (its index, OpenAPI schema, browsable docs, events' JSON
Schema). The OAuth2 endpoints are in ``tradeops.api.oauth_urls``."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from tradeops.api.views import ApiRootView, EventsSchemaView

app_name = "api-v1"
urlpatterns = [
    path("", ApiRootView.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-v1:schema"), name="docs"),
    path("docs/redoc/", SpectacularRedocView.as_view(url_name="api-v1:schema"), name="redoc"),
    path("events/schema/", EventsSchemaView.as_view(), name="events-schema"),
]
