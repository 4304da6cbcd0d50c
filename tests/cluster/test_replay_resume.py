"""A second ``cluster.sh replay`` carries market time forward (since 2026-12-06, wip/walk50): the
replay resumes after the last bar the first got to, so the stages see each bar once (the replay's
event ids derive from the bars: a re-sent bar is a market-data event written twice on the topic,
as every second replay did before), and the run reconciles as one replay of all the bars does."""

from __future__ import annotations

import pytest

from tests.cluster.reconcile import BARS, assert_controls, assert_reconciled, published_count

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.kafka, pytest.mark.postgres]


def test_a_second_replay_resumes_after_the_first_and_reconciles(cluster_run):
    cluster_run.start()
    half = BARS // 2
    first = cluster_run.replay(half)
    second = cluster_run.replay(half)
    assert f"replay: bars 1 to {half} of 5,000" in first.stdout, first.stdout[:500]
    assert "replay: resuming after the last bar an earlier run replayed" in second.stdout, second.stdout[:500]
    assert f"bars {half + 1} to {2 * half} of 5,000" in second.stdout, second.stdout[:500]
    published = published_count(first) + published_count(second)
    probe = cluster_run.settle()
    assert_reconciled(cluster_run, probe, published=published)
    assert_controls(probe)
