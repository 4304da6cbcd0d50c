"""django-filter pieces the apps' filter sets share."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
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


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            # PostgreSQL refuses offsets beyond +-15:59 that Python accepts (up to +-23:59):
            # the query always carries UTC.
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(f"{value!r} is out of range in UTC", code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """ISO 8601, compared in UTC; a time without an offset is read as UTC (``TIME_ZONE``)."""

    field_class = UtcIsoDateTimeField
