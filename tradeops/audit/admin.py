"""Admin: the audit trail, read-only (the database would refuse an edit anyway), with filters
and search; retention holds can be placed and released through the service (audited).

Who sees these pages is the audit screens' rule, not the Django permissions a role's group
carries (risk managers hold every ``view_*`` permission): compliance officers, auditors and
admins only (``tradeops.core.roles.can_read_audit_trail``), since the trail carries alert
evidence (no tipping off). Holds are placed by compliance officers and admins."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from tradeops.audit.actors import user_actor
from tradeops.audit.models import AuditRecord, Digest, PurgedRecord, RetentionHold
from tradeops.audit.services import retention_hold_place, retention_hold_release
from tradeops.core.admin import ReadOnlyAdmin
from tradeops.core.roles import Role, can_read_audit_trail, user_has_role


class AuditTrailReaderMixin:
    def has_module_permission(self, request):
        return can_read_audit_trail(request.user)

    def has_view_permission(self, request, obj=None):
        return can_read_audit_trail(request.user)


class AuditTrailAdmin(AuditTrailReaderMixin, ReadOnlyAdmin):
    """Read-only, for the audit trail's readers only."""


@admin.register(AuditRecord)
class AuditRecordAdmin(AuditTrailAdmin):
    list_display = (
        "sequence",
        "occurred_at",
        "category",
        "actor_type",
        "actor_id",
        "action",
        "object_type",
        "object_id",
    )
    list_filter = ("category", "actor_type", "action", "object_type", ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("=event_id", "actor_id", "=object_id", "action", "=corrects", "=hash")
    date_hierarchy = "occurred_at"
    ordering = ("-sequence",)
    show_full_result_count = False  # COUNT(*) over years of records on every page is not free
    readonly_fields = (
        "sequence",
        "event_id",
        "occurred_at",
        "recorded_at",
        "retain_until",
        "category",
        "actor_type",
        "actor_id",
        "action",
        "object_type",
        "object_id",
        "corrects",
        "pretty_payload",
        "prev_hash",
        "hash",
    )
    exclude = ("payload",)

    @admin.display(description="payload")
    def pretty_payload(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload_data, indent=2, ensure_ascii=False))


@admin.register(PurgedRecord)
class PurgedRecordAdmin(AuditTrailAdmin):
    list_display = ("sequence", "category", "recorded_at", "retain_until", "purged_at")
    list_filter = ("category",)


@admin.register(Digest)
class DigestAdmin(AuditTrailAdmin):
    list_display = ("day", "record_count", "first_sequence", "last_sequence", "merkle_root", "file_name")


@admin.register(RetentionHold)
class RetentionHoldAdmin(AuditTrailReaderMixin, admin.ModelAdmin):
    list_display = ("category", "reason", "placed_by", "placed_at", "released_at")
    list_filter = ("category", "released_at")
    fields = ("category", "reason")
    actions = ["release"]

    def has_add_permission(self, request):
        return request.user.is_superuser or user_has_role(request.user, Role.COMPLIANCE_OFFICER)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        hold = retention_hold_place(category=obj.category, reason=obj.reason, placed_by=user_actor(request.user))
        obj.pk = hold.pk

    @admin.action(description="Release the selected holds", permissions=["add"])
    def release(self, request, queryset):
        for hold in queryset.filter(released_at__isnull=True):
            retention_hold_release(hold=hold, released_by=user_actor(request.user))
