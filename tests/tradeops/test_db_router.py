"""The read replica router (tradeops/core/db_router.py) with a real second database alias,
``replica``, a separate connection to the same test database (as a streaming replica would be):
read-only selectors read from it outside transactions; a read inside a transaction (one that
decides a write), primary_reads(), and a deployment without a replica read the primary; writes
always go to the primary."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from tradeops.core.db_router import REPLICA, primary_reads, read_alias
from trading.models import Position
from trading.selectors import position_get, position_list

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@pytest.fixture(scope="module", autouse=True)
def replica_alias(django_db_setup, django_db_blocker):
    """A second alias on its own connection to the test database (a TEST MIRROR of default, as
    settings make it from DATABASE_REPLICA_URL). Added before each test case sets up its allowed
    aliases (module scope runs first), removed after the module."""
    config = copy.deepcopy(connections["default"].settings_dict)
    config["TEST"] = {**config.get("TEST", {}), "MIRROR": "default"}
    # connections.settings is settings.DATABASES itself: give the handler its own copy, so the
    # router (which reads settings.DATABASES) sees a replica only where a test configures one.
    original = connections.settings
    connections.settings = {**original, REPLICA: config}
    yield config
    with django_db_blocker.unblock():
        connections[REPLICA].close()
    del connections[REPLICA]
    connections.settings = original


@pytest.fixture
def replica(replica_alias, settings):
    """The replica configured (what DATABASE_REPLICA_URL does): the router now uses it."""
    settings.DATABASES = {**settings.DATABASES, REPLICA: replica_alias}  # warns: DATABASES is complex
    return connections[REPLICA]


@pytest.fixture
def position(instrument, account):
    return Position.objects.create(
        account=account, instrument=instrument, net_quantity=Decimal("1.5"), updated_at=datetime.now(UTC)
    )


def test_read_only_selectors_read_the_replica_outside_a_transaction(replica, position):
    assert replica is not connections["default"]
    with CaptureQueriesContext(replica) as on_replica, CaptureQueriesContext(connections["default"]) as on_primary:
        rows = list(position_list(open_only=True))
    assert [p.pk for p in rows] == [position.pk] and rows[0]._state.db == REPLICA
    assert len(on_replica.captured_queries) == 1 and not on_primary.captured_queries


def test_a_read_inside_a_transaction_decides_a_write_and_reads_the_primary(replica, position):
    with transaction.atomic(), CaptureQueriesContext(replica) as on_replica:
        qs = position_list()
        assert qs.db == "default"
        row = qs.select_for_update().get(pk=position.pk)
        row.net_quantity = Decimal(2)
        row.save()
    assert not on_replica.captured_queries


def test_primary_reads_and_unmarked_selectors_read_the_primary(replica, position):
    with primary_reads():
        assert position_list().db == "default"
    assert read_alias() == "default"  # outside a read-only selector
    with CaptureQueriesContext(replica) as on_replica:
        assert position_get(account=position.account, instrument=position.instrument) == position
    assert not on_replica.captured_queries


def test_an_object_read_from_the_replica_is_written_to_the_primary(replica, position):
    [row] = position_list()
    assert row._state.db == REPLICA
    row.net_quantity = Decimal(3)
    with CaptureQueriesContext(replica) as on_replica:
        row.save()
    assert not on_replica.captured_queries
    with primary_reads():
        assert Position.objects.get(pk=position.pk).net_quantity == Decimal(3)


def test_without_a_replica_everything_reads_the_primary(position):
    from django.conf import settings

    assert REPLICA not in settings.DATABASES
    assert position_list().db == "default" and list(position_list()) == [position]


def test_migrations_never_run_on_the_replica():
    from tradeops.core.db_router import ReplicaRouter

    router = ReplicaRouter()
    assert router.allow_migrate(REPLICA, "trading") is False
    assert router.allow_migrate("default", "trading") is None
    assert router.db_for_write(Position) == "default"
