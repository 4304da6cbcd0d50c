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

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.template.response import SimpleTemplateResponse
from django.urls import URLResolver, get_resolver, reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import parse_etags
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from tradeops.api.cache import data_version, page_etag, page_get, page_put
from tradeops.api.matrix import roles_of
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
        _selected_remember(self, request, queryset)
        version = data_version(queryset.db)
        if version is None:
            return super().list(request, *args, **kwargs)
        key = page_key(self, request, version, queryset.query.is_empty())
        page = page_get(key)
        if page is not None:
            return _page_response(page)
        response = super().list(request, *args, **kwargs)

        def keep(rendered):
            if rendered.status_code == 200:
                rendered["ETag"] = page_etag(rendered.content)
                page_put(key, rendered.content, rendered["Content-Type"], rendered["ETag"])

        response.add_post_render_callback(keep)
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        return page_validated(request, response) if self.cache_pages else response

    @classmethod
    def as_view(cls, **initkwargs):
        """DRF's view, behind the cached pages' fast path (``page_fast_path``) when the view
        caches its pages."""
        view = super().as_view(**initkwargs)
        if not cls.cache_pages:
            return view

        def view_or_fast_path(request, *args, **kwargs):
            response = page_fast_path(cls, initkwargs, request, args, kwargs)
            return view(request, *args, **kwargs) if response is None else response

        return functools.update_wrapper(view_or_fast_path, view)  # cls, initkwargs, csrf_exempt: DRF's

    def get_serializer(self, *args, **kwargs):
        if not kwargs.pop("many", False):
            return super().get_serializer(*args, **kwargs)
        context = kwargs.pop("context", None) or self.get_serializer_context()
        return FastListSerializer(*args, child=self.get_serializer_class()(context=context), context=context, **kwargs)


def _page_response(page: tuple[bytes, str, str]) -> HttpResponse:
    response = HttpResponse(page[0], content_type=page[1])
    response["ETag"] = page[2]
    return response


def page_validated(request, response):
    """A page-caching list's answer with its validators: a 200 carries ``ETag`` (a digest of the
    page's bytes, ``page_etag``) and ``Cache-Control: private, no-cache`` (a client or its own
    cache may keep the page but asks again each time; no shared cache keeps it; ``Vary`` names
    ``Authorization``), and becomes a 304 without a body when the request's ``If-None-Match``
    names that tag. Called from ``finalize_response``, so after authentication, the scope and
    role checks and the throttle (a 304 is counted like the 200 it replaces), on both the fast
    path and DRF's; a DRF response is validated once rendered."""
    if response.status_code != 200:
        return response
    if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
        response.add_post_render_callback(lambda rendered: _validated(request, rendered))
        return response
    return _validated(request, response)


def _validated(request, response):
    if response.status_code != 200:
        return response
    if not response.has_header("ETag"):  # a page not kept (the cache off, or a transaction open)
        response["ETag"] = page_etag(response.content)
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("Authorization",))  # what the page holds depends on the caller's role
    if request.method not in ("GET", "HEAD") or not _none_match(request, response["ETag"]):
        return response
    # 304 with the headers RFC 9110 15.4.5 asks to repeat (and nothing that describes a body)
    not_modified = HttpResponseNotModified()
    for header in ("Cache-Control", "ETag", "Vary"):
        not_modified[header] = response[header]
    return not_modified


def _none_match(request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2) or is ``*``.
    The other preconditions (``If-Match``, dates) are not evaluated on these lists."""
    tags = parse_etags(request.META.get("HTTP_IF_NONE_MATCH", ""))
    return tags == ["*"] or etag.removeprefix("W/") in (tag.removeprefix("W/") for tag in tags)


def page_key(view, request, version: int, empty: bool) -> tuple:
    """Where a cached page is filed: the data version first (``tradeops.api.cache``), then the
    view, the address asked (host, scheme, path with its query string), the renderer, and whether
    the caller may see rows at all (the selector's answer: ``visible_to`` is all or nothing)."""
    return (
        version,
        type(view).__qualname__,
        request.get_host(),
        request.is_secure(),
        request.get_full_path(),
        request.accepted_renderer.format,
        empty,
    )


# What the selector answered per (view, roles): the database it reads and whether it is empty.
# The selectors of page-caching views depend on the caller through ``roles_of`` only (the matrix's
# ``visible_to``: all or nothing per role; the pages' cache rests on that already), so the fast path
# reuses the answer instead of building the queryset again on every hit.
_selected: dict[tuple[type, frozenset], tuple[str, bool]] = {}


def _selected_remember(view, request, queryset) -> None:
    if not connections[DEFAULT_DB_ALIAS].in_atomic_block:  # the router reads the primary inside one
        _selected[(type(view), roles_of(request.user))] = (queryset.db, queryset.query.is_empty())


_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})


