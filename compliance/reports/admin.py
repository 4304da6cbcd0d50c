"""Regulatory reports in the admin: the reporting configuration (saved through the services, so
every change is audited with before/after) and the runs (read-only, with the officers' steps as
actions: validate, approve with four eyes, submit, download). Visible to compliance officers,
auditors and admins only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import FileResponse

from compliance.reports import configuration, selectors, services
from compliance.reports.models import (
    AccountReportingProfile,
    InstrumentReportingProfile,
    ReportablePerson,
    ReportingFirm,
    ReportRun,
    TransactionRecord,
)
from tradeops.audit.actors import user_actor
from tradeops.core.admin import ReadOnlyAdmin
from tradeops.core.errors import ApplicationError
from tradeops.core.roles import Role, user_has_role


def _officer(request) -> bool:
    return user_has_role(request.user, Role.COMPLIANCE_OFFICER)


class ReportsVisible:
    def has_module_permission(self, request):
        return selectors.report_visible(request.user)

    def has_view_permission(self, request, obj=None):
        return selectors.report_visible(request.user)


class ConfigAdmin(ReportsVisible, admin.ModelAdmin):
    """Configuration rows: officers edit, the service writes (audited)."""

    readonly_fields = ("updated_at", "updated_by")
    saver = None

    def has_add_permission(self, request):
        return _officer(request)

    def has_change_permission(self, request, obj=None):
        return _officer(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def _fields(self, form) -> dict:
        return {name: form.cleaned_data[name] for name in form.cleaned_data if name not in ("account", "instrument")}

    def save_model(self, request, obj, form, change):
        actor = user_actor(request.user)
        saved = self.save_through_service(obj=obj, fields=self._fields(form), actor=actor)
        obj.pk = saved.pk


@admin.register(ReportingFirm)
class ReportingFirmAdmin(ConfigAdmin):
    list_display = ("executing_entity_lei", "submitting_entity_lei", "home_country", "trn_prefix", "updated_at")

    def has_add_permission(self, request):
        return _officer(request) and not ReportingFirm.objects.exists()

    def save_through_service(self, *, obj, fields, actor):
        return configuration.reporting_firm_save(actor=actor, reason="admin", **fields)


@admin.register(InstrumentReportingProfile)
class InstrumentReportingProfileAdmin(ConfigAdmin):
    list_display = ("instrument", "reportability", "isin", "underlying_isin", "quantity_type", "venue", "updated_at")
    list_filter = ("reportability",)

    def save_through_service(self, *, obj, fields, actor):
        return configuration.instrument_reporting_profile_save(
            instrument=obj.instrument, actor=actor, reason="admin", **fields
        )


@admin.register(AccountReportingProfile)
class AccountReportingProfileAdmin(ConfigAdmin):
    list_display = ("account", "trading_capacity", "owner_type", "counterparty_lei", "updated_at")

    def save_through_service(self, *, obj, fields, actor):
        return configuration.account_reporting_profile_save(account=obj.account, actor=actor, reason="admin", **fields)


@admin.register(ReportablePerson)
class ReportablePersonAdmin(ConfigAdmin):
    list_display = ("user", "country_of_branch", "id_scheme", "updated_at")

    def save_model(self, request, obj, form, change):
        from django.db import transaction

        from tradeops.audit.services import audit_record_change
        from tradeops.core.clock import utcnow

        with transaction.atomic():
            obj.updated_at, obj.updated_by = utcnow(), user_actor(request.user)
            obj.save()
            audit_record_change(
                action="reporting_profile.person_changed",
                actor=obj.updated_by,
                object_type="reporting_config",
                object_id=f"user:{obj.user_id}",
                before=None,
                after={"user": obj.user_id, "country_of_branch": obj.country_of_branch, "id_scheme": obj.id_scheme},
                occurred_at=obj.updated_at,
            )


@admin.register(TransactionRecord)
class TransactionRecordAdmin(ReportsVisible, ReadOnlyAdmin):
    """Records of transaction runs: filter by state to see what was held back or rejected, why."""

    list_display = ("trn", "run", "execution_id", "report_status", "state", "active", "late")
    list_filter = ("state", "report_status", "active")
    search_fields = ("trn", "run__reference")
    readonly_fields = [f.name for f in TransactionRecord._meta.fields]
    list_select_related = ("run",)


@admin.register(ReportRun)
class ReportRunAdmin(ReportsVisible, ReadOnlyAdmin):
    list_display = ("reference", "kind", "period_start", "period_end", "status", "record_count", "held_back_count")
    list_filter = ("kind", "status")
    search_fields = ("reference", "submission_id")
    readonly_fields = [f.name for f in ReportRun._meta.fields]
    actions = ("validate", "approve", "submit", "download")

    def _step(self, request, queryset, label, fn):
        for run in queryset:
            try:
                fn(run)
            except ApplicationError as exc:
                messages.error(request, f"{run.reference}: {label}: {exc}")
            else:
                messages.success(request, f"{run.reference}: {label} done")

    def has_officer_permission(self, request) -> bool:
        """The steps (validate, approve, submit) are an officer's; auditors and admins read and
        download (``@admin.action(permissions=["officer"])``: Django neither offers nor runs them)."""
        return _officer(request)

    @admin.action(description="Validate the selected generated reports", permissions=["officer"])
    def validate(self, request, queryset):
        self._step(request, queryset, "validate", lambda run: services.report_run_validate(run=run))

    @admin.action(description="Approve (four eyes: not the person who generated it)", permissions=["officer"])
    def approve(self, request, queryset):
        self._step(
            request, queryset, "approve", lambda run: services.report_run_approve(run=run, approver=request.user)
        )

    @admin.action(description="Submit to the ARM now", permissions=["officer"])
    def submit(self, request, queryset):
        self._step(request, queryset, "submit", lambda run: services.report_run_submit(run=run, user=request.user))

    @admin.action(description="Download the file (one report)")
    def download(self, request, queryset):
        run = queryset.first()
        try:
            file = selectors.report_run_download(user=request.user, run=run)
        except ApplicationError as exc:
            messages.error(request, str(exc))
            return None
        response = FileResponse(file.fh, as_attachment=True, filename=file.filename, content_type=file.content_type)
        response["X-Report-SHA256"] = file.sha256
        return response
