"""Report routes of the integration API, wired under ``/api/v1/`` by ``tradeops/urls.py``."""

from django.urls import path

from compliance.reports.api import views

app_name = "reports-v1"
urlpatterns = [
    path("reports/", views.ReportRunListCreate.as_view(), name="reports"),
    path("reports/<str:reference>/", views.ReportRunDetail.as_view(), name="report"),
    path("reports/<str:reference>/approve/", views.ReportRunApprove.as_view(), name="report-approve"),
    path("reports/<str:reference>/records/", views.ReportRunRecords.as_view(), name="report-records"),
    path("reports/<str:reference>/file/", views.ReportRunFile.as_view(), name="report-file"),
]
