"""An auditor reads the admin and writes nothing through it (walked on 2026-12-06, wip/walk45).

The auditor's group holds every ``view_*`` permission and auditors are staff, so the admin shows
them every model it shows a compliance officer or a risk manager. Until this walk it also offered
them writes that then went through: "Add" on the validator configuration (saved, audited as
``user:auditor``: the thresholds every trading signal passes), the scheduled tasks' "Disable",
"Enable", "Toggle" and "Run" (the regulatory report schedules and the audit jobs), and the report
runs' "Validate", "Approve" and "Submit", the rule versions' "Approve" and "Reject" and the cases'
"Export STOR draft" (refused by the services, but offered). Every model
admin is checked here, so a model registered later is checked too."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from tradeops.core.roles import Role
from tradeops.core.services import roles_sync, user_ensure_with_role

pytestmark = pytest.mark.django_db

# The one action that only reads: a report file's download (the STOR draft's export is an
# officer's: the selector refuses an auditor, so the admin no longer offers it).
READ_ACTIONS = {"download"}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, role: Role):
    roles_sync()
    user, _ = user_ensure_with_role(username=username, role=role)
    return get_user_model().objects.get(pk=user.pk)


def test_every_admin_page_offers_an_auditor_no_add_change_delete_or_writing_action():
    auditor = _user("audrey", Role.AUDITOR)
    request = RequestFactory().get("/admin/")
    request.user = auditor
    offered = []
    for model, model_admin in admin.site._registry.items():
        name = f"{model._meta.app_label}.{model._meta.model_name}"
        if not model_admin.has_view_permission(request):
            continue
        if model_admin.has_add_permission(request):
            offered.append(f"{name}: add")
        if model_admin.has_change_permission(request):
            offered.append(f"{name}: change")
        if model_admin.has_delete_permission(request):
            offered.append(f"{name}: delete")
        for action in set(model_admin.get_actions(request)) - READ_ACTIONS:
            offered.append(f"{name}: action {action}")
    assert not offered, offered


def test_an_auditor_cannot_create_the_validator_configuration(client):
    from mlmodels.models import ValidatorConfig
    from tradeops.audit.models import AuditRecord

    client.force_login(_user("audrey", Role.AUDITOR))
    assert client.get("/admin/mlmodels/validatorconfig/add/").status_code == 403
    response = client.post(
        "/admin/mlmodels/validatorconfig/add/",
        {"min_confidence": "0.55", "psi_limit": "0.25", "drift_window": "500", "algo_id": "x", "enabled": "on"},
    )
    assert response.status_code == 403
    assert not ValidatorConfig.objects.exists()
    assert not AuditRecord.objects.filter(action="model.validator_config_changed").exists()


def test_the_validator_configuration_is_refused_by_the_service_to_a_person_who_may_not_change_it():
    from mlmodels.models import ValidatorConfig
    from mlmodels.services import validator_config_update
    from tradeops.core.errors import ApplicationError

    auditor = _user("audrey", Role.AUDITOR)
    with pytest.raises(ApplicationError) as refused:
        validator_config_update(actor="admin", user=auditor, min_confidence=0.6)
    assert refused.value.code == "permission_denied"
    assert "audrey" in str(refused.value) and "risk manager" in str(refused.value)
    assert not ValidatorConfig.objects.exists()
    risk = _user("rick", Role.RISK_MANAGER)
    assert validator_config_update(actor="admin", user=risk, min_confidence=0.6).min_confidence == 0.6


def test_a_risk_manager_may_still_create_the_validator_configuration(client):
    client.force_login(_user("rick", Role.RISK_MANAGER))
    assert client.get("/admin/mlmodels/validatorconfig/add/").status_code == 200


def test_an_auditor_cannot_disable_or_run_a_scheduled_task(client):
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    schedule = CrontabSchedule.objects.create(minute="30", hour="0")
    task = PeriodicTask.objects.create(name="audit-digest", task="tradeops.audit.tasks.audit_digest", crontab=schedule)
    client.force_login(_user("audrey", Role.AUDITOR))
    for action in ("disable_tasks", "toggle_tasks", "run_tasks"):
        client.post(
            "/admin/django_celery_beat/periodictask/",
            {"action": action, "_selected_action": [task.pk], "index": "0"},
        )
        task.refresh_from_db()
        assert task.enabled, action
    page = client.get("/admin/django_celery_beat/periodictask/").content.decode()
    assert "Disable selected tasks" not in page and "Run selected tasks" not in page


def test_report_run_steps_are_offered_to_compliance_officers_only():
    from compliance.reports.models import ReportRun

    run_admin = admin.site._registry[ReportRun]
    request = RequestFactory().get("/admin/reports/reportrun/")
    request.user = _user("audrey", Role.AUDITOR)
    assert set(run_admin.get_actions(request)) == {"download"}
    request.user = _user("olga", Role.COMPLIANCE_OFFICER)
    assert set(run_admin.get_actions(request)) == {"validate", "approve", "submit", "download"}


def test_an_auditor_reading_a_user_is_offered_no_password_reset(client):
    """Django's user page showed an auditor "Reset password" (and the hash's parameters); the
    button led to a 403."""
    auditor = _user("audrey", Role.AUDITOR)
    risk = _user("rick", Role.RISK_MANAGER)
    client.force_login(auditor)
    page = client.get(f"/admin/auth/user/{risk.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Reset password" not in text and "../password/" not in text and "pbkdf2" not in text
    assert "rick" in text
    admin_user = get_user_model().objects.create_superuser("adam", password="a-long-test-password-1")
    client.force_login(admin_user)
    assert "Reset password" in client.get(f"/admin/auth/user/{risk.pk}/change/").content.decode()
