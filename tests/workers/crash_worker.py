"""A real execution worker process for the crash-recovery test (``python -m tests.workers.crash_worker``).

It trades the journalled paper account at ``--journal`` (so the broker's state outlives the
process, as a real broker's would), consumes the Kafka topics under ``KAFKA_TOPIC_PREFIX`` as
consumer group ``--group``, and with ``--crash`` SIGKILLs itself right after the broker filled
the first order and before the database transaction that records it. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from decimal import Decimal


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", required=True)
    parser.add_argument("--account", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--idle-exit", type=float, default=6.0)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    import django

    django.setup()
    from django.conf import settings

    from tradeops.bus.kafka import KafkaBus
    from tradeops.bus.runner import stage_run
    from tradeops.core.clock import utcnow
    from tradeops.stages import stage_get
    from trading.brokers import Quote
    from trading.models import Instrument
    from trading.risk import RiskLimits
    from workers.execution import ExecutionConfig, ExecutionWorker
    from workers.paper_journal import JournaledPaperBroker

    broker = JournaledPaperBroker.from_instruments(Instrument.objects.filter(is_active=True), path=args.journal)
    broker.connect()
    broker.update_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), utcnow()))

    def crash(point, intent):
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no commit: as a power cut would

    worker = ExecutionWorker(
        brokers={args.account: broker},
        config=ExecutionConfig(
            stale_after=None, max_signal_age=None, default_limits=RiskLimits(duplicate_window_ms=None)
        ),
        crash_hook=crash if args.crash else None,
    ).start()
    started = worker.stats.__dict__.copy()
    bus = KafkaBus(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        topic_prefix=settings.KAFKA_TOPIC_PREFIX,
        consumer_config={"session.timeout.ms": 6000, "fetch.wait.max.ms": 50},
    )
    stats = stage_run(stage_get("execution"), bus=bus, handler=worker, group=args.group, idle_exit=args.idle_exit)
    bus.close()
    print(json.dumps({"at_start": started, "stats": worker.stats.__dict__, "consumed": stats.consumed}))


if __name__ == "__main__":
    main(sys.argv[1:])
