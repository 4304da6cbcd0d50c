from django.urls import path
from django.views.generic import RedirectView

from trading.views import console

app_name = "trading"
urlpatterns = [
    path("console/", console.console_view, name="console"),
    path("console/accounts/<int:pk>/equity.json", console.equity_view, name="equity"),
    path("console/kill-switch/engage/", console.kill_switch_engage_view, name="kill-engage"),
    path("console/kill-switch/<int:pk>/release/", console.kill_switch_release_view, name="kill-release"),
    path(
        "console/accounts/<int:pk>/drawdown-rebase/",
        console.drawdown_rebase_propose_view,
        name="drawdown-rebase-propose",
    ),
    path(
        "console/drawdown-rebases/<int:pk>/approve/",
        console.drawdown_rebase_approve_view,
        name="drawdown-rebase-approve",
    ),
    path(
        "console/drawdown-rebases/<int:pk>/reject/",
        console.drawdown_rebase_reject_view,
        name="drawdown-rebase-reject",
    ),
    path("dashboard/", RedirectView.as_view(url="/console/", permanent=False), name="dashboard"),
]
