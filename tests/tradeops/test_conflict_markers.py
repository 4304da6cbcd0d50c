"""No merge conflict left in the tree: a merge committed docs/api.md with both sides of a conflict
and its markers (2026-12-06, wip/audit42 over wip/desk42), so the API reference listed the rules
and audit endpoints twice, the audit proof's row in two contradicting versions."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("docs", "compliance", "tradeops", "trading", "workers", "mlmodels", "templates", "static/js", "scripts")
SUFFIXES = {".md", ".py", ".html", ".js", ".sh", ".toml", ".yml", ".yaml", ".txt", ".css"}
MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.M)


def test_no_file_holds_a_merge_conflict_marker():
    found = []
    for top in (*SCANNED, "README.md"):
        base = ROOT / top
        paths = [base] if base.is_file() else base.rglob("*") if base.is_dir() else []
        for path in paths:
            if path.suffix not in SUFFIXES or not path.is_file() or "node_modules" in path.parts:
                continue
            text = path.read_text(errors="replace")
            for match in MARKER.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert not found, "merge conflict markers:\n" + "\n".join(found)
