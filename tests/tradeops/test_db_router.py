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


# ---------------------------------------------------------------- read your writes (middleware)


def _positions_seen(request):
    """A screen's read: a ``@read_only`` selector, answered with the alias it read."""
    from django.http import JsonResponse

    rows = list(position_list())
    return JsonResponse({"db": rows[0]._state.db if rows else None, "n": len(rows)})


def _write(request):
    from django.http import JsonResponse

    rows = list(position_list())  # a form's view reads before and after it writes
    return JsonResponse({"db": rows[0]._state.db if rows else None})


urlpatterns = []  # filled below: django.urls needs the views defined first


def _urls():
    from django.urls import path

    urlpatterns[:] = [path("seen/", _positions_seen), path("write/", _write)]


_urls()


@pytest.fixture
def postgresql():
    if connections["default"].vendor != "postgresql":
        pytest.skip("the replica's WAL position is PostgreSQL's (scripts/test.sh)")


@pytest.fixture
def screens(settings, replica, postgresql):
    settings.ROOT_URLCONF = __name__
    from django.test import Client

    return Client()


def test_a_write_leaves_the_primarys_position_and_reads_the_primary_throughout(screens, position):
    from tradeops.core.db_router import WROTE_AT_COOKIE

    response = screens.post("/write/")
    assert response.json()["db"] == "default"  # the writing request reads what it writes on
    lsn = response.cookies[WROTE_AT_COOKIE]
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT %s::pg_lsn <= pg_current_wal_lsn()", [lsn.value])
        assert cursor.fetchone()[0]
    assert lsn["httponly"] and lsn["max-age"] == 300


def test_the_next_page_reads_the_primary_until_the_replica_has_replayed_the_write(screens, position, monkeypatch):
    """The case page after "Start review" read a replica a moment behind (wip/walk49): status
    New and "Start review" offered again. Until the replica has replayed the write, the
    browser's pages read the primary; then the replica again, and the cookie goes."""
    from tradeops.core import db_router

    screens.post("/write/")
    assert screens.get("/seen/").json()["db"] == REPLICA  # the test's replica is no standby: NULL, caught up
    assert screens.cookies["tradeops_wrote_at"].value == ""  # deleted once caught up

    screens.post("/write/")
    replayed = {"yes": False}
    monkeypatch.setattr(db_router, "replica_has_replayed", lambda lsn: replayed["yes"])
    assert screens.get("/seen/").json()["db"] == "default"
    assert screens.get("/seen/").json()["db"] == "default"  # still behind: still the primary
    replayed["yes"] = True
    assert screens.get("/seen/").json()["db"] == REPLICA


def test_a_replica_that_cannot_answer_is_taken_as_behind(replica, postgresql):
    from tradeops.core.db_router import replica_has_replayed

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        now = cursor.fetchone()[0]
    assert replica_has_replayed(now)  # not a standby: no replay position, not behind
    assert not replica_has_replayed("not an lsn")  # an error on the replica: read the primary


def test_without_a_cookie_or_a_replica_nothing_changes(settings, position):
    settings.ROOT_URLCONF = __name__
    from django.test import Client

    client = Client()
    assert client.get("/seen/").json()["db"] == "default"
    response = client.post("/write/")
    assert "tradeops_wrote_at" not in response.cookies
