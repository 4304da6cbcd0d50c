"""An idempotent DB consumer for the redelivery tests: each tick becomes a Features event in the
outbox, claimed by event_id in the same transaction. Run as a script it handles one batch and
then SIGKILLs itself before committing the offsets (a crash between effect and commit)."""

from __future__ import annotations

import os
import signal
import sys
import uuid

from django.db import transaction

CONSUMER = "test-ledger"


def apply_batch(records) -> int:
    """Apply a batch; return how many events had effects (the rest were already processed)."""
    from tradeops.events import Features, make_event
    from tradeops.outbox.services import outbox_append, processed_event_claim

    applied = 0
    with transaction.atomic():
        for record in records:
            if not processed_event_claim(consumer=CONSUMER, event_id=record.event.event_id):
                continue
            tick = record.event.payload
            features = Features(symbol=tick.symbol, ts=tick.ts, values={"bid": float(tick.bid)}, price=tick.bid)
            # a random id: a double application would show up as an extra row
            outbox_append(event=make_event(features, source="ledger", key=tick.symbol, event_id=uuid.uuid4()))
            applied += 1
    return applied


def main(bootstrap: str, prefix: str, group: str, want: int) -> None:
    import django

    django.setup()
    from tradeops.bus.kafka import KafkaBus
    from tradeops.events import Topic

    bus = KafkaBus(bootstrap_servers=bootstrap, topic_prefix=prefix, consumer_config={"session.timeout.ms": 6000})
    sub = bus.subscribe([Topic.MARKET_DATA], group)
    records = []
    while len(records) < want:
        records += sub.poll(max_records=want, timeout=0.5)
    applied = apply_batch(records)
    print(f"applied {applied} of {len(records)}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # effects are durable, offsets are not committed


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
