"""Where audit exports (digests, archives) are written: ``AUDIT_EXPORT_DIR`` or var/audit."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def export_dir(sub: str, directory: str | Path | None = None) -> Path:
    base = Path(directory) if directory else Path(getattr(settings, "AUDIT_EXPORT_DIR", settings.VAR_DIR / "audit"))
    path = base if directory else base / sub
    path.mkdir(parents=True, exist_ok=True)
    return path
