"""The audit verification over the integration API names no database address (an integration
token with the audit scope needs no host, port or name of the infrastructure: reconnaissance for
whoever steals it), and says whose checkpoints it compared, adopted or skipped."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.tradeops.audit.test_checkpoint import FIRST_RUN, OLD_HOME, _signed_checkpoint
from tradeops.audit.checkpoint import audit_checkpoint_create, database_identity, database_label
from tradeops.audit.services import audit_append_many
from tradeops.core.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
def test_the_verification_names_no_address_and_lists_whose_checkpoints(
    role, roles, issue_token, bearer, audit_checkpoint_dir
):
    from tests.tradeops.audit.conftest import entries

    chain = audit_append_many(entries=entries(10))
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="ab" * 32, database=FIRST_RUN)
    audit_checkpoint_create()
    token, _ = issue_token(role)  # an integration token with the audit scope; an admin's too
    response = bearer(token).get("/api/v1/audit/verification/")
    assert response.status_code == 200, response.content
    raw = response.content.decode()
    config = connection.settings_dict
    for address in (database_identity(), f"{config['HOST']}:{config['PORT']}", config["NAME"], OLD_HOME, FIRST_RUN):
        assert address not in raw, address
    body = response.json()
    assert body["ok"] is True and body["database"] == database_label(database_identity())
    assert body["checkpoints"] == 2 and body["skipped_checkpoints"] == 1
    sources = [(s["role"], s["database"], s["count"], s["compared"]) for s in body["checkpoint_sources"]]
    assert sources == [
        ("this", database_label(database_identity()), 1, True),
        ("adopted", database_label(OLD_HOME), 1, True),
        ("skipped", database_label(FIRST_RUN), 1, False),
    ]
    adopted = body["checkpoint_sources"][1]
    assert (adopted["first_sequence"], adopted["last_sequence"]) == (5, 5)
    assert adopted["newest_created_at"].endswith("Z")
