"""Admin pages: read-mostly views of the system of record. Orders, fills and positions are
written by services only, so their admin is read-only."""

from django import forms
from django.contrib import admin, messages

from tradeops.audit.actors import user_actor
from tradeops.core.admin import ReadOnlyAdmin, ServiceRefusalShown
from tradeops.core.errors import ApplicationError
from trading.models import (
    AccountRiskSnapshot,
    DrawdownRebase,
    Execution,
    Instrument,
    KillSwitch,
    Order,
    Position,
    ReplayCheckpoint,
    RiskLimit,
    RiskLimitProposal,
    TradingAccount,
)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "description", "asset_class", "quote_currency", "contract_size", "tick_size", "is_active")
    list_filter = ("asset_class", "quote_currency", "venue_mic", "is_active")
    search_fields = ("symbol", "description", "isin")


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "mt5_login", "mt5_server", "client_id", "margin_mode", "base_currency", "is_active")
    list_filter = ("margin_mode", "base_currency", "is_active", "mt5_server")
    search_fields = ("name", "mt5_login", "client_id", "firm_lei", "beneficial_owner")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "client_order_id",
        "account",
        "instrument",
        "side",
        "order_type",
        "quantity",
        "filled_quantity",
        "status",
        "algo_id",
        "created_at",
    )
    list_filter = ("status", "side", "order_type", "instrument", "account", "algo_id")
    search_fields = ("client_order_id", "broker_order_id", "signal_id", "algo_id", "desk")
    date_hierarchy = "created_at"
    list_select_related = ("account", "instrument")


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = ("broker_deal_id", "order", "instrument", "side", "quantity", "price", "fee", "venue", "executed_at")
    list_filter = ("side", "instrument", "venue", "account")
    search_fields = ("broker_deal_id", "order__client_order_id", "liquidity_provider")
    date_hierarchy = "executed_at"
    list_select_related = ("order", "instrument")


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "instrument",
        "net_quantity",
        "average_price",
        "realised_pnl",
        "unrealised_pnl",
        "mark_price",
        "as_of",
    )
    list_filter = ("account", "instrument")
    search_fields = ("account__name", "instrument__symbol")
    list_select_related = ("account", "instrument")


# ---------------------------------------------------------------- risk controls (edited through services: audited)


class RiskLimitForm(forms.ModelForm):
    reason = forms.CharField(widget=forms.Textarea, help_text="Why the limits change (recorded with the proposal)")


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    """Risk managers propose limit changes here, with four eyes as over the API: saving the form
    files a proposal (``risk_limit_change_propose``) of the fields changed, and the limits change
    only when a different risk manager approves it under "Risk limit proposals" (or over the API).
    Until 2026-12-06 this form saved the row at once (``risk_limit_save``): one person changed a
    limit the API would only let two change."""

    form = RiskLimitForm
    list_display = (
        "__str__",
        "max_position_lots",
        "max_gross_exposure",
        "max_net_exposure",
        "daily_loss_limit",
        "max_drawdown",
        "max_submits_per_second",
        "max_open_orders",
        "is_active",
        "updated_at",
        "updated_by",
    )
    list_filter = ("account", "instrument", "is_active")
    readonly_fields = ("updated_at", "updated_by")

    def get_readonly_fields(self, request, obj=None):
        # The scope of an existing row is fixed: a different scope is a different row.
        return (*self.readonly_fields, "account", "instrument") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead (is_active): the change is then audited

    def save_model(self, request, obj, form, change):
        from trading.controls.limit_changes import risk_limit_change_propose
        from trading.controls.services import LIMIT_FIELDS

        names = [
            name for name in LIMIT_FIELDS if name in form.cleaned_data and (name in form.changed_data or not change)
        ]
        request._limit_proposal = None
        if not names:
            messages.warning(request, "Nothing changed: no proposal filed.")
            return
        limit = RiskLimit.objects.get(pk=obj.pk) if change else None
        try:
            request._limit_proposal = risk_limit_change_propose(
                proposed_by=request.user,
                account=limit.account if limit else form.cleaned_data.get("account"),
                instrument=limit.instrument if limit else form.cleaned_data.get("instrument"),
                values={name: form.cleaned_data[name] for name in names},
                reason=form.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            messages.error(request, f"Refused: {exc.message}")

    def save_related(self, request, form, formsets, change):
        pass  # the proposal is the only write

    def _after_save(self, request, obj):
        from django.http import HttpResponseRedirect
        from django.urls import reverse

        proposal = getattr(request, "_limit_proposal", None)
        if proposal is not None:
            messages.success(
                request,
                f"Proposed as limit change {proposal.pk}: the limits stay as they are until a second risk "
                "manager approves it (Risk limit proposals).",
            )
            return HttpResponseRedirect(reverse("admin:trading_risklimitproposal_change", args=[proposal.pk]))
        return HttpResponseRedirect(reverse("admin:trading_risklimit_changelist"))

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, obj)

    def response_change(self, request, obj):
        return self._after_save(request, obj)


class RiskLimitProposalForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("", "---------"), ("approve", "Approve: the limits change now"), ("reject", "Reject")],
        required=False,
        help_text="Four eyes: the proposer may only reject (withdraw) it",
    )
    note = forms.CharField(widget=forms.Textarea, required=False, help_text="Recorded with the decision")

    class Meta:
        model = RiskLimitProposal
        fields = ()


