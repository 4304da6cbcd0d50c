"""The operators' live dashboard: positions, orders, fills; updates pushed over /ws/live/."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tradeops.core.roles import Role, user_has_role
from trading import selectors


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "positions": selectors.position_list(open_only=False).order_by("account__name", "instrument__symbol")[:200],
        "orders": selectors.order_list().order_by("-created_at")[:50],
        "fills": selectors.execution_list().order_by("-executed_at")[:50],
        "sees_compliance": user.is_superuser
        or user_has_role(user, Role.COMPLIANCE_OFFICER)
        or user_has_role(user, Role.AUDITOR),
    }
    return render(request, "trading/dashboard.html", context)
