from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "tradeops.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from tradeops.audit import signals  # noqa: F401  (connects the auth receivers)
