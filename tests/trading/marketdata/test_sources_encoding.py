"""One byte that is not UTF-8 in an MT5 export costs its row, not the file (issue 19): the row is
quarantined with a clear reason naming the byte, every other row is kept, the quarantine file
stays readable JSON, and the replay command reports it instead of a traceback."""

from __future__ import annotations

import json

from django.core.management import call_command

from tests.trading.marketdata.test_sources import TICK_HEADER
from trading.marketdata.quarantine import Quarantine
from trading.marketdata.sources import read_mt5_ticks

ROWS = [
    b"2024.01.02\t10:00:00.000\t1.10000\t1.10010\t\t\t6",
    b"2024.01.02\t10:00:01.000\t1.10001\t1.10011\t\t\t6",
    b"2024.01.02\t10:00:02.000\t1.1000\xff\t1.10012\t\t\t6",  # one stray byte (a Latin-1 editor, a bad copy)
    b"2024.01.02\t10:00:03.000\t1.10003\t1.10013\t\t\t6",
]


def _export(tmp_path):
    path = tmp_path / "EURUSD_ticks.csv"
    path.write_bytes(b"\r\n".join([TICK_HEADER.encode(), *ROWS]) + b"\r\n")
    return path


def test_the_bad_row_is_quarantined_and_the_others_kept(tmp_path):
    quarantine = Quarantine(tmp_path / "q.jsonl")
    ticks = list(read_mt5_ticks(_export(tmp_path), symbol="EURUSD", quarantine=quarantine))
    quarantine.close()
    assert [str(t.bid) for t in ticks] == ["1.10000", "1.10001", "1.10003"]
    (row,) = quarantine.rows
    assert row.line == 4 and row.code == "bad_encoding"
    assert "byte 0xff at column 31 is not UTF-8 text" in row.reason
    saved = json.loads((tmp_path / "q.jsonl").read_text())
    assert saved["raw"].endswith("1.1000\\xff\t1.10012\t\t\t6")


def test_the_replay_command_reports_it_without_a_traceback(tmp_path, db, capsys):
    call_command(
        "replay",
        "--source",
        "mt5-ticks",
        "--file",
        str(_export(tmp_path)),
        "--bus",
        "memory",
        "--quarantine-file",
        str(tmp_path / "replay.jsonl"),
    )
    out = capsys.readouterr().out
    assert "bad_encoding 1" in out and "line 4: bad_encoding: byte 0xff" in out
