"""Audit trail screens (compliance officers, auditors). Wired in tradeops/urls.py by dotted path."""

from django.urls import path

from compliance import audit_views

app_name = "audit"

urlpatterns = [
    path("", audit_views.audit_search_view, name="search"),
    path("records/<int:sequence>/", audit_views.audit_record_view, name="record"),
    path("records/<int:sequence>/proof.json", audit_views.audit_proof_download_view, name="record-proof"),
    path("digests/<str:day>.json", audit_views.audit_digest_download_view, name="digest"),
    path("verify/", audit_views.audit_verify_view, name="verify"),
]
