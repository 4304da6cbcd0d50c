"""Regulatory reports (``/compliance/reports/``): runs with their status, the records held back
and why, approval by a second officer (four eyes: not who generated it) and download."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from compliance.reports.models import RecordState, ReportKind, RunStatus
from compliance.reports.selectors import report_run_download, report_run_get, report_run_list, report_run_records
from compliance.reports.services import report_run_approve
from compliance.views.access import desk_check_act, desk_may_act, reports_check_read
from tradeops.core.errors import NotFound
from tradeops.core.screens import action_run, require_text


def _run(request, reference: str):
    try:
        return report_run_get(user=request.user, reference=reference)
    except NotFound as exc:
        raise Http404(exc.message) from None


@login_required
@require_GET
def report_list_view(request: HttpRequest) -> HttpResponse:
    reports_check_read(request.user)
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    runs = report_run_list(
        user=request.user,
        kind=kind if kind in ReportKind.values else None,
        status=status if status in RunStatus.values else None,
    )
    return render(
        request,
        "compliance/reports/list.html",
        {
            "page": Paginator(runs, 50).get_page(request.GET.get("page")),
            "kinds": ReportKind.choices,
            "statuses": RunStatus.choices,
            "kind": kind,
            "status": status,
        },
    )


@login_required
@require_GET
def report_detail_view(request: HttpRequest, reference: str) -> HttpResponse:
    reports_check_read(request.user)
    run = _run(request, reference)
    held = report_run_records(user=request.user, run=run, state=RecordState.HELD_BACK)
    rejected = report_run_records(user=request.user, run=run, state=RecordState.REJECTED)
    user = request.user
    return render(
        request,
        "compliance/reports/detail.html",
        {
            "run": run,
            "held_back": held[:500],
            "rejected": rejected[:500],
            "may_act": desk_may_act(user),
            "may_approve": desk_may_act(user) and run.status == RunStatus.VALIDATED and run.generated_by_id != user.pk,
            "generated_by_me": run.generated_by_id == user.pk,
        },
    )


@login_required
@require_POST
def report_approve_view(request: HttpRequest, reference: str) -> HttpResponse:
    desk_check_act(request.user)
    run = _run(request, reference)
    return action_run(
        request,
        lambda: report_run_approve(
            run=run, approver=request.user, note=require_text(request.POST, "note", what="An approval note")
        ),
        done=f"{run.reference} approved.",
        back=f"/compliance/reports/{run.reference}/",
    )


@login_required
@require_GET
def report_download_view(request: HttpRequest, reference: str) -> HttpResponse:
    """The run's file (or ``?feedback=1``: the ARM's feedback), with its SHA-256 in a header."""
    reports_check_read(request.user)
    run = _run(request, reference)
    try:
        download = report_run_download(user=request.user, run=run, feedback=request.GET.get("feedback") == "1")
    except NotFound as exc:
        raise Http404(exc.message) from None
    response = FileResponse(
        download.fh, as_attachment=True, filename=download.filename, content_type=download.content_type
    )
    response["X-Content-SHA256"] = download.sha256
    return response
