"""order_commit: one order's whole write, in one statement on PostgreSQL or through the ORM.

The one-statement write (``trading_order_write``, the audit chain numbered and hashed in the
database) must leave exactly what the ORM writer leaves: the same order row, fills, position,
audit records (action by action, payload by payload) and trading-events, in the same order. Each
outcome the execution worker writes is committed both ways on twin accounts and the results
compared; then idempotency, rollback on a database error, the audit chain, and a position shared
with a concurrent ORM writer.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from tests.conftest import requires_postgres
from tests.workers.conftest import T0
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import audit_verify
from tradeops.core.identifiers import lei_with_check_digits
from tradeops.events import OrderEvent, make_event
from tradeops.outbox.models import Outbox
from trading.models import Execution, Order, Position, TradingAccount
from trading.order_states import OrderStatus
from trading.orders.plan import FillDraft, OrderDraft, OrderStep
from trading.orders.services import order_commit

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)

SENT = T0 + timedelta(microseconds=40)
DONE = T0 + timedelta(microseconds=90)


def _twin(n: int) -> TradingAccount:
    return TradingAccount.objects.create(
        name=f"twin {n}",
        mt5_login=8000000 + n,
        mt5_server="test-server",
        firm_lei=lei_with_check_digits("TRADEOPSTEST000000"),
        client_id=f"C{n}",
    )


def _draft(account, instrument, coid: str, *, side="BUY", qty="0.30") -> OrderDraft:
    return OrderDraft(
        client_order_id=coid,
        account=account,
        instrument=instrument,
        side=side,
        quantity=D(qty),
        at=T0,
        stop_loss=D("1.09000"),
        algo_id="algo-1",
        signal_id=f"s-{coid}",
    )


def _decision(account) -> object:
    payload = OrderEvent(
        client_order_id="decision",
        account_id=account.pk,
        symbol="EURUSD",
        side="BUY",
        order_type="MARKET",
        quantity=D("0.30"),
        status="RISK_APPROVED",
        ts=T0,
    )
    return make_event(payload, source="test", key=str(account.pk))


def _fill(deal: str, qty: str, price: str, fee="0.60") -> FillDraft:
    return FillDraft(
        broker_deal_id=deal,
        quantity=D(qty),
        price=D(price),
        executed_at=DONE,
        fee=D(fee),
        arrival_mid=D("1.10001"),
        arrival_bid=D("1.10000"),  # the touch on arrival: both writers store it (compared field by field)
        arrival_ask=D("1.10002"),
    )


APPROVED = OrderStep(OrderStatus.RISK_APPROVED, T0 + timedelta(microseconds=20))
SUBMITTED = OrderStep(OrderStatus.SUBMITTED, SENT, broker_order_id="77")

OUTCOMES = {
    "refused by the gate": {"steps": [OrderStep(OrderStatus.REJECTED, APPROVED.at, "max_position: 5 lots")]},
    "broker state unknown": {
        "steps": [APPROVED, OrderStep(OrderStatus.SUBMITTED, SENT, "broker state unknown (timeout)")]
    },
    "refused by the broker": {"steps": [APPROVED, SUBMITTED, OrderStep(OrderStatus.REJECTED, DONE, "no money")]},
    "filled at once": {"steps": [APPROVED, SUBMITTED], "fills": [("D1", "0.30", "1.10002")]},
    "two partial fills, remainder cancelled": {
        "steps": [APPROVED, SUBMITTED],
        "fills": [("D1", "0.10", "1.10002"), ("D2", "0.10", "1.10004")],
        "after_fills": [OrderStep(OrderStatus.CANCELLED, DONE, "remainder not available")],
    },
}

# Differ by construction between the twins: ids, keys, the account, the clock at write time.
VOLATILE = {
    "id",
    "client_order_id",
    "signal_id",
    "account_id",
    "order_id",
    "updated_at",
    "recorded_at",
    "broker_deal_id",
}


_LOCAL = threading.local()


@pytest.fixture(autouse=True)
def _writer_choice(monkeypatch):
    """``orm_writer()`` makes this thread's order_commit write through the ORM (as on SQLite)."""
    from trading.orders import write

    real = write.one_statement_available
    monkeypatch.setattr(write, "one_statement_available", lambda: not getattr(_LOCAL, "orm", False) and real())


