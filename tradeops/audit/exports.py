"""Where audit exports (digests, archives) are written: ``AUDIT_EXPORT_DIR`` or var/audit."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def export_dir(sub: str, directory: str | Path | None = None) -> Path:
    configured = getattr(settings, "AUDIT_EXPORT_DIR", None) or settings.VAR_DIR / "audit"
    base = Path(directory) if directory else Path(configured)
    path = base if directory else base / sub
    path.mkdir(parents=True, exist_ok=True)
    return path
