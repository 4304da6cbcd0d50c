from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "tradeops.audit"
    label = "audit"
    verbose_name = "Audit trail"

    # The runtime role's rights on the trail (tradeops.core.db_roles): append and read, never
    # rewrite. The chain head moves forward only (its trigger refuses anything else); tombstones
    # are written by the purge function, which runs as the owner; the guard tables get nothing.
    runtime_table_privileges = {
        "audit_record": ("SELECT", "INSERT"),
        "audit_purged": ("SELECT",),
        "audit_digest": ("SELECT", "INSERT"),
        "audit_chain_head": ("SELECT", "INSERT", "UPDATE"),
        "audit_retention_hold": ("SELECT", "INSERT", "UPDATE"),
        "audit_search_document": ("SELECT", "INSERT"),
        "audit_flush_permit": (),
    }
    runtime_functions = ("audit_purge_delete(bigint[])",)

    def ready(self) -> None:
        # registers the system checks; connects the auth receivers
        from tradeops.audit import checks, signals  # noqa: F401
