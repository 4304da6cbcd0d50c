"""django-filter pieces the apps' filter sets share."""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """A whole-number id (``?account=3``); anything else is a 400, not a truncated match."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """ISO 8601; a time without an offset is read as UTC (``TIME_ZONE``)."""
