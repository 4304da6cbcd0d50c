"""The audit trail over the integration API (2017/565 Art. 72; MiFIR Art. 25): search with the
screen's filters, one record with its corrections, its inclusion proof, the chain's verification,
the daily digests. Read-only for everyone, but for running a verification (a POST: the run is
recorded in the trail, as every run is); views parse, authorise, call one reader or service."""

from __future__ import annotations

from datetime import datetime

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from tradeops.api.filters import UtcDateTimeFilter
from tradeops.api.throttling import AuditVerifyThrottle, ClientRateThrottle, UserRateThrottle
from tradeops.api.views import ApiDetailView, ApiListView, ApiView
from tradeops.audit.actors import user_actor
from tradeops.audit.digest import audit_digest_check, audit_proof, digest_document
from tradeops.audit.models import AuditRecord, Category, Digest
from tradeops.audit.search import AuditQuery, audit_query_apply
from tradeops.audit.selectors import (
    audit_digest_visible_get,
    audit_digests_visible_to,
    audit_record_corrected,
    audit_record_corrections,
    audit_record_visible_get,
    audit_records_visible_to,
    audit_verification_latest,
)
from tradeops.audit.services import audit_verification_run
from tradeops.audit.verify import audit_payload_shown, verify_report_labelled
from tradeops.core.api import ErrorResponse


class AuditRecordFilter(filters.FilterSet):
    """The audit screen's filters (``tradeops.audit.search.AuditQuery``)."""

    q = filters.CharFilter(
        max_length=500,
        method="noop",
        help_text="Free text (PostgreSQL full text); never matches a database address an audit.verified record names",
    )
    actor = filters.CharFilter(max_length=200, method="noop", help_text='"user:alice", or "alice" (any actor type)')
    action = filters.CharFilter(max_length=64, method="noop", help_text='Exact, or a prefix ending in "." ("order.")')
    object_type = filters.CharFilter(max_length=64, method="noop")
    object_id = filters.CharFilter(max_length=128, method="noop")
    category = filters.ChoiceFilter(choices=Category.choices, method="noop")
    since = UtcDateTimeFilter(method="noop", help_text="occurred_at >= since")
    until = UtcDateTimeFilter(method="noop", help_text="occurred_at < until")

    class Meta:
        model = AuditRecord
        fields: list[str] = []

    def noop(self, queryset, name, value):
        return queryset  # applied together in filter_queryset, as one AuditQuery

    def filter_queryset(self, queryset):
        values = {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "")}
        query = AuditQuery(
            text=values.get("q", "").strip(),
            actor=values.get("actor", "").strip(),
            action=values.get("action", "").strip(),
            object_type=values.get("object_type", "").strip(),
            object_id=values.get("object_id", "").strip(),
            category=values.get("category", ""),
            since=values.get("since"),
            until=values.get("until"),
        )
        return audit_query_apply(queryset, query)


class ShownPayloadField(serializers.JSONField):
    """A record's payload as the API shows it (``audit_payload_shown``: an ``audit.verified``
    record's databases by label, whatever it recorded)."""

    def to_representation(self, value):
        return audit_payload_shown(value)


class AuditRecordOutput(serializers.ModelSerializer):
    actor = serializers.CharField(help_text='"user:alice", "service:execution-worker", "system"...')
    payload = ShownPayloadField(
        source="*",
        help_text="As recorded (canonical JSON, parsed); an audit.verified record's databases by label",
    )

    class Meta:
        model = AuditRecord
        fields = [
            "sequence",
            "event_id",
            "occurred_at",
            "recorded_at",
            "retain_until",
            "category",
            "actor",
            "action",
            "object_type",
            "object_id",
            "payload",
            "corrects",
            "prev_hash",
            "hash",
        ]


class AuditRecordDetailOutput(AuditRecordOutput):
    corrections = serializers.SerializerMethodField(help_text="Sequences of the records that correct this one")
    corrected = serializers.SerializerMethodField(help_text="Sequence of the record this one corrects")

    class Meta(AuditRecordOutput.Meta):
        fields = [*AuditRecordOutput.Meta.fields, "corrections", "corrected"]

    def get_corrections(self, record) -> list[int]:
        return audit_record_corrections(record=record)

    def get_corrected(self, record) -> int | None:
        return audit_record_corrected(record=record)


class AuditRecordList(ApiListView):
    """Audit records, newest first, filtered like the audit screen."""

    matrix = {"GET": ("audit_records", "read")}
    serializer_class = AuditRecordOutput
    filterset_class = AuditRecordFilter
    cursor_ordering = "-sequence"

    def select(self):
        return audit_records_visible_to(user=self.request.user)


