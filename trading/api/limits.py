"""Risk limits (read) and changes to them with four eyes (a risk manager proposes, a different
risk manager approves or either rejects). Views parse, authorise, call one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView, ApiView
from trading.api.filters import RiskLimitFilter, RiskLimitProposalFilter
from trading.controls.limit_changes import (
    risk_limit_change_approve,
    risk_limit_change_propose,
    risk_limit_change_reject,
)
from trading.controls.selectors import (
    risk_limit_proposal_visible_get,
    risk_limit_proposals_visible_to,
    risk_limit_visible_get,
    risk_limits_visible_to,
)
from trading.controls.services import LIMIT_FIELDS
from trading.models import Instrument, RiskLimit, RiskLimitProposal, TradingAccount


class RiskLimitOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id", allow_null=True, help_text="null: every account")
    symbol = serializers.CharField(source="instrument.symbol", allow_null=True, help_text="null: every instrument")

    class Meta:
        model = RiskLimit
        fields = ["id", "account", "symbol", *LIMIT_FIELDS, "updated_at", "updated_by"]


class RiskLimitList(ApiListView):
    """Pre-trade risk limit rows (RTS 6 Art. 15/17). A null limit means no limit at that scope;
    for each control the most specific row with a value wins."""

    matrix = {"GET": ("risk_limits", "read")}
    serializer_class = RiskLimitOutput
    filterset_class = RiskLimitFilter
    cursor_ordering = "pk"

    def select(self):
        return risk_limits_visible_to(user=self.request.user)


class RiskLimitDetail(ApiDetailView):
    """One risk limit row."""

    matrix = {"GET": ("risk_limits", "read")}
    serializer_class = RiskLimitOutput

    def select_one(self, pk):
        return risk_limit_visible_get(user=self.request.user, pk=pk)


class LimitValues(serializers.Serializer):
    """The limits to change; a field left out keeps its value, ``null`` removes that limit."""

    max_position_lots = serializers.DecimalField(max_digits=20, decimal_places=6, required=False, allow_null=True)
    max_gross_exposure = serializers.DecimalField(max_digits=24, decimal_places=6, required=False, allow_null=True)
    max_net_exposure = serializers.DecimalField(max_digits=24, decimal_places=6, required=False, allow_null=True)
    check_margin = serializers.BooleanField(required=False)
    daily_loss_limit = serializers.DecimalField(max_digits=24, decimal_places=6, required=False, allow_null=True)
    max_drawdown = serializers.DecimalField(max_digits=6, decimal_places=4, required=False, allow_null=True)
    max_submits_per_second = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    max_modifies_per_second = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    max_open_orders = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    duplicate_window_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class ProposalOutput(serializers.ModelSerializer):
    limit = serializers.IntegerField(source="limit_id", allow_null=True, help_text="The row it changes or created")
    account = serializers.IntegerField(source="account_id", allow_null=True)
    symbol = serializers.CharField(source="instrument.symbol", allow_null=True)
    values = serializers.SerializerMethodField(help_text="The proposed values only (null: remove that limit)")
    proposed_by = serializers.CharField(source="proposed_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)

    class Meta:
        model = RiskLimitProposal
        fields = [
            "id",
            "limit",
            "account",
            "symbol",
            "values",
            "reason",
            "status",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ]

    @extend_schema_field(LimitValues)
    def get_values(self, proposal) -> dict:
        return dict(proposal.values)


class ProposalListCreate(ApiListView):
    """GET: limit changes, newest first. POST: propose one (risk managers); it takes effect only
    when a different risk manager approves it."""

    matrix = {"GET": ("risk_limits", "read"), "POST": ("risk_limits", "propose")}
    serializer_class = ProposalOutput
    filterset_class = RiskLimitProposalFilter

    class InputSerializer(StrictInputSerializer):
        account = serializers.PrimaryKeyRelatedField(
            queryset=TradingAccount.objects.all(), required=False, allow_null=True, help_text="Omit: every account"
        )
        symbol = serializers.SlugRelatedField(
            slug_field="symbol",
            queryset=Instrument.objects.all(),
            required=False,
            allow_null=True,
            help_text="Omit: every instrument",
        )
        values = LimitValues()
        reason = serializers.CharField(max_length=2000)

    def select(self):
        return risk_limit_proposals_visible_to(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: ProposalOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = risk_limit_change_propose(
            proposed_by=request.user,
            account=data.validated_data.get("account"),
            instrument=data.validated_data.get("symbol"),
            values=dict(data.validated_data["values"]),
            reason=data.validated_data["reason"],
        )
        return Response(ProposalOutput(proposal).data, status=status.HTTP_201_CREATED)


class ProposalDetail(ApiDetailView):
    """One limit change."""

    matrix = {"GET": ("risk_limits", "read")}
    serializer_class = ProposalOutput

    def select_one(self, pk):
        return risk_limit_proposal_visible_get(user=self.request.user, pk=pk)


class DecisionInput(StrictInputSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ProposalApprove(ApiView):
    """The second risk manager approves: the limits change now (audited, and the execution worker
    reloads them). The proposer cannot approve (``four_eyes``)."""

    matrix = {"POST": ("risk_limits", "approve")}

    @extend_schema(request=DecisionInput, responses={200: RiskLimitOutput})
    def post(self, request, pk: int):
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        limit = risk_limit_change_approve(
            proposal=risk_limit_proposal_visible_get(user=request.user, pk=pk),
            approver=request.user,
            note=data.validated_data["note"],
        )
        return Response(RiskLimitOutput(limit).data)


class ProposalReject(ApiView):
    """Refuse (or, by its proposer, withdraw) a pending limit change, with a note."""

    matrix = {"POST": ("risk_limits", "approve")}

    class InputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses={200: ProposalOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = risk_limit_change_reject(
            proposal=risk_limit_proposal_visible_get(user=request.user, pk=pk),
            officer=request.user,
            note=data.validated_data["note"],
        )
        return Response(ProposalOutput(proposal).data)
