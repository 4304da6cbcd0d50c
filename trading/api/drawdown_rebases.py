"""Re-bases of an account's peak equity with four eyes, over the API (``trading.controls.drawdown``):
a risk manager proposes one with a reason, a different risk manager approves it (the execution
worker then re-bases the peak: ``risk.drawdown_rebased``) or either rejects it; everybody who
reads the operations console reads them, auditors included. The same services as the console's
forms, so the same checks and audit records. Views parse, authorise, call one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView, ApiView
from trading.api.filters import DrawdownRebaseFilter
from trading.controls.drawdown import drawdown_rebase_approve, drawdown_rebase_propose, drawdown_rebase_reject
from trading.controls.selectors import drawdown_rebase_visible_get, drawdown_rebases_visible_to
from trading.models import DrawdownRebase, TradingAccount


class DrawdownRebaseOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    proposed_by = serializers.CharField(source="proposed_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    seen_peak_equity = serializers.DecimalField(
        max_digits=24, decimal_places=6, allow_null=True, help_text="The account's peak equity when it was proposed"
    )
    seen_equity = serializers.DecimalField(
        max_digits=24, decimal_places=6, allow_null=True, help_text="Its equity then"
    )
    seen_drawdown = serializers.DecimalField(
        max_digits=8, decimal_places=6, allow_null=True, help_text="Its drawdown then (a fraction of the peak)"
    )
    peak_before = serializers.DecimalField(
        max_digits=24, decimal_places=6, allow_null=True, help_text="The peak equity the worker re-based (once applied)"
    )
    peak_after = serializers.DecimalField(
        max_digits=24, decimal_places=6, allow_null=True, help_text="The equity it re-based it on"
    )
    drawdown_before = serializers.DecimalField(
        max_digits=8, decimal_places=6, allow_null=True, help_text="The drawdown it ended"
    )
    applied_at = serializers.DateTimeField(allow_null=True, help_text="When the worker applied it (event time)")
    applied_recorded_at = serializers.DateTimeField(allow_null=True, help_text="The wall clock of that write")

    class Meta:
        model = DrawdownRebase
        fields = [
            "id",
            "account",
            "reason",
            "status",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "seen_peak_equity",
            "seen_equity",
            "seen_drawdown",
            "peak_before",
            "peak_after",
            "drawdown_before",
            "applied_at",
            "applied_recorded_at",
            "applied_by",
        ]


class DrawdownRebaseListPropose(ApiListView):
    """GET: re-bases of accounts' peak equity, newest first (``?account=``, ``?status=``,
    ``?applied=``). POST: propose one for an account with a reason (risk managers); it takes
    effect only when a different risk manager approves it. 409 ``drawdown_rebase_pending`` while
    one of the account's is pending, or approved and not yet applied by the execution worker."""

    matrix = {"GET": ("drawdown_rebases", "read"), "POST": ("drawdown_rebases", "propose")}
    serializer_class = DrawdownRebaseOutput
    filterset_class = DrawdownRebaseFilter

    class InputSerializer(StrictInputSerializer):
        account = serializers.PrimaryKeyRelatedField(queryset=TradingAccount.objects.all())
        reason = serializers.CharField(
            max_length=2000, help_text="Why the drawdown is understood and the account may trade again"
        )

    def select(self):
        return drawdown_rebases_visible_to(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: DrawdownRebaseOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rebase = drawdown_rebase_propose(
            proposed_by=request.user,
            account=data.validated_data["account"],
            reason=data.validated_data["reason"],
        )
        return Response(DrawdownRebaseOutput(rebase).data, status=status.HTTP_201_CREATED)


class DrawdownRebaseDetail(ApiDetailView):
    """One re-base of an account's peak equity, with the figures the worker applied it at."""

    matrix = {"GET": ("drawdown_rebases", "read")}
    serializer_class = DrawdownRebaseOutput

    def select_one(self, pk):
        return drawdown_rebase_visible_get(user=self.request.user, pk=pk)


class DrawdownRebaseApprove(ApiView):
    """The second risk manager approves: ``risk.drawdown_rebased`` is published and the execution
    worker trading the account re-bases its peak equity (audited). The proposer cannot approve
    (403 ``four_eyes``); one no longer pending is 409 ``drawdown_rebase_decided``."""

    matrix = {"POST": ("drawdown_rebases", "approve")}

    class InputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: DrawdownRebaseOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rebase = drawdown_rebase_approve(
            rebase=drawdown_rebase_visible_get(user=request.user, pk=pk),
            approver=request.user,
            note=data.validated_data["note"],
        )
        return Response(DrawdownRebaseOutput(rebase).data)


class DrawdownRebaseReject(ApiView):
    """Refuse (or, by its proposer, withdraw) a pending re-base, with a note; the peak stays."""

    matrix = {"POST": ("drawdown_rebases", "approve")}

    class InputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses={200: DrawdownRebaseOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rebase = drawdown_rebase_reject(
            rebase=drawdown_rebase_visible_get(user=request.user, pk=pk),
            officer=request.user,
            note=data.validated_data["note"],
        )
        return Response(DrawdownRebaseOutput(rebase).data)
