"""Who may read the metrics (docs/security.md): the monitoring network or a bearer token.

``metrics_access_allowed`` is plain (an address and an ``Authorization`` header in, a yes or no
out), so every metrics endpoint uses the same rule: the Django view below and, later, a metrics
port of a long-running process (issue 17). Regulation: none; metrics name accounts and symbols,
so they are not for anyone who can reach the web tier.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden


def metrics_access_allowed(
    *, remote_addr: str, authorization: str = "", token: str = "", networks: Iterable[str] = ()
) -> bool:
    """True for ``Authorization: Bearer <token>`` with the configured token (when one is set), or
    for a client address inside one of ``networks`` (CIDR). Nothing else."""
    presented = authorization[len("Bearer ") :].strip() if authorization.startswith("Bearer ") else ""
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


def metrics_request_allowed(request: HttpRequest) -> bool:
    return metrics_access_allowed(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
        token=getattr(settings, "METRICS_TOKEN", ""),
        networks=getattr(settings, "METRICS_ALLOWED_NETWORKS", ()),
    )


def metrics_guard(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a metrics view: 403 unless ``metrics_request_allowed``."""

    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not metrics_request_allowed(request):
            return HttpResponseForbidden(
                "metrics are served to the monitoring network or with the metrics token only",
                content_type="text/plain; charset=utf-8",
            )
        return view(request, *args, **kwargs)

    return guarded


def metrics_view(request: HttpRequest) -> HttpResponse:
    """django-prometheus's exposition, behind the guard."""
    from django_prometheus.exports import ExportToDjangoView

    return ExportToDjangoView(request)


metrics = metrics_guard(metrics_view)
