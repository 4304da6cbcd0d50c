"""Cursor pagination for every list: stable under inserts (no page drifts while the trail or the
order book grows), no COUNT over large tables, opaque ``next``/``previous`` links."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    """``?page_size=`` (1-500, default 100) and ``?cursor=`` from a previous page's links.

    A view names its ordering in ``cursor_ordering`` (a unique, unchanging field, newest first by
    default: ``-pk``)."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 0 < int(raw) <= self.max_page_size):
            raise ValidationError(
                {self.page_size_query_param: f"a whole number from 1 to {self.max_page_size}"}, code="invalid_page_size"
            )
        return super().get_page_size(request)

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": "not a cursor this API gave out"}, code="invalid_cursor") from None
        if cursor is not None and cursor.position is not None:
            name = self.ordering[0].lstrip("-")
            field = self._model._meta.pk if name == "pk" else self._model._meta.get_field(name)
            try:
                field.to_python(cursor.position)
            except (DjangoValidationError, ValueError, TypeError):
                raise ValidationError({"cursor": "not a cursor this API gave out"}, code="invalid_cursor") from None
        return cursor
