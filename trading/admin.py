"""Admin pages: read-mostly views of the system of record. Orders, fills and positions are
written by services only, so their admin is read-only."""

from django import forms
from django.contrib import admin, messages

from tradeops.core.admin import ReadOnlyAdmin
from tradeops.core.errors import ApplicationError
from trading.models import (
    AccountRiskSnapshot,
    Execution,
    Instrument,
    KillSwitch,
    Order,
    Position,
    RiskLimit,
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


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    """Risk managers edit limits here; every save goes through ``risk_limit_save`` (audited with
    before/after and published, so the execution worker reloads at once)."""

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
        from trading.controls.services import LIMIT_FIELDS, risk_limit_save

        values = {name: form.cleaned_data[name] for name in LIMIT_FIELDS if name in form.cleaned_data}
        saved = risk_limit_save(
            actor=f"user:{request.user.get_username()}",
            limit=RiskLimit.objects.get(pk=obj.pk) if change else None,
            account=form.cleaned_data.get("account"),
            instrument=form.cleaned_data.get("instrument"),
            reason="changed in the admin",
            **values,
        )
        obj.pk = saved.pk


class KillSwitchForm(forms.ModelForm):
    release_now = forms.BooleanField(required=False, help_text="Release (risk managers only)")
    reason = forms.CharField(widget=forms.Textarea, help_text="Why you engage or release it (recorded)")

    class Meta:
        model = KillSwitch
        fields = ("scope", "scope_value")


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
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
                    actor=f"user:{request.user.get_username()}",
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
            messages.error(request, f"{exc.code}: {exc}")

    def save_related(self, request, form, formsets, change):
        pass  # no relations to save; the service wrote the row


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
