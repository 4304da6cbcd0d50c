"""What every cluster test checks after its run (nothing lost, nothing duplicated)."""

from __future__ import annotations

import re

BARS = 300  # about two weeks of EURUSD hours: 1,500 market-data events, a few dozen trades


def published_count(done) -> int:
    """How many market-data events the replay published (``manage.py replay`` says per topic)."""
    match = re.search(r"market-data-events (\d+)", done.stdout if hasattr(done, "stdout") else done)
    assert match, f"the replay did not say how many events it published: {done}"
    return int(match.group(1))


def assert_reconciled(run, probe: dict, *, published: int | None = None) -> None:
    """Orders, fills, positions, outbox, audit trail and topics agree."""
    assert probe["orders"] > 0 and probe["fills"] > 0, probe["orders_by_status"]
    assert probe["position_mismatches"] == [], "positions differ from the sum of their fills"
    assert probe["fill_mismatches"] == [], "orders whose filled quantity is not the sum of their fills"
    assert len(probe["fill_deals"]) == len(set(probe["fill_deals"])), "a broker deal recorded twice"
    assert probe["orders_not_audited"] == [], "orders missing from the audit trail"
    assert probe["audit_verified"], probe["audit_verify_output"]
    assert probe["outbox_unsent"] == 0
    on_topics = set(run.topic_event_ids("trading-events")) | set(run.topic_event_ids("compliance-events"))
    missing = set(probe["outbox_event_ids"]) - on_topics
    assert not missing, f"{len(missing)} outbox events never reached their topic"
    assert probe["broker_deals"] == probe["fill_deals"], (
        f"broker deals {probe['broker_deals']} != fills {probe['fill_deals']}"
    )
    if published is not None:
        market = run.topic_event_ids("market-data-events")
        assert len(market) == len(set(market)), "a market-data event written twice"
        assert len(market) == published, f"{published} market-data events published, {len(market)} on the topic"
