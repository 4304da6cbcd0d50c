"""Request guards shared by every view."""

from __future__ import annotations

from django.http import HttpResponseBadRequest


def refuse_nul(get_response):
    """Refuse a request whose query string or form carries a NUL character: PostgreSQL cannot
    store or compare one, so it would end in a 500 deep in a query (``?q=a%00b``). A clear 400
    instead, for every view (screens, admin, API)."""

    def middleware(request):
        values = [*request.GET.values(), *(request.POST.values() if request.method == "POST" else ())]
        if any("\x00" in value for value in values):
            return HttpResponseBadRequest(
                "Bad request: a parameter contains a NUL character (%00), which no field accepts.",
                content_type="text/plain; charset=utf-8",
            )
        return get_response(request)

    return middleware
