"""The API's half of the authorisation matrix (``tradeops.api.matrix``).

A view declares what each method does: ``matrix = {"GET": ("positions", "read")}``. A request
passes when it is authenticated, its token (if it came with one) carries the row's scope
(else 403 ``insufficient_scope``), and one of its roles is in the row (else 403
``role_forbidden``, or the row's own stable code). A token that passes with a write scope is
recorded in the audit trail before the view calls its service.
"""

from __future__ import annotations

from oauth2_provider.models import AccessToken
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from tradeops.api.matrix import WRITE_SCOPES, roles_of, rule_for
from tradeops.api.services import api_write_scope_use_record


def view_entry(view, method: str) -> tuple[str, str] | None:
    matrix = getattr(view, "matrix", {})
    if method in ("HEAD", "OPTIONS"):
        method = "GET" if "GET" in matrix else next(iter(matrix), method)
    return matrix.get(method)


class MatrixPermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not getattr(request.user, "is_authenticated", False):
            return False  # DRF answers 401 not_authenticated
        entry = view_entry(view, request.method)
        if entry is None:
            return True  # a method the view does not have: 405 follows
        resource, verb = entry
        rule = rule_for(resource, verb)
        token = request.auth if isinstance(request.auth, AccessToken) else None
        if token is not None and str(rule.scope) not in token.scope.split():
            raise PermissionDenied(f"this needs a token with the {rule.scope} scope", code="insufficient_scope")
        if not roles_of(request.user) & rule.roles:
            allowed = ", ".join(sorted(str(r) for r in rule.roles))
            raise PermissionDenied(f"{resource} {verb} is for: {allowed}", code=rule.refusal_code)
        if token is not None and rule.scope in WRITE_SCOPES:
            api_write_scope_use_record(
                client=token.application.api_client,
                scope=str(rule.scope),
                method=request.method,
                path=request.path,
                resource=resource,
                verb=verb,
            )
        return True
