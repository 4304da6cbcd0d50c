"""The memory bus keeps the Kafka semantics a handler can notice: per-key order, partitions
shared in a group, explicit commits, redelivery of an uncommitted batch."""

from __future__ import annotations

from collections import defaultdict

from tests.tradeops.conftest import tick
from tradeops.bus.memory import MemoryBus
from tradeops.events import Topic

SYMBOLS = [f"SYM{i:02d}" for i in range(40)]


def _publish(bus, per_key=50):
    for seq in range(per_key):
        for symbol in SYMBOLS:
            bus.publish(tick(symbol, seq))
    return per_key * len(SYMBOLS)


def test_order_is_kept_per_key_across_the_catalogue_partitions():
    bus = MemoryBus()
    _publish(bus)
    assert len(bus.end_offsets(Topic.MARKET_DATA)) == 12
    seen = defaultdict(list)
    with bus.subscribe([Topic.MARKET_DATA], "g") as sub:
        while batch := sub.poll(max_records=97):
            for r in batch:
                seen[r.key].append((r.partition, int(r.event.payload.volume)))
    assert set(seen) == set(SYMBOLS)
    for symbol, items in seen.items():
        assert len({p for p, _ in items}) == 1, symbol  # one key, one partition
        assert [s for _, s in items] == list(range(50)), symbol
    assert len({items[0][0] for items in seen.values()}) > 6  # keys spread over the partitions


def test_members_of_a_group_share_partitions_and_a_joiner_triggers_a_rebalance():
    bus = MemoryBus()
    total = _publish(bus)
    a = bus.subscribe([Topic.MARKET_DATA], "g")
    b = bus.subscribe([Topic.MARKET_DATA], "g")
    assert sorted(a.assignment + b.assignment) == [(Topic.MARKET_DATA, p) for p in range(12)]
    assert len(a.assignment) == len(b.assignment) == 6
    got = [r.event.event_id for r in a.poll(300) + b.poll(300)]
    a.commit()
    b.commit()
    c = bus.subscribe([Topic.MARKET_DATA], "g")
    assert len(c.assignment) == 4 and not set(c.assignment) & set(a.assignment + b.assignment)
    while True:
        batch = a.poll(100) + b.poll(100) + c.poll(100)
        if not batch:
            break
        got += [r.event.event_id for r in batch]
        for sub in (a, b, c):
            sub.commit()
    assert len(set(got)) == total  # nothing lost
    assert bus.lag("g") == 0


def test_an_uncommitted_batch_is_delivered_again_to_the_next_member():
    bus = MemoryBus()
    _publish(bus, per_key=5)
    first = bus.subscribe([Topic.MARKET_DATA], "g")
    handled = first.poll(max_records=1000)
    assert handled
    first.close()  # "crash" before commit
    second = bus.subscribe([Topic.MARKET_DATA], "g")
    again = second.poll(max_records=1000)
    assert {r.event.event_id for r in again} == {r.event.event_id for r in handled}
    second.commit()
    second.close()
    third = bus.subscribe([Topic.MARKET_DATA], "g")
    assert third.poll(max_records=1000) == []  # committed: not delivered again


def test_each_group_gets_every_event_and_committed_records_are_trimmed():
    bus = MemoryBus()
    one = bus.subscribe([Topic.MARKET_DATA], "one")
    two = bus.subscribe([Topic.MARKET_DATA], "two")
    for seq in range(20_000):
        bus.publish(tick("EURUSD", seq))
    assert len(one.poll(50_000)) == 20_000
    one.commit()
    part = next(p for p in bus._topic(Topic.MARKET_DATA).partitions if p.records)
    assert part.base == 0  # group "two" has not committed: nothing may go
    assert len(two.poll(50_000)) == 20_000
    two.commit()
    assert part.base == 20_000 and not part.records  # both committed: memory is given back
    bus.publish(tick("EURUSD", 1))
    assert [r.offset for r in one.poll(10)] == [20_000]
