"""The operations console (``/console/``): positions and P&L per account, exposure against each
limit, equity and drawdown, breaker and trading state per account and instrument, the kill
switch (engage with scope, confirmation and reason; release by a risk manager with a reason),
recent orders with full status and reject reason, fills, and the operator alerts (reconciliation,
breaker, drift, market data, anomalies; never surveillance's). Live over ``/ws/live/``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from tradeops.api.matrix import role_may
from tradeops.audit.actors import user_actor
from tradeops.core.errors import ApplicationError, NotFound
from tradeops.core.roles import Role, user_has_role
from tradeops.core.screens import action_run, refusal_text, require_text
from trading.console import alerts, selectors
from trading.controls.drawdown import drawdown_rebase_approve, drawdown_rebase_propose, drawdown_rebase_reject
from trading.controls.selectors import drawdown_rebase_get, kill_switch_get
from trading.controls.services import kill_switch_engage, kill_switch_release
from trading.models import KillScope, TradingAccount

# A refused engage's form, kept for the page the refusal returns to (one read): the scope, the
# value and the reason as typed, and the refusal, shown beside the form (the redirect lands on
# ``#kill-switch``, below the page's flash). The confirmation is never kept: it is given again.
KILL_DRAFT = "kill_switch_draft"


def _check_read(user) -> None:
    if not selectors.console_visible(user):
        raise PermissionDenied("the operations console is for traders, risk managers, compliance and auditors")


def may_engage(user) -> bool:
    """RTS 6 Art. 12: the matrix's ``kill_switch`` engage row, as over the API (the whole firm
    only by a risk manager, which the service checks)."""
    return user.is_superuser or role_may(user, "kill_switch", "engage")


def may_release(user) -> bool:
    return role_may(user, "kill_switch", "release")


def may_rebase(user) -> bool:
    """Re-basing an account's peak equity is the risk function's, as limits are (the services
    check the role again, and four eyes on the person)."""
    return user_has_role(user, Role.RISK_MANAGER)


@login_required
@require_GET
def console_view(request: HttpRequest) -> HttpResponse:
    _check_read(request.user)
    user = request.user
    accounts = selectors.console_accounts()
    fragment = request.GET.get("fragment", "")
    template = {
        "accounts": "trading/_accounts.html",
        "kill": "trading/_kill_switch.html",
        "banner": "trading/_kill_banner.html",
        "breakers": "trading/_breakers.html",
        "alerts": "trading/_operator_alerts.html",
    }.get(fragment, "trading/console.html")
    return render(
        request,
        template,
        {
            "accounts": accounts,
            "instruments": selectors.console_instruments(),
            "breakers": selectors.trading_breakers(),
            "orders": selectors.console_orders(),
            "fills": selectors.console_fills(),
            "operator_alerts": alerts.operator_alerts_recent(),
            "alerts_bound": {"hours": alerts.PANEL_HOURS, "limit": alerts.PANEL_LIMIT},
            "kill": selectors.console_kill_switches(),
            "meta": {"instruments": selectors.instrument_meta(), "accounts": selectors.account_names()},
            "scopes": KillScope.choices,
            "kill_draft": request.session.pop(KILL_DRAFT, None) if fragment in ("", "kill") else None,
            "traders": selectors.trader_names() if fragment in ("", "kill") else {},
            "algos": selectors.algo_ids() if fragment in ("", "kill") else [],
            "may_engage": may_engage(user),
            "may_engage_all": user_has_role(user, Role.RISK_MANAGER) or user.is_superuser,
            "may_release": may_release(user),
            "may_rebase": may_rebase(user),
            "chart_account": accounts[0].account if accounts else None,
        },
    )


@login_required
@require_GET
def equity_view(request: HttpRequest, pk: int) -> JsonResponse:
    """Equity and drawdown of one account over time (event time), for the console's chart."""
    _check_read(request.user)
    account = TradingAccount.objects.filter(pk=pk).first()
    if account is None:
        raise Http404("no such account")
    return JsonResponse(
        {
            "account": account.name,
            "currency": account.base_currency,
            "points": selectors.equity_curve(account=account),
            "has_snapshot": hasattr(account, "risk_snapshot"),
        }
    )


