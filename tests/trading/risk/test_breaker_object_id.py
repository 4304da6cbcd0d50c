"""The trading breaker's audit object id, in one function (``trading.risk.breaker``): what the
breaker's records are written under, what a restarted worker reads back and what the console
shows agree, for a per-account breaker and for a worker-wide one (records before 2026-12-06)."""

from __future__ import annotations

import pytest

from trading.risk.breaker import breaker_object_id, breaker_object_source


@pytest.mark.parametrize(
    ("source", "account", "object_id"),
    [
        ("execution-eu", 7, "execution-eu:7"),
        ("execution-eu", "7", "execution-eu:7"),
        ("execution-eu", None, "execution-eu"),  # the worker's one breaker, before 2026-12-06
        ("execution-eu", "", "execution-eu"),
        ("execution:eu", 7, "execution:eu:7"),  # a worker name with a colon is kept whole
    ],
)
def test_the_object_id_and_its_worker_read_back(source, account, object_id):
    assert breaker_object_id(source=source, account=account) == object_id
    assert breaker_object_source(object_id, account=account) == source


@pytest.mark.django_db
def test_a_written_breaker_record_is_what_the_restart_and_the_console_read():
    from tradeops.audit.models import AuditRecord
    from tradeops.core.clock import utcnow
    from trading.console.selectors import trading_breakers
    from trading.controls.selectors import trading_breakers_last_moves
    from trading.controls.services import trading_breaker_change_record

    at = utcnow()
    kwargs = dict(source="execution:eu", actor="service:execution", auto_kill_on_loss=False, at=at)
    trading_breaker_change_record(account_id=41, old="closed", new="open", reason="consecutive_failures", **kwargs)
    trading_breaker_change_record(old="closed", new="open", reason="worker-wide", **kwargs)

    ids = set(AuditRecord.objects.filter(action="trading_breaker.open").values_list("object_id", flat=True))
    assert ids == {breaker_object_id(source="execution:eu", account=41), "execution:eu"}
    moves = trading_breakers_last_moves(source="execution:eu", account_ids=[41, 42])
    assert sorted((m.account_id or 0, m.state, m.reason) for m in moves) == [
        (0, "open", "worker-wide"),
        (41, "open", "consecutive_failures"),
    ]
    assert sorted((b["source"], b["account"]) for b in trading_breakers()) == [
        ("execution:eu", ""),
        ("execution:eu", "41"),
    ]
