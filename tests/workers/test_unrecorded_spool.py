"""The execution worker's spool of orders the broker answered whose write failed
(``workers.unrecorded_spool``): the entry is on disk before the failure is raised, so a process
killed before the database came back loses nothing; a restarted worker writes the order once,
with its original event times; a corrupt line is quarantined, loudly, and the rest settled.

The line format's properties (round trip, any truncation refused): tests/trading/orders/test_unrecorded.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.conftest import service_unavailable
from tests.workers.conftest import T0, make_worker, signal, tick
from tests.workers.test_unrecorded_orders import AT, send_with_failed_write, started
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock
from trading.brokers import OrderOutcome
from trading.models import Order
from trading.orders.unrecorded import spool_line_decode, spool_line_encode
from workers.paper_journal import JournaledPaperBroker

ROOT = Path(__file__).resolve().parents[2]


def spool_of(directory: Path, account) -> Path:
    return directory / f"unrecorded-account-{account.pk}.jsonl"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refusal_spooled_by_a_killed_worker_process_is_written_once_by_the_next(
    instrument, account, execution_state_dir, tmp_path
):
    from django.db import connection

    if connection.vendor != "postgresql":
        service_unavailable("needs PostgreSQL: set DATABASE_URL (scripts/test.sh does)")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EXECUTION_STATE_DIR": str(execution_state_dir),
        "PYTHONPATH": str(ROOT),
    }
    journal = tmp_path / "paper-account.jsonl"
    signal_id = f"spooled-{uuid.uuid4().hex[:6]}"
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.workers.spool_worker",
            *("--journal", str(journal), "--account", str(account.pk), "--signal-id", signal_id),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILLed after the failed write
    told = json.loads(killed.stdout.strip().splitlines()[-1])
    coid, spool = told["client_order_id"], Path(told["spool"])
    assert spool == spool_of(execution_state_dir, account)
    assert not Order.objects.filter(client_order_id=coid).exists()  # the write failed; nothing recorded
    (line,) = spool.read_bytes().splitlines(keepends=True)
    kept = spool_line_decode(line)
    assert kept.refused and kept.answer == "REJECT" and kept.received_at == AT

    broker = JournaledPaperBroker.from_instruments([instrument], path=journal)  # the same account at the broker
    broker.connect()
    restarted = make_worker(broker, account, clock=ReplayClock()).start()
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "REJECTED" and order.reject_reason == "broker REJECT: dealer says no"
    assert order.signal_id == signal_id
    # Event time: the refusal's, in the killed process; recorded time: this write's wall clock.
    assert order.created_at == AT and order.closed_at == AT
    assert order.recorded_at > AT + timedelta(days=30)
    records = AuditRecord.objects.filter(object_type="order", object_id=str(order.pk))
    assert "order.rejected" in {r.action for r in records} and {r.occurred_at for r in records} == {AT}
    assert restarted.stats.unrecorded_written == 1 and not spool.exists()
    assert REGISTRY.get_sample_value("tradeops_execution_unrecorded_spooled", {"account": str(account.pk)}) == 0

    restarted.handle(tick(at=AT))
    restarted.handle(signal(signal_id=signal_id, at=AT))  # its offset was never committed: delivered again
    assert restarted.stats.duplicates == 1 and restarted.stats.sent == 0
    restarted.close()
    again = make_worker(broker, account, clock=ReplayClock()).start()
    assert again.stats.unrecorded_written == 0
    assert Order.objects.filter(client_order_id=coid).count() == 1  # exactly once
    again.close()


def test_corrupt_lines_are_quarantined_loudly_and_the_rest_is_settled(
    instrument, account, monkeypatch, execution_state_dir, caplog
):
    worker, broker = started(instrument, account)
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    coid = send_with_failed_write(worker, monkeypatch, "refused")
    worker.close()
    spool = spool_of(execution_state_dir, account)
    (good,) = spool.read_bytes().splitlines(keepends=True)
    entry = spool_line_decode(good)
    other = dataclasses.replace(
        entry, intent=dataclasses.replace(entry.intent, client_order_id="T" + "0" * 20, signal_id="other")
    )
    altered = good.replace(b"dealer says no", b"dealer says OK")  # the checksum no longer matches
    torn = spool_line_encode(other)[:-40]  # a crash mid-append: the last line cut short
    spool.write_bytes(altered + good + torn)
    quarantined_before = (
        REGISTRY.get_sample_value("tradeops_execution_spool_quarantined_total", {"account": str(account.pk)}) or 0
    )

    restarted = make_worker(broker, account, clock=ReplayClock()).start()
    order = Order.objects.get(client_order_id=coid)  # the intact line is settled
    assert order.status == "REJECTED" and order.created_at == AT
    assert not Order.objects.filter(signal_id="other").exists()
    quarantine = execution_state_dir / f"unrecorded-account-{account.pk}.quarantine.jsonl"
    records = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [(r["line_number"], r["reason"].split(":")[0]) for r in records] == [
        (1, "checksum mismatch"),
        (3, "cut short"),
    ]
    assert records[0]["line"] == altered.decode() and records[1]["line"] == torn.decode()
    assert all(r["spool"] == str(spool) for r in records)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "quarantined" in r.getMessage()]
    assert len(errors) == 2 and all(str(quarantine) in message for message in errors)
    assert (
        REGISTRY.get_sample_value("tradeops_execution_spool_quarantined_total", {"account": str(account.pk)})
        == quarantined_before + 2
    )
    assert not spool.exists()  # the written entry left it; the refused lines are in quarantine only
    restarted.close()


def test_an_accepted_order_spooled_waits_across_the_restart_and_is_found_once(
    instrument, account, monkeypatch, execution_state_dir
):
    """An accepted order whose write failed is in the broker's deals: the restarted worker's
    reconciliation recovers it, the spooled entry is found (nothing written from it) and leaves
    the spool; the account trades again."""
    worker, broker = started(instrument, account)
    coid = send_with_failed_write(worker, monkeypatch, "accepted")
    spool = spool_of(execution_state_dir, account)
    assert spool.exists()
    worker.close()

    restarted = make_worker(broker, account, clock=ReplayClock()).start()
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "FILLED" and restarted.stats.reconciled_orders == 1
    assert restarted.stats.unrecorded_written == 0 and not spool.exists()
    assert account.pk not in restarted._needs_reconcile
    restarted.handle(tick(at=T0 + timedelta(seconds=3)))
    restarted.handle(signal(signal_id="next", at=T0 + timedelta(seconds=3)))
    assert Order.objects.get(signal_id="next").status == "FILLED"
    restarted.close()


def test_a_spooled_accepted_order_the_broker_never_shows_is_written_past_the_wait_counted_across_the_restart(
    instrument, account, monkeypatch, execution_state_dir
):
    """The wall-clock wait of an accepted order missing from the broker's history counts from
    the failed write, not from the restart: the spooled ``failed_at`` carries it over."""
    worker, broker = started(instrument, account, unrecorded_wait=timedelta(seconds=60))
    coid = send_with_failed_write(worker, monkeypatch, "accepted")
    worker.close()
    spool = spool_of(execution_state_dir, account)
    (line,) = spool.read_bytes().splitlines(keepends=True)
    entry = spool_line_decode(line)
    spool.write_bytes(spool_line_encode(dataclasses.replace(entry, failed_at=entry.failed_at - timedelta(seconds=61))))
    monkeypatch.setattr(broker, "deals_since", lambda since: [])  # the history lags past the bound
    monkeypatch.setattr(broker, "positions", lambda: [])

    restarted = make_worker(broker, account, clock=ReplayClock(), unrecorded_wait=timedelta(seconds=60)).start()
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "FILLED" and restarted.stats.unrecorded_gave_up == 1
    assert not spool.exists()
    restarted.close()


def test_an_append_after_a_torn_one_stays_a_line_of_its_own(tmp_path, caplog):
    """An append that died mid-line (the disk full) leaves no newline: the next append starts a
    line of its own, so only the torn entry is refused at start-up, never the one after it."""
    from tests.trading.orders.test_unrecorded import refusal_kept
    from workers.unrecorded_spool import UnrecordedSpool

    first, torn, after = (
        refusal_kept(intent=dataclasses.replace(refusal_kept().intent, client_order_id=f"T{n:020d}")) for n in (1, 2, 3)
    )
    spool = UnrecordedSpool(tmp_path, 1, metrics_enabled=False)
    spool.append(first)
    with open(spool.path, "ab") as handle:
        handle.write(spool_line_encode(torn)[:100])
    spool.append(after)

    assert [e.client_order_id for e in spool.load()] == [first.client_order_id, after.client_order_id]
    (record,) = [json.loads(line) for line in spool.quarantine_path.read_text().splitlines()]
    assert record["line_number"] == 2 and record["reason"].startswith("cut short")
    assert [spool_line_decode(line) for line in spool.path.read_bytes().splitlines(keepends=True)] == [first, after]
