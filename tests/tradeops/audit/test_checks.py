"""``manage.py check --deploy`` warns when a pooler or proxy may have changed the database's
address under its checkpoints (AUDIT_CHECKPOINT_DATABASE unset, the newest checkpoint of this
engine at another host or port). A warning only: audit_verify decides as before."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from tests.tradeops.audit.test_checkpoint import FIRST_RUN, _signed_checkpoint
from tradeops.audit.checkpoint import audit_checkpoint_create
from tradeops.audit.checks import audit_checkpoint_database_pinned
from tradeops.audit.verify import audit_verify

pytestmark = pytest.mark.django_db(transaction=True)


def _before_the_pooler() -> str:
    """This database as its checkpoints named it before a pooler was put in front of it."""
    return f"{connection.vendor}://db-primary.internal:5432/{connection.settings_dict['NAME']}"


def test_a_checkpoint_at_another_host_is_warned_about_and_nothing_else_changes(chain, audit_checkpoint_dir, capsys):
    before = _before_the_pooler()
    _signed_checkpoint(audit_checkpoint_dir, sequence=10, hash=chain[9].hash, database=before)
    (warning,) = audit_checkpoint_database_pinned(None)
    assert warning.id == "tradeops.audit.W001"
    assert "db-primary.internal:5432" in warning.msg and "AUDIT_CHECKPOINT_DATABASE is not set" in warning.msg
    assert f"AUDIT_CHECKPOINT_DATABASE={before}" in warning.hint
    call_command("check", "--deploy", "--tag", "audit")
    assert "tradeops.audit.W001" in capsys.readouterr().err
    # a warning, never an adoption by itself: verification decides from the chain as before (here
    # the old checkpoint signs record 10 of this chain, so it is adopted by audit_verify's own rule)
    report = audit_verify()
    assert report.ok and [s.role for s in report.checkpoint_sources] == ["adopted"]


def test_a_cut_chain_behind_a_new_address_is_still_named(chain, audit_checkpoint_dir):
    _signed_checkpoint(audit_checkpoint_dir, sequence=10, hash="ab" * 32, database=_before_the_pooler())
    assert len(audit_checkpoint_database_pinned(None)) == 1
    assert not audit_verify().ok  # nothing of this chain vouched for: still a finding


def test_no_warning_when_pinned_anchored_here_or_only_another_engine(chain, audit_checkpoint_dir, settings):
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="ab" * 32, database=FIRST_RUN)
    assert audit_checkpoint_database_pinned(None) == []  # a SQLite first run: no host to compare
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=_before_the_pooler())
    settings.AUDIT_CHECKPOINT_DATABASE = _before_the_pooler()
    assert audit_checkpoint_database_pinned(None) == []  # pinned: the operator decided
    settings.AUDIT_CHECKPOINT_DATABASE = ""
    assert len(audit_checkpoint_database_pinned(None)) == 1
    audit_checkpoint_create()  # this database's own, newer: anchored under its address
    assert audit_checkpoint_database_pinned(None) == []
