"""Rendering a page of rows quickly, with exactly DRF's output.

DRF's ``ListSerializer`` walks every field of every row through ``get_attribute`` and
``to_representation`` with their generality (sources, ``PKOnlyObject``, localisation); for a page
of 100 rows that is most of a list request's time. ``FastListSerializer`` plans each field once
per page (where its value lives; whether it is a decimal or a datetime, the two formats the API
fixes: decimals as strings with the column's scale, times as ISO 8601 UTC with ``Z``) and leaves
every other field to DRF. A test keeps its output equal to DRF's, endpoint by endpoint.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.settings import api_settings

_DECIMAL, _DATETIME, _PLAIN, _JSON, _CHOICE, _DRF = range(6)


def _plan_field(field):
    attrs = field.source_attrs
    if field.source == "*" or not attrs:
        return _DRF
    if isinstance(field, serializers.DecimalField):
        coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        if not coerce or field.localize or field.normalize_output:
            return _DRF
        return _DECIMAL
    if isinstance(field, serializers.DateTimeField):
        if getattr(field, "format", None) is not None or getattr(field, "timezone", None):
            return _DRF
        return _DATETIME
    if type(field) in (
        serializers.CharField,
        serializers.IntegerField,
        serializers.BooleanField,
        serializers.FloatField,
    ):
        return _PLAIN
    if type(field) is serializers.JSONField and not field.binary:
        return _JSON
    if type(field) is serializers.ChoiceField:
        return _CHOICE
    return _DRF


def _utc_iso(value) -> str:
    """DRF's rendering under ``DATETIME_FORMAT`` (UTC, always the microseconds, ``Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FastListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        fields = list(self.child._readable_fields)
        plan = [(field.field_name, field.source_attrs, _plan_field(field), field) for field in fields]
        rows = []
        for instance in data.all() if hasattr(data, "all") else data:
            row = {}
            for name, attrs, kind, field in plan:
                if kind == _DRF:
                    try:
                        attribute = field.get_attribute(instance)
                    except SkipField:
                        continue
                    row[name] = None if attribute is None else field.to_representation(attribute)
                    continue
                value = instance
                for attr in attrs:
                    value = getattr(value, attr)
                    if value is None:
                        break
                if value is None:
                    row[name] = None
                elif kind == _DECIMAL:
                    if isinstance(value, Decimal) and value.as_tuple().exponent == -field.decimal_places:
                        row[name] = f"{value:f}"
                    else:  # not at the column's scale: let DRF quantize it
                        row[name] = field.to_representation(value)
                elif kind == _DATETIME:
                    row[name] = _utc_iso(value)
                elif kind == _JSON:
                    row[name] = value
                elif kind == _CHOICE:
                    row[name] = value if value == "" else field.choice_strings_to_values.get(str(value), value)
                elif type(field) is serializers.CharField:
                    row[name] = str(value)
                elif type(field) is serializers.IntegerField:
                    row[name] = int(value)
                elif type(field) is serializers.FloatField:
                    row[name] = float(value)
                else:
                    row[name] = bool(value)
            rows.append(row)
        return rows
