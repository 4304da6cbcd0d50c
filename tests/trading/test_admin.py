"""Admin pages render for a staff user, with their filters and search."""

from decimal import Decimal as D

import pytest
from django.urls import reverse

from trading.orders.plan import FillDraft
from trading.orders.services import execution_record, order_create, order_transition

# model -> text its changelist must show
PAGES = {
    "instrument": b"EURUSD",
    "tradingaccount": b"7000001",
    "order": b"ADM-1",
    "execution": b"ADM-D1",
    "position": b"EURUSD",
}


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "a-long-test-password")
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("model", PAGES)
def test_changelists_render_with_filters_and_search(staff_client, account, instrument, model):
    order, _ = order_create(client_order_id="ADM-1", account=account, instrument=instrument, side="BUY", quantity=D(1))
    order_transition(order=order, to="RISK_APPROVED")
    order_transition(order=order, to="SUBMITTED")
    fill = FillDraft(broker_deal_id="ADM-D1", quantity=D(1), price=D("1.1"), executed_at=order.created_at)
    execution_record(order=order, fill=fill)
    url = reverse(f"admin:trading_{model}_changelist")
    response = staff_client.get(url)
    assert response.status_code == 200
    assert PAGES[model] in response.content
    searched = staff_client.get(url, {"q": PAGES[model].decode()})
    assert searched.status_code == 200 and PAGES[model] in searched.content


@pytest.mark.django_db
def test_orders_are_read_only_in_the_admin(staff_client, account, instrument):
    order, _ = order_create(client_order_id="RO-1", account=account, instrument=instrument, side="BUY", quantity=D(1))
    assert staff_client.get(reverse("admin:trading_order_add")).status_code == 403
    response = staff_client.get(reverse("admin:trading_order_change", args=[order.pk]))
    assert response.status_code == 200 and b"Save" not in response.content
