"""Compliance rules (``/compliance/rules/``): every rule with the version in force and the one
awaiting approval; one rule's versions side by side with their differences; approve or reject
a pending version with a reason (four eyes: never by its proposer, 2017/565 Art. 72)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from compliance.desk.selectors import rule_diff, rule_summaries, rule_version_get, rule_versions, rules_pending
from compliance.services import compliance_rule_approve, compliance_rule_reject
from compliance.views.access import desk_check_act, desk_check_read, desk_may_act
from tradeops.core.errors import NotFound
from tradeops.core.screens import action_run, require_text


@login_required
@require_GET
def rule_list_view(request: HttpRequest) -> HttpResponse:
    desk_check_read(request.user)
    return render(
        request,
        "compliance/rules/list.html",
        {
            "rules": rule_summaries(user=request.user),
            "pending": rules_pending(user=request.user),
            "may_act": desk_may_act(request.user),
        },
    )


@login_required
@require_GET
def rule_detail_view(request: HttpRequest, code: str) -> HttpResponse:
    desk_check_read(request.user)
    try:
        versions = rule_versions(user=request.user, code=code)
    except NotFound as exc:
        raise Http404(exc.message) from None
    return render(
        request,
        "compliance/rules/detail.html",
        {
            "code": code,
            "versions": versions,
            "diff": rule_diff(versions),
            "pending": next((v for v in versions if v.status == "pending"), None),
            "may_act": desk_may_act(request.user),
        },
    )


@login_required
@require_POST
def rule_decide_view(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Approve or reject one pending version, with a reason. The service refuses the proposer
    (four eyes on the person, whatever roles they hold)."""
    desk_check_act(request.user)
    if decision not in ("approve", "reject"):
        raise Http404("no such decision")
    try:
        rule = rule_version_get(user=request.user, pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from None

    def call():
        reason = require_text(request.POST, "reason", what="A reason")
        if decision == "approve":
            compliance_rule_approve(rule=rule, approver=request.user, note=reason)
        else:
            compliance_rule_reject(rule=rule, officer=request.user, note=reason)

    done = "approved: it is in force now" if decision == "approve" else "rejected: the version in force stays"
    return action_run(
        request, call, done=f"{rule.code} v{rule.version} {done}.", back=f"/compliance/rules/{rule.code}/"
    )
