"""Request guards shared by every view."""

from __future__ import annotations

import logging

from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse

from tradeops.core.views import API_PREFIXES

NUL_MESSAGE = "Bad request: a parameter contains a NUL character (%00), which no field accepts."


def refuse_nul(get_response):
    """Refuse a request whose query string or form carries a NUL character: PostgreSQL cannot
    store or compare one, so it would end in a 500 deep in a query (``?q=a%00b``). A clear 400
    instead, for every view (screens, admin, API)."""

    def middleware(request):
        api = request.path.startswith(API_PREFIXES)
        # The API reads no forms (JSON bodies are checked by its parser, tradeops.api.parsers):
        # parsing one here would also hide a wrong content type from it (415).
        form = request.method == "POST" and not api
        values = [*request.GET.values(), *(request.POST.values() if form else ())]
        if any("\x00" in value for value in values):
            if api:  # the API's one error shape (tradeops.core.api)
                return JsonResponse({"error": {"code": "nul_character", "message": NUL_MESSAGE}}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return get_response(request)

    return middleware


log = logging.getLogger("tradeops.web")

DATABASE_UNAVAILABLE = (
    "The database does not answer (it may be restarting). What you submitted just now may not have "
    "been saved: check once the page answers again. Try again in a moment."
)


def _database_unreachable(exc: BaseException) -> bool:
    """A connection that failed or could not be had (refused, reset, the pool's wait over), not
    a query the database refused (a constraint, a timeout of one statement)."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ in ("PoolTimeout", "TooManyRequests"):
        return True
    text = str(exc).lower()
    return any(
        words in text
        for words in ("connection failed", "connection refused", "server closed the connection", "connection is closed")
    )


class DatabaseUnavailableMiddleware:
    """A database outage (PostgreSQL restarting, failed over) answers 503 with ``Retry-After``
    and a sentence, at once, instead of a 500: behind the gateway, nginx shows its fallback page
    for it (docs/topology.md). Until 2026-12-06 (wip/walk49) an officer's form posted while the
    cluster's primary restarted hung for about 30 s (the pool's 10 s wait, then again for each
    read the error page made: DEBUG's page reads the session) and ended in a 500 with a
    traceback. The API answers its one error shape, ``database_unavailable``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not _database_unreachable(exception):
            return None
        log.warning("database unavailable: %s %s answered 503: %s", request.method, request.path, exception)
        session = getattr(request, "session", None)
        if session is not None and not hasattr(session, "_session_cache"):
            # Unreadable now: SessionMiddleware would read it again on the way out (the cookie's
            # expiry), wait the pool's 10 s once more and turn this answer into a 500.
            session._session_cache = {}
        if request.path.startswith(API_PREFIXES):
            response = JsonResponse(
                {"error": {"code": "database_unavailable", "message": DATABASE_UNAVAILABLE}}, status=503
            )
        else:
            response = HttpResponse(
                f"<!doctype html><title>tradeops: database unavailable</title>"
                f"<h1>tradeops cannot reach its database</h1><p>{DATABASE_UNAVAILABLE}</p>",
                status=503,
                content_type="text/html; charset=utf-8",
            )
        response["Retry-After"] = "30"
        response["Cache-Control"] = "no-store"
        return response
