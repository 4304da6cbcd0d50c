"""Trading routes of the integration API, wired under ``/api/v1/`` by ``tradeops/urls.py``."""

from django.urls import path

from trading.api import drawdown_rebases, kill_switch, limits, orders, reference

app_name = "trading-v1"
urlpatterns = [
    path("instruments/", reference.InstrumentList.as_view(), name="instruments"),
    path("instruments/<str:symbol>/", reference.InstrumentDetail.as_view(), name="instrument"),
    path("accounts/", reference.AccountList.as_view(), name="accounts"),
    path("accounts/<int:pk>/", reference.AccountDetail.as_view(), name="account"),
    path("orders/", orders.OrderListPlace.as_view(), name="orders"),
    path("orders/<str:client_order_id>/", orders.OrderDetail.as_view(), name="order"),
    path("order-requests/<str:client_order_id>/", orders.OrderRequestDetail.as_view(), name="order-request"),
    path("executions/", orders.ExecutionList.as_view(), name="executions"),
    path("positions/", orders.PositionList.as_view(), name="positions"),
    path("risk-limits/", limits.RiskLimitList.as_view(), name="risk-limits"),
    path("risk-limits/proposals/", limits.ProposalListCreate.as_view(), name="risk-limit-proposals"),
    path("risk-limits/proposals/<int:pk>/", limits.ProposalDetail.as_view(), name="risk-limit-proposal"),
    path("risk-limits/proposals/<int:pk>/approve/", limits.ProposalApprove.as_view(), name="risk-limit-approve"),
    path("risk-limits/proposals/<int:pk>/reject/", limits.ProposalReject.as_view(), name="risk-limit-reject"),
    path("risk-limits/<int:pk>/", limits.RiskLimitDetail.as_view(), name="risk-limit"),
    path("drawdown-rebases/", drawdown_rebases.DrawdownRebaseListPropose.as_view(), name="drawdown-rebases"),
    path("drawdown-rebases/<int:pk>/", drawdown_rebases.DrawdownRebaseDetail.as_view(), name="drawdown-rebase"),
    path(
        "drawdown-rebases/<int:pk>/approve/",
        drawdown_rebases.DrawdownRebaseApprove.as_view(),
        name="drawdown-rebase-approve",
    ),
    path(
        "drawdown-rebases/<int:pk>/reject/",
        drawdown_rebases.DrawdownRebaseReject.as_view(),
        name="drawdown-rebase-reject",
    ),
    path("kill-switch/", kill_switch.KillSwitchListEngage.as_view(), name="kill-switch"),
    path("kill-switch/<int:pk>/", kill_switch.KillSwitchDetail.as_view(), name="kill-switch-detail"),
    path("kill-switch/<int:pk>/release/", kill_switch.KillSwitchRelease.as_view(), name="kill-switch-release"),
]
