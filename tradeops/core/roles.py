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
# shows it: the audit screens, the admin, exports, the integration API.


def can_read_audit_trail(user) -> bool:
    """Compliance officers, auditors and admins (superusers); nobody else. The ``audit_records``
    row of the authorisation matrix (``tradeops.api.matrix``), the one table of who does what."""
    from tradeops.api.matrix import role_may  # the matrix names its roles from this module

    return role_may(user, "audit_records", "read")
