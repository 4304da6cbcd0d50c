"""The compliance desk's screens. Wired in tradeops/urls.py by dotted path."""

from django.urls import path
from django.views.generic import RedirectView

from compliance.views import alerts, cases, reports, rules

app_name = "desk"

urlpatterns = [
    # README's "where to look" sends people to /compliance/: the desk opens on its alert queue.
    path("", RedirectView.as_view(pattern_name="desk:alerts", permanent=False), name="home"),
    path("alerts/", alerts.alert_queue_view, name="alerts"),
    path("cases/<int:pk>/", cases.case_view, name="case"),
    path("cases/<int:pk>/assign/", alerts.case_assign_view, name="case-assign"),
    path("cases/<int:pk>/stor.json", cases.case_stor_view, name="case-stor"),
    path("cases/<int:pk>/<slug:step>/", cases.case_step_view, name="case-step"),
    path("rules/", rules.rule_list_view, name="rules"),
    path("rules/versions/<int:pk>/<slug:decision>/", rules.rule_decide_view, name="rule-decide"),
    path("rules/<slug:code>/", rules.rule_detail_view, name="rule"),
    path("reports/", reports.report_list_view, name="reports"),
    path("reports/run/", reports.report_run_view, name="report-run"),
    path("reports/<str:reference>/", reports.report_detail_view, name="report"),
    path("reports/<str:reference>/approve/", reports.report_approve_view, name="report-approve"),
    path("reports/<str:reference>/download/", reports.report_download_view, name="report-download"),
]