@contextmanager
def orm_writer():
    _LOCAL.orm = True
    try:
        yield
    finally:
        _LOCAL.orm = False


def _commit(account, instrument, coid: str, outcome: dict, *, orm: bool):
    fills = [_fill(f"{coid}-{deal}", qty, price) for deal, qty, price in outcome.get("fills", [])]
    kwargs = {
        "draft": _draft(account, instrument, coid),
        "steps": outcome.get("steps", []),
        "fills": fills,
        "after_fills": outcome.get("after_fills", []),
        "events": [_decision(account)],
        "actor": "service:test",
    }
    if orm:
        with orm_writer():
            return order_commit(**kwargs)
    return order_commit(**kwargs)


def _warm(account, instrument) -> None:
    """The chain head and the position exist."""
    _commit(account, instrument, "warm", OUTCOMES["filled at once"], orm=True)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in VOLATILE}
    return value


def _written(account, since: int) -> dict:
    import json

    order = Order.objects.get(account=account)
    records = AuditRecord.objects.filter(sequence__gt=since).order_by("sequence")
    mine = [r for r in records if json.loads(r.payload).get("account_id") == account.pk]
    events = Outbox.objects.filter(key=str(account.pk)).order_by("id")
    return {
        "order": _plain({f.attname: getattr(order, f.attname) for f in Order._meta.concrete_fields}),
        "fills": [
            _plain({f.attname: getattr(e, f.attname) for f in Execution._meta.concrete_fields})
            for e in Execution.objects.filter(order=order).order_by("id")
        ],
        "position": [
            _plain({f.attname: getattr(p, f.attname) for f in Position._meta.concrete_fields})
            for p in Position.objects.filter(account=account)
        ],
        "audit": [
            # fills are stamped with the clock when recorded; the steps with the times given
            (
                r.action,
                r.object_type,
                r.actor_id,
                r.occurred_at if r.occurred_at <= DONE else "now",
                _plain(json.loads(r.payload)),
            )
            for r in mine
        ],
        "events": [e.event_type for e in events],
    }


@pytest.mark.parametrize("outcome", list(OUTCOMES), ids=list(OUTCOMES))
def test_one_statement_write_leaves_what_the_orm_writer_leaves(postgres, instrument, outcome):
    requires_postgres()
    orm_account, fast_account = _twin(1), _twin(2)
    # both paths start from an open position, so the fills net against it (realised P&L)
    for account in (orm_account, fast_account):
        Position.objects.create(
            account=account, instrument=instrument, net_quantity=D("-0.20"), average_price=D("1.10100"),
            realised_pnl=D("5"), mark_price=D("1.10050"), updated_at=T0,
        )  # fmt: skip
    order_commit(  # the chain head exists once anything was audited
        draft=_draft(_twin(3), instrument, "warm-up"), steps=[APPROVED], actor="service:test"
    )
    start = AuditRecord.objects.order_by("-sequence").values_list("sequence", flat=True).first()

    by_orm = _commit(orm_account, instrument, "orm-1", OUTCOMES[outcome], orm=True)
    by_pipeline = _commit(fast_account, instrument, "fast-1", OUTCOMES[outcome], orm=False)

    assert not by_orm.one_statement and by_pipeline.one_statement
    assert by_orm.created and by_pipeline.created
    assert len(by_orm.fills) == len(by_pipeline.fills) == len(OUTCOMES[outcome].get("fills", []))
    assert [e.type for e in by_orm.events] == [e.type for e in by_pipeline.events]
    orm, fast = _written(orm_account, start), _written(fast_account, start)
    assert fast["order"] == orm["order"]
    assert fast["fills"] == orm["fills"]
    assert fast["position"] == orm["position"]
    assert fast["audit"] == orm["audit"] and fast["audit"]
    assert fast["events"] == orm["events"]
    assert by_pipeline.order.status == by_orm.order.status == Order.objects.get(client_order_id="fast-1").status
    assert audit_verify().ok


