"""What the API's request bodies and query strings share: nothing the API does not know is
accepted silently.

A field the input does not have (``stoploss`` for ``stop_loss``) was dropped and the request
carried out without it: an order placed with no stop loss, a list filtered by nothing
(``?acount=1``: every account). Both are refused now, naming the name and the ones known.
"""

from __future__ import annotations

from collections.abc import Mapping

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers

from tradeops.core.errors import ApplicationError

# Query parameters every list takes besides its filters: the cursor pages and DRF's format.
LIST_PARAMETERS = frozenset({"cursor", "page_size", "format"})


class StrictInputSerializer(serializers.Serializer):
    """A request body: an unknown field is a 400 (``invalid``, the field named in ``detail``)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(sorted(name for name, field in self.fields.items() if not field.read_only))
                raise serializers.ValidationError(
                    {name: [f"unknown field (this request takes: {known})"] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, and a 400 ``unknown_parameter`` for a query parameter that is neither a
    filter of the list nor a page parameter (docs/api.md: a bad filter is never a silently wider
    answer)."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        known = set(LIST_PARAMETERS) | set(getattr(filterset_class, "base_filters", {}) or {})
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ApplicationError(
                f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"this list takes: {', '.join(sorted(known))}",
                code="unknown_parameter",
                extra={"unknown": unknown, "known": sorted(known)},
            )
        return super().filter_queryset(request, queryset, view)
