from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from tradeops.core.attention import attention_for

# Paths whose clients are programs: their errors are JSON in the API's one shape
# (tradeops.core.api), never an HTML page.
API_PREFIXES = ("/api/", "/o/")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role's front page: where to go, and what needs attention now (open alerts, pending
    approvals, engaged kill switches, reports due), from every app's ``attention_for``."""
    return render(request, "home.html", {"items": attention_for(request.user)})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """404 for a URL no route matches: JSON under the API, the HTML page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"error": {"code": "not_found", "message": f"no route for {request.path}"}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: JSON under the API (the details stay in the log), the HTML page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"error": {"code": "server_error", "message": "internal error (logged)"}}, status=500)
    return defaults.server_error(request)
