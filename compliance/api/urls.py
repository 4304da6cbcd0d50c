"""Compliance routes of the integration API, wired under ``/api/v1/`` by ``tradeops/urls.py``."""

from django.urls import path

from compliance.api import cases, controls

app_name = "compliance-v1"
urlpatterns = [
    path("alerts/", cases.AlertList.as_view(), name="alerts"),
    path("alerts/<int:pk>/", cases.AlertDetail.as_view(), name="alert"),
    path("cases/", cases.CaseList.as_view(), name="cases"),
    path("cases/<int:pk>/", cases.CaseDetail.as_view(), name="case"),
    path("cases/<int:pk>/actions/", cases.CaseActionListCreate.as_view(), name="case-actions"),
    path("cases/<int:pk>/decision/", cases.CaseDecision.as_view(), name="case-decision"),
    path("cases/<int:pk>/stor-draft/", cases.CaseStorDraft.as_view(), name="case-stor-draft"),
    path("rules/", controls.RuleListPropose.as_view(), name="rules"),
    path("rules/<int:pk>/", controls.RuleDetail.as_view(), name="rule"),
    path("rules/<int:pk>/approve/", controls.RuleApprove.as_view(), name="rule-approve"),
    path("rules/<int:pk>/reject/", controls.RuleReject.as_view(), name="rule-reject"),
    path("pretrade-decisions/", controls.PreTradeDecisionList.as_view(), name="pretrade-decisions"),
]
