"""Shared fixtures. Integration tests talk to the real services started by scripts/services.sh."""

from __future__ import annotations

import contextlib
import os
from decimal import Decimal

import pytest
from hypothesis import settings as hypothesis_settings

from tradeops.core.identifiers import lei_with_check_digits

# The tests share two cores with PostgreSQL, Kafka and other runs: a per-example time limit
# measures the machine's load, not the code (benchmarks under bench/ measure speed). Tests that
# set their own ``deadline`` keep it.
hypothesis_settings.register_profile("tradeops", deadline=None)
hypothesis_settings.load_profile("tradeops")


def service_unavailable(reason: str):
    """Skip a test whose real service is missing, on a developer's machine. In CI
    (``TRADEOPS_REQUIRE_SERVICES=1``, set by .ci/run) a missing service fails the test instead,
    so a broker that died cannot turn the integration tests into silent skips."""
    if os.environ.get("TRADEOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def requires_postgres():
    from django.db import connection

    if connection.vendor != "postgresql":
        service_unavailable("needs PostgreSQL: set DATABASE_URL (scripts/test.sh does)")


_OWNER_SESSION = contextlib.ExitStack()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Create and migrate the test database as the database owner (``MIGRATE_DATABASE_URL``):
    the runtime role may neither create a database nor own a table. Without an owner configured
    (SQLite, a single-role setup) nothing changes."""
    from tradeops.core.db_roles import database_owner

    _OWNER_SESSION.enter_context(database_owner())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The tests run as the runtime role, as the application does; Django's flush after a
    transactional test switches to the owner by itself (tradeops/core/management/commands/flush.py),
    and the test database is dropped by the owner at the end."""
    from tradeops.core.db_roles import database_owner

    with django_db_blocker.unblock():
        _OWNER_SESSION.close()
    yield
    from tradeops.api.cache import version_connections_close

    version_connections_close()  # the API's kept connections would keep the database from being dropped
    with django_db_blocker.unblock():
        _OWNER_SESSION.enter_context(database_owner())


def requires_roles():
    """The runtime role and the owner are distinct roles (PostgreSQL with MIGRATE_DATABASE_URL)."""
    from django.conf import settings

    requires_postgres()
    if not getattr(settings, "DATABASE_OWNER", None):
        service_unavailable("needs the owner role: set MIGRATE_DATABASE_URL (scripts/test.sh does)")


@contextlib.contextmanager
def owner_cursor():
    """A cursor on the test database as the database owner, on its own connection and in its own
    transaction (committed when the block ends): what someone holding the owner's password can
    do. It sees only committed rows, so tests using it are transactional."""
    import psycopg
    from django.conf import settings
    from django.db import connection

    owner = settings.DATABASE_OWNER
    db = connection.settings_dict
    with (
        psycopg.connect(
            host=owner["HOST"] or db["HOST"],
            port=owner["PORT"] or db["PORT"],
            user=owner["USER"],
            password=owner["PASSWORD"],
            dbname=db["NAME"],
        ) as conn,
        conn.cursor() as cursor,
    ):
        yield cursor


def scratch_table_ddl(*statements: str, tables: tuple[str, ...]) -> None:
    """DDL for a test's own scratch tables: as the owner when there is one (the runtime role may
    not create tables), then the runtime role gets the default rights on ``tables``."""
    from django.conf import settings
    from django.db import connection

    if not getattr(settings, "DATABASE_OWNER", None):
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        return
    from tradeops.core.db_roles import runtime_grants_sql

    with owner_cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        existing = [t for t in tables if cursor.execute("SELECT to_regclass(%s)", [t]).fetchone()[0]]
        if existing:
            cursor.execute(
                runtime_grants_sql(
                    role=settings.DATABASE_RUNTIME_ROLE, tables=existing, functions=[], quote=connection.ops.quote_name
                )
            )


@pytest.fixture(scope="session", autouse=True)
def _audit_checkpoints_outside_the_worktree(tmp_path_factory):
    """Processes the tests spawn write their audit checkpoints to a scratch directory."""
    os.environ["AUDIT_CHECKPOINT_DIR"] = str(tmp_path_factory.mktemp("audit-checkpoints"))


@pytest.fixture(autouse=True)
def audit_checkpoint_dir(settings, tmp_path_factory):
    """Each test has its own checkpoint storage: a checkpoint anchors one test's chain, and a
    later test's freshly flushed chain must not be checked against it."""
    location = tmp_path_factory.mktemp("checkpoints")
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_checkpoints": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture(autouse=True)
def execution_state_dir(settings, tmp_path_factory, monkeypatch):
    """Each test's execution workers keep their spool of unrecorded orders in a folder of the
    test's own (never the checkout's var/, where one test's entry would be another's restart),
    and so do the processes it spawns (they read the environment)."""
    location = tmp_path_factory.mktemp("execution-state")
    settings.EXECUTION_STATE_DIR = str(location)
    monkeypatch.setenv("EXECUTION_STATE_DIR", str(location))
    return location


@pytest.fixture(scope="session", autouse=True)
def _cache_namespace():
    """Keys of this run (API throttles, above all) in a namespace of their own: the Redis cache is
    shared with other runs and developers, and a counter left by one must not throttle another."""
    import copy
    import uuid

    from django.conf import settings
    from django.test import override_settings

    caches = copy.deepcopy(settings.CACHES)
    run = f"{os.environ.get('TEST_DATABASE_NAME', 'test')}:{uuid.uuid4().hex[:12]}"
    for config in caches.values():
        config["KEY_PREFIX"] = f"{config.get('KEY_PREFIX', '')}:{run}"
    # The processes a test starts (workers, stages, relays) share this run's namespace: otherwise
    # they read the default one, where an earlier test's reference rows (an instrument id from a
    # database since rolled back) outlive every generation bump made here.
    previous = os.environ.get("CACHE_KEY_PREFIX")
    os.environ["CACHE_KEY_PREFIX"] = caches["default"]["KEY_PREFIX"]
    try:
        with override_settings(CACHES=caches):
            yield
    finally:
        if previous is None:
            os.environ.pop("CACHE_KEY_PREFIX", None)
        else:
            os.environ["CACHE_KEY_PREFIX"] = previous


@pytest.fixture(scope="session", autouse=True)
def _trace_everything():
    """Tests sample every new trace (production's TRACING_SAMPLE_RATIO is 0.01); a test of the
    sampling itself sets its own ratio and this one back."""
    from tradeops.bus.tracing import sample_ratio_set

    sample_ratio_set(1.0)
    yield
    sample_ratio_set(None)


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """A command run in-process (run_execution_worker, collect) installs SIGTERM and SIGINT
    handlers; they are put back after each test, so later tests (and the server processes they
    fork, which inherit them) still stop on SIGTERM."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def _reference_caches_reset(_cache_namespace):
    """Each test starts with empty reference caches: its database was rolled back under them."""
    from tradeops.observability.cache import caches_reset

    caches_reset()
    yield


@pytest.fixture
def celery_eager():
    """Tasks run in this process when queued: the embedded run's shape (no broker), or a test
    playing the ``reports`` worker's job."""
    from tradeops.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def postgres(db):
    requires_postgres()


@pytest.fixture
def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture
def instrument(db):
    from trading.models import Instrument

    return Instrument.objects.create(
        symbol="EURUSD",
        description="Euro vs US Dollar",
        asset_class="FX",
        cfi_code="JFTXFC",
        currency="EUR",
        quote_currency="USD",
        digits=5,
        tick_size=Decimal("0.00001"),
        contract_size=Decimal(100000),
        min_volume=Decimal("0.01"),
        max_volume=Decimal("100"),
        volume_step=Decimal("0.01"),
        venue_mic="XOFF",
    )


@pytest.fixture
def account(db):
    from trading.models import TradingAccount

    return TradingAccount.objects.create(
        name="Test account",
        mt5_login=7000001,
        mt5_server="test-server",
        firm_lei=lei_with_check_digits("TRADEOPSTEST000000"),
        client_id="CLIENT-1",
        beneficial_owner="OWNER-1",
    )
