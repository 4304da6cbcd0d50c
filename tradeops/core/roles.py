"""User roles as Django groups. One module names them; permissions are granted in ``roles_sync``."""

from enum import StrEnum


class Role(StrEnum):
    COMPLIANCE_OFFICER = "compliance_officer"
    TRADER = "trader"
    RISK_MANAGER = "risk_manager"
    AUDITOR = "auditor"
    ADMIN = "admin"


def user_has_role(user, role: Role | str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser and role == Role.ADMIN:
        return True
    return user.groups.filter(name=str(role)).exists()
