"""Every metric the alert rules, the dashboards and docs/observability.md name is one the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tradeops.observability.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[3]
_NAME = re.compile(r"\b((?:tradeops|django)_[a-z0-9_]+)\b")
_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture
def exported(client, db) -> set[str]:
    """Our names, plus django-prometheus's as its registry really exposes them once the web has
    answered a request (its middleware registers the HTTP series when first built)."""
    client.get("/healthz")
    return exported_names()


def exported_names() -> set[str]:
    from prometheus_client import REGISTRY

    django = {s.name for family in REGISTRY.collect() for s in family.samples if s.name.startswith("django_")}
    django |= {family.name + "_total" for family in REGISTRY.collect() if family.name.startswith("django_")}
    return set(METRIC_NAMES) | django


def names_in(expr: str) -> set[str]:
    out = set()
    for name in _NAME.findall(expr):
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in METRIC_NAMES:
                name = name[: -len(suffix)]
        out.add(name)
    return out


def dashboard_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "monitoring/grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                out.append((path.name, panel["title"], target["expr"]))
    return out


def test_every_dashboard_query_names_an_exported_metric(exported):
    queries = dashboard_queries()
    assert {q[0] for q in queries} == {"operations.json", "pipeline.json", "compliance.json", "audit.json"}
    for name, title, expr in queries:
        used = names_in(expr)
        assert used, f"{name} / {title}: the query names no metric: {expr}"
        unknown = used - exported
        assert not unknown, f"{name} / {title}: {sorted(unknown)} not exported by the code"


def test_every_alert_rule_names_an_exported_metric(exported):
    rules = yaml.safe_load((ROOT / "monitoring/prometheus/alerts.yml").read_text())
    alerts = [r for group in rules["groups"] for r in group["rules"]]
    assert len(alerts) >= 12
    for rule in alerts:
        used = names_in(rule["expr"])
        prometheus_own = re.search(r"\bup\{", rule["expr"])  # Prometheus's own series per target
        assert used or prometheus_own, f"{rule['alert']}: names no metric"
        assert not used - exported, f"{rule['alert']}: {sorted(used - exported)} not exported"


def test_the_readme_table_lists_exactly_the_metrics_defined():
    text = (ROOT / "docs/observability.md").read_text()
    table = set(re.findall(r"^\| `(tradeops_[a-z0-9_]+)`", text, flags=re.M))
    assert table == set(METRIC_NAMES)


def test_every_metric_is_prefixed_and_the_dashboards_use_most_of_them():
    assert all(name.startswith("tradeops_") for name in METRIC_NAMES)
    used = set().union(*(names_in(q[2]) for q in dashboard_queries()))
    assert len(set(METRIC_NAMES) - used) <= 3, sorted(set(METRIC_NAMES) - used)
