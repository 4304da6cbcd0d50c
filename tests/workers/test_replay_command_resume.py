"""``manage.py replay --source embedded`` (what ``scripts/cluster.sh replay`` runs) resumes as the
embedded run does: a second replay into the same database sends the bars after the first one's,
never bar 1 again (until 2026-12-06, wip/walk50, it re-sent bars 1-300 to the cluster's stages,
which had handled them, and added nothing); ``--from-start`` is refused on such a database."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

import workers.collector
from tradeops.events import Bar
from trading.marketdata.sources import backtesting_bars
from trading.models import ReplayCheckpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recorded(monkeypatch):
    """The bars each replay handed the bus, one list per run."""
    runs: list[list] = []
    real = workers.collector.embedded_source

    def recording(**kwargs):
        for event in real(**kwargs):
            if isinstance(event.payload, Bar):
                runs[-1].append(event.payload)
            yield event

    monkeypatch.setattr(workers.collector, "embedded_source", recording)
    return runs


def _replay(runs, tmp_path, *args) -> str:
    runs.append([])
    out = io.StringIO()
    call_command(
        "replay", "--source", "embedded", "--bus", "memory", "--quarantine-file", str(tmp_path / "q.jsonl"),
        *args, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def test_a_second_replay_sends_the_bars_after_the_first_ones(recorded, tmp_path):
    bars = list(backtesting_bars("EURUSD"))[:12]
    first = _replay(recorded, tmp_path, "--limit", "5")
    assert first.splitlines()[0].startswith("replay: bars 1 to 5 of 5,000 EURUSD H1 bars")
    assert [b.ts for b in recorded[0]] == [b.ts for b in bars[:5]]
    checkpoint = ReplayCheckpoint.objects.get(symbol="EURUSD", timeframe="H1")
    assert (checkpoint.last_bar_at, checkpoint.bars) == (bars[4].ts, 5)

    second = _replay(recorded, tmp_path, "--limit", "7")
    assert second.splitlines()[0] == (
        f"replay: resuming after the last bar an earlier run replayed ({bars[4].ts:%Y-%m-%d %H:%M} UTC, "
        "from the replay checkpoint): bars 6 to 12 of 5,000 EURUSD H1 bars (2017-04-19 to 2018-02-07)"
    )
    assert [b.ts for b in recorded[1]] == [b.ts for b in bars[5:12]]  # none of the first run's again
    checkpoint.refresh_from_db()
    assert (checkpoint.last_bar_at, checkpoint.bars) == (bars[11].ts, 12)


def test_from_start_is_refused_once_a_replay_wrote_to_the_database(recorded, tmp_path):
    _replay(recorded, tmp_path, "--limit", "3")
    with pytest.raises(CommandError, match="--from-start refused"):
        _replay(recorded, tmp_path, "--limit", "3", "--from-start")
    assert recorded[1] == []  # nothing sent


def test_from_start_on_a_fresh_database_replays_from_bar_1(recorded, tmp_path):
    out = _replay(recorded, tmp_path, "--limit", "2", "--from-start")
    assert out.splitlines()[0].startswith("replay: bars 1 to 2 of 5,000")
    assert len(recorded[0]) == 2


def test_without_limit_it_reads_replay_limit_as_the_embedded_run_does(recorded, tmp_path, monkeypatch):
    """The parity check runs ``manage.py replay`` with ``REPLAY_LIMIT`` in its environment."""
    monkeypatch.setenv("REPLAY_LIMIT", "4")
    out = _replay(recorded, tmp_path)
    assert out.splitlines()[0].startswith("replay: bars 1 to 4 of 5,000")
    assert len(recorded[0]) == 4
