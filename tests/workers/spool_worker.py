"""A real execution worker process for the spool test (``python -m tests.workers.spool_worker``).

It trades the journalled paper account at ``--journal`` on a replay clock, the broker refusing
its first order; the order's write fails as the database going away (``order_commit`` raises
``OperationalError``, as tests/workers/test_unrecorded_orders.py makes it), and the process then
SIGKILLs itself before any reconciliation could write the refusal: what it kept in memory dies
with it, and the spool under ``EXECUTION_STATE_DIR`` is all that is left. Prints one JSON line
(the client order id and the spool's path) before the kill.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AT = T0 + timedelta(seconds=1)  # the refusal's event time (the replayed market time)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", required=True)
    parser.add_argument("--account", type=int, required=True)
    parser.add_argument("--signal-id", required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    import django

    django.setup()
    from django.db import OperationalError

    from tradeops.core.clock import ReplayClock
    from tradeops.events import Signal, Tick, make_event
    from trading.brokers import OrderOutcome, Quote
    from trading.models import Instrument
    from trading.risk import RiskLimits
    from trading.strategy import StrategyConfig
    from workers import execution
    from workers.execution import ExecutionConfig, ExecutionWorker
    from workers.paper_journal import JournaledPaperBroker

    clock = ReplayClock()
    broker = JournaledPaperBroker.from_instruments(
        Instrument.objects.filter(is_active=True), path=args.journal, clock=clock.now
    )
    broker.connect()
    broker.update_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    worker = ExecutionWorker(
        brokers={args.account: broker},
        config=ExecutionConfig(
            strategy=StrategyConfig(risk_fraction=Decimal("0.005")),
            default_limits=RiskLimits(duplicate_window_ms=None),
        ),
        clock=clock,
    ).start()
    tick = Tick(symbol="EURUSD", bid=Decimal("1.10000"), ask=Decimal("1.10002"), ts=T0)
    worker.handle(make_event(tick, source="test", key="EURUSD", occurred_at=T0))

    def commit_fails(**kwargs):
        raise OperationalError("the database went away")

    execution.order_commit = commit_fails
    payload = Signal(
        signal_id=args.signal_id,
        symbol="EURUSD",
        ts=AT,
        side="BUY",
        confidence=0.8,
        price=Decimal("1.10001"),
        model_versions={"gbm": "1"},
        algo_id="algo-1",
        atr=0.0010,
    )
    try:
        worker.handle(make_event(payload, source="test", key="EURUSD"))
    except OperationalError:
        pass
    else:
        raise SystemExit("the write did not fail")
    (coid,) = worker._unrecorded
    spool = worker._unrecorded.spool(args.account).path
    print(json.dumps({"client_order_id": coid, "spool": str(spool)}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no reconciliation: as a power cut would


if __name__ == "__main__":
    main(sys.argv[1:])
