"""Rules as data: versioning keeps history, parameters validated on save, four eyes, audited."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from compliance import services
from compliance.models import ComplianceRule, RuleStatus
from compliance.selectors import compliance_rule_history, pretrade_rule_specs, surveillance_params_effective
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import PermissionDenied
from tradeops.outbox.models import Outbox


def _propose(user, **params):
    return services.compliance_rule_propose(
        proposed_by=user, rule_type="max_order_volume", parameters=params or {"max_lots": "5"}, reason="initial"
    )


def test_rule_versioning_keeps_every_version(alice, bob):
    v1 = _propose(alice)
    services.compliance_rule_approve(rule=v1, approver=bob)
    v2 = services.compliance_rule_propose(
        proposed_by=bob, code=v1.code, rule_type="max_order_volume", parameters={"max_lots": "2"}, reason="tighter"
    )
    # the change has not taken effect yet: v1 is still the one in force
    assert [s.params.max_lots for s in pretrade_rule_specs()] == [5]
    services.compliance_rule_approve(rule=v2, approver=alice)

    history = compliance_rule_history(code=v1.code)
    assert [(r.version, r.status) for r in history] == [(2, RuleStatus.ACTIVE), (1, RuleStatus.SUPERSEDED)]
    assert history[1].parameters == {"max_lots": "5"}  # the old content is kept, unchanged
    assert history[1].effective_to == history[0].effective_from
    assert [s.label for s in pretrade_rule_specs()] == [f"{v1.code}#{v2.pk}@v2"]


def test_four_eyes_cannot_be_bypassed_by_one_user_with_two_roles(alice):
    rule = _propose(alice)
    with pytest.raises(PermissionDenied) as exc:
        services.compliance_rule_approve(rule=rule, approver=alice)
    assert exc.value.code == "four_eyes"
    rule.refresh_from_db()
    assert rule.status == RuleStatus.PENDING and pretrade_rule_specs() == []


def test_four_eyes_is_enforced_by_the_database_too(alice):
    rule = _propose(alice)
    rule.decided_by = alice
    rule.status = RuleStatus.ACTIVE
    with pytest.raises(IntegrityError), transaction.atomic():
        rule.save()


def test_only_compliance_officers_propose_and_approve(alice, trader, make_user):
    from tradeops.core.roles import Role

    with pytest.raises(PermissionDenied):
        _propose(trader)
    risk = make_user("rick", Role.RISK_MANAGER)
    rule = _propose(alice)
    with pytest.raises(PermissionDenied):
        services.compliance_rule_approve(rule=rule, approver=risk)


def test_parameters_are_validated_on_save(alice):
    with pytest.raises(ValidationError) as exc:
        _propose(alice, max_lots="-3")
    assert "max_lots" in str(exc.value)
    with pytest.raises(ValidationError):
        ComplianceRule(
            code="x", rule_type="spoofing", parameters={"min_size_ratio": "lots"}, proposed_by=alice, proposed_at=None
        ).save()


@pytest.mark.parametrize("rule_type", ["momentum_ignition", "marking_the_close"])
def test_a_learned_gates_offline_candidate_recorder_is_no_rule_parameter(alice, rule_type):
    """``gate_candidates`` keeps every candidate on the detector without bound: in the streaming
    stage, a rule setting it would grow the process until it is killed. Refused by the service (so
    by the admin and the API) and on save, naming what it is for; false is allowed."""
    with pytest.raises(ValidationError, match="gate_candidates is for the offline fit of a learned gate"):
        services.compliance_rule_propose(
            proposed_by=alice, rule_type=rule_type, parameters={"gate_candidates": True}, reason="fit"
        )
    assert not ComplianceRule.objects.filter(rule_type=rule_type).exists()
    rule = services.compliance_rule_propose(
        proposed_by=alice, rule_type=rule_type, parameters={"gate_candidates": False}, reason="explicitly off"
    )
    assert rule.parameters == {"gate_candidates": False}


def test_one_change_pending_at_a_time(alice, bob):
    rule = _propose(alice)
    with pytest.raises(Exception, match="already has a change pending"):
        services.compliance_rule_propose(
            proposed_by=bob, code=rule.code, rule_type="max_order_volume", parameters={"max_lots": 1}
        )


def test_rule_changes_are_audited_and_published(alice, bob):
    rule = _propose(alice)
    services.compliance_rule_approve(rule=rule, approver=bob, note="ok")
    records = AuditRecord.objects.filter(object_type="compliance_rule").order_by("sequence")
    assert [r.action for r in records] == ["compliance_rule.proposed", "compliance_rule.approved"]
    approved = records.last()
    payload = json.loads(approved.payload)
    assert payload["before"]["status"] == "pending" and payload["after"]["status"] == "active"
    assert approved.actor_id == "bob"
    events = Outbox.objects.filter(event_type="compliance.rule_changed")
    assert events.count() == 1


def test_surveillance_rules_feed_the_engine(alice, bob):
    rule = services.compliance_rule_propose(
        proposed_by=alice, rule_type="best_execution_slippage", parameters={"max_adverse_bps": 2.5}
    )
    assert surveillance_params_effective() == {}
    services.compliance_rule_approve(rule=rule, approver=bob)
    assert surveillance_params_effective() == {"best_execution_slippage": {"max_adverse_bps": 2.5}}


def test_throttle_reset_command_is_audited_and_published(alice):
    from django.core.management import call_command

    from tradeops.core.clock import utcnow

    services.execution_throttle_trip_record(algo_id="algo-7", at=utcnow(), detail="3 executions within 60s")
    call_command("compliance_throttle_reset", "algo-7", "--user", "alice", "--reason", "checked the fills")
    assert Outbox.objects.filter(event_type="compliance.throttle_reset").count() == 1
    record = AuditRecord.objects.get(action="execution_throttle.reset")
    assert record.object_id == "algo-7" and record.actor_id == "alice"
    assert json.loads(record.payload)["before"] == {"disabled": True, "trip_recorded": True}


def test_throttle_reset_of_an_algorithm_not_throttled_is_refused_and_publishes_nothing(alice, capsys):
    """A mistyped or never-throttled algorithm: the officer is told nothing was re-enabled, and the
    trail does not say an algorithm was disabled that never was."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tradeops.core.clock import utcnow

    with pytest.raises(CommandError) as refused:
        call_command("compliance_throttle_reset", "NOALGO", "--user", "alice", "--reason", "typo")
    assert "'NOALGO' is not disabled by the execution throttle (it was never throttled)" in str(refused.value)
    assert "nothing re-enabled, nothing published" in str(refused.value) and "--unrecorded-trip" in str(refused.value)
    services.execution_throttle_trip_record(algo_id="algo-7", at=utcnow(), detail="3 executions within 60s")
    call_command("compliance_throttle_reset", "algo-7", "--user", "alice", "--reason", "checked the fills")
    with pytest.raises(CommandError) as again:
        call_command("compliance_throttle_reset", "algo-7", "--user", "alice", "--reason", "twice")
    assert "its last trip (" in str(again.value) and "was already reset at" in str(again.value)
    assert Outbox.objects.filter(event_type="compliance.throttle_reset").count() == 1
    assert AuditRecord.objects.filter(action="execution_throttle.reset").count() == 1

    # a worker throttled it before the surveillance stage recorded the trip: published on request
    call_command(
        "compliance_throttle_reset", "algo-9", "--user", "alice", "--reason", "stage behind", "--unrecorded-trip"
    )
    assert "WARNING: no trip was recorded for it" in capsys.readouterr().out
    assert Outbox.objects.filter(event_type="compliance.throttle_reset", key="algo-9").count() == 1
    record = AuditRecord.objects.get(action="execution_throttle.reset", object_id="algo-9")
    assert json.loads(record.payload)["before"] == {"disabled": True, "trip_recorded": False}


def test_instrument_scoped_surveillance_rules_reach_the_engine(alice, bob, instrument):
    from compliance.selectors import surveillance_instrument_params_effective

    rule = services.compliance_rule_propose(
        proposed_by=alice,
        rule_type="spoofing",
        scope="instrument",
        instrument=instrument,
        parameters={"min_size_ratio": 5},
    )
    services.compliance_rule_approve(rule=rule, approver=bob)
    assert surveillance_instrument_params_effective() == {"spoofing": {"EURUSD": {"min_size_ratio": 5}}}
