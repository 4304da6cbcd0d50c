"""docs/deployment.md lists the selectors that read the replica: every ``@read_only`` function
(tradeops/core/db_router.py). On 2026-12-06 the home page's T+1 selector read the replica and the
list did not say so: an operator sizing the replica's lag against the screens had one screen
fewer to think of."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DECORATED = re.compile(r"^@read_only\s*\n(?:@[^\n]*\n)*(?:async\s+)?def\s+(\w+)", re.M)


def test_every_read_only_selector_is_listed_on_the_deployment_page():
    names = {
        name
        for app in ("tradeops", "trading", "compliance", "mlmodels", "workers")
        for path in (ROOT / app).rglob("*.py")
        for name in DECORATED.findall(path.read_text())
    }
    assert "position_list" in names  # the pattern finds them
    page = (ROOT / "docs" / "deployment.md").read_text()
    assert not sorted(n for n in names if f"`{n}`" not in page and f".{n}`" not in page), (
        "docs/deployment.md, 'Read replica', does not list these @read_only selectors"
    )