def page_fast_path(cls, initkwargs, request, args, kwargs):
    """The response to a ``GET`` of a page-caching list view without DRF's dispatch, or None
    (before anything is counted or recorded) for DRF's full path.

    What DRF's ``dispatch`` does for such a request, with the same objects and methods: the view
    instance and its DRF ``Request`` (``initialize_request``: the same authenticators, so the same
    ``request.user``), ``perform_authentication``, ``check_permissions``, ``check_throttles`` (the
    request is counted once, here), errors through ``handle_exception`` (the project's exception
    handler, ``WWW-Authenticate``, ``Retry-After``) and every response through
    ``finalize_response`` (``Allow``, ``Vary``). Left out, because their answer is known: content
    negotiation (only for an ``Accept`` the view's one JSON renderer answers with its own media
    type, and no format override; anything else takes DRF's path) and the handler lookup. On a hit
    of the page cache the selector is not built again (``_selected``); the data version is read
    as on every request. A miss runs the view's ``list``, as DRF would (the miss counted once, there)."""
    if request.method != "GET" or len(cls.renderer_classes) != 1 or cls.versioning_class is not None:
        return None
    if not getattr(settings, "API_PAGE_FAST_PATH", True):
        return None
    if cls.get is not ListAPIView.get:
        return None  # a view of its own GET: DRF's path
    if request.META.get("HTTP_ACCEPT", "") not in _PLAIN_ACCEPT or "format" in kwargs:
        return None
    override = api_settings.URL_FORMAT_OVERRIDE
    if override and override in request.META.get("QUERY_STRING", ""):
        return None
    view = cls(**initkwargs)
    view.setup(request, *args, **kwargs)
    view.args, view.kwargs = args, kwargs
    drf_request = view.initialize_request(request, *args, **kwargs)
    view.request = drf_request
    view.headers = view.default_response_headers
    try:
        view.format_kwarg = None
        renderer = cls.renderer_classes[0]()
        drf_request.accepted_renderer, drf_request.accepted_media_type = renderer, renderer.media_type
        drf_request.version, drf_request.versioning_scheme = None, None
        view.perform_authentication(drf_request)
        view.check_permissions(drf_request)
        view.check_throttles(drf_request)
        response = _page_hit(view, drf_request)
        if response is None:
            response = view.get(drf_request, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001  (DRF's dispatch: every error through handle_exception)
        response = view.handle_exception(exc)
    view.response = view.finalize_response(drf_request, response, *args, **kwargs)
    return view.response


def _page_hit(view, request) -> HttpResponse | None:
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return None
    selected = _selected.get((type(view), roles_of(request.user)))
    if selected is None:
        return None
    alias, empty = selected
    version = data_version(alias)
    if version is None:
        return None
    page = page_get(page_key(view, request, version, empty), count_miss=False)  # list() counts a miss
    return None if page is None else _page_response(page)


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


API_ROOT = "api/v1/"
# The public documents under /api/v1/ (tradeops/api/urls.py), listed apart from the resources.
_DOCUMENTS = {
    "schema": "api-v1:schema",
    "docs": "api-v1:docs",
    "redoc": "api-v1:redoc",
    "events_schema": "api-v1:events-schema",
}


class ApiRootView(APIView):
    """``GET /api/v1/``: the index of the API, as DRF's ``DefaultRouter`` root answers: every
    resource an integration can call (each collection route without a path parameter, with its
    URL and, per method, the scope a token needs), the token endpoint and the public documents.

    Public like the OpenAPI schema, which lists the same routes in more detail: it names routes
    and scopes, never data, and says nothing about who may do what beyond the published matrix.
    Built from the URL configuration and the views' ``matrix`` (no domain app imported), so a new
    route appears here without an edit."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request):
        absolute = request.build_absolute_uri
        return JsonResponse(
            {
                "version": "v1",
                "resources": {
                    name: {"url": absolute(path), "scopes": scopes} for name, (path, scopes) in api_resources().items()
                },
                "token": absolute(reverse("oauth2:token")),
                **{name: absolute(reverse(url_name)) for name, url_name in _DOCUMENTS.items()},
            },
            json_dumps_params={"indent": 1},
        )


@functools.cache
def api_resources() -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (path, {method: scope}) for every route under ``/api/v1/`` without a path
    parameter whose view declares its ``matrix`` (the public documents have none). The name is
    the route without the prefix and the final slash (``orders``, ``audit/records``)."""
    from tradeops.api.matrix import rule_for

    found: dict[str, tuple[str, dict[str, str]]] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            route = prefix + str(pattern.pattern)
            if not route.startswith(API_ROOT) or "<" in route:
                continue
            matrix = getattr(getattr(pattern.callback, "view_class", None), "matrix", None)
            if matrix:
                scopes = {method: str(rule_for(*entry).scope) for method, entry in sorted(matrix.items())}
                found[route.removeprefix(API_ROOT).rstrip("/")] = ("/" + route, scopes)

    walk(get_resolver().url_patterns, "")
    return found
