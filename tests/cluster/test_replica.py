"""The read replica for real (issue 18 item 3): on the cluster's PostgreSQL primary and its
streaming hot standby, a read-only selector reads the standby (a server in recovery, the same
database), sees what the primary committed once replayed, and the standby refuses writes. The
router's rules in detail (transactions, primary_reads, writes) are tests/tradeops/test_db_router.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cluster.conftest import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]


def test_read_only_selectors_read_the_streaming_replica(cluster_run):
    done = subprocess.run(
        [sys.executable, "-m", "tests.cluster.replica_probe"],
        cwd=ROOT,
        env=cluster_run.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    primary, replica = result["primary"], result["replica"]
    assert primary["in_recovery"] is False and replica["in_recovery"] is True
    assert replica["database"] == primary["database"] and replica["port"] != primary["port"]
    assert result["rows"] == [result["created"]] and result["rows_from"] == ["replica"]
    assert result["replica_queries"] == 1 and result["primary_queries"] == 0
    assert "read-only transaction" in result["replica_write"]
