"""DRF wiring shared by every app: one exception handler turns domain errors into responses."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tradeops.core.errors import ApplicationError


def exception_handler(exc, context):
    """Body shape for every error: ``{"error": {"code", "message", ...}}`` with a stable code."""
    if isinstance(exc, ApplicationError):
        body = {"error": {"code": exc.code, "message": exc.message}}
        if exc.extra:
            body["error"]["extra"] = exc.extra
        return Response(body, status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = {
        "error": {"code": getattr(exc, "default_code", "error"), "message": str(exc), "detail": response.data}
    }
    return response
