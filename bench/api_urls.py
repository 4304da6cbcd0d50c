"""The project's URLs plus the same-run baselines of bench/api_throughput.py, behind the same
middleware:

- ``/bench/minimal/``: a Django view that returns a small JSON body and does nothing else (the
  baseline the issue names);
- ``/bench/positions-plain/``: the same page of positions the API returns (same query, same
  fields) from a plain Django view: no authentication, no throttle, no DRF; what the data alone
  costs, so that the API's own share can be read off;
- ``/bench/minimal-post/`` and ``/bench/order-request-plain/`` (bench/api_orders.py): a view that
  parses a small JSON body and answers 202, and the same order request as ``POST /api/v1/orders/``
  from a plain Django view (the same service, ``order_request``, for a fixed person: no
  authentication, throttle or DRF): what the write alone costs.
"""

import json
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tradeops.urls import handler404, handler500  # noqa: F401  (the project's JSON errors under /api/)
from tradeops.urls import urlpatterns as project_urlpatterns
from trading.models import Position, TradingAccount
from trading.orders.requests import order_request

PLAIN_REQUESTER = "bench-plain-requester"

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


@csrf_exempt
def minimal_post(request):
    body = json.loads(request.body)
    return JsonResponse({"client_order_id": body.get("client_order_id")}, status=202)


@csrf_exempt
def order_request_plain(request):
    body = json.loads(request.body)
    result = order_request(
        requested_by=get_user_model().objects.get(username=PLAIN_REQUESTER),
        client_order_id=body["client_order_id"],
        account=TradingAccount.objects.get(pk=body["account"]),
        instrument=body["symbol"],
        side=body["side"],
        quantity=Decimal(body["quantity"]),
    )
    return JsonResponse({"client_order_id": result.client_order_id, "status": result.status}, status=202)


urlpatterns = [
    path("bench/minimal/", minimal_json),
    path("bench/positions-plain/", positions_plain),
    path("bench/minimal-post/", minimal_post),
    path("bench/order-request-plain/", order_request_plain),
    *project_urlpatterns,
]
