"""Filters of the compliance API (django-filter). They narrow what the selectors return; the
selectors decide who sees anything at all (no tipping off)."""

from __future__ import annotations

from django_filters import rest_framework as filters

from compliance.models import (
    RULE_TYPES,
    Alert,
    Case,
    CaseStatus,
    ComplianceRule,
    PreTradeDecision,
    RuleScope,
    RuleStatus,
)
from compliance.surveillance.params import ALERT_TYPES
from tradeops.api.filters import IdFilter, UtcDateTimeFilter


class AlertFilter(filters.FilterSet):
    alert_type = filters.MultipleChoiceFilter(choices=[(t, t) for t in ALERT_TYPES])
    severity = filters.CharFilter(max_length=8)
    symbol = filters.CharFilter(max_length=64)
    account = filters.CharFilter(field_name="account", lookup_expr="icontains", max_length=200)
    owner = filters.CharFilter(max_length=64)
    case = filters.CharFilter(field_name="case__reference", max_length=24)
    case_status = filters.ChoiceFilter(field_name="case__status", choices=CaseStatus.choices)
    seen_after = UtcDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    seen_before = UtcDateTimeFilter(field_name="first_seen", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["alert_type", "severity", "symbol", "account", "owner", "case", "case_status"]


class CaseFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=CaseStatus.choices)
    symbol = filters.CharFilter(max_length=64)
    owner = filters.CharFilter(field_name="subject_owner", max_length=64)
    pending = filters.BooleanFilter(method="filter_pending", help_text="true: a close/report awaits approval")
    opened_after = UtcDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = UtcDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = Case
        fields = ["status", "symbol", "owner", "pending"]

    def filter_pending(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.exclude(pending_action="") if value else queryset.filter(pending_action="")


class RuleFilter(filters.FilterSet):
    code = filters.CharFilter(max_length=80, help_text="Every version of one rule")
    rule_type = filters.ChoiceFilter(choices=RULE_TYPES)
    status = filters.MultipleChoiceFilter(choices=RuleStatus.choices)
    scope = filters.ChoiceFilter(choices=RuleScope.choices)

    class Meta:
        model = ComplianceRule
        fields = ["code", "rule_type", "status", "scope"]


class PreTradeDecisionFilter(filters.FilterSet):
    client_order_id = filters.CharFilter(max_length=64)
    account = IdFilter(field_name="account_id")
    symbol = filters.CharFilter(max_length=32)
    approved = filters.BooleanFilter()
    decided_after = UtcDateTimeFilter(field_name="decided_at", lookup_expr="gte")
    decided_before = UtcDateTimeFilter(field_name="decided_at", lookup_expr="lt")

    class Meta:
        model = PreTradeDecision
        fields = ["client_order_id", "account", "symbol", "approved"]
