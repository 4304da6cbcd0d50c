"""Regulatory reports (``/compliance/reports/``): runs with their status, the records held back
and why, a run started by a compliance officer (the API's path: ``report_run_request``), approval
by a second officer (four eyes: not who generated it) and download."""

from __future__ import annotations

from datetime import date

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from compliance.reports.models import RecordState, ReportKind, RunStatus
from compliance.reports.selectors import (
    report_run_download,
    report_run_get,
    report_run_list,
    report_run_records,
    report_runs_of_period,
)
from compliance.reports.services import SUBMITTED, report_run_approve, report_run_request, trading_date_closed
from compliance.reports.tasks import period_for
from compliance.views.access import (
    desk_check_act,
    desk_may_act,
    reports_check_read,
    reports_check_run,
    reports_may_run,
)
from tradeops.core.clock import utcnow
from tradeops.core.errors import NotFound
from tradeops.core.screens import action_run, form_action_run, require_text

# A kind no schedule runs (the order record, on request): the month before.
UNSCHEDULED_PERIOD = "previous_month"
# A run the ``reports`` queue is still making: its page asks for the status until it is done.
IN_PROGRESS = (RunStatus.PENDING, RunStatus.GENERATED)
# The service's refusals (``report_run_create``), each shown beside the field it is about.
REFUSAL_FIELDS = {
    "report_kind_unknown": "kind",
    "report_period_invalid": "period_end",
    "report_period_future": "period_end",
    "report_day_open": "period_end",
    "report_period_too_long": "period_end",
    "report_already_submitted": "supersedes",
    "report_not_found": "supersedes",
    "report_supersedes_mismatch": "supersedes",
    "report_supersedes_superseded": "supersedes",
    "report_reason_required": "reason",
}


def default_period(kind: str) -> tuple[date, date]:
    """The period a kind covers by default: for the transaction report the last closed trading
    date (T+1, ``trading_date_closed``); for the others their schedule's
    (``settings.REPORTING_SCHEDULES``: the week, month or year before)."""
    if kind == ReportKind.TRANSACTION:
        day = trading_date_closed()
        return day, day
    scheduled = {
        s["kwargs"]["kind"]: s["kwargs"]["period"] for s in settings.REPORTING_SCHEDULES.values() if "kwargs" in s
    }
    return period_for(scheduled.get(kind, UNSCHEDULED_PERIOD), utcnow().date())


class RunReportForm(forms.Form):
    """The shape of "Run a report" (the rules are the service's: ``report_run_create``)."""

    kind = forms.ChoiceField(
        choices=ReportKind.choices,
        error_messages={"invalid_choice": "Unknown report kind %(value)s: choose one of the list."},
    )
    period_start = forms.DateField(label="From (UTC date)", error_messages={"invalid": "Enter a date (YYYY-MM-DD)."})
    period_end = forms.DateField(label="To (UTC date)", error_messages={"invalid": "Enter a date (YYYY-MM-DD)."})
    supersedes = forms.CharField(max_length=35, required=False, strip=True)
    reason = forms.CharField(max_length=2000, required=False, strip=True, widget=forms.Textarea)


def _prefilled(request: HttpRequest) -> RunReportForm:
    """The form as the screen offers it: ``?run=KIND&from=...&to=...`` (the home page's T+1
    reminder links here so), else the kind's default period."""
    kind = request.GET.get("run", "")
    kind = kind if kind in ReportKind.values else ReportKind.TRANSACTION
    start, end = default_period(kind)
    try:
        asked = date.fromisoformat(request.GET.get("from", "")), date.fromisoformat(request.GET.get("to", ""))
    except ValueError:
        asked = None
    if asked:
        start, end = asked
    return RunReportForm(initial={"kind": kind, "period_start": start, "period_end": end})


def _form_context(request: HttpRequest, form: RunReportForm | None) -> dict:
    """The form with what stands for its period: runs a new one supersedes (not yet submitted)
    or must name with a reason (submitted)."""
    if form is None:
        return {"run_form": None}
    if form.is_bound:
        kind, start, end = (form.cleaned_data.get(k) for k in ("kind", "period_start", "period_end"))
    else:
        kind, start, end = (form.initial[k] for k in ("kind", "period_start", "period_end"))
    standing = (
        report_runs_of_period(user=request.user, kind=kind, period_start=start, period_end=end)
        if kind and start and end
        else []
    )
    submitted = [r for r in standing if r.status in SUBMITTED]
    submitted = submitted[-1] if submitted else None
    return {
        "run_form": form,
        "standing": standing,
        "submitted": submitted,
        # the submitted run to name, filled in for the officer (a reason is still theirs to give)
        "supersedes_value": form["supersedes"].value() or (submitted.reference if submitted else ""),
        "defaults": [(value, *(d.isoformat() for d in default_period(value))) for value in ReportKind.values],
        "last_closed": trading_date_closed(),
    }


def _run(request, reference: str):
    try:
        return report_run_get(user=request.user, reference=reference)
    except NotFound as exc:
        raise Http404(exc.message) from None


def _list(request: HttpRequest, run_form: RunReportForm | None, *, status: int = 200) -> HttpResponse:
    kind = request.GET.get("kind", "")
    state = request.GET.get("status", "")
    runs = report_run_list(
        user=request.user,
        kind=kind if kind in ReportKind.values else None,
        status=state if state in RunStatus.values else None,
    )
    return render(
        request,
        "compliance/reports/list.html",
        {
            "page": Paginator(runs, 50).get_page(request.GET.get("page")),
            "kinds": ReportKind.choices,
            "statuses": RunStatus.choices,
            "kind": kind,
            "status": state,
            **_form_context(request, run_form),
        },
        status=status,
    )


@login_required
@require_GET
def report_list_view(request: HttpRequest) -> HttpResponse:
    reports_check_read(request.user)
    return _list(request, _prefilled(request) if reports_may_run(request.user) else None)


@login_required
@require_POST
def report_run_view(request: HttpRequest) -> HttpResponse:
    """Run a report: the same service as the API (``report_run_request``: opened now, generated
    and validated by the ``reports`` queue on commit), then to the new run's page, which follows
    its status. Refused input is shown on the form, as typed, and nothing is created (400)."""
    reports_check_run(request.user)
    form = RunReportForm(request.POST)
    if form.is_valid():
        values = form.cleaned_data

        def call():
            supersedes = (
                report_run_get(user=request.user, reference=values["supersedes"]) if values["supersedes"] else None
            )
            return report_run_request(
                kind=values["kind"],
                period_start=values["period_start"],
                period_end=values["period_end"],
                supersedes=supersedes,
                reason=values["reason"],
                user=request.user,
            )

        run = form_action_run(form, call, fields=REFUSAL_FIELDS)
        if run is not None:
            messages.success(request, f"{run.reference} opened: being generated and validated.")
            return HttpResponseRedirect(f"/compliance/reports/{run.reference}/")
    return _list(request, form, status=400)


@login_required
@require_GET
def report_detail_view(request: HttpRequest, reference: str) -> HttpResponse:
    reports_check_read(request.user)
    run = _run(request, reference)
    if request.GET.get("fragment") == "status":  # the page's poll while the run is being made
        return JsonResponse({"status": run.status, "label": run.get_status_display()})
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
            "in_progress": run.status in IN_PROGRESS,
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
