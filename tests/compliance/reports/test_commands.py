"""manage.py transaction_report and report_run: files written, held-back records on stderr,
bad input refused with a message and no traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.reports.models import ReportRun, RunStatus
from compliance.reports.transaction.reader import transactions_read
from compliance.reports.xsd import xml_validate_stream
from tests.compliance.reports.conftest import fx_profile
from trading.models import Execution

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.django_db
def test_transaction_report_writes_the_days_file_and_lists_held_back_records(traded, trade_date, gbpusd, tmp_path):
    fx_profile(gbpusd, notional_currency_1="GBX")  # not an ISO 4217 currency: held back
    output = tmp_path / "day.xml"
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "transaction_report", date=trade_date.isoformat(), format="xml", output=str(output), stdout=out, stderr=err
    )
    assert xml_validate_stream(output).valid
    eur = Execution.objects.exclude(instrument=gbpusd).count()
    gbp = Execution.objects.filter(instrument=gbpusd).count()
    assert len(list(transactions_read(str(output)))) == eur
    held = [line for line in err.getvalue().splitlines() if line.startswith("held back:")]
    assert len(held) == gbp and all("currency_invalid (notional_currency_1)" in line for line in held)
    assert f"{eur} transactions (xml), {gbp} held back" in out.getvalue()
    assert not ReportRun.objects.exists()  # an export, not a run

    csv_out = tmp_path / "day.csv"
    call_command(
        "transaction_report", date=trade_date.isoformat(), format="csv", output=str(csv_out), stdout=out, stderr=err
    )
    assert len(csv_out.read_text().splitlines()) == eur + 1


@pytest.mark.django_db
def test_transaction_report_with_nothing_to_report_writes_no_file(configured, tmp_path):
    output = tmp_path / "empty.xml"
    with pytest.raises(CommandError, match="nothing to report"):
        call_command("transaction_report", date="2020-01-01", output=str(output), stdout=io.StringIO())
    assert not output.exists() and os.listdir(tmp_path) == []


def run_command(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=os.environ
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01", "--output", "/tmp/x.xml"], "is not a date"),
        (["--date", "yesterday", "--output", "/tmp/x.xml"], "is not a date"),
        (["--date", "2026-03-02", "--format", "pdf", "--output", "/tmp/x.xml"], "use xml or csv"),
        (["--date", "2026-03-02", "--output", "/nonexistent-folder/x.xml"], "does not exist"),
        (["--date", "2026-03-02", "--output", "/etc/hostname/x.xml"], "does not exist"),
        (["--date", "2026-03-02", "--output", "/tmp"], "is a directory"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_no_traceback(args, message):
    result = run_command("transaction_report", *args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.django_db
def test_report_run_generates_and_validates(traded, trade_date, alice, monkeypatch):
    from datetime import UTC, datetime, time, timedelta

    import compliance.reports.services as services

    # The paper broker's fills are today's; a transaction run waits for the day to close (T+1,
    # ``report_day_open``): the command is run the next morning.
    next_morning = datetime.combine(trade_date + timedelta(days=1), time(1, 0), tzinfo=UTC)
    monkeypatch.setattr(services, "utcnow", lambda: next_morning)
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "report_run",
        "transaction",
        "--from",
        trade_date.isoformat(),
        "--to",
        trade_date.isoformat(),
        "--user",
        "alice",
        stdout=out,
        stderr=err,
    )
    run = ReportRun.objects.get()
    assert run.status == RunStatus.VALIDATED and run.generated_by == alice
    assert run.reference in out.getvalue() and run.sha256 in out.getvalue()
    call_command(
        "report_run",
        "best_execution",
        "--from",
        trade_date.isoformat(),
        "--to",
        trade_date.isoformat(),
        stdout=out,
        stderr=err,
    )
    assert ReportRun.objects.filter(kind="best_execution", status=RunStatus.VALIDATED).exists()
    with pytest.raises(CommandError, match="is not a date"):
        call_command("report_run", "order_record", "--from", "2026-02-30", "--to", "2026-03-01", stdout=out)
    with pytest.raises(CommandError, match="^Refused: period ends .* before it starts"):
        call_command("report_run", "order_record", "--from", "2026-03-02", "--to", "2026-03-01", stdout=out)
