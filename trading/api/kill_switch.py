"""Kill switch over the API (RTS 6 Art. 12): engage, release, list. Views parse, authorise, call one service."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tradeops.core.errors import PermissionDenied
from tradeops.core.roles import Role, user_has_role
from trading.controls.selectors import kill_switch_get, kill_switch_list
from trading.controls.services import kill_switch_engage, kill_switch_release
from trading.models import KillScope

ENGAGE_ROLES = (Role.TRADER, Role.RISK_MANAGER, Role.COMPLIANCE_OFFICER, Role.ADMIN)


class KillSwitchOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    scope = serializers.CharField()
    scope_value = serializers.CharField()
    engaged = serializers.BooleanField()
    engaged_at = serializers.DateTimeField()
    engaged_by = serializers.CharField()
    engage_reason = serializers.CharField()
    source = serializers.CharField()
    cancelled_orders = serializers.ListField(child=serializers.CharField())
    released_at = serializers.DateTimeField()
    release_reason = serializers.CharField()


class KillSwitchListEngage(APIView):
    """GET: engaged switches. POST {scope, scope_value, reason}: engage (traders, risk, compliance,
    admins; the whole firm: risk managers only, as the service rules)."""

    class InputSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(choices=KillScope.values)
        scope_value = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
        reason = serializers.CharField(max_length=2000)

    def get(self, request):
        return Response(KillSwitchOutput(kill_switch_list(), many=True).data)

    def post(self, request):
        if not any(user_has_role(request.user, role) for role in ENGAGE_ROLES) and not request.user.is_superuser:
            raise PermissionDenied("engaging the kill switch needs a trading, risk or compliance role")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = kill_switch_engage(
            scope=data.validated_data["scope"],
            scope_value=data.validated_data["scope_value"],
            reason=data.validated_data["reason"],
            actor=f"user:{request.user.get_username()}",
            source="api",
            user=request.user,
        )
        body = {
            "switch": KillSwitchOutput(result.switch).data,
            "cancelled": result.cancelled,
            "still_open": result.failed,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class KillSwitchRelease(APIView):
    """POST {reason}: release (risk managers only; the service enforces it)."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField()

    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        switch = kill_switch_release(
            switch=kill_switch_get(pk=pk), user=request.user, reason=data.validated_data["reason"]
        )
        return Response(KillSwitchOutput(switch).data)
