"""The embedded run's second run carries market time forward: it resumes after the last bar the
first replayed (``trading.ReplayCheckpoint``), says so when every bar was replayed and still
serves the dashboard, and refuses ``--from-start`` on a database that holds later market time."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.workers.test_replay import _models_activate
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import Conflict
from tradeops.events import Bar, Tick
from trading.marketdata.sources import backtesting_bars
from trading.models import ReplayCheckpoint
from trading.services import replay_checkpoint_save
from workers.collector import embedded_source
from workers.replay_checkpoint import ReplayCheckpointer, replay_plan

REPLAYED: list = []  # the envelopes the recording source handed the pipeline, per run
SOURCE = "tests.workers.test_replay_resume.recording_source"


def recording_source(*, after=None):
    """``embedded_source`` (which the command resumes through ``after``), recording what it hands out."""
    for event in embedded_source(after=after):
        REPLAYED.append(event)
        yield event


def _run(*args) -> str:
    REPLAYED.clear()
    out = io.StringIO()
    call_command("run_embedded", "--no-serve", "--source", SOURCE, *args, stdout=out)
    return out.getvalue()


def _market_times(events) -> list[datetime]:
    return [e.payload.ts for e in events if type(e.payload) in (Bar, Tick)]


def _replayed(count: int | None = None) -> None:
    """The checkpoint an earlier run leaves after replaying the first ``count`` bars (all: None)."""
    bars = list(backtesting_bars("EURUSD"))[:count]
    replay_checkpoint_save(
        symbol="EURUSD",
        timeframe="H1",
        source="backtesting EURUSD",
        first_bar_at=bars[0].ts,
        last_bar_at=bars[-1].ts,
        bars=len(bars),
    )


@pytest.mark.parametrize("checkpoint_left", ["saved", "behind", "none"])
@pytest.mark.django_db(transaction=True)
def test_a_second_run_replays_only_the_bars_after_the_first_runs(
    trained, settings, tmp_path, monkeypatch, instrument, account, checkpoint_left
):
    """Resumed from the replay checkpoint; from the audit trail's newest feature vector when the
    checkpoint is behind it (a run killed between two saves) or absent (a database written before
    checkpoints)."""
    _models_activate(trained, settings, tmp_path)
    settings.EXECUTION_PAPER_JOURNAL_DIR = str(tmp_path / "paper-journal")  # the paper broker's book survives too
    monkeypatch.setenv("REPLAY_LIMIT", "80")  # bars of each run
    monkeypatch.setenv("REPLAY_QUARANTINE", str(tmp_path / "quarantine.jsonl"))
    shipped = list(backtesting_bars("EURUSD"))[:160]

    out = _run()
    assert "replay: bars 1 to 80 of 5,000 EURUSD H1 bars" in out
    first = list(REPLAYED)
    assert [e.payload.ts for e in first if type(e.payload) is Bar] == [b.ts for b in shipped[:80]]
    first_recorded = AuditRecord.objects.filter(occurred_at__year__lt=2019)
    first_newest = max(first_recorded.values_list("occurred_at", flat=True))
    sequence = max(AuditRecord.objects.values_list("sequence", flat=True))

    found_in = "the replay checkpoint"
    if checkpoint_left == "behind":
        ReplayCheckpoint.objects.update(last_bar_at=shipped[59].ts, bars=60)
        found_in = "the audit trail's newest feature vector, later than the replay checkpoint"
    elif checkpoint_left == "none":
        ReplayCheckpoint.objects.all().delete()
        found_in = "the audit trail's newest feature vector, no replay checkpoint yet"
    out = _run()
    assert (
        f"resuming after the last bar an earlier run replayed ({shipped[79].ts:%Y-%m-%d %H:%M} UTC, from {found_in})"
        in out
    )
    assert "bars 81 to 160 of 5,000" in out
    second = list(REPLAYED)
    assert [e.payload.ts for e in second if type(e.payload) is Bar] == [b.ts for b in shipped[80:160]]
    assert min(_market_times(second)) > max(_market_times(first))  # market time only moves forward
    recorded = AuditRecord.objects.filter(sequence__gt=sequence, occurred_at__year__lt=2019)
    assert recorded.filter(action="feature.vector").count() == 80  # warmed: a vector from its first bar
    assert min(recorded.values_list("occurred_at", flat=True)) >= first_newest
    checkpoint = ReplayCheckpoint.objects.get()
    assert (checkpoint.bars, checkpoint.first_bar_at, checkpoint.last_bar_at) == (160, shipped[0].ts, shipped[159].ts)


@pytest.mark.django_db(transaction=True)
def test_a_run_after_every_bar_was_replayed_says_so_and_replays_nothing():
    _replayed()
    out = _run()
    assert out.strip() == (
        "replay complete: all 5,000 EURUSD H1 bars (2017-04-19 to 2018-02-07) were replayed by an earlier run; "
        "`rm -rf var/` (the SQLite file and the paper broker's journal, var/paper-journal/) for a fresh replay"
    )
    assert REPLAYED == []


@pytest.mark.django_db(transaction=True)
def test_a_served_run_after_every_bar_was_replayed_serves_the_dashboard_without_a_pipeline(monkeypatch):
    """The serve loop is Daphne's; a stand-in server says what the command asked of it."""
    import threading

    import daphne.server

    _replayed()
    served = []

    class Server:
        def __init__(self, *, application, endpoints, ready_callable, signal_handlers):
            self.endpoints, self.ready = endpoints, ready_callable

        def run(self):
            before = {t.name for t in threading.enumerate()}
            self.ready()
            served.append((self.endpoints, {t.name for t in threading.enumerate()} - before))

    monkeypatch.setattr(daphne.server, "Server", Server)
    out = io.StringIO()
    call_command("run_embedded", "--port", "8346", "--source", SOURCE, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("replay complete: all 5,000 EURUSD H1 bars") and "serving the dashboard" in lines[0]
    assert lines[1].startswith("serving http://127.0.0.1:8346/") and "replaying" not in lines[1]
    assert served == [(["tcp:port=8346:interface=127.0.0.1"], set())]  # served, no pipeline thread started
    assert REPLAYED == []


@pytest.mark.django_db(transaction=True)
def test_from_start_on_a_database_holding_later_market_time_is_refused(monkeypatch):
    _replayed(100)
    bars = list(backtesting_bars("EURUSD"))
    for args, env in ((("--from-start",), None), ((), "1")):
        if env:
            monkeypatch.setenv("REPLAY_FROM_START", env)
        with pytest.raises(CommandError) as refused:
            _run(*args)
        message = str(refused.value)
        assert message.startswith("--from-start refused: the database already holds EURUSD H1 market time up to ")
        assert f"{bars[99].ts + timedelta(hours=1):%Y-%m-%d %H:%M} UTC" in message
        assert "`rm -rf var/`" in message and "run without --from-start" in message
        assert REPLAYED == []
    assert ReplayCheckpoint.objects.get().bars == 100  # untouched


@pytest.mark.django_db
def test_from_start_on_a_fresh_database_replays_from_bar_1():
    plan = replay_plan(from_start=True, limit=10)
    assert (plan.after, plan.done, plan.todo) == (None, 0, 10)


@pytest.mark.django_db
def test_the_checkpoint_trails_the_run_and_never_moves_back():
    """Saved only once a bar is ``lag`` seconds old (its consequences and their audit records are
    in), at most every ``every`` seconds; the last bar on the way out, the one before it after a
    failure; a save behind the stored bar is refused."""
    from tradeops.events import make_event

    bars = list(backtesting_bars("EURUSD"))[:6]
    now = [0.0]
    checkpointer = ReplayCheckpointer(replay_plan(limit=6), lag=2.0, every=5.0, clock=lambda: now[0])
    for n, bar in enumerate(bars[:5]):
        now[0] = 3.0 * n  # a bar every 3 s
        checkpointer.on_event(make_event(bar, source="test", key="EURUSD"))
    # at 6 s the bar of 3 s is settled and 6 s passed since the start: saved; at 12 s the bar of 9 s
    assert ReplayCheckpoint.objects.get().last_bar_at == bars[3].ts
    checkpointer.finish(failed=True)
    assert ReplayCheckpoint.objects.get().last_bar_at == bars[3].ts  # the last bar's handling may be cut short
    checkpointer.finish()
    assert ReplayCheckpoint.objects.get().last_bar_at == bars[4].ts
    assert ReplayCheckpoint.objects.get().bars == 5
    with pytest.raises(Conflict, match="would move market time back"):
        replay_checkpoint_save(
            symbol="EURUSD", timeframe="H1", source="x", first_bar_at=bars[0].ts, last_bar_at=bars[1].ts, bars=2
        )


SHARING_SOURCE = "tests.workers.test_replay_resume.sharing_source"


def sharing_source(*, after=None, dataset=None):
    """``embedded_source`` taking the plan's bars as the default source does, recording what it hands out."""
    for event in embedded_source(after=after, dataset=dataset):
        REPLAYED.append(event)
        yield event


@pytest.mark.django_db(transaction=True)
def test_a_resumed_run_reads_the_dataset_once_and_replays_the_same_bars(
    trained, settings, tmp_path, monkeypatch, instrument, account
):
    """The replay plan reads the bars; the features' warm-up and the source replay the plan's (until
    2026-12-06 a fresh run parsed the file twice before its first event, a resumed run three times).
    The same bars as a source that reads the file itself."""
    import trading.marketdata.sources as sources

    _models_activate(trained, settings, tmp_path)
    settings.EXECUTION_PAPER_JOURNAL_DIR = str(tmp_path / "paper-journal")
    monkeypatch.setenv("REPLAY_LIMIT", "30")
    monkeypatch.setenv("REPLAY_QUARANTINE", str(tmp_path / "quarantine.jsonl"))
    reads = []
    read_ohlc_csv = sources.read_ohlc_csv
    monkeypatch.setattr(sources, "read_ohlc_csv", lambda *a, **k: reads.append(1) or read_ohlc_csv(*a, **k))
    shipped = list(backtesting_bars("EURUSD"))[:60]
    reads.clear()

    REPLAYED.clear()
    call_command("run_embedded", "--no-serve", "--source", SHARING_SOURCE, stdout=io.StringIO())
    assert len(reads) == 1  # a fresh run: the plan's read, shared with the source
    assert [e.payload.ts for e in REPLAYED if type(e.payload) is Bar] == [b.ts for b in shipped[:30]]

    reads.clear()
    REPLAYED.clear()
    out = io.StringIO()
    call_command("run_embedded", "--no-serve", "--source", SHARING_SOURCE, stdout=out)
    assert "bars 31 to 60 of 5,000" in out.getvalue()
    assert len(reads) == 1  # resumed: the plan's read, shared with the features' warm-up and the source
    shared = list(REPLAYED)
    assert [e.payload.ts for e in shared if type(e.payload) is Bar] == [b.ts for b in shipped[30:60]]
    assert [e.event_id for e in shared] == [e.event_id for e in embedded_source(after=shipped[29].ts, limit=30)]


def test_the_rows_the_plans_read_set_aside_go_to_the_sources_quarantine(tmp_path):
    """Reading once loses nothing: a row the dataset's reader quarantined is in the replaying
    source's quarantine file, as when the source read the file itself."""
    from trading.marketdata.quarantine import QuarantinedRow
    from trading.marketdata.sources import DatasetRead, backtesting_bars_read

    read = backtesting_bars_read("EURUSD")
    assert len(read.bars) == 5000 and read.set_aside == ()  # the shipped file is clean
    row = QuarantinedRow(source="EURUSD.csv", line=7, reason="non_positive_price: low -1 must be positive", raw="x")
    dataset = DatasetRead(dataset="EURUSD", bars=read.bars, set_aside=(row,))
    path = tmp_path / "q.jsonl"
    events = list(embedded_source(limit=2, dataset=dataset, quarantine_file=str(path)))
    assert [e.payload.ts for e in events if type(e.payload) is Bar] == [b.ts for b in read.bars[:2]]
    assert '"line": 7' in path.read_text() and "non_positive_price" in path.read_text()
    with pytest.raises(ValueError, match="replays EURUSD, not the GOOG bars"):
        list(embedded_source(limit=1, dataset=DatasetRead(dataset="GOOG", bars=())))
