"""The case workflow as a state machine: random sequences of steps by two officers (hypothesis)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance import services
from compliance.models import Case, CaseStatus
from tradeops.core.errors import ApplicationError

STEPS = st.lists(
    st.tuples(st.sampled_from(["review", "escalate", "close", "report", "approve", "send_back"]), st.integers(0, 1)),
    max_size=8,
)


def model_step(state, step, who):
    """The expected outcome: the new (status, pending, requester) or None when refused."""
    status, pending, by = state
    open_ = status in ("new", "in_review", "escalated")
    if step == "review":
        return ("in_review", pending, by) if status == "new" else None
    if step == "escalate":
        return ("escalated", pending, by) if status == "in_review" else None
    if step in ("close", "report"):
        return (status, step, who) if status in ("in_review", "escalated") and not pending else None
    if step == "approve":
        if not open_ or not pending or by == who:
            return None
        return ("closed" if pending == "close" else "reported", "", by)
    if step == "send_back":
        return (status, "", None) if open_ and pending else None
    raise AssertionError(step)


def _do(step, case, who):
    if step == "review":
        services.case_review_start(case=case, officer=who)
    elif step == "escalate":
        services.case_escalate(case=case, officer=who, note="n")
    elif step in ("close", "report"):
        services.case_disposition_request(case=case, officer=who, action=step, reason="r")
    elif step == "approve":
        services.case_disposition_approve(case=case, officer=who)
    else:
        services.case_disposition_reject(case=case, officer=who, note="n")


@pytest.mark.slow
@given(steps=STEPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_case_workflow_matches_its_model(alice, bob, steps):
    officers = [alice, bob]
    subject = uuid.uuid4().hex[:12]  # a fresh case for every example
    services.alerts_record(alerts=[{"alert_type": "spoofing", "owner": subject, "symbol": "E", "order_ids": [subject]}])
    case = Case.objects.get(subject_owner=subject)
    state = ("new", "", None)
    for step, i in steps:
        who = officers[i]
        expected = model_step(state, step, who.pk)
        try:
            _do(step, case, who)
            refused = False
        except ApplicationError:
            refused = True
        assert refused == (expected is None), (state, step, who.username)
        if expected is not None:
            state = expected
        case.refresh_from_db()
        assert (case.status, case.pending_action) == state[:2]
        if case.status in (CaseStatus.CLOSED, CaseStatus.REPORTED):
            assert case.decided_by_id != case.pending_by_id and case.outcome_reason == "r"