def test_the_first_write_ever_and_the_first_fill_create_the_chain_head_and_the_position(postgres, account, instrument):
    """No audit record and no position row yet: the one statement creates the chain head (from
    the genesis hash) and the position row, and the chain verifies."""
    first = _commit(account, instrument, "first", OUTCOMES["filled at once"], orm=False)
    assert first.one_statement and first.created
    assert AuditRecord.objects.order_by("sequence").first().prev_hash == "0" * 64
    position = Position.objects.get(account=account, instrument=instrument)
    assert position.net_quantity == D("0.30") and position.average_price == D("1.10002")
    assert position.realised_pnl == D("-0.60")  # the fee
    assert position.as_of == DONE  # the fill's event time
    second = _commit(account, instrument, "second", OUTCOMES["filled at once"], orm=False)
    assert second.one_statement
    position.refresh_from_db()
    assert position.net_quantity == D("0.60") and position.realised_pnl == D("-1.20")
    assert audit_verify().ok


def test_same_client_order_id_twice_writes_once(postgres, account, instrument):
    _warm(account, instrument)
    first = _commit(account, instrument, "once", OUTCOMES["filled at once"], orm=False)
    counts = (AuditRecord.objects.count(), Outbox.objects.count(), Execution.objects.count())
    again = _commit(account, instrument, "once", OUTCOMES["filled at once"], orm=False)
    assert first.created and not again.created
    assert again.order.pk == first.order.pk and again.fills == () and again.events == ()
    assert (AuditRecord.objects.count(), Outbox.objects.count(), Execution.objects.count()) == counts


def test_database_error_rolls_back_everything_and_the_connection_stays_usable(postgres, account, instrument):
    _warm(account, instrument)
    decision = _decision(account)
    order_commit(draft=_draft(account, instrument, "first"), steps=[APPROVED], events=[decision])
    counts = (Order.objects.count(), AuditRecord.objects.count(), Outbox.objects.count(), Execution.objects.count())
    with pytest.raises(IntegrityError):  # the same event again: the outbox refuses it in the second round trip
        order_commit(
            draft=_draft(account, instrument, "second"),
            steps=[APPROVED, SUBMITTED],
            fills=[_fill("second-1", "0.30", "1.10002")],
            events=[decision],
        )
    assert (Order.objects.count(), AuditRecord.objects.count(), Outbox.objects.count(), Execution.objects.count()) == (
        counts
    )
    assert not Order.objects.filter(client_order_id="second").exists()
    later = _commit(account, instrument, "later", OUTCOMES["filled at once"], orm=False)
    assert later.one_statement and Order.objects.get(client_order_id="later").status == "FILLED"
    assert audit_verify().ok


def test_an_event_refused_mid_transaction_leaves_nothing_and_releases_the_locks(postgres, account, instrument):
    """An event too large for the bus is refused before the statement is sent: nothing is written
    and nothing stays locked."""
    import msgspec

    from tradeops.bus.base import EventTooLarge

    _warm(account, instrument)
    huge = _decision(account)
    huge = msgspec.structs.replace(huge, payload=msgspec.structs.replace(huge.payload, reason="x" * 2_000_000))
    counts = (Order.objects.count(), AuditRecord.objects.count(), Outbox.objects.count())
    with pytest.raises(EventTooLarge):
        order_commit(
            draft=_draft(account, instrument, "huge"),
            steps=[APPROVED, SUBMITTED],
            fills=[_fill("huge-1", "0.30", "1.10002")],
            events=[huge],
        )
    assert (Order.objects.count(), AuditRecord.objects.count(), Outbox.objects.count()) == counts
    assert not Execution.objects.filter(broker_deal_id="huge-1").exists()
    later = _commit(account, instrument, "later", OUTCOMES["filled at once"], orm=False)  # no lock left behind
    assert later.one_statement and audit_verify().ok


def test_a_deal_already_recorded_is_left_out(postgres, account, instrument):
    """A new order whose broker deal id is already recorded (it cannot be this order's fill):
    the statement refuses it, writes nothing, and the order is written again without that fill."""
    _warm(account, instrument)
    _commit(account, instrument, "taken", {"steps": [APPROVED, SUBMITTED], "fills": [("X", "0.30", "1.1")]}, orm=False)
    written = order_commit(
        draft=_draft(account, instrument, "clash"),
        steps=[APPROVED, SUBMITTED],
        fills=[_fill("taken-X", "0.30", "1.10002")],
    )
    assert written.one_statement and written.created and written.fills == ()
    assert Order.objects.get(client_order_id="clash").status == "SUBMITTED"
    assert Execution.objects.filter(broker_deal_id="taken-X").count() == 1
    assert audit_verify().ok


