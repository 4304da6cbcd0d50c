"""Regulatory reports over the integration API: run one (generated and validated by the
``reports`` queue), follow its status, approve it (four eyes: not who generated it; an approved
transaction report is queued for the ARM), read its held-back and rejected records, download its
file or the ARM's feedback. Compliance officers run and approve; auditors and admins read.
Views parse, authorise, call one service or selector (MiFIR Art. 26, MiFID II Art. 27,
RTS 6 Art. 9)."""

from __future__ import annotations

from django.http import FileResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance.reports.models import RecordState, ReportKind, ReportRun, RunStatus, TransactionRecord
from compliance.reports.selectors import (
    report_run_download,
    report_run_get,
    report_run_list,
    report_run_records,
)
from compliance.reports.services import report_run_approve, report_run_request
from tradeops.api.filters import UtcDateTimeFilter
from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView, ApiView


class ReportRunFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=ReportKind.choices)
    status = filters.MultipleChoiceFilter(choices=RunStatus.choices)
    period_start = filters.DateFilter(field_name="period_end", lookup_expr="gte", help_text="covering from")
    period_end = filters.DateFilter(field_name="period_start", lookup_expr="lte", help_text="covering until")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = ReportRun
        fields = ["kind", "status"]


class ReportRunOutput(serializers.ModelSerializer):
    generated_by = serializers.CharField(source="generated_by_label", help_text="user:<name> or service:<name>")
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True)
    supersedes = serializers.CharField(source="supersedes.reference", allow_null=True)
    corrects = serializers.CharField(source="corrects.reference", allow_null=True)
    has_file = serializers.SerializerMethodField()
    has_feedback = serializers.SerializerMethodField()

    class Meta:
        model = ReportRun
        fields = [
            "reference",
            "kind",
            "period_start",
            "period_end",
            "as_of",
            "file_format",
            "status",
            "sha256",
            "size_bytes",
            "record_count",
            "held_back_count",
            "out_of_scope_count",
            "accepted_count",
            "rejected_count",
            "summary",
            "errors",
            "supersedes",
            "corrects",
            "reason",
            "generated_by",
            "created_at",
            "generated_at",
            "validated_at",
            "approved_by",
            "approved_at",
            "approval_note",
            "submitted_at",
            "submission_id",
            "last_error",
            "feedback_at",
            "has_file",
            "has_feedback",
        ]

    def get_has_file(self, run) -> bool:
        return bool(run.file)

    def get_has_feedback(self, run) -> bool:
        return bool(run.feedback_file)


class ReportRunListCreate(ApiListView):
    """GET: report runs, newest first. POST: run a report (compliance officers): the run is
    opened now (202, status ``pending``; a run of the same kind and period not yet submitted is
    superseded) and generated and validated by the ``reports`` queue; follow ``status``."""

    matrix = {"GET": ("reports", "read"), "POST": ("reports", "run")}
    serializer_class = ReportRunOutput
    filterset_class = ReportRunFilter

    class InputSerializer(StrictInputSerializer):
        kind = serializers.ChoiceField(choices=ReportKind.choices)
        period_start = serializers.DateField()
        period_end = serializers.DateField()
        file_format = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")
        supersedes = serializers.CharField(
            max_length=35, required=False, allow_blank=True, default="", help_text="Reference of a submitted run"
        )
        reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def select(self):
        return report_run_list(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={202: ReportRunOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        supersedes = report_run_get(user=request.user, reference=values["supersedes"]) if values["supersedes"] else None
        run = report_run_request(
            kind=values["kind"],
            period_start=values["period_start"],
            period_end=values["period_end"],
            file_format=values["file_format"],
            supersedes=supersedes,
            reason=values["reason"],
            user=request.user,
        )
        return Response(ReportRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class ReportRunDetail(ApiDetailView):
    """One run by reference (its status, counts, errors, who generated and approved it)."""

    matrix = {"GET": ("reports", "read")}
    serializer_class = ReportRunOutput

    def select_one(self, reference):
        return report_run_get(user=self.request.user, reference=reference)


class ReportRunApprove(ApiView):
    """A compliance officer who did not generate the run signs it off (``four_eyes`` otherwise);
    a transaction report is then queued for the ARM. Precondition: validated."""

    matrix = {"POST": ("reports", "approve")}

    class InputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: ReportRunOutput})
    def post(self, request, reference: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = report_run_approve(
            run=report_run_get(user=request.user, reference=reference),
            approver=request.user,
            note=data.validated_data["note"],
        )
        return Response(ReportRunOutput(run).data)


class RecordFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=RecordState.choices)

    class Meta:
        model = TransactionRecord
        fields = ["state"]


class RecordOutput(serializers.ModelSerializer):
    execution = serializers.IntegerField(source="execution_id")
    corrects = serializers.IntegerField(source="corrects_id", allow_null=True)

    class Meta:
        model = TransactionRecord
        fields = ["id", "trn", "execution", "report_status", "state", "active", "late", "reasons", "values", "corrects"]


class ReportRunRecords(ApiListView):
    """A transaction run's records: what was reported, held back (with the reasons), accepted or
    rejected by the ARM (with its reasons), corrected."""

    matrix = {"GET": ("reports", "read")}
    serializer_class = RecordOutput
    filterset_class = RecordFilter
    cursor_ordering = "pk"

    def select(self):
        run = report_run_get(user=self.request.user, reference=self.kwargs["reference"])
        return report_run_records(user=self.request.user, run=run)


class ReportRunFile(ApiView):
    """The run's file as generated (``?feedback=true``: the ARM's feedback), streamed, with its
    SHA-256 in ``X-Content-SHA256`` to check what arrived."""

    matrix = {"GET": ("reports", "read")}

    @extend_schema(
        parameters=[OpenApiParameter("feedback", OpenApiTypes.BOOL, description="the ARM's feedback file instead")],
        responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="the file (XML, CSV, JSON or ZIP)")},
    )
    def get(self, request, reference: str):
        feedback = request.query_params.get("feedback", "").lower() in ("1", "true", "yes")
        download = report_run_download(
            user=request.user, run=report_run_get(user=request.user, reference=reference), feedback=feedback
        )
        response = FileResponse(download.fh, as_attachment=True, filename=download.filename)
        response["Content-Type"] = download.content_type
        response["X-Content-SHA256"] = download.sha256
        return response
