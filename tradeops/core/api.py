"""DRF wiring shared by every app: one exception handler turns every refusal into one body shape
with a stable code.

``{"error": {"code": "...", "message": "...", "detail": {...}?, "extra": {...}?, "retry_after": N?}}``

- domain errors (``tradeops.core.errors.ApplicationError`` and subclasses): their own ``code``
  and HTTP status (``four_eyes``, ``kill_switch_release_forbidden``, ``rule_change_pending``...);
- Django's ``ValidationError`` from a service or a model's ``clean`` (e.g. rule parameters that do
  not fit their type): 400 ``invalid`` with the fields in ``detail``;
- DRF's own: ``not_authenticated`` and ``authentication_failed`` / ``invalid_token`` (401),
  ``permission_denied`` / ``insufficient_scope`` / ``role_forbidden`` (403), ``not_found``,
  ``method_not_allowed``, ``parse_error``, ``unsupported_media_type``, ``throttled`` (429, with
  ``retry_after`` and the ``Retry-After`` header), ``invalid`` for bad input (fields in
  ``detail``) or a more precise code when every field error agrees (``invalid_cursor``).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tradeops.core.errors import ApplicationError


def _codes(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_codes(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_codes(v) for v in value)) if value else set()
    return {str(value)}


def _code(exc: exceptions.APIException) -> str:
    codes = _codes(exc.get_codes())
    if len(codes) == 1:
        return codes.pop()
    return exc.default_code


def _message(exc: exceptions.APIException) -> str:
    if isinstance(exc.detail, (dict, list)):
        return str(exc.default_detail)
    return str(exc.detail)


def exception_handler(exc, context):
    """Body shape for every error: ``{"error": {"code", "message", ...}}`` with a stable code."""
    if isinstance(exc, ApplicationError):
        body = {"error": {"code": exc.code, "message": exc.message}}
        if exc.extra:
            body["error"]["extra"] = exc.extra
        return Response(body, status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    error = {"code": _code(exc), "message": _message(exc)}
    if isinstance(exc.detail, (dict, list)):
        error["detail"] = response.data
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        error["retry_after"] = int(exc.wait)
    response.data = {"error": error}
    return response


class ErrorBody(serializers.Serializer):
    """The error body every endpoint returns (documented once in the OpenAPI schema)."""

    code = serializers.CharField(help_text="Stable: clients and tests match on it")
    message = serializers.CharField()
    detail = serializers.JSONField(required=False, help_text="Field errors of bad input")
    extra = serializers.JSONField(required=False)
    retry_after = serializers.IntegerField(required=False, help_text="Seconds (throttled requests)")


class ErrorResponse(serializers.Serializer):
    error = ErrorBody()