def test_a_lost_connection_is_replaced(postgres, account, instrument):
    _warm(account, instrument)
    connection.connection.close()  # e.g. PostgreSQL restarted between two orders
    written = _commit(account, instrument, "after", OUTCOMES["filled at once"], orm=False)
    assert written.one_statement and Order.objects.get(client_order_id="after").status == "FILLED"


def test_refused_terms_write_nothing(postgres, account, instrument):
    from trading.errors import OrderValidationError

    _warm(account, instrument)
    before = (Order.objects.count(), AuditRecord.objects.count())
    with pytest.raises(OrderValidationError) as refused:
        order_commit(draft=_draft(account, instrument, "odd", qty="0.305"))
    assert refused.value.code == "invalid_volume"
    assert (Order.objects.count(), AuditRecord.objects.count()) == before


def test_one_statement_and_orm_writers_share_one_position(postgres, account, instrument):
    """Fills through both writers at once on one position, plus plain audit appends: no update
    is lost, no deadlock, and the audit chain verifies. The position row does not exist yet, so
    the two writers also race to create it, and each keeps computing from a row the other moves
    (the statement refuses a moved row; the writer reads it and computes again)."""
    from tradeops.audit.services import audit_append

    _commit(account, instrument, "warm", {"steps": [APPROVED]}, orm=True)  # the chain head, no position
    per_thread = 12
    errors: list[BaseException] = []
    pipelined: list[bool] = []
    barrier = threading.Barrier(3)

    def fills(orm: bool, side: str) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                coid = f"{'orm' if orm else 'fast'}-{i}"
                draft = _draft(account, instrument, coid, side=side, qty="0.10")
                kwargs = {"draft": draft, "steps": [APPROVED, SUBMITTED], "fills": [_fill(coid, "0.10", "1.10002")]}
                if orm:
                    with transaction.atomic(), orm_writer():  # the ORM writer in a caller's transaction
                        order_commit(**kwargs)
                else:
                    pipelined.append(order_commit(**kwargs).one_statement)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def appends() -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_append(action="test.note", object_type="note", object_id=str(i), occurred_at=T0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=fills, args=(True, "BUY")),
        threading.Thread(target=fills, args=(False, "SELL")),
        threading.Thread(target=appends),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert all(pipelined) and len(pipelined) == per_thread
    position = Position.objects.get(account=account, instrument=instrument)
    assert position.net_quantity == D(0)  # 12 x 0.10 bought, 12 x 0.10 sold
    assert Execution.objects.filter(account=account).count() == 2 * per_thread
    assert audit_verify().ok


def test_two_one_statement_writers_on_one_position_and_the_api_data_version(postgres, account, instrument):
    """Two execution workers' writers at once, both through the one statement, on one position:
    no deadlock (the chain head, then the API's data-version row at commit, in every writer),
    no update lost, the chain verifies, and the API's version moved exactly once per committed
    order (api 0002: once per transaction, a refused statement rolled back with its bump)."""
    warm = order_commit(
        draft=_draft(account, instrument, "warm2", qty="0.10"),
        steps=[APPROVED, SUBMITTED],
        fills=[_fill("warm2-d", "0.10", "1.10002")],
    )
    assert warm.one_statement

    def version() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT n FROM api_data_version WHERE id = 1")
            return cursor.fetchone()[0]

    before = version()
    per_thread = 12
    errors: list[BaseException] = []
    written: list[bool] = []
    barrier = threading.Barrier(2)

    def fills(side: str) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                coid = f"two-{side}-{i}"
                draft = _draft(account, instrument, coid, side=side, qty="0.10")
                done = order_commit(draft=draft, steps=[APPROVED, SUBMITTED], fills=[_fill(coid, "0.10", "1.10002")])
                written.append(done.one_statement and done.created)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fills, args=(side,)) for side in ("SELL", "BUY")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer is stuck"
    assert not errors, errors
    assert written == [True] * (2 * per_thread)
    position = Position.objects.get(account=account, instrument=instrument)
    assert position.net_quantity == D("0.10")  # the warm-up's buy; then 12 x 0.10 sold and 12 bought
    assert Execution.objects.filter(account=account).count() == 2 * per_thread + 1
    assert audit_verify().ok
    assert version() - before == 2 * per_thread
