"""Alerts, cases, case actions with the four-eyes rules, and the STOR draft (MAR Art. 16;
2016/957). Compliance officers act, auditors read, nobody else sees any of it (the matrix and the
selectors: no tipping off). Views parse, authorise, call one service or selector."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from compliance.api.filters import AlertFilter, CaseFilter
from compliance.models import Alert, Case, CaseAction
from compliance.selectors import (
    alert_visible_get,
    alerts_visible_to,
    case_actions_visible_to,
    case_stor_draft,
    case_visible_get,
    cases_visible_to,
)
from compliance.services import (
    case_disposition_approve,
    case_disposition_reject,
    case_disposition_request,
    case_escalate,
    case_review_start,
)
from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView, ApiView


class AlertOutput(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id")
    case_reference = serializers.CharField(source="case.reference")
    case_status = serializers.CharField(source="case.status")

    class Meta:
        model = Alert
        fields = [
            "id",
            "alert_type",
            "severity",
            "account",
            "owner",
            "symbol",
            "order_ids",
            "score",
            "start",
            "end",
            "evidence",
            "source",
            "occurrences",
            "first_seen",
            "last_seen",
            "recorded_at",
            "updated_at",
            "case",
            "case_reference",
            "case_status",
        ]


class AlertList(ApiListView):
    """Surveillance alerts, newest first, with their evidence (each figure beside its threshold)."""

    matrix = {"GET": ("alerts", "read")}
    serializer_class = AlertOutput
    filterset_class = AlertFilter
    cache_pages = True  # alerts and their cases: both move the data version (tradeops.api.cache)

    def select(self):
        return alerts_visible_to(user=self.request.user)


class AlertDetail(ApiDetailView):
    """One alert."""

    matrix = {"GET": ("alerts", "read")}
    serializer_class = AlertOutput

    def select_one(self, pk):
        return alert_visible_get(user=self.request.user, pk=pk)


class CaseOutput(serializers.ModelSerializer):
    assigned_to = serializers.CharField(source="assigned_to.username", allow_null=True)
    pending_by = serializers.CharField(source="pending_by.username", allow_null=True)
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "reference",
            "status",
            "subject_owner",
            "subject_account",
            "symbol",
            "alert_types",
            "max_score",
            "opened_at",
            "last_alert_at",
            "assigned_to",
            "pending_action",
            "pending_reason",
            "pending_by",
            "pending_at",
            "outcome_reason",
            "decided_by",
            "decided_at",
        ]


class CaseList(ApiListView):
    """Cases (alerts about one subject and symbol), newest first."""

    matrix = {"GET": ("cases", "read")}
    serializer_class = CaseOutput
    filterset_class = CaseFilter

    def select(self):
        return cases_visible_to(user=self.request.user)


class CaseDetail(ApiDetailView):
    """One case."""

    matrix = {"GET": ("cases", "read")}
    serializer_class = CaseOutput

    def select_one(self, pk):
        return case_visible_get(user=self.request.user, pk=pk)


class CaseActionOutput(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, help_text="null: the system")

    class Meta:
        model = CaseAction
        fields = ["id", "action", "actor", "note", "from_status", "to_status", "at"]


# One case step per action name: each calls one service of compliance.services.
CASE_STEPS = {
    "review_start": lambda case, user, note: case_review_start(case=case, officer=user),
    "escalate": lambda case, user, note: case_escalate(case=case, officer=user, note=note),
    "close_request": lambda case, user, note: case_disposition_request(
        case=case, officer=user, action="close", reason=note
    ),
    "report_request": lambda case, user, note: case_disposition_request(
        case=case, officer=user, action="report", reason=note
    ),
}


class CaseActionListCreate(ApiListView):
    """GET: every step taken on the case, oldest first. POST: take a step (compliance officers):
    ``review_start`` (new -> in review), ``escalate``, ``close_request`` / ``report_request``
    (with the reason: the analysis behind not reporting is kept); a close or report takes effect
    only when a different officer decides it (``/decision/``)."""

    matrix = {"GET": ("cases", "read"), "POST": ("cases", "act")}
    serializer_class = CaseActionOutput
    filterset_class = None
    cursor_ordering = "pk"

    class InputSerializer(StrictInputSerializer):
        action = serializers.ChoiceField(choices=list(CASE_STEPS))
        note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    def select(self):
        case = case_visible_get(user=self.request.user, pk=self.kwargs["pk"])
        return case_actions_visible_to(user=self.request.user, case=case)

    @extend_schema(request=InputSerializer, responses={200: CaseOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = case_visible_get(user=request.user, pk=pk)
        case = CASE_STEPS[data.validated_data["action"]](case, request.user, data.validated_data["note"])
        return Response(CaseOutput(case).data)


class CaseDecision(ApiView):
    """The second officer decides a pending close or report: ``approve`` (it takes effect) or
    ``reject`` (the case stays open; the request stays in its history). The officer who asked
    cannot approve (``four_eyes``)."""

    matrix = {"POST": ("cases", "decide")}

    class InputSerializer(StrictInputSerializer):
        decision = serializers.ChoiceField(choices=["approve", "reject"])
        note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: CaseOutput})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = case_visible_get(user=request.user, pk=pk)
        note = data.validated_data["note"]
        if data.validated_data["decision"] == "approve":
            case = case_disposition_approve(case=case, officer=request.user, note=note)
        else:
            case = case_disposition_reject(case=case, officer=request.user, note=note)
        return Response(CaseOutput(case).data)


class CaseStorDraft(ApiView):
    """A draft STOR for the competent authority (the five sections of the 2016/957 template);
    what only a person can state is ``TO COMPLETE``. Compliance officers only."""

    matrix = {"GET": ("stor_drafts", "read")}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        return Response(case_stor_draft(case=case_visible_get(user=request.user, pk=pk), user=request.user))
