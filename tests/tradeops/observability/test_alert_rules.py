"""The alert rules parse (promtool check rules) and fire on synthetic series, and only then
(promtool test rules: monitoring/prometheus/alerts_test.yml). promtool comes from Debian's
``prometheus`` package, installed by .ci/run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import service_unavailable

RULES = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus"


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        service_unavailable("needs promtool (apt-get install prometheus; .ci/run does)")
    return path


def test_rules_parse(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


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
