"""Admin: the model registry (activate / roll back, audited) and the validator's thresholds.

Registry rows are written by services only; the admin's actions call them, so an activation
from the admin verifies the artifact and writes the audit record like any other. The list shows
each version's out-of-sample edge over the best baseline; "Activate" refuses a model without
one (``model_no_edge``), "Activate without an edge" asks for the reason first and records the
override with it.

``mlmodels.services`` is imported inside the actions, not at the top: the admin is imported by
every ``django.setup()`` (admin autodiscovery), and the services pull in the training stack
(scikit-learn, SciPy, pandas: ~4 s of CPU), which a management command such as
``manage.py surveil`` never needs."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from mlmodels.models import VALIDATOR_FIELDS, ModelActivation, ModelVersion, ValidatorConfig
from tradeops.core.admin import ReadOnlyAdmin, ServiceRefusalShown
from tradeops.core.errors import ApplicationError


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


class NoEdgeOverrideForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Recorded with the activation and in the audit trail",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("say why a model without an edge is activated", code="required")
        return reason


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
        "edge_points",
        "edge_p_value_display",
        "has_edge",
        "train_end",
        "activated_at",
        "activated_by_label",
    )
    list_filter = ("name", "is_active", "has_edge", "symbol", "timeframe")
    search_fields = ("version", "artifact_sha256")
    actions = ("activate_selected", "activate_selected_without_edge", "rollback_selected")
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

    @admin.display(description="edge vs best baseline", ordering="edge")
    def edge_points(self, obj):
        return "-" if obj.edge is None else f"{obj.edge * 100:+.2f} pts vs {obj.edge_baseline} ({obj.edge_rows} bars)"

    @admin.display(description="edge p-value", ordering="edge_p_value")
    def edge_p_value_display(self, obj):
        return "-" if obj.edge_p_value is None else f"{obj.edge_p_value:.3f}"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Activate the selected version (one per model name)", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._activate(request, queryset, reason="admin action")

    @admin.action(
        description="Activate without an edge (override: the reason is asked and audited)", permissions=["change"]
    )
    def activate_selected_without_edge(self, request, queryset):
        form = NoEdgeOverrideForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._activate(request, queryset, reason=form.cleaned_data["reason"], allow_no_edge=True)
            return None  # back to the list
        context = {
            **self.admin_site.each_context(request),
            "title": "Activate without an edge",
            "opts": self.model._meta,
            "queryset": queryset,
            "form": form,
            "action": "activate_selected_without_edge",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/mlmodels/modelversion/activate_without_edge.html", context)

    def _activate(self, request, queryset, *, reason: str, allow_no_edge: bool = False) -> None:
        for version in queryset:
            from mlmodels.services import model_version_activate

            try:
                model_version_activate(
                    version=version, actor="admin", user=request.user, reason=reason, allow_no_edge=allow_no_edge
                )
            except ApplicationError as exc:
                self.message_user(request, f"{version.version}: {exc} [{exc.code}]", messages.ERROR)
            else:
                note = "" if version.has_edge else f" WITHOUT an edge ({version.edge_summary})"
                self.message_user(request, f"{version.version} is now the active {version.name} model{note}")

    @admin.action(description="Roll back to the previously active version of these models", permissions=["change"])
    def rollback_selected(self, request, queryset):
        from mlmodels.services import model_version_rollback

        for name in sorted(set(queryset.values_list("name", flat=True))):
            try:
                version = model_version_rollback(name=name, actor="admin", user=request.user, reason="admin action")
            except ApplicationError as exc:
                self.message_user(request, f"{name}: {exc} [{exc.code}]", messages.ERROR)
            else:
                self.message_user(request, f"{name} rolled back to {version.version}")


@admin.register(ModelActivation)
class ModelActivationAdmin(ReadOnlyAdmin):
    list_display = ("at", "name", "action", "version", "previous", "actor", "no_edge_override", "reason")
    list_filter = ("name", "action", "no_edge_override")
    readonly_fields = ("name", "version", "previous", "action", "actor", "no_edge_override", "reason", "at")


class ValidatorConfigForm(forms.ModelForm):
    class Meta:
        model = ValidatorConfig
        fields = VALIDATOR_FIELDS

    def clean(self):
        from mlmodels.services import check_validator_config

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
class ValidatorConfigAdmin(ServiceRefusalShown, admin.ModelAdmin):
    form = ValidatorConfigForm
    list_display = ("__str__", "drift_window", "algo_id", "enabled", "updated_at", "updated_by")
    fields = (*VALIDATOR_FIELDS, "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def has_add_permission(self, request):
        # The one row is created by whoever may change it (risk managers, admins), once; an
        # auditor was offered "Add" here and saved thresholds every signal passes (walk45).
        return self.has_change_permission(request) and not ValidatorConfig.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # Through the service: validated, audited, stamped (serving reloads on the new stamp).
        from mlmodels.services import validator_config_update

        try:
            saved = validator_config_update(
                actor="admin", user=request.user, **{f: form.cleaned_data[f] for f in VALIDATOR_FIELDS}
            )
        except ApplicationError as exc:
            self.service_refused(request)
            self.message_user(request, f"{exc} [{exc.code}]", messages.ERROR)
            return
        obj.pk = saved.pk
