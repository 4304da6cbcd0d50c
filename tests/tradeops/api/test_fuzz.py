"""Schema-driven fuzzing of every operation of the integration API (schemathesis).

Every operation of the published OpenAPI schema gets generated requests, valid ones and invalid
ones (``API_FUZZ_EXAMPLES`` each, default 8: bounded for CI; raise it locally), sent through the
real WSGI application with a token of a role the matrix allows, on top of a populated book. No
request may end in a 5xx, every refusal must carry the one error shape, and the audit trail's
chain must verify afterwards. ``API_FUZZ_SEED`` picks the examples (fixed by default, so CI is
repeatable; ``random`` for a new draw each run).
"""

from __future__ import annotations

import contextlib
import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.tradeops.api.endpoints import Ctx
from tradeops.audit.verify import audit_verify
from tradeops.core.roles import Role

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
SEED = os.environ.get("API_FUZZ_SEED", "20261203")


@contextlib.contextmanager
def _one_connection():
    """Serve requests on the test's own connection and transaction, as Django's test client does
    (a WSGI request otherwise closes a connection that is inside a transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
def test_fuzzing_every_operation_finds_no_server_error_and_leaves_the_chain_verified(
    book, person, make_api_client, tmp_path, settings
):
    from rest_framework.test import APIClient

    from tests.tradeops.api.conftest import token_request

    settings.AUDIT_EXPORT_DIR = str(tmp_path)
    ctx = Ctx(book=book, person=person, tmp_path=tmp_path)
    # something behind the ids the fuzzer will try: limits, a proposal, switches, alerts, cases, rules
    for make in (ctx.limit, ctx.proposal, ctx.switch, ctx.alert, ctx.case_pending_close, ctx.rule, ctx.digest_day):
        make()
    tokens = {}
    for role in Role:
        client, secret = make_api_client(role, rate="1000000/min")
        tokens[str(role)] = token_request(APIClient(), client, secret).json()["access_token"]

    failures: list[str] = []
    calls = []
    with _one_connection():
        app = get_wsgi_application()
        schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 39
        for operation in operations:
            token = tokens[operation.definition.raw["x-roles"][0]]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, token, failures, calls)
    assert not failures, "\n".join(failures[:20])
    assert len(calls) >= len(operations) * 2
    report = audit_verify()
    assert report.ok, str(report.problem)


def _fuzz(operation, mode, token: str, failures: list[str], calls: list[int]) -> None:
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=SEED != "random",
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        # each request on a savepoint of the test's transaction: a database error in one request
        # (itself a failure) must not abort the transaction under the next ones
        savepoint = transaction.savepoint()
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        calls.append(response.status_code)
        label = f"{operation.label} [{mode.value}] {case.path_parameters} {case.query} {case.body!r}"
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {label}: {response.text[:300]}")
        elif response.status_code >= 400:
            try:
                error = response.json().get("error", {})
            except ValueError:
                error = None
            if not isinstance(error, dict) or not {"code", "message"} <= set(error):
                failures.append(f"bad error shape {response.status_code} {label}: {response.text[:200]}")

    if SEED != "random":
        run = seed(int(SEED))(run)
    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # an operation without parameters or body has no invalid request to make
