"""System checks: what the screens need before they can be served."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def chart_library_installed(app_configs, **kwargs):
    """The chart library comes from npm (package-lock.json) and is served by the app: without
    ``npm ci`` the charts would answer 404. Collected static files (production) are enough."""
    bundle = settings.NODE_MODULES / "chart.js" / "dist" / "chart.umd.min.js"
    collected = settings.STATIC_ROOT / "vendor" / "chart.js" / "chart.umd.min.js"
    if bundle.exists() or collected.exists():
        return []
    return [
        Error(
            "The chart library is not installed: node_modules/chart.js is missing.",
            hint="Run `npm ci` in the repository (scripts/run.sh and .ci/run do), or `collectstatic` after it.",
            id="tradeops.E001",
        )
    ]