@login_required
@require_POST
def kill_switch_engage_view(request: HttpRequest) -> HttpResponse:
    """Engage on a scope with a reason, after an explicit confirmation. Cancels every unexecuted
    order in scope at once (the service; RTS 6 Art. 12)."""
    if not may_engage(request.user):
        raise PermissionDenied("engaging the kill switch needs a trading, risk or compliance role")
    scope = request.POST.get("scope", "")
    value = (request.POST.get("scope_value") or "").strip()

    def call():
        try:
            return engage()
        except (ApplicationError, ValidationError) as exc:
            reason = (request.POST.get("reason") or "").strip()
            request.session[KILL_DRAFT] = {
                "scope": scope,
                "scope_value": value,
                "reason": reason,
                "refused": refusal_text(exc),
            }
            raise

    def engage():
        if request.POST.get("confirm") != "yes":
            raise ApplicationError(
                "tick the confirmation: engaging cancels every unexecuted order in scope", code="confirm"
            )
        if scope not in KillScope.values:
            raise ApplicationError(f"unknown scope {scope!r}", code="kill_scope")
        return kill_switch_engage(
            scope=scope,
            scope_value="" if scope == KillScope.ALL else value,
            reason=require_text(request.POST, "reason", what="A reason"),
            actor=user_actor(request.user),
            source="console",
            user=request.user,
        )

    def done(result) -> str:
        request.session.pop(KILL_DRAFT, None)
        # Named as the banner names it ("account Paper demo (1)"), and said when it already was.
        selectors.kill_switch_labels([result.switch])
        text = (
            f"Kill switch engaged on {result.switch.target}."
            if result.created
            else f"The kill switch on {result.switch.target} was already engaged; it stays engaged."
        )
        return text + (f" Orders cancelled: {len(result.cancelled)}." if result.cancelled else "")

    return action_run(request, call, done=done, back="/console/#kill-switch")


@login_required
@require_POST
def kill_switch_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Release: a risk manager, with a reason (the service refuses anyone else)."""
    if not may_release(request.user):
        raise PermissionDenied("only a risk manager releases the kill switch")
    try:
        switch = kill_switch_get(pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from None
    selectors.kill_switch_labels([switch])
    return action_run(
        request,
        lambda: kill_switch_release(
            switch=switch, user=request.user, reason=require_text(request.POST, "reason", what="A reason")
        ),
        done=f"Kill switch on {switch.target} released.",
        back="/console/#kill-switch",
    )


# ---------------------------------------------------------------- drawdown re-base (four eyes)


def _rebase_or_404(pk: int):
    try:
        return drawdown_rebase_get(pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from None


@login_required
@require_POST
def drawdown_rebase_propose_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A risk manager proposes re-basing the account's peak equity (acknowledge the drawdown,
    resume), with a reason; a different risk manager approves it (the service)."""
    if not may_rebase(request.user):
        raise PermissionDenied("only a risk manager re-bases an account's peak equity")
    account = TradingAccount.objects.filter(pk=pk).first()
    if account is None:
        raise Http404("no such account")
    return action_run(
        request,
        lambda: drawdown_rebase_propose(
            proposed_by=request.user, account=account, reason=require_text(request.POST, "reason", what="A reason")
        ),
        done=f"Re-base of {account.name}'s peak equity proposed: a second risk manager approves it.",
        back=f"/console/#account-{account.pk}",
    )


@login_required
@require_POST
def drawdown_rebase_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The second risk manager approves: the execution worker re-bases the peak when it takes
    the event (four eyes: never the proposer)."""
    if not may_rebase(request.user):
        raise PermissionDenied("only a risk manager approves a re-base of peak equity")
    rebase = _rebase_or_404(pk)
    return action_run(
        request,
        lambda: drawdown_rebase_approve(
            rebase=rebase, approver=request.user, note=(request.POST.get("note") or "").strip()
        ),
        done=f"Re-base of {rebase.account.name}'s peak equity approved: the execution worker applies it now.",
        back=f"/console/#account-{rebase.account_id}",
    )


@login_required
@require_POST
def drawdown_rebase_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Refuse (or, by its proposer, withdraw) a pending re-base, with a note."""
    if not may_rebase(request.user):
        raise PermissionDenied("only a risk manager rejects a re-base of peak equity")
    rebase = _rebase_or_404(pk)
    return action_run(
        request,
        lambda: drawdown_rebase_reject(
            rebase=rebase, officer=request.user, note=require_text(request.POST, "note", what="A note")
        ),
        done=f"Re-base of {rebase.account.name}'s peak equity rejected; the peak stays.",
        back=f"/console/#account-{rebase.account_id}",
    )
