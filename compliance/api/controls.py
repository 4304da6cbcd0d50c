"""Compliance rules (every version; propose; approve or reject by a second officer) and the
pre-trade decisions that applied them (RTS 6 Art. 15; 2017/565 Art. 72: a change is a new
version, the one it replaces stays readable). Views parse, authorise, call one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance.api.filters import PreTradeDecisionFilter, RuleFilter
from compliance.models import RULE_TYPES, ComplianceRule, PreTradeDecision, RuleScope
from compliance.selectors import (
    compliance_rule_visible_get,
    compliance_rules_visible_to,
    pretrade_decisions_visible_to,
)
from compliance.services import compliance_rule_approve, compliance_rule_propose, compliance_rule_reject
from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView, ApiView
from trading.models import Instrument, TradingAccount


class RuleOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id", allow_null=True)
    symbol = serializers.CharField(source="instrument.symbol", allow_null=True)
    previous = serializers.IntegerField(source="previous_id", allow_null=True, help_text="The version it replaces")
    proposed_by = serializers.CharField(source="proposed_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)

    class Meta:
        model = ComplianceRule
        fields = [
            "id",
            "code",
            "version",
            "rule_type",
            "scope",
            "account",
            "symbol",
            "algo_id",
            "parameters",
            "status",
            "change_reason",
            "previous",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "effective_from",
            "effective_to",
        ]


class RuleListPropose(ApiListView):
    """GET: every version of every rule (``?code=`` for one rule's history). POST: propose a rule
    or a change (a new pending version; compliance officers); it takes effect when a different
    officer approves it."""

    matrix = {"GET": ("rules", "read"), "POST": ("rules", "propose")}
    serializer_class = RuleOutput
    filterset_class = RuleFilter

    class InputSerializer(StrictInputSerializer):
        code = serializers.SlugField(max_length=80, required=False, allow_blank=True, default="")
        rule_type = serializers.ChoiceField(choices=RULE_TYPES)
        scope = serializers.ChoiceField(choices=RuleScope.choices, default=RuleScope.FIRM)
        account = serializers.PrimaryKeyRelatedField(
            queryset=TradingAccount.objects.all(), required=False, allow_null=True
        )
        symbol = serializers.SlugRelatedField(
            slug_field="symbol", queryset=Instrument.objects.all(), required=False, allow_null=True
        )
        algo_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        parameters = serializers.DictField(help_text="The rule type's parameters (validated against its schema)")
        reason = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    def select(self):
        return compliance_rules_visible_to(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: RuleOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        rule = compliance_rule_propose(
            proposed_by=request.user,
            rule_type=values["rule_type"],
            parameters=values["parameters"],
            code=values["code"],
            scope=values["scope"],
            account=values.get("account"),
            instrument=values.get("symbol"),
            algo_id=values["algo_id"],
            reason=values["reason"],
        )
        return Response(RuleOutput(rule).data, status=status.HTTP_201_CREATED)


class RuleDetail(ApiDetailView):
    """One version of a rule."""

    matrix = {"GET": ("rules", "read")}
    serializer_class = RuleOutput

    def select_one(self, pk):
        return compliance_rule_visible_get(user=self.request.user, pk=pk)


class RuleApprove(ApiView):
    """A second officer approves a pending version: it takes effect now and the version it
    replaces is superseded (kept). The proposer cannot approve (``four_eyes``)."""

    matrix = {"POST": ("rules", "approve")}

    class InputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: RuleOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = compliance_rule_approve(
            rule=compliance_rule_visible_get(user=request.user, pk=pk),
            approver=request.user,
            note=data.validated_data["note"],
        )
        return Response(RuleOutput(rule).data)


class RuleReject(ApiView):
    """Refuse (or, by its proposer, withdraw) a pending version; the version in force stays."""

    matrix = {"POST": ("rules", "approve")}

    class InputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: RuleOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = compliance_rule_reject(
            rule=compliance_rule_visible_get(user=request.user, pk=pk),
            officer=request.user,
            note=data.validated_data["note"],
        )
        return Response(RuleOutput(rule).data)


class PreTradeDecisionOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = PreTradeDecision
        fields = [
            "id",
            "client_order_id",
            "account",
            "symbol",
            "approved",
            "checks",
            "rule_versions",
            "reason",
            "decided_at",
            "recorded_at",
        ]


class PreTradeDecisionList(ApiListView):
    """The compliance part of each pre-trade gate decision: approved or not, each check with the
    rule version it applied, and why (RTS 6 Art. 15)."""

    matrix = {"GET": ("pretrade_decisions", "read")}
    serializer_class = PreTradeDecisionOutput
    filterset_class = PreTradeDecisionFilter

    def select(self):
        return pretrade_decisions_visible_to(user=self.request.user)
