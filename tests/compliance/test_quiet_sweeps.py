"""Expiry sweeps skipped while no window is open (``SurveillanceEngine.process``): a live feed
spends most of its ticks on a quiet book, and a sweep of empty windows changes nothing but when
the detectors last swept. Skipping them must change no alert and no saved state."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest

from compliance.scenarios.generator import ScenarioConfig, generate
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump, state_load

QUIET_H = 10  # hours of ticks only, every 15 minutes, between the book's stretches


def _text(t: datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _shifted(row: dict, hours: float) -> dict:
    return {**row, "ts": _text(datetime.fromisoformat(row["ts"].replace("Z", "+00:00")) + timedelta(hours=hours))}


@pytest.fixture(scope="module")
def sparse_book():
    """A development book cut in three, with ten hours of plain ticks between the parts."""
    rows, _episodes = generate(ScenarioConfig(seed=104, hours=0.5))
    third = len(rows) // 3
    out: list[dict] = []
    for part in range(3):
        shift = part * QUIET_H
        chunk = [_shifted(r, shift) for r in rows[part * third : (part + 1) * third if part < 2 else None]]
        out += chunk
        if part < 2:
            last = datetime.fromisoformat(chunk[-1]["ts"].replace("Z", "+00:00"))
            out += [
                {
                    "type": "quote",
                    "ts": _text(last + timedelta(minutes=15 * (i + 1))),
                    "symbol": "EURUSD",
                    "bid": "1.10000",
                    "ask": "1.10010",
                }
                for i in range(QUIET_H * 4 - 2)
            ]
    return [record_decoder.decode(orjson.dumps(r)) for r in out]


def _never_quiet(engine: SurveillanceEngine) -> SurveillanceEngine:
    engine._windows_checks = [lambda: False]  # every sweep runs, as before the skip
    return engine


@pytest.mark.parametrize("episodes", ["close", "updates"])
def test_skipping_sweeps_of_empty_windows_changes_no_alert_and_no_saved_state(sparse_book, episodes):
    skipping = SurveillanceEngine(episodes=episodes)
    sweeping = _never_quiet(SurveillanceEngine(episodes=episodes))
    skipped = 0
    for i, rec in enumerate(sparse_book):
        waking = skipping._skipped_sweep_t is not None and type(rec).__name__ != "Quote"
        skipping.process(rec)
        sweeping.process(rec)
        assert [a.as_dict() for a in skipping.take_alerts()] == [a.as_dict() for a in sweeping.take_alerts()]
        if waking:  # the first order after a quiet stretch: the detectors as if every sweep had run
            assert state_dump(skipping) == state_dump(sweeping)
        elif skipping._skipped_sweep_t is not None:  # a sweep skipped: saved now, the windows must match
            skipped += 1
            if skipped % 7 == 0:  # (saving runs the skipped sweep: most are left to the next order)
                assert state_dump(skipping) == state_dump(sweeping)
        elif i % 2003 == 0:
            assert state_dump(skipping) == state_dump(sweeping)
    assert skipped > QUIET_H * 4  # the quiet hours' ticks did skip their sweeps
    assert [a.as_dict() for a in skipping.finish()] == [a.as_dict() for a in sweeping.finish()]


def test_an_engine_restored_mid_quiet_stretch_alerts_as_one_that_ran_through(sparse_book):
    whole = _never_quiet(SurveillanceEngine(episodes="updates"))
    first = SurveillanceEngine(episodes="updates")
    cut = next(i for i, rec in enumerate(sparse_book) if i > len(sparse_book) // 3 and type(rec).__name__ == "Quote")
    cut += 20  # inside the first quiet stretch
    alerts_whole, alerts_split = [], []
    for rec in sparse_book[:cut]:
        whole.process(rec)
        first.process(rec)
        alerts_whole += [a.as_dict() for a in whole.take_alerts()]
        alerts_split += [a.as_dict() for a in first.take_alerts()]
    restored = SurveillanceEngine(episodes="updates")
    state_load(restored, state_dump(first))
    for rec in sparse_book[cut:]:
        whole.process(rec)
        restored.process(rec)
        alerts_whole += [a.as_dict() for a in whole.take_alerts()]
        alerts_split += [a.as_dict() for a in restored.take_alerts()]
    alerts_whole += [a.as_dict() for a in whole.finish()]
    alerts_split += [a.as_dict() for a in restored.finish()]
    assert len(alerts_whole) > 5
    assert orjson.dumps(alerts_split) == orjson.dumps(alerts_whole)
