"""The first kill switch routes (``/api/trading/``), kept working under the authorisation matrix."""

from django.urls import path

from trading.api.kill_switch import LegacyKillSwitchListEngage, LegacyKillSwitchRelease

app_name = "trading-api"
urlpatterns = [
    path("kill-switch/", LegacyKillSwitchListEngage.as_view(), name="kill-switch"),
    path("kill-switch/<int:pk>/release/", LegacyKillSwitchRelease.as_view(), name="kill-switch-release"),
]
