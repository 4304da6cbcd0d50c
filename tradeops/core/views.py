from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tradeops.core.attention import attention_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role's front page: where to go, and what needs attention now (open alerts, pending
    approvals, engaged kill switches, reports due), from every app's ``attention_for``."""
    return render(request, "home.html", {"items": attention_for(request.user)})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
