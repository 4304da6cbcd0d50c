"""Instruments and trading accounts (read). Views call one selector each."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tradeops.api.views import ApiDetailView, ApiListView
from trading.api.filters import AccountFilter, InstrumentFilter
from trading.models import AccountRiskSnapshot, Instrument, TradingAccount
from trading.selectors import account_visible_get, accounts_visible_to, instrument_visible_get, instruments_visible_to


class InstrumentOutput(serializers.ModelSerializer):
    class Meta:
        model = Instrument
        fields = [
            "symbol",
            "description",
            "asset_class",
            "isin",
            "cfi_code",
            "currency",
            "quote_currency",
            "tick_size",
            "digits",
            "contract_size",
            "min_volume",
            "max_volume",
            "volume_step",
            "margin_rate",
            "venue_mic",
            "trading_hours",
            "is_active",
        ]


class InstrumentList(ApiListView):
    """Instruments as the broker specifies them (MT5 ``symbol_info``), by symbol."""

    matrix = {"GET": ("instruments", "read")}
    serializer_class = InstrumentOutput
    filterset_class = InstrumentFilter
    cursor_ordering = "symbol"

    def select(self):
        return instruments_visible_to(user=self.request.user)


class InstrumentDetail(ApiDetailView):
    """One instrument by symbol."""

    matrix = {"GET": ("instruments", "read")}
    serializer_class = InstrumentOutput

    def select_one(self, symbol):
        return instrument_visible_get(user=self.request.user, symbol=symbol)


class RiskSnapshotOutput(serializers.ModelSerializer):
    class Meta:
        model = AccountRiskSnapshot
        fields = [
            "balance",
            "equity",
            "unrealised_pnl",
            "peak_equity",
            "drawdown",
            "daily_pnl",
            "used_margin",
            "trading_state",
            "breaker_state",
            "as_of",
            "updated_at",
        ]


class AccountOutput(serializers.ModelSerializer):
    risk = serializers.SerializerMethodField(help_text="The execution worker's latest equity view, or null")

    class Meta:
        model = TradingAccount
        fields = [
            "id",
            "name",
            "mt5_login",
            "mt5_server",
            "firm_lei",
            "client_id",
            "beneficial_owner",
            "margin_mode",
            "base_currency",
            "is_active",
            "created_at",
            "risk",
        ]

    @extend_schema_field(RiskSnapshotOutput(allow_null=True))
    def get_risk(self, account):
        snapshot = getattr(account, "risk_snapshot", None)
        return RiskSnapshotOutput(snapshot).data if snapshot is not None else None


class AccountList(ApiListView):
    """Trading accounts (MT5 login and server, firm LEI, client), with equity and drawdown."""

    matrix = {"GET": ("accounts", "read")}
    serializer_class = AccountOutput
    filterset_class = AccountFilter
    cursor_ordering = "pk"

    def select(self):
        return accounts_visible_to(user=self.request.user)


class AccountDetail(ApiDetailView):
    """One trading account."""

    matrix = {"GET": ("accounts", "read")}
    serializer_class = AccountOutput

    def select_one(self, pk):
        return account_visible_get(user=self.request.user, pk=pk)
