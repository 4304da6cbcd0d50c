from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "tradeops.audit"
    label = "audit"
    verbose_name = "Audit trail"
