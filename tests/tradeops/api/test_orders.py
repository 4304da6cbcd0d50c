"""Placing an order over the API: idempotent by client_order_id, through the execution worker's
own gate, broker and write, in the audit trail and on Kafka exactly once however often the
request is retried."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.tradeops.api.conftest import filled_order
from tests.workers.conftest import T0, make_worker, paper_broker, tick
from tradeops.audit.consumers import AuditTrailConsumer
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import audit_verify
from tradeops.breaker import BreakerState
from tradeops.core.clock import ReplayClock, utcnow
from tradeops.core.roles import Role
from tradeops.events import Topic, decode
from tradeops.outbox.models import Outbox
from trading.intents import client_order_id_for
from trading.models import Execution, Order
from trading.order_states import OrderStatus
from trading.orders.requests import order_requests_expire
from trading.risk import RiskLimits


def _body(account, **overrides):
    body = {
        "client_order_id": "API-ORD-1",
        "account": account.pk,
        "symbol": "EURUSD",
        "side": "BUY",
        "quantity": "0.50",
        "desk": "integration",
    }
    return {**body, **overrides}


def _requests() -> list[Outbox]:
    return list(Outbox.objects.filter(event_type="order.requested").order_by("id"))


@pytest.fixture
def trader_http(issue_token, bearer):
    token, client = issue_token(Role.TRADER)
    http = bearer(token)
    http.client = client
    return http


def test_a_request_is_published_once_however_often_it_is_retried(instrument, account, trader_http):
    first = trader_http.post("/api/v1/orders/", _body(account), format="json")
    assert first.status_code == 202, first.content
    user = trader_http.client.user
    body = first.json()
    assert {k: body[k] for k in ("client_order_id", "requested", "requested_by", "status", "order")} == {
        "client_order_id": "API-ORD-1",
        "requested": True,
        "requested_by": f"user:{user.username}",
        "status": "requested",
        "order": None,
    }
    assert first["Location"] == "/api/v1/order-requests/API-ORD-1/"
    again = trader_http.post("/api/v1/orders/", _body(account), format="json")
    assert again.status_code == 202
    assert again.json() == {**body, "requested": False}  # the same answer: the first request's
    (row,) = _requests()
    event = decode(bytes(row.message))
    assert event.key == str(account.pk)  # the worker that trades the account, in order
    assert event.payload.client_order_id == "API-ORD-1" and event.payload.quantity == Decimal("0.50")
    assert event.payload.trader_id == user.pk
    assert event.payload.actor == f"user:{user.username}"
    (record,) = AuditRecord.objects.filter(action="order.requested")
    assert record.event_id == event.event_id and record.object_id == "API-ORD-1"
    assert record.actor == f"user:{user.username}"
    # the audit-trail stage meeting the event on the bus records nothing more
    AuditTrailConsumer().handle(event)
    assert AuditRecord.objects.filter(action="order.requested").count() == 1
    for change in (
        {"quantity": "0.60"},
        {"side": "SELL"},
        {"stop_loss": "1.09000"},
        {"order_type": "LIMIT", "limit_price": "1.09"},
    ):
        other = trader_http.post("/api/v1/orders/", _body(account, **change), format="json")
        assert other.status_code == 409, (change, other.content)
        assert other.json()["error"]["code"] == "client_order_id_reused"
    assert len(_requests()) == 1
    # its status, while the worker has not written the order yet
    status = trader_http.get("/api/v1/order-requests/API-ORD-1/")
    assert status.status_code == 200 and status.json() == {**body, "requested": False}
    assert trader_http.get("/api/v1/orders/API-ORD-1/").json()["error"]["code"] == "order_not_found"
    missing = trader_http.get("/api/v1/order-requests/API-NONE/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "order_request_not_found"
    assert audit_verify().ok


def test_the_same_key_from_another_requester_or_naming_another_order_is_a_conflict(
    instrument, account, trader_http, issue_token, bearer
):
    assert trader_http.post("/api/v1/orders/", _body(account), format="json").status_code == 202
    token, _ = issue_token(Role.TRADER)
    someone_else = bearer(token).post("/api/v1/orders/", _body(account), format="json")
    assert someone_else.status_code == 409 and someone_else.json()["error"]["code"] == "client_order_id_reused"
    # a key the strategy's order already holds
    filled_order(account=account, instrument=instrument, client_order_id="T-STRATEGY-1")
    taken = trader_http.post("/api/v1/orders/", _body(account, client_order_id="T-STRATEGY-1"), format="json")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "client_order_id_reused"
    assert len(_requests()) == 1
    # a request, not an order: no request status for the strategy's order
    assert trader_http.get("/api/v1/order-requests/T-STRATEGY-1/").status_code == 404


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"quantity": "0.005"}, "invalid_volume"),
        ({"quantity": "0.123"}, "invalid_volume"),
        ({"order_type": "LIMIT"}, "invalid_price"),
        ({"order_type": "LIMIT", "limit_price": "1.100001"}, "invalid_price"),
        ({"limit_price": "1.10000"}, "invalid_price"),
        ({"client_order_id": "x" * 28}, "max_length"),
        ({"client_order_id": "has space"}, "invalid_client_order_id"),
        ({"client_order_id": client_order_id_for(signal_id="sig-1", account_id=1)}, "reserved_client_order_id"),
        ({"side": "HOLD"}, "invalid_choice"),
        ({"symbol": "NOPE"}, "unknown_instrument"),
    ],
)
def test_terms_that_can_never_be_valid_are_refused_at_once(instrument, account, trader_http, change, code):
    response = trader_http.post("/api/v1/orders/", _body(account, **change), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not _requests()
    assert not AuditRecord.objects.filter(action="order.requested").exists()


def test_a_field_the_order_does_not_have_is_refused_not_dropped(instrument, account, trader_http):
    """The walk of 2026-12-06: ``stoploss`` (for ``stop_loss``) was dropped and the order placed
    without its stop loss (202). Now a 400 naming the field and the fields the request takes."""
    response = trader_http.post("/api/v1/orders/", _body(account, stoploss="1.05"), format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and "stop_loss" in error["detail"]["stoploss"][0]
    assert not _requests()


def test_a_query_parameter_the_list_does_not_take_is_refused_not_ignored(instrument, account, trader_http):
    """``?acount=1`` answered every account's orders; now a 400 naming it and the known ones."""
    response = trader_http.get("/api/v1/orders/?acount=1")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unknown_parameter" and error["extra"]["unknown"] == ["acount"]
    assert "account" in error["extra"]["known"] and "cursor" in error["extra"]["known"]
    assert trader_http.get(f"/api/v1/orders/?account={account.pk}&page_size=5").status_code == 200
    assert trader_http.get("/api/v1/positions/?colour=red").status_code == 400


