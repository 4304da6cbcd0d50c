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


def _spoofing_v1_in_force(client, alice, bob):
    """A spoofing rule whose v1 (in force) sets two of its parameters."""
    client.force_login(alice)
    form = _form(code="spoof-firm", rule_type="spoofing", parameters='{"min_size_ratio": 4.0, "max_lead_s": 20.0}')
    assert client.post(f"{URL}add/", form).status_code == 302
    v1 = ComplianceRule.objects.get(code="spoof-firm")
    client.force_login(bob)
    client.post(URL, {"action": "approve_selected", "_selected_action": [v1.pk]})
    v1.refresh_from_db()
    assert v1.status == RuleStatus.ACTIVE
    client.force_login(alice)
    return v1


def test_a_proposal_starts_from_the_parameters_of_the_version_in_force(client, alice, bob):
    """Changing one threshold is changing one value: the change form and ``add/?code=`` are
    prefilled with the version in force's parameters, and the help text gives every parameter's
    value or default."""
    import json
    import re
    from html import unescape

    v1 = _spoofing_v1_in_force(client, alice, bob)
    for page in (client.get(f"{URL}{v1.pk}/change/"), client.get(f"{URL}add/?code=spoof-firm")):
        text = unescape(page.content.decode())
        assert page.status_code == 200
        prefilled = re.search(r'<textarea name="parameters"[^>]*>(.*?)</textarea>', text, re.S).group(1)
        assert json.loads(prefilled) == {"min_size_ratio": 4.0, "max_lead_s": 20.0}
        assert "starting from v1's (in force)" in text
        assert "min_size_ratio = 4.0 (set)" in text and "cancel_within_s: default 5.0" in text
    add = unescape(client.get(f"{URL}add/?code=spoof-firm").content.decode())
    assert '<option value="spoofing" selected>' in add
    # the code as an officer may type it is the rule the service supersedes (it stores codes
    # lower-case with hyphens): prefilled from that rule's version in force too
    typed = unescape(client.get(f"{URL}add/?code=SPOOF_firm").content.decode())
    assert "starting from v1's (in force)" in typed and '<option value="spoofing" selected>' in typed


def test_a_proposal_leaving_out_a_parameter_in_force_is_refused_and_null_returns_it_to_its_default(client, alice, bob):
    """A proposal is the new version's whole parameter set: leaving out a parameter the version in
    force sets would let it fall back to its default unseen, so it is refused, naming it; null
    returns it to its default on purpose. Four eyes unchanged: the proposer cannot approve."""
    from html import unescape

    v1 = _spoofing_v1_in_force(client, alice, bob)
    refused = client.post(f"{URL}{v1.pk}/change/", {"parameters": '{"min_size_ratio": 5.0}', "change_reason": "r"})
    text = unescape(refused.content.decode())
    assert refused.status_code == 200
    assert (
        "max_lead_s is left out: the version in force sets it to 20.0; a proposal is the whole parameter set,"
        " so keep it, or set it to null to return it to its default (its default: 30.0)"
    ) in text
    assert ComplianceRule.objects.filter(code="spoof-firm").count() == 1

    done = client.post(
        f"{URL}{v1.pk}/change/", {"parameters": '{"min_size_ratio": 5.0, "max_lead_s": null}', "change_reason": "r"}
    )
    assert done.status_code == 302
    v2 = ComplianceRule.objects.get(code="spoof-firm", version=2)
    assert v2.status == RuleStatus.PENDING and v2.parameters == {"min_size_ratio": 5.0}
    client.post(URL, {"action": "approve_selected", "_selected_action": [v2.pk]})
    assert ComplianceRule.objects.get(pk=v2.pk).status == RuleStatus.PENDING  # alice proposed it
    client.force_login(bob)
    client.post(URL, {"action": "approve_selected", "_selected_action": [v2.pk]})
    assert ComplianceRule.objects.get(pk=v2.pk).status == RuleStatus.ACTIVE


def test_a_proposal_naming_an_unknown_parameter_or_a_value_of_the_wrong_type_is_refused_clearly(client, alice, bob):
    from html import unescape

    v1 = _spoofing_v1_in_force(client, alice, bob)
    cases = [
        (
            '{"min_size_ratio": 5.0, "max_lead_s": 20.0, "min_size_rati": 5}',
            "unknown parameter 'min_size_rati' for a spoofing rule; its parameters: enabled, ",
        ),
        ('{"min_size_ratio": "5", "max_lead_s": 20.0}', 'min_size_ratio takes a number, not "5"'),
        (
            '{"min_size_ratio": 5.0, "max_lead_s": 20.0, "levels_as_placed": 1}',
            "levels_as_placed takes true or false, not 1",
        ),
        ("[4.0]", "the parameters must be a JSON object of name: value"),
        # a number out of its bounds is a number: refused by the parameter's bound, not as the wrong type
        ('{"min_size_ratio": -1, "max_lead_s": 20.0}', "Expected `float` > 0.0 - at `$.min_size_ratio`"),
    ]
    for parameters, said in cases:
        response = client.post(f"{URL}{v1.pk}/change/", {"parameters": parameters, "change_reason": "r"})
        page = unescape(response.content.decode())
        assert response.status_code == 200 and said in page, parameters
        assert "takes a number, not -1" not in page
    # a pre-trade rule's: a decimal as text is its usual form; text that is no number is refused
    client.post(f"{URL}add/", _form())
    response = client.post(f"{URL}add/", _form(code="mv2", parameters='{"max_lots": true}'))
    page = unescape(response.content.decode())
    assert 'max_lots takes a decimal number (5, 0.5 or "0.5"), not true' in page
    assert "missing required field" not in page  # the model's check on the unsaved {} is not repeated
    assert ComplianceRule.objects.filter(code="spoof-firm").count() == 1
    assert not ComplianceRule.objects.filter(code="mv2").exists()


def test_a_second_change_while_one_is_pending_is_refused_on_the_form_not_a_server_error(client, alice, bob):
    """The walk of 2026-12-06: "changing" a rule with a change already pending raised the
    service's ``rule_change_pending`` out of the admin's save: a server error page."""
    client.force_login(alice)
    client.post(f"{URL}add/", _form())
    v1 = ComplianceRule.objects.get(code="max-volume")
    client.force_login(bob)
    client.post(URL, {"action": "approve_selected", "_selected_action": [v1.pk]})
    client.post(f"{URL}{v1.pk}/change/", {"parameters": '{"max_lots": "3"}', "change_reason": "tighter"})
    client.force_login(alice)
    url = f"{URL}{v1.pk}/change/"
    client.get(URL)  # shows (and so clears) the messages of the steps above
    response = client.post(url, {"parameters": '{"max_lots": "2"}', "change_reason": "tighter still"})
    assert response.status_code == 302 and response["Location"] == url
    said = [str(m) for m in response.wsgi_request._messages]
    assert any("already has a change pending" in m for m in said), said
    assert not any("successfully" in m for m in said), said
    assert ComplianceRule.objects.filter(code="max-volume").count() == 2
