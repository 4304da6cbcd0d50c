"""Kill switch over the API (RTS 6 Art. 12): engage with a scope and a reason, release by a risk
manager with a reason, list. Views parse, authorise (the matrix: ``kill_switch``), call one
service of ``trading.controls.services`` (the same the admin, the command and the worker use).

Two generations of routes share the services: ``/api/v1/kill-switch/`` (cursor pages, every
switch with ``?engaged=``), and the first routes at ``/api/trading/kill-switch/`` (kept for the
integrations that use them: a plain list of engaged switches), now under the same matrix.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from tradeops.api.inputs import StrictInputSerializer
from tradeops.api.views import ApiDetailView, ApiListView, ApiView
from tradeops.audit.actors import user_actor
from trading.api.filters import KillSwitchFilter
from trading.controls.selectors import kill_switch_visible_get, kill_switches_visible_to
from trading.controls.services import kill_switch_engage, kill_switch_release
from trading.models import KillScope, KillSwitch


class KillSwitchOutput(serializers.ModelSerializer):
    released_by = serializers.CharField(source="released_by.username", allow_null=True)

    class Meta:
        model = KillSwitch
        fields = [
            "id",
            "scope",
            "scope_value",
            "engaged",
            "engaged_at",
            "engaged_by",
            "engage_reason",
            "source",
            "cancelled_orders",
            "released_at",
            "released_by",
            "release_reason",
        ]


class EngageInput(StrictInputSerializer):
    scope = serializers.ChoiceField(choices=KillScope.values)
    scope_value = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, help_text="Account id, symbol, algo id, user id"
    )
    reason = serializers.CharField(max_length=2000)


class EngageOutput(serializers.Serializer):
    switch = KillSwitchOutput()
    cancelled = serializers.ListField(child=serializers.CharField(), help_text="Client order ids cancelled now")
    still_open = serializers.DictField(
        child=serializers.CharField(), help_text="Client order id -> why it is still open (the worker cancels it)"
    )


class ReleaseInput(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000)


def _engage(request) -> Response:
    data = EngageInput(data=request.data)
    data.is_valid(raise_exception=True)
    result = kill_switch_engage(
        scope=data.validated_data["scope"],
        scope_value=data.validated_data["scope_value"],
        reason=data.validated_data["reason"],
        actor=user_actor(request.user),
        source="api",
        user=request.user,
    )
    body = EngageOutput({"switch": result.switch, "cancelled": result.cancelled, "still_open": result.failed}).data
    return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


def _release(request, pk: int) -> Response:
    data = ReleaseInput(data=request.data)
    data.is_valid(raise_exception=True)
    switch = kill_switch_visible_get(user=request.user, pk=pk)
    switch = kill_switch_release(switch=switch, user=request.user, reason=data.validated_data["reason"])
    return Response(KillSwitchOutput(switch).data)


class KillSwitchListEngage(ApiListView):
    """GET: kill switches, newest first (``?engaged=true`` for those in force). POST: engage on a
    scope with a reason; cancels every unexecuted order in scope at once. 201 when engaged now,
    200 when that scope was engaged already (the cancellation runs again)."""

    matrix = {"GET": ("kill_switch", "read"), "POST": ("kill_switch", "engage")}
    serializer_class = KillSwitchOutput
    filterset_class = KillSwitchFilter

    def select(self):
        return kill_switches_visible_to(user=self.request.user)

    @extend_schema(request=EngageInput, responses={201: EngageOutput, 200: EngageOutput})
    def post(self, request):
        return _engage(request)


class KillSwitchDetail(ApiDetailView):
    """One kill switch, engaged or released."""

    matrix = {"GET": ("kill_switch", "read")}
    serializer_class = KillSwitchOutput

    def select_one(self, pk):
        return kill_switch_visible_get(user=self.request.user, pk=pk)


class KillSwitchRelease(ApiView):
    """Release an engaged switch: risk managers only, with a reason."""

    matrix = {"POST": ("kill_switch", "release")}

    @extend_schema(request=ReleaseInput, responses={200: KillSwitchOutput})
    def post(self, request, pk: int):
        return _release(request, pk)


# ---------------------------------------------------------------- first routes (/api/trading/kill-switch/)


class LegacyKillSwitchListEngage(ApiView):
    """GET: engaged switches (a plain list). POST {scope, scope_value, reason}: engage."""

    matrix = {"GET": ("kill_switch", "read"), "POST": ("kill_switch", "engage")}

    @extend_schema(exclude=True)
    def get(self, request):
        switches = kill_switches_visible_to(user=request.user).filter(engaged=True)
        return Response(KillSwitchOutput(switches, many=True).data)

    @extend_schema(exclude=True)
    def post(self, request):
        return _engage(request)


class LegacyKillSwitchRelease(ApiView):
    """POST {reason}: release (risk managers only)."""

    matrix = {"POST": ("kill_switch", "release")}

    @extend_schema(exclude=True)
    def post(self, request, pk: int):
        return _release(request, pk)