def test_an_unknown_instrument_is_refused_with_a_clear_error_and_audited(instrument, account, trader_http):
    response = trader_http.post(
        "/api/v1/orders/", _body(account, symbol="NOPE", client_order_id="API-NOPE"), format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unknown_instrument" and "NOPE" in error["message"]
    (refusal,) = AuditRecord.objects.filter(action="order.request_refused")
    assert refusal.object_id == "API-NOPE" and refusal.actor == f"user:{trader_http.client.user.username}"
    assert refusal.payload_data["code"] == "unknown_instrument"
    assert refusal.payload_data["terms"]["symbol"] == "NOPE"
    assert not _requests()  # never a request: nothing for a worker, nothing to follow
    assert trader_http.get("/api/v1/order-requests/API-NOPE/").status_code == 404
    # the grid refusals are audited the same way
    trader_http.post("/api/v1/orders/", _body(account, quantity="0.123", client_order_id="API-GRID"), format="json")
    assert AuditRecord.objects.get(action="order.request_refused", object_id="API-GRID").payload_data["code"] == (
        "invalid_volume"
    )
    assert audit_verify().ok


def _closing(client_order_id):
    records = AuditRecord.objects.filter(
        object_type="order", object_id=client_order_id, action__startswith="order.request_"
    )
    return [(r.action, r.actor) for r in records]


def test_an_instrument_the_worker_does_not_trade_refuses_the_request(instrument, account, trader_http):
    """An instrument listed after the worker started (it did not load it): the request is refused
    and audited at once, never left ``requested``."""
    worker = _worker(instrument, account)
    from trading.models import Instrument

    Instrument.objects.create(
        **{
            **{
                f.attname: getattr(instrument, f.attname) for f in Instrument._meta.concrete_fields if not f.primary_key
            },
            "symbol": "GBPUSD",
        }
    )
    body = _body(account, symbol="GBPUSD", client_order_id="API-GBP")
    assert trader_http.post("/api/v1/orders/", body, format="json").status_code == 202
    assert worker.handle(decode(bytes(_requests()[0].message))) == []
    assert not Order.objects.filter(client_order_id="API-GBP").exists()
    assert list(_closing("API-GBP")) == [("order.request_refused", "service:execution-worker")]
    status = trader_http.get("/api/v1/order-requests/API-GBP/").json()
    assert status["status"] == "refused" and "GBPUSD" in status["reason"] and status["order"] is None
    retry = trader_http.post("/api/v1/orders/", body, format="json")  # the same key: the same answer
    assert retry.status_code == 202 and retry.json()["status"] == "refused"
    assert len(_requests()) == 1
    assert audit_verify().ok


def test_a_request_not_taken_up_in_time_expires(instrument, account, trader_http):
    assert trader_http.post("/api/v1/orders/", _body(account, client_order_id="API-LATE"), format="json")
    first = trader_http.get("/api/v1/order-requests/API-LATE/").json()
    assert first["status"] == "requested" and first["expires_at"] and not first["reason"]
    expires_at = datetime.fromisoformat(first["expires_at"])
    assert expires_at - datetime.fromisoformat(first["requested_at"]) == timedelta(seconds=60)
    assert order_requests_expire(now=expires_at - timedelta(seconds=1)) == 0  # not yet
    assert order_requests_expire(now=expires_at) == 1
    assert order_requests_expire(now=expires_at + timedelta(seconds=5)) == 0  # once
    assert list(_closing("API-LATE")) == [("order.request_expired", "service:order-request-expiry")]
    status = trader_http.get("/api/v1/order-requests/API-LATE/").json()
    assert status["status"] == "expired" and "not taken up" in status["reason"]
    # the worker meeting it afterwards leaves it alone: never sent late
    worker = _worker(instrument, account)
    assert worker.handle(decode(bytes(_requests()[0].message))) == []
    assert not Order.objects.filter(client_order_id="API-LATE").exists()
    assert audit_verify().ok


def test_a_worker_meeting_a_request_past_its_expiry_expires_it(instrument, account, trader_http, settings):
    settings.API_ORDER_REQUEST_TTL_SECONDS = 0
    assert trader_http.post("/api/v1/orders/", _body(account, client_order_id="API-STALE"), format="json")
    worker = _worker(instrument, account)
    assert worker.handle(decode(bytes(_requests()[0].message))) == []
    assert not Order.objects.filter(client_order_id="API-STALE").exists()
    assert list(_closing("API-STALE")) == [("order.request_expired", "service:execution-worker")]
    assert trader_http.get("/api/v1/order-requests/API-STALE/").json()["status"] == "expired"


def test_the_clients_read_expires_a_request_past_its_expiry(instrument, account, trader_http, settings):
    settings.API_ORDER_REQUEST_TTL_SECONDS = 0
    assert trader_http.post("/api/v1/orders/", _body(account, client_order_id="API-READ"), format="json")
    assert trader_http.get("/api/v1/order-requests/API-READ/").json()["status"] == "expired"
    assert list(_closing("API-READ")) == [("order.request_expired", "service:order-request-expiry")]
    worker = _worker(instrument, account)
    worker.handle(decode(bytes(_requests()[0].message)))
    assert not Order.objects.filter(client_order_id="API-READ").exists()


def test_a_request_taken_up_in_time_never_expires(instrument, account, trader_http):
    assert trader_http.post("/api/v1/orders/", _body(account, client_order_id="API-TAKEN"), format="json")
    event = decode(bytes(_requests()[0].message))
    worker = _worker(instrument, account)
    worker.handle(event)
    assert Order.objects.get(client_order_id="API-TAKEN").status == OrderStatus.FILLED
    assert list(_closing("API-TAKEN")) == [("order.request_taken", "service:execution-worker")]
    assert order_requests_expire(now=event.payload.expires_at + timedelta(seconds=1)) == 0
    assert trader_http.get("/api/v1/order-requests/API-TAKEN/").json()["status"] == "FILLED"
    # a restarted worker meeting the request again (taken, its order written): a duplicate
    again = _worker(instrument, account)
    assert again.handle(event) == [] and again.stats.duplicates == 1
    assert Order.objects.filter(client_order_id="API-TAKEN").count() == 1


def _worker(instrument, account, **limits):
    """A live worker (wall clock) trading ``account`` on the paper broker, quoted now."""
    worker = make_worker(
        paper_broker(instrument), account, limits=RiskLimits(duplicate_window_ms=None, **limits)
    ).start()
    worker.handle(tick(at=utcnow()))
    return worker


def test_the_worker_runs_an_api_order_through_its_gate_once_even_when_redelivered(instrument, account, trader_http):
    assert trader_http.post("/api/v1/orders/", _body(account), format="json").status_code == 202
    trader_http.post("/api/v1/orders/", _body(account), format="json")  # a retry
    (row,) = _requests()
    event = decode(bytes(row.message))
    worker = _worker(instrument, account)
    worker.handle(event)
    worker.handle(event)  # redelivered by the bus
    order = Order.objects.get(client_order_id="API-ORD-1")
    assert order.status == OrderStatus.FILLED and order.quantity == Decimal("0.50")
    assert order.trader == trader_http.client.user and order.desk == "integration"
    assert Execution.objects.filter(order=order).count() == 1
    assert worker.stats.duplicates == 1
    # the gate decided it (the risk.decision with every check), once
    decisions = [decode(bytes(r.message)) for r in Outbox.objects.filter(event_type="risk.decision")]
    assert [d.payload.client_order_id for d in decisions] == ["API-ORD-1"]
    assert decisions[0].payload.approved and len(decisions[0].payload.checks) >= 10
    actions = list(
        AuditRecord.objects.filter(object_type="order", object_id="API-ORD-1").values_list("action", flat=True)
    )
    assert actions.count("order.requested") == 1 and len(actions) == len(set(actions)), actions
    # a retry now answers with the order, and publishes nothing
    response = trader_http.post("/api/v1/orders/", _body(account), format="json")
    assert response.status_code == 200 and response.json()["status"] == "FILLED"
    assert response.json()["order"]["trader"] == trader_http.client.user.username
    assert len(_requests()) == 1
    assert trader_http.get("/api/v1/order-requests/API-ORD-1/").json()["order"]["status"] == "FILLED"
    assert trader_http.get("/api/v1/orders/API-ORD-1/").json()["status"] == "FILLED"
    assert audit_verify().ok


def test_an_api_order_that_breaks_a_limit_is_refused_by_the_gate_and_recorded(instrument, account, trader_http):
    body = _body(account, client_order_id="API-BIG", quantity="5.00")
    assert trader_http.post("/api/v1/orders/", body, format="json").status_code == 202
    worker = _worker(instrument, account, max_position_lots=Decimal(1))
    worker.handle(decode(bytes(_requests()[0].message)))
    order = Order.objects.get(client_order_id="API-BIG")
    assert order.status == OrderStatus.REJECTED and "risk.max_position" in order.reject_reason
    assert not Execution.objects.filter(order=order).exists()
    answer = trader_http.post("/api/v1/orders/", body, format="json").json()
    assert answer["status"] == "REJECTED" and "risk.max_position" in answer["order"]["reject_reason"]


def test_a_worker_that_does_not_trade_the_account_leaves_the_request_alone(instrument, account, trader_http):
    from trading.models import TradingAccount

    other = TradingAccount.objects.create(
        name="Other", mt5_login=7000002, mt5_server="test-server", firm_lei=account.firm_lei, client_id="C-2"
    )
    trader_http.post("/api/v1/orders/", _body(other, client_order_id="API-OTHER"), format="json")
    worker = _worker(instrument, account)
    assert worker.handle(decode(bytes(_requests()[0].message))) == []
    assert not Order.objects.filter(client_order_id="API-OTHER").exists()


def test_a_replaying_worker_takes_a_request_at_the_replayed_time(instrument, account, trader_http):
    """A request is received on the wall clock; a replay's clock must not jump to it (the
    replay's later records would carry today's date), and the order carries the market time."""
    assert trader_http.post("/api/v1/orders/", _body(account, client_order_id="API-REPLAY"), format="json")
    clock = ReplayClock()
    worker = make_worker(
        paper_broker(instrument, clock=clock), account, limits=RiskLimits(duplicate_window_ms=None), clock=clock
    ).start()
    worker.handle(tick(at=T0))
    worker.handle(decode(bytes(_requests()[0].message)))
    assert clock.now() == T0
    order = Order.objects.get(client_order_id="API-REPLAY")
    assert order.status == OrderStatus.FILLED and order.created_at == T0
    assert worker.risk.breakers.for_account(account.pk).state(T0) is BreakerState.CLOSED


@pytest.mark.kafka
def test_on_kafka_exactly_once_when_the_request_is_retried(instrument, account, trader_http, kafka_bus):
    from tradeops.outbox.relay import OutboxRelay

    for _ in range(3):
        trader_http.post("/api/v1/orders/", _body(account, client_order_id="API-KAFKA"), format="json")
    relay = OutboxRelay(bus=kafka_bus, batch_size=10)
    assert relay.drain(timeout=30) == 1
    assert relay.drain(timeout=2) == 0
    seen = []
    with kafka_bus.subscribe([Topic.TRADING], f"check-{uuid.uuid4()}") as sub:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            seen += [r for r in sub.poll(100, timeout=0.5) if r.event.type == "order.requested"]
        time.sleep(1)
        seen += [r for r in sub.poll(100, timeout=1) if r.event.type == "order.requested"]
    assert [r.event.payload.client_order_id for r in seen] == ["API-KAFKA"]
    assert seen[0].key == str(account.pk)  # keyed by account: the worker that trades it, in order
