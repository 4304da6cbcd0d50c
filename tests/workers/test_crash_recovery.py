"""A crash between the broker's fill and our commit never double-sends and never loses the fill.

Two versions: in-process (an injected crash point; runs on SQLite and PostgreSQL), and the real
thing: a worker process on PostgreSQL and Kafka SIGKILLed between send and commit, restarted,
reconciling from the broker and then receiving the uncommitted signal again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import service_unavailable
from tests.workers.conftest import T0, make_worker, signal, tick
from trading.intents import client_order_id_for
from trading.models import Execution, Order, Position

ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def test_injected_crash_after_send_is_recorded_once_on_restart(broker, account):
    def crash(point, intent):
        assert point == "after_send"
        raise Crash

    first = make_worker(broker, account, crash_hook=crash).start()
    first.handle(tick())
    event = signal(signal_id="crash-1")
    with pytest.raises(Crash):
        first.handle(event)
    assert Order.objects.count() == 0  # the broker filled it; we recorded nothing
    assert len(broker.deals_since(T0)) == 1

    second = make_worker(broker, account).start()  # reconciles at start
    coid = client_order_id_for(signal_id="crash-1", account_id=account.pk)
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "FILLED" and order.quantity == Decimal("2.50")
    assert Execution.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=account).net_quantity == Decimal("2.50")
    assert second.stats.reconciled_orders == 1 and second.stats.reconciled_fills == 1

    second.handle(tick())
    second.handle(event)  # the uncommitted signal comes again
    assert Order.objects.count() == 1 and len(broker.deals_since(T0)) == 1
    assert second.stats.duplicates == 1
    assert second.reconcile(account.pk).recovered_orders == []  # idempotent


@pytest.fixture
def kafka_prefix():
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.provision import topics_apply, topics_delete, topics_plan

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
    try:
        admin.list_topics(timeout=5)
    except Exception:
        service_unavailable(f"needs Kafka at {bootstrap}: bash scripts/services.sh up")
    prefix = f"test-exec-{uuid.uuid4().hex[:8]}-"
    actions, _ = topics_plan(admin, prefix=prefix)
    topics_apply(admin, actions)
    yield bootstrap, prefix
    topics_delete(admin, [a.topic for a in actions])


def _run_worker(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.workers.crash_worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sigkill_between_send_and_commit_with_postgres_and_kafka(instrument, account, kafka_prefix, tmp_path):
    from django.db import connection

    from tradeops.bus.kafka import KafkaBus

    if connection.vendor != "postgresql":
        service_unavailable("needs PostgreSQL: set DATABASE_URL (scripts/test.sh does)")
    bootstrap, prefix = kafka_prefix
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EVENT_BUS": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "PYTHONPATH": str(ROOT),
    }
    bus = KafkaBus(bootstrap_servers=bootstrap, topic_prefix=prefix)
    event = signal(signal_id="sigkill-1")
    bus.publish(event)
    assert bus.flush(10) == 0
    bus.close()
    journal = tmp_path / "paper-account.jsonl"
    common = ["--journal", str(journal), "--account", str(account.pk), "--group", f"exec-{uuid.uuid4().hex[:6]}"]

    crashed = _run_worker([*common, "--crash"], env)
    assert crashed.returncode == -9, crashed.stderr[-3000:]
    assert Order.objects.count() == 0, "nothing may be committed before the crash point"
    assert len(journal.read_text().splitlines()) == 1, "the broker filled the order once"

    restarted = _run_worker(common, env)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    report = json.loads(restarted.stdout.strip().splitlines()[-1])
    coid = client_order_id_for(signal_id="sigkill-1", account_id=account.pk)
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "FILLED"
    assert Execution.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=account).net_quantity == order.quantity
    assert report["at_start"]["reconciled_orders"] == 1 and report["at_start"]["reconciled_fills"] == 1
    assert report["consumed"] >= 1 and report["stats"]["duplicates"] == 1, report  # the signal came again
    assert report["stats"]["sent"] == 0
    assert len(journal.read_text().splitlines()) == 1, "never sent twice"
