"""The project's URLs plus ``/bench/minimal/``: the same-run baseline of bench/api_throughput.py, a
Django view that returns a small JSON body and does nothing else, behind the same middleware."""

from django.http import JsonResponse
from django.urls import path

from tradeops.urls import urlpatterns as project_urlpatterns


def minimal_json(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/minimal/", minimal_json), *project_urlpatterns]
