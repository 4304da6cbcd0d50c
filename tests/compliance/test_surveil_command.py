"""``manage.py surveil`` end to end: formats, a bad line named by line number and field."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.compliance.helpers import market, q


def test_surveil_end_to_end_with_a_bad_line(tmp_path):
    rows = [q(0, "1.10000", "1.10010"), *market(1, "a1", "A", "buy", 100_000, "1.10010", owner="X")]
    lines = [orjson.dumps(r).decode() for r in rows]
    lines.append('{"type":"quote","ts":"2026-01-05T10:00:02Z","symbol":"EURUSD","bid":"abc","ask":"1.1"}')
    lines.append("not json")
    lines.append("")
    lines += [orjson.dumps(r).decode() for r in market(4, "b1", "B", "sell", 100_000, "1.10000", owner="X")]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "alerts.jsonl"
    err = io.StringIO()

    call_command("surveil", str(src), "--output", str(out), stderr=err)

    messages = err.getvalue()
    assert "line 4: field 'bid'" in messages
    assert "line 5: field 'line'" in messages
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]  # the lines after the bad ones were processed
    a = alerts[0]
    assert set(a) == {"alert_type", "account", "owner", "symbol", "order_ids", "score", "start", "end", "evidence"}
    assert a["order_ids"] == ["a1", "b1"] and 0 <= a["score"] <= 1
    assert a["start"] == "2026-01-05T10:00:01.050000Z" and a["end"].endswith("Z")
    assert "2 bad lines" in messages


def test_surveil_params_file_overrides_thresholds(tmp_path):
    rows = [q(0, "1.10000", "1.10010"), *market(1, "b", "E", "buy", 100_000, "1.10050")]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    params = tmp_path / "p.json"
    params.write_text('{"best_execution_slippage": {"max_adverse_bps": 3}}')
    out = tmp_path / "a.jsonl"
    call_command("surveil", str(src), "--output", str(out), "--params", str(params), stderr=io.StringIO())
    assert b"best_execution_slippage" in out.read_bytes()


def test_surveil_record_puts_alerts_into_cases_once(tmp_path, db):
    from compliance.models import Alert, Case

    rows = [
        q(0, "1.10000", "1.10010"),
        *market(1, "a1", "A", "buy", 100_000, "1.10010", owner="X"),
        *market(4, "b1", "B", "sell", 100_000, "1.10000", owner="X"),
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    for _ in range(2):  # a re-run does not duplicate
        call_command("surveil", str(src), "--output", str(tmp_path / "a.jsonl"), "--record", stderr=io.StringIO())
    alert = Alert.objects.get()
    assert alert.occurrences == 2 and Case.objects.get().subject_owner == "X"
    # raised at the book's market time (its last record, where the wash closed), recorded now
    book_end = datetime.fromisoformat(rows[-1]["ts"].replace("Z", "+00:00"))
    assert alert.end <= alert.first_seen == alert.last_seen == book_end
    assert alert.recorded_at.year >= 2026 and alert.recorded_at > book_end + timedelta(days=1)
    assert set(alert.case.actions.values_list("at", flat=True)) == {book_end}


def _one_line_book(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(orjson.dumps(q(0, "1.10000", "1.10010")) + b"\n")
    return src


def test_surveil_output_that_cannot_be_written_is_a_clear_error(tmp_path):
    src = _one_line_book(tmp_path)
    with pytest.raises(CommandError, match=r"cannot write /nonexistent/x: No such file or directory"):
        call_command("surveil", str(src), "--output", "/nonexistent/x", stderr=io.StringIO())


def test_surveil_output_error_exits_non_zero_without_a_traceback(tmp_path):
    """As a user runs it: the process ends with status 1 and one line on stderr."""
    src = _one_line_book(tmp_path)
    proc = subprocess.run(
        [sys.executable, "manage.py", "surveil", str(src), "--output", "/nonexistent/x"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "cannot write /nonexistent/x" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nonsense": {}}, r"unknown detector 'nonsense'; known: wash_trade, "),
        ({"layering": {"min_size_ratio": 2}}, r"layering alerts are raised by the spoofing detector"),
        ({"spoofing": {"max_lead": 10}}, r"spoofing: unknown parameter 'max_lead'; known: .*max_lead_s"),
        ({"ping_orders": {"min_count": 0}}, r"ping_orders: .*>= 1 - at `\$.min_count`"),
        ({"ping_orders": 5}, r"ping_orders: parameters must be an object"),
        ([1, 2], r"expected an object of detector: parameters"),
    ],
)
def test_surveil_params_file_refuses_unknown_detectors_and_parameters(tmp_path, params, message):
    src = _one_line_book(tmp_path)
    path = tmp_path / "p.json"
    path.write_bytes(orjson.dumps(params))
    with pytest.raises(CommandError, match=message):
        call_command("surveil", str(src), "--output", str(tmp_path / "a.jsonl"), "--params", str(path))
    assert not (tmp_path / "a.jsonl").exists()  # refused before anything is written


def test_engine_refuses_unknown_detector_names_in_scoped_rules_too():
    from compliance.surveillance.engine import SurveillanceEngine
    from compliance.surveillance.params import ParameterError

    with pytest.raises(ParameterError, match="unknown detector 'wash'"):
        SurveillanceEngine(account_params={"wash": {"A1": {}}})


def test_surveil_as_a_user_runs_it_starts_without_the_servers_and_the_task_queue(tmp_path):
    """``manage.py surveil`` is a batch command: Django is set up without Daphne, the Celery app
    and the OpenAPI schema extensions (start-up CPU; bench/README.md), and the alerts are the
    same as through ``call_command``."""
    rows = [q(0, "1.10000", "1.10010")]
    # Six matched pairs of one owner's two accounts, of 20 to 120 lots: one wash-trade episode
    # (six crosses of one ticket would be a series, painting the tape's, since wip/wash19).
    for i in range(6):
        rows += market(1 + 20 * i, f"a{i}", "A", "buy", 2_000_000 * (i + 1), "1.10010", owner="X")
        rows += market(2 + 20 * i, f"b{i}", "B", "sell", 2_000_000 * (i + 1), "1.10000", owner="X")
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows))
    out = tmp_path / "alerts.jsonl"
    probe = (
        "import runpy, sys; sys.argv = ['manage.py', 'surveil', sys.argv[1], '--output', sys.argv[2]]\n"
        "try:\n    runpy.run_path('manage.py', run_name='__main__')\n"
        "finally:\n"
        "    loaded = [m for m in ('daphne', 'tradeops.celery', 'drf_spectacular.plumbing') if m in sys.modules]\n"
        "    print('LOADED', loaded, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(src), str(out)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TRADEOPS_BATCH_CLI"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stderr
    lean = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    ref = tmp_path / "ref.jsonl"
    call_command("surveil", str(src), "--output", str(ref), stderr=io.StringIO())
    full = [orjson.loads(line) for line in ref.read_bytes().splitlines()]
    assert [a["alert_type"] for a in lean] == [a["alert_type"] for a in full] == ["wash_trade"]
    assert lean == full
