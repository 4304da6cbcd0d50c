"""The project's URLs plus the same-run baselines of bench/api_throughput.py, behind the same
middleware:

- ``/bench/minimal/``: a Django view that returns a small JSON body and does nothing else (the
  baseline the issue names);
- ``/bench/positions-plain/``: the same page of positions the API returns (same query, same
  fields) from a plain Django view: no authentication, no throttle, no DRF; what the data alone
  costs, so that the API's own share can be read off.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.urls import path

from tradeops.urls import handler404, handler500  # noqa: F401  (the project's JSON errors under /api/)
from tradeops.urls import urlpatterns as project_urlpatterns
from trading.models import Position

FIELDS = (
    "account_id",
    "account__name",
    "instrument__symbol",
    "net_quantity",
    "average_price",
    "mark_price",
    "realised_pnl",
    "unrealised_pnl",
    "instrument__quote_currency",
    "as_of",
    "updated_at",
)


def minimal_json(request):
    return JsonResponse({"status": "ok"})


def positions_plain(request):
    rows = list(Position.objects.order_by("pk").values(*FIELDS)[:100])
    return JsonResponse({"next": None, "previous": None, "results": rows}, encoder=DjangoJSONEncoder)


urlpatterns = [
    path("bench/minimal/", minimal_json),
    path("bench/positions-plain/", positions_plain),
    *project_urlpatterns,
]