class AuditRecordDetail(ApiDetailView):
    """One record, with the records that correct it and the one it corrects."""

    matrix = {"GET": ("audit_records", "read")}
    serializer_class = AuditRecordDetailOutput

    def select_one(self, sequence):
        return audit_record_visible_get(user=self.request.user, sequence=sequence)


class AuditRecordProof(ApiView):
    """An inclusion proof of the record in its day's Merkle digest (RFC 6962), checkable offline
    against the digest file with ``manage.py audit_digest_verify --proof``. A record of today (UTC)
    is refused (409 ``audit_proof_day_open``, in ``audit_digest --proof``'s words, with ``extra``
    ``digest_from``): its day's tree still grows, so no digest file would match its proof."""

    matrix = {"GET": ("audit_records", "read")}

    @extend_schema(
        responses={
            200: OpenApiTypes.OBJECT,
            # the schema said nothing of it (a GET is given no 409 by default); the API answers it
            409: OpenApiResponse(ErrorResponse, description="audit_proof_day_open: a record of today (UTC)"),
        }
    )
    def get(self, request, sequence: int):
        record = audit_record_visible_get(user=request.user, sequence=sequence)
        return Response(audit_proof(event_id=record.event_id))


class CheckpointSourceOutput(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=["this", "unlabelled", "adopted", "skipped"],
        help_text="this: this database's; unlabelled: written before checkpoints named their database, "
        "taken as this one's; adopted: another database's that sign records of this chain (it moved or was "
        "renamed), compared as this one's; skipped: another database's, not compared",
    )
    compared = serializers.BooleanField()
    database = serializers.CharField(allow_null=True, help_text="Its label (as ``database``); null: unlabelled")
    count = serializers.IntegerField()
    first_sequence = serializers.IntegerField(help_text="The lowest record a checkpoint of it signed")
    last_sequence = serializers.IntegerField(help_text="The highest record a checkpoint of it signed")
    newest_created_at = serializers.DateTimeField()


class VerificationOutput(serializers.Serializer):
    sequence = serializers.IntegerField(
        allow_null=True, help_text="The audit.verified record of this run (null: a run not recorded)"
    )
    verified_at = serializers.DateTimeField(help_text="When the run ended (the record's occurred_at)")
    actor = serializers.CharField(help_text='Who ran it: "user:alice", "service:audit-verify-nightly"...')
    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Records recomputed")
    bridged_purged = serializers.IntegerField(help_text="Tombstones of purged records crossed")
    last_sequence = serializers.IntegerField(allow_null=True)
    head_sequence = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField()
    problem = serializers.CharField(allow_null=True, help_text="The first finding, or null")
    findings = serializers.ListField(
        child=serializers.CharField(),
        help_text="Every record tampered with, deleted, inserted or reordered (a recorded run keeps the first 20)",
    )
    checkpoints = serializers.IntegerField(help_text="Signed checkpoints of this database's chain head checked")
    newest_checkpoint = serializers.CharField(allow_blank=True)
    database = serializers.CharField(
        allow_blank=True,
        help_text="This database's label: the AUDIT_CHECKPOINT_DATABASE label when it names no address, else "
        "engine#fingerprint (never the host, port or name; manage.py audit_verify prints those)",
    )
    skipped_checkpoints = serializers.IntegerField(help_text="Checkpoints of other databases, not compared")
    checkpoint_sources = CheckpointSourceOutput(
        many=True,
        help_text="Whose checkpoints were compared with the chain, and whose were skipped (empty for a run "
        "recorded before 2026-12-06, which did not record them)",
    )
    notes = serializers.ListField(child=serializers.CharField())


def _finding_text(finding) -> str:
    """A recorded finding (``{"kind", "sequence", "detail"}``) in the words of a live report's."""
    if isinstance(finding, dict):
        return f"{finding.get('kind', '')}: record {finding.get('sequence', '')}: {finding.get('detail', '')}"
    return str(finding)


