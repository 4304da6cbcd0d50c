"""Core writers: roles and their permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from tradeops.core.roles import Role

# Which permission codenames each role gets. "view_*" means every view permission.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.AUDITOR: ["view_*"],
    Role.COMPLIANCE_OFFICER: ["view_*", "add_compliancerule", "change_compliancerule", "change_case", "change_alert"],
    Role.RISK_MANAGER: [
        "view_*",
        "add_risklimit",
        "change_risklimit",
        "change_killswitch",
        "add_killswitch",
        # model activation and validator thresholds (RTS 6: algorithm changes owned by risk)
        "change_modelversion",
        "change_validatorconfig",
    ],
    Role.TRADER: ["view_order", "view_execution", "view_position", "view_instrument", "view_tradingaccount"],
    Role.ADMIN: [],
}


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create one group per role and grant it its permissions (idempotent).

    Permissions that do not exist yet (an app not migrated) are skipped. Returns the number
    of permissions per role."""
    counts = {}
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=str(role))
        perms = []
        for codename in codenames:
            if codename == "view_*":
                perms.extend(Permission.objects.filter(codename__startswith="view_"))
            else:
                perms.extend(Permission.objects.filter(codename=codename))
        group.permissions.set(perms)
        counts[str(role)] = len(perms)
    return counts


@transaction.atomic
def user_ensure_with_role(*, username: str, role: Role, reset_password: bool = False) -> tuple[object, str | None]:
    """Create a user in the role's group with a generated password, or leave an existing one.

    Returns ``(user, password)``; the password is only returned when one was set now (print it
    once, never store it). Admins are staff superusers; other roles are staff so the admin
    shows them what their group's permissions allow."""
    import secrets

    from django.contrib.auth import get_user_model

    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    password = None
    if created or reset_password:
        password = secrets.token_urlsafe(15)
        user.set_password(password)
    user.is_staff = True
    user.is_superuser = role == Role.ADMIN
    user.save()
    user.groups.add(Group.objects.get(name=str(role)))
    return user, password