@admin.register(RiskLimitProposal)
class RiskLimitProposalAdmin(admin.ModelAdmin):
    """A pending limit change, decided by a second risk manager (``risk_limit_change_approve`` /
    ``_reject``: four eyes on the person, audited; an approval saves the limits and the execution
    worker reloads them)."""

    form = RiskLimitProposalForm
    list_display = ("__str__", "values", "proposed_by", "proposed_at", "status", "decided_by", "decided_at")
    list_filter = ("status", "account", "instrument")
    readonly_fields = (
        "limit",
        "account",
        "instrument",
        "values",
        "reason",
        "status",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    list_select_related = ("account", "instrument", "proposed_by", "decided_by")

    def has_add_permission(self, request):
        return False  # proposed from the risk limit's own form (or the API)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        from tradeops.api.matrix import role_may

        return role_may(request.user, "risk_limits", "approve") and (obj is None or obj.status == "pending")

    def save_model(self, request, obj, form, change):
        from trading.controls.limit_changes import risk_limit_change_approve, risk_limit_change_reject

        decision, note = form.cleaned_data.get("decision"), form.cleaned_data.get("note") or ""
        proposal = RiskLimitProposal.objects.get(pk=obj.pk)
        try:
            if decision == "approve":
                risk_limit_change_approve(proposal=proposal, approver=request.user, note=note)
                messages.success(request, f"Limit change {proposal.pk} approved: the limits are changed.")
            elif decision == "reject":
                risk_limit_change_reject(proposal=proposal, officer=request.user, note=note)
                messages.success(request, f"Limit change {proposal.pk} rejected: the limits stay as they are.")
            else:
                messages.warning(request, "No decision taken: choose approve or reject.")
        except ApplicationError as exc:
            messages.error(request, f"Refused: {exc.message}")

    def save_related(self, request, form, formsets, change):
        pass  # the service wrote the rows

    def response_change(self, request, obj):
        from django.http import HttpResponseRedirect
        from django.urls import reverse

        return HttpResponseRedirect(reverse("admin:trading_risklimitproposal_changelist"))


class KillSwitchForm(forms.ModelForm):
    release_now = forms.BooleanField(required=False, help_text="Release (risk managers only)")
    reason = forms.CharField(widget=forms.Textarea, help_text="Why you engage or release it (recorded)")
    user = None  # the person engaging (set by KillSwitchAdmin.get_form): their rights are checked here

    class Meta:
        model = KillSwitch
        fields = ("scope", "scope_value")

    def clean(self):
        """An engage the service would refuse (an instrument, account, trader or algorithm nobody
        knows, the whole firm without the risk manager role) is refused here, beside the fields and
        with what was typed, so the admin never reports "added successfully" for a switch it did
        not add. The service checks again when it engages."""
        from trading.controls.services import kill_switch_check_engage_rights, kill_switch_check_scope

        data = super().clean()
        if self.instance.pk is None and "scope" in data:
            try:
                kill_switch_check_scope(scope=data["scope"], scope_value=data.get("scope_value") or "")
                if self.user is not None:
                    kill_switch_check_engage_rights(user=self.user, scope=data["scope"])
            except ApplicationError as exc:
                raise forms.ValidationError(f"{exc.code}: {exc}", code=exc.code) from None
        return data


@admin.register(KillSwitch)
class KillSwitchAdmin(ServiceRefusalShown, admin.ModelAdmin):
    """Add = engage (cancels every unexecuted order in scope at once). Change = release, for users
    with the risk_manager role, with a reason. Both through ``trading.controls.services``."""

    form = KillSwitchForm
    list_display = ("__str__", "engaged", "engaged_at", "engaged_by", "source", "released_at", "released_by")
    list_filter = ("engaged", "scope", "source")
    readonly_fields = (
        "engaged",
        "engaged_at",
        "engaged_by",
        "engage_reason",
        "source",
        "cancelled_orders",
        "released_at",
        "released_by",
        "release_reason",
    )

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "scope", "scope_value") if obj else self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:  # engaging: what it stops and why; its state is the service's to write
            return ("scope", "scope_value", "reason")  # (an empty add form read "Engaged ✓")
        return super().get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from trading.controls.services import kill_switch_engage, kill_switch_release

        reason = form.cleaned_data["reason"]
        try:
            if not change:
                result = kill_switch_engage(
                    scope=obj.scope,
                    scope_value=obj.scope_value,
                    actor=user_actor(request.user),
                    reason=reason,
                    source="admin",
                    user=request.user,
                )
                obj.pk = result.switch.pk
                messages.info(
                    request, f"Cancelled {len(result.cancelled)} order(s); still open: {result.failed or 'none'}"
                )
            elif form.cleaned_data.get("release_now"):
                kill_switch_release(switch=KillSwitch.objects.get(pk=obj.pk), user=request.user, reason=reason)
        except ApplicationError as exc:
            self.service_refused(request)
            messages.error(request, f"{exc.code}: {exc}")

    def save_related(self, request, form, formsets, change):
        pass  # no relations to save; the service wrote the row


@admin.register(ReplayCheckpoint)
class ReplayCheckpointAdmin(ReadOnlyAdmin):
    """How far the embedded replay got (read-only: the replay writes it; ``rm -rf var/`` or a
    fresh database starts over, docs/event-backbone.md)."""

    list_display = ("symbol", "timeframe", "source", "first_bar_at", "last_bar_at", "bars", "saved_at")


@admin.register(AccountRiskSnapshot)
class AccountRiskSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "equity",
        "peak_equity",
        "drawdown",
        "daily_pnl",
        "trading_state",
        "breaker_state",
        "as_of",
    )


@admin.register(DrawdownRebase)
class DrawdownRebaseAdmin(ReadOnlyAdmin):
    """Re-bases of an account's peak equity (read-only: proposed, approved and rejected on the
    operations console with four eyes, applied by the execution worker; ``trading.controls.drawdown``)."""

    list_display = (
        "account",
        "status",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "seen_drawdown",
        "peak_before",
        "peak_after",
        "applied_at",
    )
    list_filter = ("status",)
