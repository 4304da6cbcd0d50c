"""Audit routes of the integration API, wired under ``/api/v1/audit/`` by ``tradeops/urls.py``."""

from django.urls import path, register_converter

from tradeops.audit.api import views


class IsoDayConverter:
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        from datetime import date

        return date.fromisoformat(value)

    def to_url(self, value):
        return value.isoformat()


register_converter(IsoDayConverter, "isoday")

app_name = "audit-v1"
urlpatterns = [
    path("records/", views.AuditRecordList.as_view(), name="records"),
    path("records/<int:sequence>/", views.AuditRecordDetail.as_view(), name="record"),
    path("records/<int:sequence>/proof/", views.AuditRecordProof.as_view(), name="record-proof"),
    path("verification/", views.AuditVerification.as_view(), name="verification"),
    path("digests/", views.DigestList.as_view(), name="digests"),
    path("digests/<isoday:day>/", views.DigestDetail.as_view(), name="digest"),
]
