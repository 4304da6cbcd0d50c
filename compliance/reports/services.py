"""Writers of the regulatory reports: runs, their status machine, four eyes, submission,
feedback and corrections (the reporting configuration's writers are in ``configuration.py``).
Keyword-only, audited, the only path.

Status of a run: pending -> generated -> validated -> approved -> submitted -> accepted |
rejected (``failed`` and ``superseded`` as side exits). Every step is one audit record
(``report.<step>``, category compliance, with before/after) in the step's own transaction
(2017/565 Art. 72). Four eyes: a run is approved by a compliance officer who is not the person
who generated it, checked on the person, not the role, in the service and by a database
constraint. A run that was submitted is never regenerated: a new run ``supersedes`` (other
kinds) or ``corrects`` (transaction reports: CANC/NEWT records) it, with a reason.

Long steps (generating a million-record file, talking to the ARM) keep the network out of
database transactions: the ARM call happens between two short transactions.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Count

from compliance.reports.models import (
    RecordState,
    ReportKind,
    ReportRun,
    RunStatus,
    TransactionRecord,
)
from tradeops.audit.actors import user_actor
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import ApplicationError, Conflict, FourEyesViolation, PermissionDenied
from tradeops.core.roles import Role, user_has_role

KIND_CODES = {
    ReportKind.TRANSACTION: "TXR",
    ReportKind.BEST_EXECUTION: "BEX",
    ReportKind.ALERTS_SUMMARY: "ALS",
    ReportKind.ORDER_RECORD: "ORD",
    ReportKind.RTS6_PACK: "RT6",
}
FORMATS = {
    ReportKind.TRANSACTION: ("xml", "csv"),
    ReportKind.BEST_EXECUTION: ("csv",),
    ReportKind.ALERTS_SUMMARY: ("json",),
    ReportKind.ORDER_RECORD: ("csv",),
    ReportKind.RTS6_PACK: ("zip",),
}
CONTENT_TYPES = {"xml": "application/xml", "csv": "text/csv", "json": "application/json", "zip": "application/zip"}
MAX_PERIOD_DAYS = {ReportKind.TRANSACTION: 31}
SUBMITTED = (RunStatus.SUBMITTED, RunStatus.ACCEPTED, RunStatus.REJECTED)


class ReportError(ApplicationError):
    code = "report_error"


class InvalidRunTransition(ReportError):
    code = "invalid_report_transition"


def _require_officer(user) -> None:
    if user is None or not user_has_role(user, Role.COMPLIANCE_OFFICER):
        name = user.get_username() if user is not None else "nobody"
        raise PermissionDenied(f"{name} is not a compliance officer", code="not_compliance_officer")


def _audit(*, action: str, actor: str, run: ReportRun, before, after, reason: str = ""):
    from tradeops.audit.services import audit_record_change

    audit_record_change(
        action=action,
        actor=actor,
        object_type="report_run",
        object_id=run.reference,
        before=before,
        after=after,
        occurred_at=utcnow(),
        reason=reason,
    )


def _lock(run: ReportRun) -> ReportRun:
    return ReportRun.objects.select_for_update().get(pk=run.pk)


def _expect(run: ReportRun, *statuses: str) -> None:
    if run.status not in statuses:
        raise InvalidRunTransition(
            f"{run.reference} is {run.status}; this step needs {' or '.join(statuses)}",
            extra={"status": run.status},
        )


# ---------------------------------------------------------------- create


def _reference(kind: str, start: date, end: date) -> str:
    stem = f"{KIND_CODES[kind]}-{start:%Y%m%d}-{end:%Y%m%d}"
    taken = ReportRun.objects.filter(reference__startswith=stem).count()
    return f"{stem}-{taken + 1:04d}"


@transaction.atomic
def report_run_create(
    *,
    kind: str,
    period_start: date,
    period_end: date,
    user=None,
    actor: str = "",
    file_format: str = "",
    options: dict[str, Any] | None = None,
    supersedes: ReportRun | None = None,
    corrects: ReportRun | None = None,
    reason: str = "",
    as_of: datetime | None = None,
) -> ReportRun:
    """Open a run (status pending). ``user`` (a compliance officer) or ``actor`` (a service,
    e.g. ``service:celery-beat``) is who generates it. A run of the same kind and period that
    was not yet submitted is superseded (audited); one already submitted is only replaced when
    ``supersedes`` names it, with a reason: never silently. ``as_of`` (default now): the record
    time the run reports up to."""
    if kind not in KIND_CODES:
        raise ReportError(f"unknown report kind {kind!r}; one of {', '.join(KIND_CODES)}", code="report_kind_unknown")
    if period_end < period_start:
        raise ReportError(f"period ends ({period_end}) before it starts ({period_start})", code="report_period_invalid")
    limit = MAX_PERIOD_DAYS.get(kind)
    if limit and (period_end - period_start).days + 1 > limit:
        raise ReportError(f"a {kind} run covers at most {limit} days", code="report_period_too_long")
    file_format = file_format or FORMATS[kind][0]
    if file_format not in FORMATS[kind]:
        raise ReportError(f"{kind} is written as {' or '.join(FORMATS[kind])}, not {file_format}", code="report_format")
    if user is not None:
        _require_officer(user)
        actor = user_actor(user)
    if not actor:
        raise ReportError("a run needs who generates it (user or actor)", code="report_actor_missing")
    if supersedes is not None:
        _check_replaceable(supersedes, kind=kind, period_start=period_start, period_end=period_end)
    options = dict(options or {})
    if kind == ReportKind.TRANSACTION and file_format == "xml":
        layout = options.setdefault("layout", settings.REPORTING_XML_LAYOUT)
        if layout not in ("envelope", "document"):
            raise ReportError(f"XML layout {layout!r} is not envelope or document", code="report_layout")
    now = utcnow()
    same = (
        ReportRun.objects.select_for_update()
        .standing_for(kind=kind, period_start=period_start, period_end=period_end)
        .order_by("pk")
    )
    if corrects is None:
        for old in same:
            if old == supersedes:
                continue
            if old.status in SUBMITTED:
                raise Conflict(
                    f"{old.reference} for this period was already submitted ({old.status}); a new run must name "
                    "it (supersedes) with a reason, or correct it",
                    code="report_already_submitted",
                    extra={"run": old.reference},
                )
            _supersede(old, actor=actor, reason=f"replaced by a new run for the same period: {reason}".strip(": "))
        if supersedes is not None:
            if not reason:
                raise ReportError("superseding a run needs a reason", code="report_reason_required")
            supersedes = _lock(supersedes)
            if supersedes.status not in SUBMITTED:
                _supersede(supersedes, actor=actor, reason=reason)
    run = ReportRun.objects.create(
        reference=_reference(kind, period_start, period_end),
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        as_of=ensure_utc(as_of) if as_of else now,
        file_format=file_format,
        options=options,
        status=RunStatus.PENDING,
        supersedes=supersedes,
        corrects=corrects,
        reason=reason,
        generated_by=user,
        generated_by_label=actor,
        created_at=now,
    )
    _audit(action="report.created", actor=actor, run=run, before=None, after=run.snapshot(), reason=reason)
    return run


def _check_replaceable(old: ReportRun, *, kind: str, period_start: date, period_end: date) -> None:
    """A new run supersedes a run of its own kind and period that still stands: never one of
    another report (that would withdraw records the new run does not report again), nor one
    already replaced (the chain of replacements stays a line)."""
    if (old.kind, old.period_start, old.period_end) != (kind, period_start, period_end):
        raise ReportError(
            f"{old.reference} is a {old.kind} run of {old.period_start}..{old.period_end}; a {kind} run of "
            f"{period_start}..{period_end} supersedes only a run of its own kind and period",
            code="report_supersedes_mismatch",
            extra={"run": old.reference},
        )
    if old.status == RunStatus.SUPERSEDED:
        raise ReportError(
            f"{old.reference} was already superseded; name the run that replaced it",
            code="report_supersedes_superseded",
            extra={"run": old.reference},
        )


@transaction.atomic
def report_run_request(
    *,
    kind: str,
    period_start: date,
    period_end: date,
    user=None,
    actor: str = "",
    file_format: str = "",
    options: dict[str, Any] | None = None,
    supersedes: ReportRun | None = None,
    reason: str = "",
    generate_on_commit: bool = True,
) -> ReportRun:
    """A person runs a report (the screens, the integration API, ``manage.py report_run``): the
    run is opened now (``report_run_create``: its checks, its audit record, superseding as it
    says) and, with ``generate_on_commit`` (the screens and the API), generated and validated by
    the ``reports`` queue once this transaction commits (``report_run_execute_queued``). With no
    broker (the embedded run: Celery eager) the task runs in this process as the commit happens,
    so the run is past pending when this returns there. Without it (the command, which generates
    in its own process and prints the outcome) nothing is queued: the caller calls
    ``report_run_execute`` after this returns. Returns the run as opened (pending).

    ``user`` (a compliance officer) or ``actor`` (the command run without ``--user``:
    ``service:command``) is who generates it; ``options`` as ``report_run_create``'s (the XML
    layout).

    A person's period must have happened: one ending after today (UTC) is refused
    (``report_period_future``), before anything is written. A transaction report (MiFIR Art. 26,
    T+1) covers only trading dates that have closed, as the daily schedule reports them
    (``trading_date_closed``: the UTC date closed at least ``REPORTING_CLOSE_GRACE_MINUTES``
    ago): a run over today would report part of the day and invite a second, conflicting
    submission of it, so it is refused (``report_day_open``), saying from when the day can be
    reported. ``report_run_create`` itself takes any period: the schedule computes its own, and
    a history built for a test may run ahead of the wall clock."""
    from compliance.reports.tasks import report_run_execute_queued

    now = utcnow()
    today = now.date()
    if period_end > today:
        raise ReportError(
            f"the period ends {period_end}, after today ({today} UTC): a report covers what already happened",
            code="report_period_future",
        )
    if kind == ReportKind.TRANSACTION:
        check_trading_date_closed(trading_date=period_end, now=now)
    run = report_run_create(
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        file_format=file_format,
        options=options,
        supersedes=supersedes,
        reason=reason,
        user=user,
        actor=actor,
    )
    if generate_on_commit:
        run_id = run.pk
        transaction.on_commit(lambda: report_run_execute_queued.delay(run_id))
    return run


def _supersede(run: ReportRun, *, actor: str, reason: str) -> None:
    """A run not yet submitted steps aside: its records stop standing for their executions."""
    before = run.snapshot()
    run.status = RunStatus.SUPERSEDED
    run.save(update_fields=["status"])
    TransactionRecord.objects.filter(run=run, active=True).update(active=False, state=RecordState.WITHDRAWN)
    _audit(action="report.superseded", actor=actor, run=run, before=before, after=run.snapshot(), reason=reason)


# ---------------------------------------------------------------- generate


class _TempFile(File):
    """A finished temporary file the storage may move into place instead of copying."""

    def temporary_file_path(self) -> str:
        return self.file.name


def _temp_file():
    directory = os.path.join(settings.REPORTS_DIR, "tmp")
    os.makedirs(directory, exist_ok=True)
    return tempfile.NamedTemporaryFile(dir=directory, prefix="run-", delete=False)


def report_run_generate(*, run: ReportRun) -> ReportRun:
    """Write the run's file (streamed), its records (transaction reports) and counts, in one
    transaction: a failure leaves the run as it was plus a ``failed`` status and the error.
    Precondition: status pending."""
    from compliance.reports.generators import generate

    run = ReportRun.objects.get(pk=run.pk)
    _expect(run, RunStatus.PENDING)
    tmp = _temp_file()
    try:
        with transaction.atomic():
            run = _lock(run)
            _expect(run, RunStatus.PENDING)
            before = run.snapshot()
            with tmp:
                outcome = generate(run=run, out=tmp)
            run.summary = outcome.summary
            run.record_count = outcome.records
            run.held_back_count = outcome.held_back
            run.out_of_scope_count = outcome.out_of_scope
            run.generated_at = utcnow()
            run.status = RunStatus.GENERATED
            if outcome.empty:
                run.sha256, run.size_bytes = "", 0
            else:
                run.sha256, run.size_bytes = outcome.sha256, outcome.size
                name = f"{run.reference}.{run.file_format}"
                run.file.save(name, _TempFile(open(tmp.name, "rb")), save=False)  # noqa: SIM115
            run.save()
            _audit(
                action="report.generated", actor=run.generated_by_label, run=run, before=before, after=run.snapshot()
            )
    except Exception as exc:
        _fail(run, step="generate", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
    return run


@transaction.atomic
def _fail(run: ReportRun, *, step: str, error: str) -> None:
    run = _lock(run)
    before = run.snapshot()
    run.status = RunStatus.FAILED
    run.errors = [*run.errors, {"step": step, "error": error[:2000], "at": utcnow().isoformat()}]
    run.save(update_fields=["status", "errors"])
    _audit(
        action="report.failed",
        actor=run.generated_by_label,
        run=run,
        before=before,
        after=run.snapshot(),
        reason=error[:500],
    )


# ---------------------------------------------------------------- validate


def report_run_validate(*, run: ReportRun, deep: bool | None = None) -> ReportRun:
    """Check the stored file before anyone approves it: its SHA-256 against the one recorded
    at generation (so the bytes are those generation checked), and its content: CSV header and
    row count; the RTS 6 pack's manifest; transaction XML against ESMA's schemas once more,
    whole and streamed (``compliance.reports.xsd.xml_validate_stream``), with the transaction
    count. Generation already validated every chunk of XML against the XSD before writing it,
    so for files over ``REPORTING_DEEP_VALIDATION_MAX_BYTES`` the second pass is skipped unless
    ``deep`` (it costs about as much as generating). Precondition: generated. Invalid: ``failed``."""
    from compliance.reports.generators import file_check

    run = ReportRun.objects.get(pk=run.pk)
    _expect(run, RunStatus.GENERATED)
    errors: list[str] = []
    if run.record_count or run.file:
        with run.file.open("rb") as fh:
            digest = hashlib.sha256()
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            if digest.hexdigest() != run.sha256:
                errors.append(f"SHA-256 of the stored file is {digest.hexdigest()}, not {run.sha256} as generated")
            fh.seek(0)
            if deep is None:
                deep = run.size_bytes <= settings.REPORTING_DEEP_VALIDATION_MAX_BYTES
            errors += file_check(run=run, fh=fh, deep=deep or bool(errors))
    with transaction.atomic():
        run = _lock(run)
        _expect(run, RunStatus.GENERATED)
        before = run.snapshot()
        if errors:
            run.status = RunStatus.FAILED
            at = utcnow().isoformat()
            run.errors = [*run.errors, *({"step": "validate", "error": e, "at": at} for e in errors)]
            run.save(update_fields=["status", "errors"])
            _audit(
                action="report.validation_failed",
                actor="service:reports",
                run=run,
                before=before,
                after=run.snapshot(),
                reason="; ".join(errors)[:500],
            )
        else:
            run.status = RunStatus.VALIDATED
            run.validated_at = utcnow()
            run.save(update_fields=["status", "validated_at"])
            _audit(action="report.validated", actor="service:reports", run=run, before=before, after=run.snapshot())
    return run


def report_run_execute(*, run: ReportRun) -> ReportRun:
    """Generate, then validate (what the commands, the schedule and the screens call)."""
    run = report_run_generate(run=run)
    return report_run_validate(run=run)


# ---------------------------------------------------------------- approve (four eyes)


@transaction.atomic
def report_run_approve(*, run: ReportRun, approver, note: str = "") -> ReportRun:
    """A compliance officer signs the report off. Four eyes: not the person who generated it
    (checked on the person, whatever roles either holds). A scheduled run (generated by a
    service) needs one officer's approval. Precondition: validated. Transaction reports are
    queued for submission once this commits."""
    _require_officer(approver)
    run = _lock(run)
    _expect(run, RunStatus.VALIDATED)
    if run.generated_by_id is not None and run.generated_by_id == approver.pk:
        raise FourEyesViolation(
            f"{approver.get_username()} generated {run.reference} and cannot also approve it; "
            "a second compliance officer must"
        )
    before = run.snapshot()
    run.status = RunStatus.APPROVED
    run.approved_by = approver
    run.approved_at = utcnow()
    run.approval_note = note
    run.save(update_fields=["status", "approved_by", "approved_at", "approval_note"])
    _audit(
        action="report.approved", actor=user_actor(approver), run=run, before=before, after=run.snapshot(), reason=note
    )
    if run.kind == ReportKind.TRANSACTION and run.record_count and settings.ARM_URL:
        from compliance.reports.tasks import report_submit

        run_id = run.pk
        transaction.on_commit(lambda: report_submit.delay(run_id))
    return run


# ---------------------------------------------------------------- submit


def _idempotency_key(run: ReportRun) -> str:
    return f"{run.reference}:{run.sha256}"


def report_run_submit(*, run: ReportRun, user=None, actor: str = "", client=None) -> ReportRun:
    """Send an approved transaction report to the ARM (HTTPS, retries, circuit breaker).
    Idempotent: the key is the run's reference and file hash, so a repeat (after a lost
    answer, or a task retried) returns the submission already made. A failure is recorded on
    the run (attempts, last error, audited) and raised; the run stays approved."""
    from compliance.reports.arm import ArmClient, ArmError, arm_config

    if user is not None:
        _require_officer(user)
        actor = user_actor(user)
    actor = actor or "service:reports"
    run = ReportRun.objects.get(pk=run.pk)
    if run.status == RunStatus.SUBMITTED:
        return run  # already there: nothing to send again
    _expect(run, RunStatus.APPROVED)
    if run.kind != ReportKind.TRANSACTION:
        raise ReportError(f"{run.kind} reports are not submitted to an ARM", code="report_not_submittable")
    if not run.record_count:
        raise ReportError(f"{run.reference} has no record to submit", code="report_nothing_to_submit")
    client = client or ArmClient(arm_config())
    try:
        with run.file.open("rb") as fh:
            receipt = client.submit(
                fh=fh,
                filename=os.path.basename(run.file.name),
                sha256=run.sha256,
                idempotency_key=_idempotency_key(run),
                content_type=CONTENT_TYPES[run.file_format],
            )
    except ArmError as exc:
        with transaction.atomic():
            locked = _lock(run)
            before = locked.snapshot()
            locked.submission_attempts += 1
            locked.last_error = f"{exc.code}: {exc}"[:2000]
            locked.save(update_fields=["submission_attempts", "last_error"])
            _audit(
                action="report.submission_failed",
                actor=actor,
                run=locked,
                before=before,
                after=locked.snapshot(),
                reason=locked.last_error[:500],
            )
        raise
    with transaction.atomic():
        run = _lock(run)
        if run.status == RunStatus.SUBMITTED:
            return run
        _expect(run, RunStatus.APPROVED)
        before = run.snapshot()
        run.status = RunStatus.SUBMITTED
        run.submitted_at = utcnow()
        run.submitted_by = user
        run.submission_id = receipt.submission_id
        run.submission_attempts += receipt.attempts
        run.last_error = ""
        run.save(
            update_fields=[
                "status",
                "submitted_at",
                "submitted_by",
                "submission_id",
                "submission_attempts",
                "last_error",
            ]
        )
        _audit(
            action="report.submitted",
            actor=actor,
            run=run,
            before=before,
            after={**run.snapshot(), "attempts": receipt.attempts, "replayed": receipt.replayed},
        )
    return run


# ---------------------------------------------------------------- feedback


def report_feedback_fetch(*, run: ReportRun, client=None) -> ReportRun | None:
    """Ask the ARM for the run's feedback; apply it when there is some. Returns the run after
    applying, or None while the ARM is still processing."""
    from compliance.reports.arm import ArmClient, arm_config

    run = ReportRun.objects.get(pk=run.pk)
    _expect(run, RunStatus.SUBMITTED)
    client = client or ArmClient(arm_config())
    data = client.feedback(run.submission_id)
    if data is None:
        return None
    return report_feedback_apply(run=run, data=data, actor="service:arm")


@transaction.atomic
def report_feedback_apply(*, run: ReportRun, data: bytes, actor: str = "service:arm") -> ReportRun:
    """Parse the ARM's feedback file (``compliance.reports.feedback``) onto the run and its
    records: accepted ones become ``accepted``, rejected ones ``rejected`` with the ARM's
    reason codes. A file that does not parse, names another submission or file, or names a
    reference that is not in the run is refused whole (nothing applied; ``feedback_invalid``).
    The file is kept (storage, SHA-256). Status: accepted when every record is, rejected when
    any is (or the file was refused); a partial feedback leaves the run submitted."""
    from compliance.reports.feedback import FeedbackFormatError, feedback_parse

    run = _lock(run)
    _expect(run, RunStatus.SUBMITTED)
    try:
        header, records = feedback_parse(data.splitlines())
        if header.submission_id != run.submission_id:
            raise FeedbackFormatError(f"feedback is for submission {header.submission_id}, not {run.submission_id}")
        if header.file_sha256 != run.sha256:
            raise FeedbackFormatError("feedback names another file (SHA-256 differs)")
        now = utcnow()
        pending = TransactionRecord.objects.filter(run=run, state=RecordState.REPORTED)
        accepted: list[str] = []
        rejected: dict[str, list] = {}
        for record in records:
            (accepted.append(record.trn) if record.accepted else rejected.__setitem__(record.trn, list(record.reasons)))
        if header.status == "RJCT":
            file_reasons = list(header.reasons) or [{"code": "FILE", "text": "file rejected"}]
        named = [*accepted, *rejected]
        known: set[str] = set()
        for start in range(0, len(named), 5000):
            known.update(pending.filter(trn__in=named[start : start + 5000]).values_list("trn", flat=True))
        unknown = sorted(set(named) - known)
        if unknown:
            raise FeedbackFormatError(f"feedback names references not pending in {run.reference}: {unknown[:5]}")
    except FeedbackFormatError as exc:
        raise ReportError(f"feedback for {run.reference} refused: {exc}", code="feedback_invalid") from exc
    before = run.snapshot()
    if header.status == "RJCT":
        pending.update(state=RecordState.REJECTED, reasons=file_reasons, feedback_at=now)
    else:
        if header.status == "ACPT" and not rejected and not accepted:
            pending.update(state=RecordState.ACCEPTED, feedback_at=now)  # a summary-only acceptance
        for start in range(0, len(accepted), 5000):
            pending.filter(trn__in=accepted[start : start + 5000]).update(state=RecordState.ACCEPTED, feedback_at=now)
        for trn, reasons in rejected.items():
            pending.filter(trn=trn).update(state=RecordState.REJECTED, reasons=reasons, feedback_at=now)
    counts = dict(
        TransactionRecord.objects.filter(run=run, report_status__in=["NEWT", "CANC"])
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    run.accepted_count = counts.get(RecordState.ACCEPTED, 0)
    run.rejected_count = counts.get(RecordState.REJECTED, 0)
    still_pending = counts.get(RecordState.REPORTED, 0)
    if run.rejected_count:
        run.status = RunStatus.REJECTED
    elif not still_pending:
        run.status = RunStatus.ACCEPTED
    run.feedback_at = now
    run.feedback_sha256 = hashlib.sha256(data).hexdigest()
    from django.core.files.base import ContentFile

    run.feedback_file.save(f"{run.reference}-feedback.jsonl", ContentFile(data), save=False)
    run.save()
    _audit(
        action="report.feedback_applied",
        actor=actor,
        run=run,
        before=before,
        after={**run.snapshot(), "feedback_status": header.status, "pending": still_pending},
    )
    return run


# ---------------------------------------------------------------- corrections


def transaction_report_correct(
    *,
    run: ReportRun,
    user=None,
    actor: str = "",
    reason: str,
    amend: list[str] | None = None,
    cancel: list[str] | None = None,
) -> ReportRun:
    """Correct a transaction report: a new run that ``corrects`` it, generated and validated
    at once, for approval and submission like any other.

    - rejected and held-back records of ``run``: a new NEWT with the same reference, rebuilt
      from the configuration as it is now (fix the profile, then correct);
    - ``amend`` (references of accepted records): CANC of the accepted report, then a new NEWT;
    - ``cancel`` (references of accepted records): CANC only (e.g. a trade that was busted).
    The records corrected stop being active (state ``corrected`` or ``cancelled``)."""
    if not reason:
        raise ReportError("a correction needs a reason", code="report_reason_required")
    if user is not None:
        _require_officer(user)
        actor = user_actor(user)
    with transaction.atomic():
        original = _lock(run)
        if original.kind != ReportKind.TRANSACTION:
            raise ReportError("only transaction reports are corrected record by record", code="report_not_correctable")
        if original.status in (RunStatus.PENDING, RunStatus.FAILED, RunStatus.SUPERSEDED):
            raise InvalidRunTransition(f"{original.reference} is {original.status}: nothing to correct")
        records = TransactionRecord.objects.select_for_update().filter(run=original, active=True).order_by("pk")
        amend, cancel = list(amend or []), list(cancel or [])
        redo = list(records.filter(state__in=[RecordState.REJECTED, RecordState.HELD_BACK], report_status="NEWT"))
        accepted = {
            r.trn: r for r in records.filter(state=RecordState.ACCEPTED, report_status="NEWT", trn__in=amend + cancel)
        }
        missing = sorted(set(amend + cancel) - set(accepted))
        if missing:
            raise ReportError(
                f"not accepted records of {original.reference}: {missing[:5]}", code="report_records_unknown"
            )
        if not redo and not accepted:
            raise ReportError(f"{original.reference} has nothing to correct", code="report_nothing_to_correct")
        plan = {
            "newt": [[r.execution_id, r.pk] for r in redo]
            + [[accepted[t].execution_id, accepted[t].pk] for t in amend],
            "canc": [[accepted[t].trn, accepted[t].execution_id, accepted[t].pk] for t in amend + cancel],
        }
        correction = report_run_create(
            kind=ReportKind.TRANSACTION,
            period_start=original.period_start,
            period_end=original.period_end,
            user=user,
            actor=actor,
            file_format=original.file_format,
            options={**{k: v for k, v in original.options.items() if k != "correction"}, "correction": plan},
            corrects=original,
            reason=reason,
        )
        for record in redo:
            record.active = False
            record.state = RecordState.CORRECTED
        for trn in amend:
            accepted[trn].active = False
            accepted[trn].state = RecordState.CORRECTED
        for trn in cancel:
            accepted[trn].active = False
            accepted[trn].state = RecordState.CANCELLED
        TransactionRecord.objects.bulk_update([*redo, *accepted.values()], ["active", "state"])
        _audit(
            action="report.correction_opened",
            actor=actor,
            run=original,
            before=None,
            after={"correction": correction.reference, "resubmit": len(redo), "amend": amend, "cancel": cancel},
            reason=reason,
        )
    return report_run_execute(run=correction)


def trading_date_closed(*, now: datetime | None = None) -> date:
    """The latest UTC trading date that closed at least ``REPORTING_CLOSE_GRACE_MINUTES`` ago
    (what the daily transaction report reports: T+1)."""
    now = ensure_utc(now or utcnow())
    return (now - timedelta(minutes=settings.REPORTING_CLOSE_GRACE_MINUTES)).date() - timedelta(days=1)


def check_trading_date_closed(*, trading_date: date, now: datetime | None = None) -> None:
    """Refuse a transaction run over ``trading_date`` while it has not closed (``report_day_open``,
    saying from when it can be reported): a run over today would report part of the day and invite
    a second, conflicting submission of it (MiFIR Art. 26, T+1). The one refusal for a person's
    run (``report_run_request``: the form, the API, ``manage.py report_run``) and the daily task
    given a date."""
    if trading_date > trading_date_closed(now=now):
        raise ReportError(
            f"the trading date {trading_date} has not closed yet (a transaction report, T+1, covers a finished"
            f" day): it can be reported from {trading_date_reportable_from(trading_date):%Y-%m-%d %H:%M} UTC",
            code="report_day_open",
        )


def trading_date_reportable_from(trading_date: date) -> datetime:
    """When the transaction report of ``trading_date`` can first be run: its UTC day's end plus
    ``REPORTING_CLOSE_GRACE_MINUTES`` (the inverse of ``trading_date_closed``)."""
    day_end = datetime.combine(trading_date + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return day_end + timedelta(minutes=settings.REPORTING_CLOSE_GRACE_MINUTES)


def transaction_run_needed(*, trading_date: date, as_of: datetime | None = None) -> bool:
    """Whether a transaction run of ``trading_date`` would have anything to report: an execution
    of that date (event time) not yet reported, or a late arrival of an earlier one, exactly the
    run's own selection (``executions_selected``, mode ``run``). RTS 22 reports executions: a
    date without any needs no run, and no officer's sign-off of an empty file."""
    from compliance.reports.generators.transaction import executions_selected

    as_of = ensure_utc(as_of or utcnow())
    selected = executions_selected(start=trading_date, end=trading_date, as_of=as_of, mode="run")
    return any(qs.exists() for qs in selected)


def held_back_summary(run: ReportRun) -> list[dict]:
    """Held-back records of a run with their reasons (for stderr, screens and the API)."""
    return [
        {"trn": trn, "execution_id": execution_id, "reasons": reasons}
        for trn, execution_id, reasons in TransactionRecord.objects.filter(run=run, state=RecordState.HELD_BACK)
        .order_by("trn")
        .values_list("trn", "execution_id", "reasons")
    ]
