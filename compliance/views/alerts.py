"""The alert queue (``/compliance/alerts/``): history and live arrivals, filters, sorting,
assignment. Surveillance alerts are for compliance officers and auditors only."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from compliance.desk.selectors import (
    ALERT_SORTS,
    AlertFilters,
    account_label,
    account_labels,
    alert_filter_choices,
    alert_queue,
    case_get,
)
from compliance.services import case_assign
from compliance.views.access import desk_check_act, desk_check_read, desk_may_act
from tradeops.core.screens import action_run, local_url, utc_param

PAGE = 50


def _filters(params) -> tuple[AlertFilters, list[str]]:
    errors = []
    try:
        since = utc_param(params.get("since", ""))
        until = utc_param(params.get("until", ""), period_end=True)
    except ValueError:
        since = until = None
        errors.append("The period's dates must be ISO 8601, e.g. 2026-11-26 or 2026-11-26T09:00 (UTC).")
    sort = params.get("sort", "-time")
    if sort.lstrip("-") not in ALERT_SORTS:
        sort = "-time"
    return (
        AlertFilters(
            alert_type=params.get("type", "")[:40],
            severity=params.get("severity", "")[:10],
            account=params.get("account", "").strip()[:64],
            symbol=params.get("symbol", "").strip()[:32],
            status=params.get("status", "")[:12],
            assignee=params.get("assignee", "")[:150],
            since=since,
            until=until,
            sort=sort,
        ),
        errors,
    )


@login_required
@require_GET
def alert_queue_view(request: HttpRequest) -> HttpResponse:
    desk_check_read(request.user)
    filters, errors = _filters(request.GET)
    qs = alert_queue(user=request.user, filters=filters)
    if request.GET.get("pending") == "1":
        qs = qs.exclude(case__pending_action="")
    page = Paginator(qs, PAGE).get_page(request.GET.get("page"))
    labels = account_labels(a.account for a in page.object_list)
    for a in page.object_list:
        a.account_label = account_label(a.account, labels)
    kept = {k: v for k, v in request.GET.items() if k not in ("page", "fragment") and v}

    def sort_link(key: str) -> dict:
        current = filters.sort
        descending = current != f"-{key}"  # a second click on a sorted column flips it
        return {
            "url": "?" + urlencode({**kept, "sort": ("-" if descending else "") + key}),
            "sorted": current.lstrip("-") == key,
            "asc": current == key,
        }

    context = {
        "page": page,
        "filters": filters,
        "params": request.GET,
        "errors": errors,
        "choices": alert_filter_choices(),
        "sorts": {key: sort_link(key) for key in ALERT_SORTS},
        "may_act": desk_may_act(request.user),
        # where an assignment returns: the queue page itself, never the rows fragment the live
        # refresh fetched (its forms carry this; following it showed a bare unstyled table)
        "here": request.path + ("?" + urlencode(kept) if kept else ""),
        "filtered": any(
            k in kept
            for k in ("type", "severity", "account", "symbol", "status", "assignee", "since", "until", "pending")
        ),
        "prev_link": "?" + urlencode({**kept, "page": page.previous_page_number()}) if page.has_previous() else "",
        "next_link": "?" + urlencode({**kept, "page": page.next_page_number()}) if page.has_next() else "",
    }
    template = (
        "compliance/alerts/_rows.html" if request.GET.get("fragment") == "rows" else "compliance/alerts/queue.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def case_assign_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign the case an alert belongs to (and so the alert) to a compliance officer."""
    desk_check_act(request.user)
    case = case_get(user=request.user, pk=pk)
    back = local_url(request, request.POST.get("next", ""), f"/compliance/cases/{case.pk}/")
    username = request.POST.get("assignee", "")
    assignee = get_user_model().objects.filter(username=username, is_active=True).first()

    def call():
        from compliance.services import ComplianceError

        if assignee is None:
            raise ComplianceError(f"no active user {username!r}", code="assignee_unknown")
        case_assign(case=case, officer=request.user, assignee=assignee, note=request.POST.get("note", "").strip())

    return action_run(request, call, done=f"{case.reference} assigned to {username}.", back=back)
