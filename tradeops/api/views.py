"""What every app's API views share, and the two schema documents.

Views are entry points (STYLE.md habit 3): parse, authorise (``matrix`` + ``MatrixPermission``),
call one service or selector, render. The bases below only wire that shape to DRF so that
drf-spectacular can document filters, pages and bodies:

- ``ApiListView``: ``GET`` a cursor page of ``select()`` (one selector call), filtered by the
  view's django-filter ``filterset_class``;
- ``ApiDetailView``: ``GET`` one object from ``select_one(**url kwargs)`` (one selector call that
  raises ``NotFound``);
- ``ApiView``: anything else (writes call one service).
"""

from __future__ import annotations

import functools

from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from tradeops.api.cache import data_version, page_get, page_put
from tradeops.api.permissions import MatrixPermission
from tradeops.api.serializers import FastListSerializer
from tradeops.events import events_json_schema


class ApiView(APIView):
    permission_classes = [MatrixPermission]
    matrix: dict[str, tuple[str, str]] = {}


class ApiListView(ListAPIView):
    permission_classes = [MatrixPermission]
    matrix: dict[str, tuple[str, str]] = {}
    cursor_ordering = "-pk"

    def select(self):
        raise NotImplementedError

    # Serve the page again while the data version stands (``tradeops.api.cache``). Only for a
    # view whose rows are all read from tables that move the version (its migration's TABLES),
    # and whose rows are the same for everybody who may see them.
    cache_pages = False

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator, without a request
            return self.serializer_class.Meta.model.objects.none()
        return self.select()

    def list(self, request, *args, **kwargs):
        if not self.cache_pages:
            return super().list(request, *args, **kwargs)
        queryset = self.get_queryset()  # the selector: who may see rows at all
        version = data_version(queryset.db)
        if version is None:
            return super().list(request, *args, **kwargs)
        key = (
            version,
            type(self).__qualname__,
            request.get_host(),
            request.is_secure(),
            request.get_full_path(),
            request.accepted_renderer.format,
            queryset.query.is_empty(),
        )
        page = page_get(key)
        if page is not None:
            return HttpResponse(page[0], content_type=page[1])
        response = super().list(request, *args, **kwargs)

        def keep(rendered):
            if rendered.status_code == 200:
                page_put(key, rendered.content, rendered["Content-Type"])

        response.add_post_render_callback(keep)
        return response

    def get_serializer(self, *args, **kwargs):
        if not kwargs.pop("many", False):
            return super().get_serializer(*args, **kwargs)
        context = kwargs.pop("context", None) or self.get_serializer_context()
        return FastListSerializer(*args, child=self.get_serializer_class()(context=context), context=context, **kwargs)


class ApiDetailView(RetrieveAPIView):
    permission_classes = [MatrixPermission]
    matrix: dict[str, tuple[str, str]] = {}

    def select_one(self, **kwargs):
        raise NotImplementedError

    def get_object(self):
        return self.select_one(**self.kwargs)


class EventsSchemaView(APIView):
    """JSON Schema of the event envelope and every payload on the Kafka topics (generated from
    ``tradeops.events``). Public, like the OpenAPI schema: it describes shapes, not data."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request):
        return JsonResponse(_events_schema(), json_dumps_params={"indent": 1})


@functools.cache
def _events_schema() -> dict:
    return events_json_schema()  # the structs do not change while the process runs
