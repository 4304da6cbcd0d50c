from django.urls import path

from trading.api.kill_switch import KillSwitchListEngage, KillSwitchRelease

app_name = "trading-api"
urlpatterns = [
    path("kill-switch/", KillSwitchListEngage.as_view(), name="kill-switch"),
    path("kill-switch/<int:pk>/release/", KillSwitchRelease.as_view(), name="kill-switch-release"),
]
