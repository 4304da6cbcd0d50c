from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "compliance.reports"
    label = "reports"
    verbose_name = "Regulatory reports"
    # The runtime database role (tradeops.core.db_roles) never deletes a run or a record: a
    # report that went out, and what was held back or rejected, stay as evidence.
    runtime_table_privileges = {
        "reports_reportrun": ("SELECT", "INSERT", "UPDATE"),
        "reports_transactionrecord": ("SELECT", "INSERT", "UPDATE"),
    }
