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


# Who reads the audit trail: it carries alert evidence and case actions, so the rule is the
# compliance screens' (MAR Art. 16; 2016/957 Art. 5, no tipping off), on every surface that
# shows it: the audit screens, the admin, exports.
AUDIT_READER_ROLES = (Role.COMPLIANCE_OFFICER, Role.AUDITOR)


def can_read_audit_trail(user) -> bool:
    """Compliance officers, auditors and admins (superusers); nobody else."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_superuser or any(user_has_role(user, role) for role in AUDIT_READER_ROLES)
