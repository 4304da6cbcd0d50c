"""The alert rules parse (promtool check rules) and fire on synthetic series, and only then
(promtool test rules: monitoring/prometheus/alerts_test.yml); Prometheus sends what fires to
Alertmanager, whose configuration parses and routes by severity (amtool). promtool and amtool come
from Debian's ``prometheus`` and ``prometheus-alertmanager`` packages, installed by .ci/run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "monitoring" / "prometheus"
ALERTMANAGER = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        service_unavailable("needs promtool (apt-get install prometheus; .ci/run does)")
    return path


@pytest.fixture
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        service_unavailable("needs amtool (apt-get install prometheus-alertmanager; .ci/run does)")
    return path


def test_fired_alerts_reach_alertmanager_which_routes_them_by_severity(amtool):
    prometheus = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())
    (manager,) = prometheus["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
    check = subprocess.run([amtool, "check-config", str(ALERTMANAGER)], capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    severities = {r["labels"]["severity"] for group in rules["groups"] for r in group["rules"]}
    assert severities == {"warning", "critical"}
    expected = {"critical": "pager,operations", "warning": "operations"}
    for severity in severities:
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", f"severity={severity}"],
            capture_output=True,
            text=True,
        )
        assert routed.stdout.strip() == expected[severity], routed.stdout + routed.stderr


def test_the_prometheus_configuration_parses(promtool):
    """``docker/prometheus.yml`` names the container's paths (the rules at /etc/prometheus/alerts.yml,
    the token file), so a plain ``promtool check config`` on a checkout fails on those files
    whatever the configuration says; ``--syntax-only`` checks everything else, as
    docs/observability.md tells operators (walk45)."""
    config = str(ROOT / "docker" / "prometheus.yml")
    result = subprocess.run([promtool, "check", "config", "--syntax-only", config], capture_output=True, text=True)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_rules_parse(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 18 rules found" in result.stdout


def test_rules_fire_on_synthetic_series(promtool):
    result = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_expectation_fails(promtool, tmp_path):
    """The unit tests can fail: a rule that would not fire makes promtool say so."""
    (tmp_path / "alerts.yml").write_text((RULES / "alerts.yml").read_text())
    (tmp_path / "t.yml").write_text(
        """rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'tradeops_breaker_state{breaker="trading"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: TradeopsBreakerOpen
        exp_alerts:
          - exp_labels: {severity: critical, breaker: trading}
"""
    )
    result = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def scraped_targets() -> list[tuple[str, str]]:
    """(job, instance) of every process docker/prometheus.yml scrapes."""
    config = yaml.safe_load((RULES.parents[1] / "docker" / "prometheus.yml").read_text())
    return [
        (job["job_name"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]


def test_a_down_alert_for_each_scraped_process(promtool, tmp_path):
    """``TradeopsTargetDown`` fires for every process Prometheus scrapes, named by its host, once
    its ``up`` has been 0 for a minute; and only for that one: each process goes down in turn at
    its own minute while the others answer."""
    targets = scraped_targets()
    assert len(targets) >= 12 and ("tradeops-processes", "celery-beat:9306") in targets
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "TradeopsTargetDown"]
    description = rule["annotations"]["description"]
    series, checks = [], []
    for i, (job, instance) in enumerate(targets):
        down_at = 10 * (i + 1)  # minutes; up before, down for 5 minutes, up again after
        values = f"1x{down_at - 1} 0x4 1x{10 * len(targets) + 10 - down_at - 5}"
        series.append({"series": f'up{{job="{job}",instance="{instance}"}}', "values": values})
        process = instance.split(":")[0]
        checks.append({"eval_time": f"{down_at}m", "alertname": "TradeopsTargetDown", "exp_alerts": []})
        checks.append(
            {
                "eval_time": f"{down_at + 2}m",
                "alertname": "TradeopsTargetDown",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "critical", "job": job, "instance": instance, "process": process},
                        "exp_annotations": {
                            "summary": f"{process} ({instance}, job {job}) does not answer its metrics scrape",
                            "description": description,
                        },
                    }
                ],
            }
        )
    checks.append({"eval_time": "5m", "alertname": "TradeopsTargetDown", "exp_alerts": []})
    (tmp_path / "alerts.yml").write_text((RULES / "alerts.yml").read_text())
    test = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    (tmp_path / "t.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
