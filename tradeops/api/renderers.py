"""JSON out with orjson (several times faster than the standard library on a page of rows), same
text as DRF's renderer for what the API returns: times already strings (``...Z``), decimals
already strings; UTC datetimes left in a free-form body (the STOR draft) also end in ``Z``."""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()


class OrjsonRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=_fallback.default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
