import logging

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.http import require_GET

from tradeops.core.attention import attention_for

# Paths whose clients are programs: their errors are JSON in the API's one shape
# (tradeops.core.api), never an HTML page.
API_PREFIXES = ("/api/", "/o/")

logger = logging.getLogger(__name__)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role's front page: where to go, and what needs attention now (open alerts, pending
    approvals, engaged kill switches, reports due), from every app's ``attention_for``."""
    return render(request, "home.html", {"items": attention_for(request.user)})


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: no icon (204). The screens declare none (``data:,``), but the admin's
    pages and a browser's own probe ask for this path, and a 404 there is a failed request in
    every page's console."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response


def healthz(request: HttpRequest) -> JsonResponse:
    """The probe: 200 when the database answers, else 503 in a sentence (was a 500 with a
    traceback logged at every probe while the database was down; walk45). The error's text stays
    in the log: it names the database's address, and anyone may ask this page."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        logger.warning("healthz: the database does not answer: %s", exc)
        return JsonResponse(
            {
                "status": "unavailable",
                "database": connection.vendor,
                "message": "the database does not answer; the web process's log says why",
            },
            status=503,
        )
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