def _recorded_verification(record: AuditRecord) -> dict:
    """An ``audit.verified`` record as the verification it recorded, databases by label (a record
    written before findings named databases by field is labelled when shown)."""
    data = audit_payload_shown(record)
    findings = [_finding_text(finding) for finding in data.get("findings") or []]
    sources = [
        {
            **source,
            "compared": source.get("role") != "skipped",
            "newest_created_at": datetime.fromisoformat(source["newest_created_at"]),
        }
        for source in data.get("checkpoint_sources") or []
        if isinstance(source, dict)
    ]
    return {
        "sequence": record.sequence,
        "verified_at": record.occurred_at,
        "actor": record.actor,
        "ok": bool(data.get("ok")),
        "checked": data.get("checked", 0),
        "bridged_purged": data.get("bridged_purged", 0),
        "last_sequence": data.get("last_sequence"),
        "head_sequence": data.get("head_sequence"),
        "seconds": data.get("seconds", 0.0),
        "problem": findings[0] if findings else None,
        "findings": findings,
        "checkpoints": data.get("checkpoints", 0),
        "newest_checkpoint": data.get("newest_checkpoint") or "",
        "database": data.get("database") or "",
        "skipped_checkpoints": data.get("skipped_checkpoints", 0),
        "checkpoint_sources": sources,
        "notes": [str(note) for note in data.get("notes") or []],
    }


class AuditVerification(ApiView):
    """The chain's verification. ``GET``: the latest one recorded in the trail (the newest
    ``audit.verified`` record: when, by whom, the result, whose checkpoints were compared or
    skipped), whoever ran it (the audit screen, this API, the nightly task, ``manage.py
    audit_verify``); reads one record, runs and writes nothing, so a monitoring probe, a crawler
    or a prefetch costs nothing; 404 ``audit_not_verified`` before the first. ``POST``: recompute
    the hash chain now, check it against the signed checkpoints and the tombstones, record the run
    (``audit.verified``, by the caller) and answer 201 with the report: intact, or every record
    tampered with, deleted, inserted or reordered. Databases are named by their label, never by
    host, port or name (``verify_report_labelled``), whoever holds the token. A POST reads the
    whole trail: throttled to a few per minute per caller (``API_THROTTLE_AUDIT_VERIFY``)."""

    matrix = {"GET": ("audit_verification", "read"), "POST": ("audit_verification", "run")}
    throttle_classes = [ClientRateThrottle, UserRateThrottle]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(AuditVerifyThrottle())
        return throttles

    @extend_schema(
        responses={
            200: VerificationOutput,
            404: OpenApiResponse(ErrorResponse, description="audit_not_verified: no verification recorded yet"),
        }
    )
    def get(self, request):
        latest = audit_verification_latest(user=request.user)
        return Response(VerificationOutput(_recorded_verification(latest)).data)

    @extend_schema(
        request=None,
        responses={
            201: OpenApiResponse(VerificationOutput, description="Verified now; the run is recorded in the trail"),
            429: OpenApiResponse(ErrorResponse, description="throttled: a few verifications per minute per caller"),
        },
    )
    def post(self, request):
        raw, recorded = audit_verification_run(actor=user_actor(request.user))
        report = verify_report_labelled(raw)
        return Response(
            VerificationOutput(
                {
                    "sequence": recorded.sequence,
                    "verified_at": recorded.occurred_at,
                    "actor": recorded.actor,
                    "ok": report.ok,
                    "checked": report.checked,
                    "bridged_purged": report.bridged_purged,
                    "last_sequence": report.last_sequence,
                    "head_sequence": report.head_sequence,
                    "seconds": round(report.seconds, 3),
                    "problem": str(report.problem) if report.problem else None,
                    "findings": [str(finding) for finding in report.findings],
                    "checkpoints": report.checkpoints,
                    "newest_checkpoint": report.newest_checkpoint,
                    "database": report.database,
                    "skipped_checkpoints": report.skipped_checkpoints,
                    "checkpoint_sources": report.checkpoint_sources,
                    "notes": report.notes,
                }
            ).data,
            status=201,
        )


class DigestOutput(serializers.ModelSerializer):
    class Meta:
        model = Digest
        fields = [
            "day",
            "record_count",
            "first_sequence",
            "last_sequence",
            "merkle_root",
            "chain_hash",
            "created_at",
            "file_name",
        ]


class DigestList(ApiListView):
    """Daily Merkle digests of the trail, newest day first."""

    matrix = {"GET": ("audit_digests", "read")}
    serializer_class = DigestOutput
    filterset_class = None
    cursor_ordering = "-day"

    def select(self):
        return audit_digests_visible_to(user=self.request.user)


class DigestDetail(ApiView):
    """One day's digest document (as exported) and its check against the table now."""

    matrix = {"GET": ("audit_digests", "read")}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, day):
        document = digest_document(audit_digest_visible_get(user=request.user, day=day))
        check = audit_digest_check(document=document)
        return Response({"document": document, "check": {"ok": check.ok, "detail": check.detail}})
