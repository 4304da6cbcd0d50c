"""The API's one body format: JSON, refused with a clear 400 when it carries a NUL character
(``\\u0000``) anywhere, key or value: PostgreSQL stores none in text or jsonb, so it would end
in a 500 deep in a write (the request guard ``tradeops.core.middleware.refuse_nul`` covers query
strings and forms, not JSON bodies)."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class JsonBodyParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_nul(data):
            raise ParseError("the body carries a NUL character (\\u0000), which no field accepts", code="nul_character")
        return data
