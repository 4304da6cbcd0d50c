"""Admin: the model registry (activate / roll back, audited) and the validator's thresholds.

Registry rows are written by services only; the admin's actions call them, so an activation
from the admin verifies the artifact and writes the audit record like any other."""

from django import forms
from django.contrib import admin, messages

from mlmodels.models import ModelActivation, ModelVersion, ValidatorConfig
from mlmodels.services import (
    VALIDATOR_FIELDS,
    check_validator_config,
    model_version_activate,
    model_version_rollback,
    validator_config_update,
)
from tradeops.core.admin import ReadOnlyAdmin
from tradeops.core.errors import ApplicationError


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "name",
        "is_active",
        "symbol",
        "timeframe",
        "oos_accuracy",
        "always_up",
        "previous_sign",
        "train_end",
        "activated_at",
        "activated_by_label",
    )
    list_filter = ("name", "is_active", "symbol", "timeframe")
    search_fields = ("version", "artifact_sha256")
    actions = ("activate_selected", "rollback_selected")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    @admin.display(description="out-of-sample accuracy")
    def oos_accuracy(self, obj):
        return _pct(obj.accuracy(obj.name))

    @admin.display(description="baseline: always up")
    def always_up(self, obj):
        return _pct(obj.accuracy("always_up"))

    @admin.display(description="baseline: previous sign")
    def previous_sign(self, obj):
        return _pct(obj.accuracy("previous_sign"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Activate the selected version (one per model name)", permissions=["change"])
    def activate_selected(self, request, queryset):
        for version in queryset:
            try:
                model_version_activate(version=version, actor="admin", user=request.user, reason="admin action")
            except ApplicationError as exc:
                self.message_user(request, f"{version.version}: {exc} [{exc.code}]", messages.ERROR)
            else:
                self.message_user(request, f"{version.version} is now the active {version.name} model")

    @admin.action(description="Roll back to the previously active version of these models", permissions=["change"])
    def rollback_selected(self, request, queryset):
        for name in sorted(set(queryset.values_list("name", flat=True))):
            try:
                version = model_version_rollback(name=name, actor="admin", user=request.user, reason="admin action")
            except ApplicationError as exc:
                self.message_user(request, f"{name}: {exc} [{exc.code}]", messages.ERROR)
            else:
                self.message_user(request, f"{name} rolled back to {version.version}")


@admin.register(ModelActivation)
class ModelActivationAdmin(ReadOnlyAdmin):
    list_display = ("at", "name", "action", "version", "previous", "actor", "reason")
    list_filter = ("name", "action")
    readonly_fields = ("name", "version", "previous", "action", "actor", "reason", "at")


class ValidatorConfigForm(forms.ModelForm):
    class Meta:
        model = ValidatorConfig
        fields = VALIDATOR_FIELDS

    def clean(self):
        data = super().clean()
        try:
            check_validator_config(
                min_confidence=data.get("min_confidence", 0.0),
                psi_limit=data.get("psi_limit", 0.0),
                drift_window=data.get("drift_window", 0),
            )
        except ApplicationError as exc:
            raise forms.ValidationError(str(exc), code=exc.code) from None
        return data


@admin.register(ValidatorConfig)
class ValidatorConfigAdmin(admin.ModelAdmin):
    form = ValidatorConfigForm
    list_display = ("__str__", "drift_window", "algo_id", "enabled", "updated_at", "updated_by")
    fields = (*VALIDATOR_FIELDS, "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def has_add_permission(self, request):
        return not ValidatorConfig.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # Through the service: validated, audited, stamped (serving reloads on the new stamp).
        try:
            saved = validator_config_update(
                actor="admin", user=request.user, **{f: form.cleaned_data[f] for f in VALIDATOR_FIELDS}
            )
        except ApplicationError as exc:
            self.message_user(request, f"{exc} [{exc.code}]", messages.ERROR)
            return
        obj.pk = saved.pk
