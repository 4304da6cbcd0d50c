"""The story of an order (``/orders/<client_order_id>/``): reachable from the console's orders
and fills, the case view, and the API's order detail. Read-only, for every role that uses the
console; the audit records' links open for those who read the audit trail."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from compliance.story import order_story
from tradeops.core.errors import NotFound
from tradeops.core.roles import can_read_audit_trail
from trading.console.selectors import console_visible


@login_required
@require_GET
def order_story_view(request: HttpRequest, client_order_id: str) -> HttpResponse:
    if not console_visible(request.user):
        raise PermissionDenied("the story of an order is for the trading, risk, compliance and audit roles")
    try:
        story = order_story(client_order_id=client_order_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    features = sorted((story.features or {}).get("values", {}).items())
    return render(
        request,
        "compliance/story.html",
        {
            "story": story,
            "o": story.order,
            "features": features,
            "signal_json": json.dumps(story.signal, indent=2, sort_keys=True) if story.signal else "",
            "reads_audit": can_read_audit_trail(request.user),
        },
    )
