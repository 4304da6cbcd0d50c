"""Alerts and cases: dedupe, grouping, workflow, four-eyes dispositions, visibility, STOR draft."""

from __future__ import annotations

import pytest

from compliance import services
from compliance.models import Alert, Case, CaseStatus
from compliance.selectors import alerts_visible_to, case_stor_draft, cases_visible_to
from tests.compliance.helpers import alert_dict
from tradeops.core.errors import PermissionDenied


def test_duplicates_merge_and_related_alerts_group_into_one_case(db):
    services.alerts_record(alerts=[alert_dict(), alert_dict()])
    services.alerts_record(alerts=[alert_dict(alert_type="layering", order_ids=["o3"])])
    services.alerts_record(alerts=[alert_dict(owner="OWN2", account="ACC2", order_ids=["o9"])])
    assert Alert.objects.count() == 3
    assert Alert.objects.get(alert_type="spoofing", owner="OWN1").occurrences == 2
    cases = {c.subject_owner: c for c in Case.objects.all()}
    assert set(cases) == {"OWN1", "OWN2"}
    assert cases["OWN1"].alerts.count() == 2 and cases["OWN1"].alert_types == ["layering", "spoofing"]
    assert cases["OWN1"].reference.startswith("CASE-")


def _reviewed_case(officer):
    services.alerts_record(alerts=[alert_dict()])
    case = Case.objects.get()
    services.case_review_start(case=case, officer=officer)
    return case


def test_workflow_to_closed_needs_a_second_officer(alice, bob):
    case = _reviewed_case(alice)
    services.case_escalate(case=case, officer=alice, note="size 10x the fill, three repeats")
    services.case_disposition_request(case=case, officer=alice, action="close", reason="hedging of a client order")
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED and case.pending_action == "close"

    with pytest.raises(PermissionDenied) as exc:  # alice is officer and risk manager: still one person
        services.case_disposition_approve(case=case, officer=alice)
    assert exc.value.code == "four_eyes"

    services.case_disposition_approve(case=case, officer=bob, note="agree")
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED and case.outcome_reason == "hedging of a client order"
    assert [a.action for a in case.actions.all()] == [
        "opened",
        "alert_added",
        "review_started",
        "escalated",
        "close_requested",
        "close_approved",
    ]


def test_reporting_and_invalid_transitions(alice, bob):
    services.alerts_record(alerts=[alert_dict()])
    case = Case.objects.get()
    with pytest.raises(services.InvalidCaseTransition):  # a new case must be reviewed first
        services.case_disposition_request(case=case, officer=alice, action="report", reason="x")
    services.case_review_start(case=case, officer=alice)
    with pytest.raises(services.ComplianceError):
        services.case_disposition_request(case=case, officer=alice, action="close", reason="  ")
    services.case_disposition_request(case=case, officer=bob, action="report", reason="STOR: spoofing pattern")
    services.case_disposition_approve(case=case, officer=alice)
    case.refresh_from_db()
    assert case.status == CaseStatus.REPORTED
    with pytest.raises(services.InvalidCaseTransition):
        services.case_escalate(case=case, officer=alice, note="too late")


def test_nothing_tips_off_a_trader(alice, trader, make_user):
    from tradeops.core.roles import Role

    services.alerts_record(alerts=[alert_dict()])
    assert alerts_visible_to(user=trader).count() == 0
    assert cases_visible_to(user=trader).count() == 0
    auditor = make_user("audrey", Role.AUDITOR)
    assert alerts_visible_to(user=auditor).count() == 1
    with pytest.raises(PermissionDenied):
        case_stor_draft(case=Case.objects.get(), user=auditor)


def test_trader_cannot_see_compliance_admin(client, alice, trader):
    services.alerts_record(alerts=[alert_dict()])
    client.force_login(trader)
    assert client.get("/admin/compliance/case/").status_code in (302, 403)
    assert client.get("/admin/compliance/alert/").status_code in (302, 403)
    client.force_login(alice)
    assert client.get("/admin/compliance/case/").status_code == 200


def test_stor_draft_has_the_2016_957_sections(alice, account, instrument):
    services.alerts_record(alerts=[alert_dict(account=str(account.pk), owner=account.beneficial_owner)])
    case = Case.objects.get()
    draft = case_stor_draft(case=case, user=alice)
    assert {k for k in draft if k.startswith("section_")} == {
        "section_1_reporting_entity",
        "section_2_transactions_and_orders",
        "section_3_nature_of_suspicion",
        "section_4_person_concerned",
        "section_5_additional_information",
    }
    assert draft["section_1_reporting_entity"]["lei"] == account.firm_lei
    assert draft["section_3_nature_of_suspicion"]["types"] == ["spoofing"]
    assert draft["section_4_person_concerned"]["accounts"][0]["client_id"] == "CLIENT-1"
    assert draft["section_3_nature_of_suspicion"]["reasons_for_suspicion"][0]["evidence"] == {"size_ratio": 10}


def test_stor_draft_of_a_surveilled_files_accounts_names_the_firm_by_its_reporting_lei(alice, account):
    """A surveilled file's accounts are not in the system of record (no account LEI to read):
    the reporting entity's LEI is still the firm's own, from its reporting-firm profile; without
    one, a person must state it."""
    from compliance.reports.configuration import reporting_firm_save

    services.alerts_record(alerts=[alert_dict(account="RET007", owner="C007")])
    case = Case.objects.get()
    assert case_stor_draft(case=case, user=alice)["section_1_reporting_entity"]["lei"] == "TO COMPLETE"
    reporting_firm_save(
        actor="test",
        reason="firm",
        executing_entity_lei=account.firm_lei,
        submitting_entity_lei=account.firm_lei,
        home_country="CY",
        header_to="CY",
    )
    assert case_stor_draft(case=case, user=alice)["section_1_reporting_entity"]["lei"] == account.firm_lei


def test_recorded_alerts_and_case_actions_are_audited(alice):
    from tradeops.audit.models import AuditRecord

    services.alerts_record(alerts=[alert_dict()])
    services.case_review_start(case=Case.objects.get(), officer=alice)
    actions = list(AuditRecord.objects.order_by("sequence").values_list("action", "actor_id"))
    assert actions == [("alert.recorded", "surveillance"), ("case.review_started", "alice")]


def test_a_step_the_admin_refuses_is_not_reported_as_changed(client, alice):
    """The walk of 2026-12-06: a four-eyes refusal on the case's admin page read "Refused" and
    "The case ... was changed successfully" at once; now the page comes back with the refusal."""
    import re

    case = _reviewed_case(alice)
    services.case_disposition_request(case=case, officer=alice, action="close", reason="no pattern")
    status = Case.objects.get(pk=case.pk).status
    client.force_login(alice)
    url = f"/admin/compliance/case/{case.pk}/change/"
    page = client.get(url).content.decode()
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    response = client.post(url, {**data, "step": "approve", "note": "my own request"})
    assert response.status_code == 302 and response["Location"] == url
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any(case.reference in m for m in messages), messages
    assert not any("successfully" in m for m in messages), messages
    assert Case.objects.get(pk=case.pk).status == status
