"""The case view (``/compliance/cases/<id>/``): each alert's evidence, a timeline chart of the
orders, fills and quotes around it, the case's steps and comments, four-eyes decisions (close or
report: asked by one officer, decided by another), and the STOR draft."""

from __future__ import annotations

import json
from dataclasses import asdict

from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from compliance import services
from compliance.desk.evidence import evidence_figures
from compliance.desk.selectors import (
    account_label,
    account_labels,
    case_actions,
    case_alerts,
    case_get,
    case_timeline,
    compliance_officers,
    instrument_digits,
)
from compliance.selectors import case_stor_draft
from compliance.views.access import desk_check_act, desk_check_read, desk_may_act
from tradeops.core.errors import NotFound
from tradeops.core.screens import action_run, require_text


def _case(request, pk: int):
    try:
        return case_get(user=request.user, pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from None


@login_required
@require_GET
def case_view(request: HttpRequest, pk: int) -> HttpResponse:
    desk_check_read(request.user)
    case = _case(request, pk)
    alerts = case_alerts(case=case)
    labels = account_labels([case.subject_account, *(a.account for a in alerts)])
    case.subject_account_label = account_label(case.subject_account, labels)
    from trading.models import Order

    known = set(
        Order.objects.filter(client_order_id__in={oid for a in alerts for oid in a.order_ids}).values_list(
            "client_order_id", flat=True
        )
    )
    for a in alerts:
        a.account_label = account_label(a.account, labels)
        a.orders_known = [(oid, oid in known) for oid in a.order_ids[:40]]
    digits = instrument_digits(a.symbol for a in alerts)
    actions = case_actions(case=case)
    if request.GET.get("fragment") == "actions":
        return render(request, "compliance/cases/_actions.html", {"case": case, "actions": actions})
    user = request.user
    may_act = desk_may_act(user)
    return render(
        request,
        "compliance/cases/detail.html",
        {
            "case": case,
            "alerts": [
                {
                    "alert": a,
                    "figures": evidence_figures(a.evidence, digits=digits.get(a.symbol)),
                    "evidence": json.dumps(a.evidence, indent=2, sort_keys=True, cls=DjangoJSONEncoder),
                }
                for a in alerts
            ],
            "actions": actions,
            "timeline": asdict(case_timeline(case=case, alerts=alerts)),
            "officers": compliance_officers() if may_act else [],
            "may_act": may_act,
            # four eyes on the person: whoever asked for the pending decision cannot decide it
            "may_decide": may_act and bool(case.pending_action) and case.pending_by_id != user.pk,
            "asked_by_me": bool(case.pending_action) and case.pending_by_id == user.pk,
        },
    )


STEPS = {
    # url action -> (service call, what the message says)
    "review": (lambda case, user, post: services.case_review_start(case=case, officer=user), "Review started"),
    "escalate": (
        lambda case, user, post: services.case_escalate(
            case=case, officer=user, note=require_text(post, "note", what="A note saying why")
        ),
        "Escalated",
    ),
    "request-close": (
        lambda case, user, post: services.case_disposition_request(
            case=case,
            officer=user,
            action="close",
            reason=require_text(post, "reason", what="The analysis behind closing"),
        ),
        "Closing requested: a second officer must approve it",
    ),
    "request-report": (
        lambda case, user, post: services.case_disposition_request(
            case=case,
            officer=user,
            action="report",
            reason=require_text(post, "reason", what="The grounds for reporting"),
        ),
        "Reporting (STOR) requested: a second officer must approve it",
    ),
    "approve": (
        lambda case, user, post: services.case_disposition_approve(
            case=case, officer=user, note=require_text(post, "note", what="A note with the decision")
        ),
        "Decision approved",
    ),
    "reject": (
        lambda case, user, post: services.case_disposition_reject(
            case=case, officer=user, note=require_text(post, "note", what="A note saying why")
        ),
        "Request sent back",
    ),
    "comment": (
        lambda case, user, post: services.case_comment_add(case=case, officer=user, note=post.get("note", "")),
        "Comment added",
    ),
}


@login_required
@require_POST
def case_step_view(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    desk_check_act(request.user)
    if step not in STEPS:
        raise Http404(f"no case step {step!r}")
    case = _case(request, pk)
    call, done = STEPS[step]
    return action_run(
        request,
        lambda: call(case, request.user, request.POST),
        done=f"{done} ({case.reference}).",
        back=f"/compliance/cases/{case.pk}/",
    )


@login_required
@require_GET
def case_stor_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The STOR draft (2016/957 Annex) as a JSON download, for compliance officers only."""
    desk_check_act(request.user)
    case = _case(request, pk)
    draft = case_stor_draft(case=case, user=request.user)
    response = HttpResponse(
        json.dumps(draft, indent=2, cls=DjangoJSONEncoder), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="STOR-draft-{case.reference}.json"'
    return response
