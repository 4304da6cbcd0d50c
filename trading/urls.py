from django.urls import path
from django.views.generic import RedirectView

from trading.views import console

app_name = "trading"
urlpatterns = [
    path("console/", console.console_view, name="console"),
    path("console/accounts/<int:pk>/equity.json", console.equity_view, name="equity"),
    path("console/kill-switch/engage/", console.kill_switch_engage_view, name="kill-engage"),
    path("console/kill-switch/<int:pk>/release/", console.kill_switch_release_view, name="kill-release"),
    path("dashboard/", RedirectView.as_view(url="/console/", permanent=False), name="dashboard"),
]
