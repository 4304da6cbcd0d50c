"""Compliance admin: rules are managed here (every save proposes a new version, approval is a
second officer's action), alerts and cases are worked here. Only compliance officers (act) and
auditors (read) see these pages; a trader never does, even with staff access (no tipping off).
All writes go through ``compliance.services``."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils.html import format_html_join

from compliance import services
from compliance.models import Alert, Case, CaseAction, ComplianceRule, PreTradeDecision, RuleStatus
from compliance.rule_parameters import check_rule_parameters_proposal, rule_parameters_help
from compliance.selectors import (
    can_see_surveillance,
    case_stor_draft,
    compliance_rule_history,
    compliance_rule_in_force,
)
from tradeops.core.admin import ReadOnlyAdmin, ServiceRefusalShown
from tradeops.core.errors import ApplicationError
from tradeops.core.roles import Role, user_has_role


def _officer(request) -> bool:
    return user_has_role(request.user, Role.COMPLIANCE_OFFICER)


class ComplianceOnlyAdmin(ReadOnlyAdmin):
    def has_module_permission(self, request):
        return can_see_surveillance(request.user)

    def has_view_permission(self, request, obj=None):
        return can_see_surveillance(request.user)


def _run(request, label, fn) -> bool:
    try:
        fn()
    except ApplicationError as exc:
        messages.error(request, f"{label}: {exc}")
        return False
    return True


class ComplianceRuleForm(forms.ModelForm):
    """Field checks and parameter validation (``ComplianceRule.clean``); uniqueness and versioning
    are the service's business (a save proposes the next version, it never overwrites one).

    A proposal starts from the parameters of the version in force (prefilled; every parameter's
    value or default in the help text) and is the new version's whole parameter set: one that
    leaves out a parameter the version in force sets, names one the rule does not know or gives
    a value of the wrong type is refused, naming it (``check_rule_parameters_proposal``)."""

    class Meta:
        model = ComplianceRule
        fields = ("code", "rule_type", "scope", "account", "instrument", "algo_id", "parameters", "change_reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("parameters")
        # a new rule's code and type: as typed (a POST shown again), else as prefilled
        given = self.data if self.is_bound else self.initial
        code = self.instance.code if self.instance.pk else str(given.get("code") or "")
        in_force = compliance_rule_in_force(code=code) if code else None
        rule_type = self.instance.rule_type if self.instance.pk else str(given.get("rule_type") or "")
        if field is not None and rule_type:
            current = in_force.parameters if in_force else None
            field.help_text = (
                f"The new version's whole parameter set, starting from v{in_force.version}'s (in force); "
                if in_force
                else "The rule's parameters; "
            ) + f"null returns a parameter to its default. {rule_parameters_help(rule_type, current)}"

    def validate_unique(self):
        pass

    def clean(self):
        data = super().clean()
        code = self.instance.code if self.instance.pk else (data.get("code") or "")
        rule_type = self.instance.rule_type if self.instance.pk else data.get("rule_type")
        if "parameters" not in data or not rule_type:
            return data
        in_force = compliance_rule_in_force(code=code) if code else None
        # as typed (nulls included): the service checks the proposal against the version in force
        # again and drops the nulls itself
        self.proposed_parameters = data["parameters"]
        try:
            data["parameters"] = check_rule_parameters_proposal(
                rule_type=rule_type,
                parameters=data["parameters"],
                current=in_force.parameters if in_force and in_force.rule_type == rule_type else None,
            )
        except forms.ValidationError as exc:
            self.add_error(None, exc)
        return data

    def _post_clean(self):
        # The model's checks (``ComplianceRule.clean``) would validate the parameters the form
        # refused as the instance still holds them (a new rule's {}: "missing required field"),
        # beside the errors that say what is wrong; they run once the parameters are right.
        if self.has_error("parameters"):
            return
        super()._post_clean()


@admin.register(ComplianceRule)
class ComplianceRuleAdmin(ServiceRefusalShown, ComplianceOnlyAdmin):
    form = ComplianceRuleForm
    list_display = (
        "code",
        "version",
        "rule_type",
        "scope_label",
        "status",
        "proposed_by",
        "decided_by",
        "effective_from",
    )
    list_filter = ("status", "rule_type", "scope")
    search_fields = ("code", "algo_id")
    actions = ["approve_selected", "reject_selected"]
    readonly_fields = ("version", "status", "proposed_by", "proposed_at", "decided_by", "decided_at", "history")

    def get_fields(self, request, obj=None):
        editable = ["parameters", "change_reason"]
        if obj is None:
            return ["code", "rule_type", "scope", "account", "instrument", "algo_id", *editable]
        return ["code", "rule_type", "scope", "account", "instrument", "algo_id", *editable, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("code", "rule_type", "scope", "account", "instrument", "algo_id", *self.readonly_fields)

    def has_add_permission(self, request):
        return _officer(request)

    def get_changeform_initial_data(self, request):
        """``add/?code=<code>`` proposes the next version of a rule: it starts from the version in
        force (its type, scope and parameters), so changing one threshold is changing one value."""
        initial = super().get_changeform_initial_data(request)
        in_force = compliance_rule_in_force(code=initial.get("code", "")) if initial.get("code") else None
        if in_force is not None:
            initial.update(
                rule_type=in_force.rule_type,
                scope=in_force.scope,
                account=in_force.account_id,
                instrument=in_force.instrument_id,
                algo_id=in_force.algo_id,
                parameters=in_force.parameters,
            )
        return initial

    def has_change_permission(self, request, obj=None):
        # "Changing" a version proposes the next one; only the newest version can be the base.
        return _officer(request) and (obj is None or obj.status in (RuleStatus.ACTIVE, RuleStatus.PENDING))

    @admin.display(description="versions")
    def history(self, obj):
        return format_html_join(
            "",
            "<div>v{} [{}] {} - proposed by {}, decided by {}</div>",
            (
                (r.version, r.status, json.dumps(r.parameters), r.proposed_by, r.decided_by or "-")
                for r in compliance_rule_history(code=obj.code)
            ),
        )

    def save_model(self, request, obj, form, change):
        """Never edits a row: a new (pending) version is proposed instead."""
        base = ComplianceRule.objects.get(pk=obj.pk) if change else obj
        try:
            rule = services.compliance_rule_propose(
                proposed_by=request.user,
                code=base.code,
                rule_type=base.rule_type,
                scope=base.scope,
                account=base.account,
                instrument=base.instrument,
                algo_id=base.algo_id,
                parameters=getattr(form, "proposed_parameters", form.cleaned_data["parameters"]),
                reason=form.cleaned_data.get("change_reason", ""),
            )
        except ApplicationError as exc:  # a change already pending: the form again, not a server error
            self.service_refused(request)
            messages.error(request, f"{base.code}: {exc}")
            return
        # the admin's own "was added/changed" message names ``obj``: make it the version just
        # proposed (it named the form's unsaved v1 [pending] over a v2 proposal)
        obj.pk = rule.pk
        obj.refresh_from_db()
        messages.info(request, f"{rule.code} v{rule.version} proposed; a second compliance officer must approve it")

    @admin.action(description="Approve selected pending versions (second officer)", permissions=["change"])
    def approve_selected(self, request, queryset):
        done = sum(
            _run(request, str(r), lambda r=r: services.compliance_rule_approve(rule=r, approver=request.user))
            for r in queryset.filter(status=RuleStatus.PENDING)
        )
        if done:
            messages.success(request, f"{done} version(s) approved and in force")

    @admin.action(description="Reject selected pending versions", permissions=["change"])
    def reject_selected(self, request, queryset):
        for r in queryset.filter(status=RuleStatus.PENDING):
            _run(
                request, str(r), lambda r=r: services.compliance_rule_reject(rule=r, officer=request.user, note="admin")
            )


@admin.register(PreTradeDecision)
class PreTradeDecisionAdmin(ComplianceOnlyAdmin):
    list_display = ("client_order_id", "account_id", "symbol", "approved", "reason", "decided_at")
    list_filter = ("approved", "symbol")
    search_fields = ("client_order_id",)


@admin.register(Alert)
class AlertAdmin(ComplianceOnlyAdmin):
    list_display = ("alert_type", "severity", "account", "owner", "symbol", "score", "start", "end", "case")
    list_filter = ("alert_type", "severity", "symbol")
    search_fields = ("account", "owner", "symbol")


class CaseActionInline(admin.TabularInline):
    model = CaseAction
    extra = 0
    can_delete = False
    fields = ("at", "action", "actor", "from_status", "to_status", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CaseForm(forms.ModelForm):
    step = forms.ChoiceField(
        required=False,
        choices=[
            ("", "-"),
            ("review", "start review"),
            ("escalate", "escalate"),
            ("close", "request close"),
            ("report", "request report (STOR)"),
            ("approve", "approve the pending close/report (second officer)"),
            ("send_back", "send the pending close/report back"),
        ],
    )
    note = forms.CharField(required=False, widget=forms.Textarea, help_text="Reason / analysis (kept)")

    class Meta:
        model = Case
        fields = ()


@admin.register(Case)
class CaseAdmin(ServiceRefusalShown, ComplianceOnlyAdmin):
    form = CaseForm
    list_display = ("reference", "status", "subject_owner", "subject_account", "symbol", "max_score", "pending_action")
    list_filter = ("status",)
    search_fields = ("reference", "subject_owner", "subject_account", "symbol")
    inlines = [CaseActionInline]
    actions = ["export_stor"]
    readonly_fields = (
        "reference",
        "status",
        "subject_owner",
        "subject_account",
        "symbol",
        "alert_types",
        "max_score",
        "assigned_to",
        "pending_action",
        "pending_reason",
        "pending_by",
        "outcome_reason",
        "decided_by",
        "decided_at",
    )

    def has_change_permission(self, request, obj=None):
        return _officer(request)

    def save_model(self, request, obj, form, change):
        step, note, user = form.cleaned_data.get("step"), form.cleaned_data.get("note", ""), request.user
        calls = {
            "review": lambda: services.case_review_start(case=obj, officer=user),
            "escalate": lambda: services.case_escalate(case=obj, officer=user, note=note),
            "close": lambda: services.case_disposition_request(case=obj, officer=user, action="close", reason=note),
            "report": lambda: services.case_disposition_request(case=obj, officer=user, action="report", reason=note),
            "approve": lambda: services.case_disposition_approve(case=obj, officer=user, note=note),
            "send_back": lambda: services.case_disposition_reject(case=obj, officer=user, note=note),
        }
        if step and not _run(request, obj.reference, calls[step]):
            self.service_refused(request)  # four eyes, a step out of order: the form again, not "changed"

    def has_stor_permission(self, request) -> bool:
        """The STOR draft is an officer's (the ``stor_drafts`` row of the authorisation matrix):
        auditors read the cases but are not offered an export the selector would refuse them."""
        from tradeops.api.matrix import role_may

        return role_may(request.user, "stor_drafts", "read")

    @admin.action(description="Export STOR draft (JSON, 2016/957 template)", permissions=["stor"])
    def export_stor(self, request, queryset):
        drafts = []
        for case in queryset:
            try:
                drafts.append(case_stor_draft(case=case, user=request.user))
            except ApplicationError as exc:
                messages.error(request, str(exc))
                return None
        response = HttpResponse(json.dumps(drafts, cls=DjangoJSONEncoder, indent=2), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="stor-drafts.json"'
        return response
