"""OpenAPI 3 (drf-spectacular): each operation documents the scope it needs, the roles that may
call it (from the matrix) and the error shapes it can return."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from tradeops.api.matrix import SCOPE_DESCRIPTIONS, rule_for
from tradeops.api.permissions import view_entry
from tradeops.core.api import ErrorResponse

ERRORS = {
    "400": "Bad input: `invalid` (fields in `detail`), `invalid_cursor`, or a domain code",
    "401": "No credentials (`not_authenticated`) or a bad, expired or revoked token (`invalid_token`)",
    "403": "Token without the scope (`insufficient_scope`), role outside the matrix (`role_forbidden`), "
    "or a domain refusal (`four_eyes`, ...)",
    "404": "No such object (`not_found` or a precise code)",
    "409": "Conflicts with the object's state (`rule_change_pending`, ...)",
    "429": "Throttled (`throttled`); see the `Retry-After` header",
}


NOT_MODIFIED = (
    "Not modified: `If-None-Match` names the page's current `ETag` (no body; counted against the "
    "throttle like any request)"
)
_VALIDATOR_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "A digest of the page's bytes"},
    "Cache-Control": {"schema": {"type": "string"}, "description": "`private, no-cache`"},
}


class ApiAutoSchema(AutoSchema):
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        from tradeops.api.inputs import StrictInputSerializer

        if direction == "request" and isinstance(serializer, StrictInputSerializer):
            schema["additionalProperties"] = False  # an unknown field is a 400 (tradeops.api.inputs)
        return schema

    def _rule(self):
        entry = view_entry(self.view, self.method)
        return (entry, rule_for(*entry)) if entry else (None, None)

    def get_description(self) -> str:
        description = super().get_description() or ""
        entry, rule = self._rule()
        if rule is None:
            return description
        roles = ", ".join(sorted(str(r) for r in rule.roles))
        note = f" ({rule.note})" if rule.note else ""
        return f"{description}\n\n**Scope** `{rule.scope}` · **Roles** {roles}{note}".strip()

    def get_extensions(self):
        extensions = dict(super().get_extensions() or {})
        entry, rule = self._rule()
        if rule is not None:
            extensions["x-required-scope"] = str(rule.scope)
            extensions["x-roles"] = sorted(str(r) for r in rule.roles)
        return extensions

    def get_serializer_name(self, serializer, direction) -> str:
        # Views nest their own ``InputSerializer`` (STYLE.md habit 3): name it after the view.
        qualname = type(serializer).__qualname__
        if qualname.endswith(".InputSerializer"):
            return qualname.removesuffix(".InputSerializer") + "Input"
        return super().get_serializer_name(serializer, direction)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        entry, _ = self._rule()
        if entry is None:
            return responses
        codes = ["400", "401", "403", "429"]
        if "{" in self.path:
            codes.append("404")
        if self.method != "GET":
            codes.append("409")
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorResponse, code, direction=direction)
                response["description"] = ERRORS[code]
                responses[code] = response
        if self._revalidated() and "200" in responses:
            responses["200"].setdefault("headers", {}).update(_VALIDATOR_HEADERS)
            responses["304"] = {"description": NOT_MODIFIED, "headers": dict(_VALIDATOR_HEADERS)}
        return responses

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._revalidated():
            parameters.append(
                OpenApiParameter(
                    "If-None-Match",
                    str,
                    location=OpenApiParameter.HEADER,
                    required=False,
                    description="The `ETag` of a page you hold: 304 without a body while it is current",
                )
            )
        return parameters

    def _revalidated(self) -> bool:
        """A list whose pages carry ``ETag`` and answer 304 (``tradeops.api.views.page_validated``)."""
        return self.method == "GET" and getattr(self.view, "cache_pages", False) and self._is_list_view()


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tradeops.api.authentication.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_requirement(self, auto_schema):
        entry = view_entry(auto_schema.view, auto_schema.method)
        return {self.name: [str(rule_for(*entry).scope)]} if entry else {self.name: []}

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "Client credentials of an API client (`manage.py api_client create`)",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/o/token/",
                    "scopes": {str(s): text for s, text in SCOPE_DESCRIPTIONS.items()},
                }
            },
        }
