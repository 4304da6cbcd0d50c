"""Request guards shared by every view."""

from __future__ import annotations

from django.http import HttpResponseBadRequest, JsonResponse

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
