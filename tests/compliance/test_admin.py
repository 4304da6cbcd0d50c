"""Rules are managed in the admin: a save proposes a version, a second officer approves it."""

from __future__ import annotations

from compliance.models import ComplianceRule, RuleStatus

URL = "/admin/compliance/compliancerule/"


def _form(**over):
    data = {
        "code": "max-volume",
        "rule_type": "max_order_volume",
        "scope": "firm",
        "account": "",
        "instrument": "",
        "algo_id": "",
        "parameters": '{"max_lots": "5"}',
        "change_reason": "initial limit",
    }
    data.update(over)
    return data


def test_admin_add_change_and_approve(client, alice, bob):
    client.force_login(alice)
    response = client.post(f"{URL}add/", _form())
    assert response.status_code == 302, response.content[:2000]
    v1 = ComplianceRule.objects.get(code="max-volume")
    assert v1.status == RuleStatus.PENDING and v1.proposed_by == alice

    # alice cannot approve her own proposal (four eyes), bob can
    client.post(URL, {"action": "approve_selected", "_selected_action": [v1.pk]})
    assert ComplianceRule.objects.get(pk=v1.pk).status == RuleStatus.PENDING
    client.force_login(bob)
    client.post(URL, {"action": "approve_selected", "_selected_action": [v1.pk]})
    assert ComplianceRule.objects.get(pk=v1.pk).status == RuleStatus.ACTIVE

    # "changing" v1 proposes v2 and leaves v1 untouched
    response = client.post(f"{URL}{v1.pk}/change/", {"parameters": '{"max_lots": "3"}', "change_reason": "tighter"})
    assert response.status_code == 302
    versions = list(ComplianceRule.objects.filter(code="max-volume").order_by("version"))
    assert [(r.version, r.status, r.parameters) for r in versions] == [
        (1, RuleStatus.ACTIVE, {"max_lots": "5"}),
        (2, RuleStatus.PENDING, {"max_lots": "3"}),
    ]


def test_admin_refuses_bad_parameters_naming_the_field(client, alice):
    client.force_login(alice)
    response = client.post(f"{URL}add/", _form(parameters='{"max_lots": "-1"}'))
    assert response.status_code == 200
    assert b"max_lots" in response.content
    assert not ComplianceRule.objects.exists()


def test_the_admins_message_names_the_version_just_proposed(client, alice, bob):
    """Adding a rule whose code exists proposes its next version: the admin's own "was added"
    message named the form's unsaved v1 [pending] while v2 was proposed and v1 was in force."""
    client.force_login(alice)
    client.post(f"{URL}add/", _form())
    v1 = ComplianceRule.objects.get(code="max-volume")
    client.force_login(bob)
    client.post(URL, {"action": "approve_selected", "_selected_action": [v1.pk]})
    client.force_login(alice)
    response = client.post(f"{URL}add/", _form(parameters='{"max_lots": "3"}', change_reason="tighter"), follow=True)
    said = [str(m) for m in response.context["messages"]][-2:]  # this request's (the earlier ones unread)
    assert any("max-volume v2 proposed" in m for m in said), said
    assert not any("v1" in m for m in said), said
    assert any("max-volume v2 (" in m and "[pending]" in m for m in said), said
