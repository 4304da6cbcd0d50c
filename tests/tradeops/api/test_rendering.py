"""The fast list rendering (tradeops/api/serializers.py, renderers.py) gives exactly DRF's output,
on every list endpoint, with every kind of row the fixtures make (nulls, decimals, times, JSON)."""

from __future__ import annotations

import json

import pytest
from django.urls import resolve
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory, force_authenticate

from tests.tradeops.api.endpoints import ENDPOINTS, Ctx
from tradeops.api.matrix import rule_for
from tradeops.api.renderers import OrjsonRenderer
from tradeops.api.serializers import FastListSerializer
from tradeops.api.views import ApiListView

LISTS = [
    e for e in ENDPOINTS if e.method == "GET" and issubclass(resolve(e.example_path()).func.view_class, ApiListView)
]


@pytest.fixture
def ctx(book, person, tmp_path, settings):
    settings.AUDIT_EXPORT_DIR = str(tmp_path)
    context = Ctx(book=book, person=person, tmp_path=tmp_path)
    for make in (
        context.limit,
        context.proposal,
        context.rebase,
        context.switch,
        context.case_pending_close,
        context.rule,
    ):
        make()
    context.digest_day()
    run = context.transaction_report()
    assert run.record_count == 2, run.errors
    book["transaction_report"] = run.reference
    from compliance.services import pretrade_decision_record
    from tests.tradeops.samples import sample_event
    from tradeops.events import RiskDecision

    assert pretrade_decision_record(event=sample_event(RiskDecision)) is not None
    return context


@pytest.mark.parametrize("endpoint", LISTS, ids=lambda e: e.label)
def test_fast_rendering_equals_drf(endpoint, ctx, person):
    path, _ = endpoint.setup(ctx)
    if endpoint.route == "reports/<str:reference>/records/":  # the transaction report's, not a summary's
        path = f"/api/v1/reports/{ctx.book['transaction_report']}/records/"
    match = resolve(path.split("?")[0])
    view_class = match.func.view_class
    role = sorted(rule_for(*endpoint.matrix).roles)[0]
    request = APIRequestFactory().get(path)
    force_authenticate(request, user=person(role))
    view = view_class(request=view_class().initialize_request(request), kwargs=match.kwargs, format_kwarg=None)
    assert view.request.user.is_authenticated
    rows = list(view.get_queryset())
    assert rows, f"{endpoint.label}: the fixtures should give it rows to render"
    serializer_class = view.get_serializer_class()
    context = view.get_serializer_context()
    expected = serializer_class(rows, many=True, context=context).data
    fast = FastListSerializer(rows, child=serializer_class(context=context), context=context).data
    assert json.loads(OrjsonRenderer().render(fast)) == json.loads(JSONRenderer().render(expected))
