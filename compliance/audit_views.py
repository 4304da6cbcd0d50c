"""Audit trail screens for compliance officers and auditors: search with facets, record detail
(with its corrections and an inclusion proof), chain verification. Read-only: the views parse,
authorise, call one selector or read service, render (MiFID II record keeping, 2017/565 Art. 72)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from tradeops.audit.actors import user_actor
from tradeops.audit.digest import ProofDayOpen, audit_proof, digest_document
from tradeops.audit.models import AuditRecord, Digest
from tradeops.audit.search import AuditQuery, audit_search
from tradeops.audit.services import audit_verification_run
from tradeops.audit.verify import audit_payload_shown, verify_report_labelled, verify_report_named
from tradeops.core.roles import Role, can_read_audit_trail, user_has_role
from tradeops.core.screens import utc_param

PAGE = 50
MAX_PAGE = 100_000  # 5 million records deep; past that, narrow the search
MAX_PARAM_LENGTH = 500


def _check_access(user) -> None:
    """Compliance officers, auditors and admins read the trail; nobody else (the same rule as
    the admin's audit pages: ``tradeops.core.roles.can_read_audit_trail``)."""
    if not can_read_audit_trail(user):
        raise PermissionDenied("the audit trail is for compliance officers and auditors")


def _order_aliases(object_type: str, object_id: str) -> tuple[str, ...]:
    """An order's other id, so a search by either finds all its records: the order path files
    them under the order's database number, the decisions about it under its client order id."""
    if not object_id or object_type not in ("", "order"):
        return ()
    from trading.models import Order

    if object_id.isdigit() and len(object_id) <= 18:  # a database number (a bigint)
        found = Order.objects.filter(pk=int(object_id)).values_list("client_order_id", flat=True).first()
    else:
        found = Order.objects.filter(client_order_id=object_id).values_list("pk", flat=True).first()
    return () if found is None else (str(found),)


def _refusal(params) -> str:
    """Why these search parameters cannot be run (a clear 400), or "" when they can."""
    for name, value in params.items():
        if len(value) > MAX_PARAM_LENGTH:
            return f"{name} is {len(value):,} characters long; at most {MAX_PARAM_LENGTH} are accepted"
    raw_page = params.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        return f"page must be a whole number from 1 to {MAX_PAGE:,}, got {raw_page[:40]!r}"
    return ""


@login_required
@require_GET
def audit_search_view(request: HttpRequest) -> HttpResponse:
    _check_access(request.user)
    params = request.GET
    refusal = _refusal(params)
    if refusal:
        return HttpResponseBadRequest(f"Bad request: {refusal}.", content_type="text/plain; charset=utf-8")
    errors = []
    try:
        since = utc_param(params.get("since", ""))
        until = utc_param(params.get("until", ""), period_end=True)
    except ValueError:
        since = until = None
        errors.append("times must be ISO 8601, e.g. 2026-11-26 (the whole day) or 2026-11-26T09:00 (UTC)")
    try:
        page = max(1, int(params.get("page", "1")))
    except ValueError:
        page = 1
    object_type, object_id = params.get("object_type", "").strip(), params.get("object_id", "").strip()
    query = AuditQuery(
        text=params.get("q", "").strip(),
        actor=params.get("actor", "").strip(),
        action=params.get("action", "").strip(),
        object_type=object_type,
        object_id=object_id,
        object_id_aliases=_order_aliases(object_type, object_id),
        category=params.get("category", "").strip(),
        since=since,
        until=until,
        limit=PAGE,
        offset=(page - 1) * PAGE,
        # an old audit.verified record's database addresses are matched for admins only: the
        # others see them labelled, and a match would tell them the address all the same
        addresses=_sees_database_addresses(request.user),
    )
    result = audit_search(query)
    kept = {k: v for k, v in params.items() if k != "page" and v}

    def facet_link(name: str, value: str) -> str:
        return "?" + urlencode({**kept, name: value})

    facets = {
        name: [(value, count, facet_link(name, value)) for value, count in values]
        for name, values in result.facets.items()
    }
    return render(
        request,
        "compliance/audit/search.html",
        {
            **_chain_status(request.user),
            "params": params,
            "result": result,
            "facets": facets,
            "errors": errors,
            "page": page,
            "prev_link": "?" + urlencode({**kept, "page": page - 1}) if page > 1 else "",
            "next_link": "?" + urlencode({**kept, "page": page + 1}) if page * PAGE < result.total else "",
        },
    )


@login_required
@require_GET
def audit_record_view(request: HttpRequest, sequence: int) -> HttpResponse:
    _check_access(request.user)
    record = AuditRecord.objects.filter(sequence=sequence).first()
    if record is None:
        raise Http404("no such audit record (or purged after its retention)")
    corrections = AuditRecord.objects.filter(corrects=record.event_id).order_by("sequence")
    corrected = AuditRecord.objects.filter(event_id=record.corrects).first() if record.corrects else None
    try:
        proof, proof_refused = audit_proof(event_id=record.event_id), ""
    except ProofDayOpen as refused:  # a record of today: the words of audit_digest --proof and the API
        proof, proof_refused = None, str(refused)
    digest = Digest.objects.filter(day=proof["day"]).first() if proof else None
    return render(
        request,
        "compliance/audit/record.html",
        {
            "record": record,
            # JSON, as stored and hashed (not Python's repr: 'True', 'None', single quotes), so a
            # reader can compare it with an export or the API (walk45); an audit.verified record of
            # before may name a database by address: labelled for whoever may not see addresses
            # (the trail is immutable: labelled when shown)
            "payload": json.dumps(
                audit_payload_shown(record, addresses=_sees_database_addresses(request.user)),
                indent=2,
                ensure_ascii=False,
                sort_keys=True,
            ),
            "corrections": corrections,
            "corrected": corrected,
            "proof": proof,
            "proof_refused": proof_refused,
            "digest": digest,
        },
    )


def _json_attachment(document: dict, filename: str) -> HttpResponse:
    # the bytes ``audit_digest --proof --out`` and ``audit_digest`` write, so the reader checks
    # them with ``audit_digest_verify`` exactly as docs/audit-trail.md says
    response = HttpResponse(json.dumps(document, indent=2) + "\n", content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def audit_proof_download_view(request: HttpRequest, sequence: int) -> HttpResponse:
    """A record's inclusion proof as the file ``audit_digest --proof --out`` writes, for an
    auditor to check offline against the day's digest (``audit_digest_verify --proof``). A record
    of today has none yet: 409 with the same sentence as the record page, the command and the API."""
    _check_access(request.user)
    record = AuditRecord.objects.filter(sequence=sequence).first()
    if record is None:
        raise Http404("no such audit record (or purged after its retention)")
    try:
        proof = audit_proof(event_id=record.event_id)
    except ProofDayOpen as refused:
        return HttpResponse(f"No proof yet: {refused}.\n", status=409, content_type="text/plain; charset=utf-8")
    return _json_attachment(proof, f"proof-{record.sequence}.json")


@login_required
@require_GET
def audit_digest_download_view(request: HttpRequest, day: str) -> HttpResponse:
    """A day's digest document as ``audit_digest`` exports it (``<day>.json``)."""
    _check_access(request.user)
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        raise Http404(f"{day} is not a date (YYYY-MM-DD)") from None
    digest = Digest.objects.filter(day=wanted).first()
    if digest is None:
        raise Http404(f"no digest for {wanted} yet: it is made after the day ends (Celery beat at 00:10 UTC)")
    return _json_attachment(digest_document(digest), f"{wanted.isoformat()}.json")


def _sees_database_addresses(user) -> bool:
    """Who sees the database's full identity (engine, host, port, name) on the audit screens:
    admins, who run the deployment and match it with ``manage.py audit_checkpoint --list``.
    Officers and auditors see its label (``tradeops.audit.checkpoint.database_label``): where the
    database lives is reconnaissance they do not need. The integration API shows labels to everyone."""
    return user_has_role(user, Role.ADMIN)


def _chain_status(user) -> dict:
    """What the audit screens show beside every search: the last verification of the chain (who,
    when, result), the latest daily digests and the newest signed checkpoints compared with this
    chain (this database's and those adopted from a former name of it), each with its database,
    and how many of other databases' are skipped."""
    from tradeops.audit.checkpoint import checkpoints_with_adopted, database_label

    name = (lambda identity: identity) if _sees_database_addresses(user) else database_label
    last = AuditRecord.objects.filter(action="audit.verified").order_by("-sequence").first()
    try:
        stored = checkpoints_with_adopted()
        checkpoints, problems = stored.anchors, stored.problems
        skipped = [(name(database), count) for database, count in stored.others.items()]
        per_database = Counter(c.database for c in checkpoints)
        adopted = [(name(database), per_database[database]) for database in sorted(stored.adopted)]
        this = stored.database
    except OSError as exc:  # storage unreachable: say so rather than fail the search
        checkpoints, problems, skipped, adopted, this = [], [f"checkpoint storage unreadable: {exc}"], [], [], ""

    def whose(checkpoint) -> tuple[str, str]:  # (this | adopted | unnamed, the database as shown)
        if checkpoint.database is None:
            return "unnamed", "names no database: taken as this one's"
        return ("this" if checkpoint.database == this else "adopted"), name(checkpoint.database)

    return {
        "last_verification": last,
        "last_verification_data": audit_payload_shown(last, addresses=_sees_database_addresses(user))
        if last is not None
        else None,
        "digests": list(Digest.objects.order_by("-day")[:7]),
        "checkpoints": [(c, *whose(c)) for c in reversed(checkpoints[-5:])],
        "checkpoints_adopted": adopted,
        "checkpoints_skipped": skipped,
        "checkpoint_problems": problems,
    }


@login_required
@require_http_methods(["GET", "POST"])
def audit_verify_view(request: HttpRequest) -> HttpResponse:
    """Verify the whole chain now (POST); the run and its result are recorded in the trail (with
    databases by label: auditors read the trail)."""
    _check_access(request.user)
    report = None
    if request.method == "POST":
        report, _ = audit_verification_run(actor=user_actor(request.user))
        if _sees_database_addresses(request.user):
            report = verify_report_named(report, name=lambda identity: identity)
        else:
            report = verify_report_labelled(report)
    return render(request, "compliance/audit/verify.html", {"report": report, **_chain_status(request.user)})
