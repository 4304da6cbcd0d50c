"""The authorisation matrix: who may do what, in ONE table.

Every row is (resource, verb) -> the OAuth2 scope a token needs for it and the roles that may do
it. The API's permission class (``tradeops.api.permissions.MatrixPermission``), the selectors
(``visible_to``: a role outside the row gets an empty queryset, not a refusal that would itself
say something exists) and docs/api.md's role table (``matrix_markdown``, checked by a test) all
read this table, so they cannot drift apart.

A person acts with the roles of their groups (``tradeops.core.roles``); an API client acts with
the one role it is bound to, and only within the scopes its token carries, which are a subset of
the scopes that role can use (``scopes_for_role``): a client never gets more than its role.
Rules that depend on the object, not only on the role (four eyes: the approver must be a
different person from the proposer; releasing a kill switch needs the risk manager role) stay in
the services, which the API calls; the matrix is the first gate, never the only one.

Regulation: MAR Art. 16 and 2016/957 Art. 5 (surveillance is seen by compliance and auditors
only: no tipping off), RTS 6 Art. 12 (who may engage and release the kill switch), 2017/565
Art. 72 (the audit trail is read-only for everyone, readable by compliance and auditors).

This module imports no domain app: resources are names, not models.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tradeops.core.roles import Role


class Scope(StrEnum):
    TRADING_READ = "trading:read"
    TRADING_WRITE = "trading:write"
    RISK_WRITE = "risk:write"
    COMPLIANCE_READ = "compliance:read"
    COMPLIANCE_WRITE = "compliance:write"
    AUDIT_READ = "audit:read"
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.TRADING_READ: "Read instruments, accounts, orders, executions, positions, limits, drawdown re-bases, "
    "kill switches, pre-trade decisions",
    Scope.TRADING_WRITE: "Place orders, engage the kill switch",
    Scope.RISK_WRITE: "Propose and approve risk limit changes and drawdown re-bases, release the kill switch",
    Scope.COMPLIANCE_READ: "Read alerts, cases, compliance rules, STOR drafts",
    Scope.COMPLIANCE_WRITE: "Work cases (four eyes), propose and approve compliance rules",
    Scope.AUDIT_READ: "Search the audit trail, verify the chain, read digests and inclusion proofs",
    Scope.REPORTS_READ: "Read regulatory report runs, their records and files",
    Scope.REPORTS_WRITE: "Run regulatory reports and approve them (four eyes)",
}
WRITE_SCOPES = frozenset(s for s in Scope if s.endswith(":write"))

T, R, C, A, X = Role.TRADER, Role.RISK_MANAGER, Role.COMPLIANCE_OFFICER, Role.AUDITOR, Role.ADMIN
EVERY_ROLE = frozenset({T, R, C, A, X})
SURVEILLANCE = frozenset({C, A})  # MAR: never the subject's desk


@dataclass(frozen=True)
class Rule:
    scope: Scope
    roles: frozenset[Role]
    note: str = ""
    refusal_code: str = "role_forbidden"  # the stable code of a 403 for a role outside the row


# (resource, verb) -> Rule. The one table. Verbs: read, create, propose, approve, engage, release,
# act (a case step), decide (the second officer's decision on a pending disposition), run.
MATRIX: dict[tuple[str, str], Rule] = {
    ("instruments", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("accounts", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("orders", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("orders", "create"): Rule(Scope.TRADING_WRITE, frozenset({T}), "through the pre-trade gate"),
    ("executions", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("positions", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("pretrade_decisions", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE, "they name controls, not suspicions"),
    ("risk_limits", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("risk_limits", "propose"): Rule(Scope.RISK_WRITE, frozenset({R})),
    ("risk_limits", "approve"): Rule(Scope.RISK_WRITE, frozenset({R}), "four eyes: not the proposer"),
    ("drawdown_rebases", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE, "as on the operations console"),
    ("drawdown_rebases", "propose"): Rule(Scope.RISK_WRITE, frozenset({R}), "one pending per account"),
    ("drawdown_rebases", "approve"): Rule(Scope.RISK_WRITE, frozenset({R}), "four eyes: not the proposer"),
    ("kill_switch", "read"): Rule(Scope.TRADING_READ, EVERY_ROLE),
    ("kill_switch", "engage"): Rule(
        Scope.TRADING_WRITE, frozenset({T, R, C, X}), "RTS 6 Art. 12; the whole firm: risk managers (service rule)"
    ),
    ("kill_switch", "release"): Rule(
        Scope.RISK_WRITE, frozenset({R}), "with a reason", refusal_code="kill_switch_release_forbidden"
    ),
    ("alerts", "read"): Rule(Scope.COMPLIANCE_READ, SURVEILLANCE, "no tipping off (2016/957 Art. 5)"),
    ("cases", "read"): Rule(Scope.COMPLIANCE_READ, SURVEILLANCE),
    ("cases", "act"): Rule(Scope.COMPLIANCE_WRITE, frozenset({C})),
    ("cases", "decide"): Rule(Scope.COMPLIANCE_WRITE, frozenset({C}), "four eyes: not the requester"),
    ("stor_drafts", "read"): Rule(Scope.COMPLIANCE_READ, frozenset({C}), "MAR Art. 16"),
    ("rules", "read"): Rule(Scope.COMPLIANCE_READ, SURVEILLANCE),
    ("rules", "propose"): Rule(Scope.COMPLIANCE_WRITE, frozenset({C})),
    ("rules", "approve"): Rule(Scope.COMPLIANCE_WRITE, frozenset({C}), "four eyes: not the proposer"),
    ("audit_records", "read"): Rule(Scope.AUDIT_READ, frozenset({C, A, X})),
    ("audit_verification", "read"): Rule(Scope.AUDIT_READ, frozenset({C, A, X})),
    ("audit_verification", "run"): Rule(
        Scope.AUDIT_READ, frozenset({C, A, X}), "walks the whole chain, recorded as audit.verified; throttled"
    ),
    ("audit_digests", "read"): Rule(Scope.AUDIT_READ, frozenset({C, A, X})),
    ("reports", "read"): Rule(Scope.REPORTS_READ, frozenset({C, A, X}), "MiFIR Art. 26, MiFID II Art. 27"),
    ("reports", "run"): Rule(Scope.REPORTS_WRITE, frozenset({C})),
    ("reports", "approve"): Rule(Scope.REPORTS_WRITE, frozenset({C}), "four eyes: not who generated it"),
}


def rule_for(resource: str, verb: str) -> Rule:
    try:
        return MATRIX[(resource, verb)]
    except KeyError:
        raise KeyError(f"{resource}/{verb} is not in the authorisation matrix (tradeops/api/matrix.py)") from None


def roles_of(user) -> frozenset[Role]:
    """The roles a user acts with: an API client's bound role (set by the authentication), else
    the user's groups; a superuser also acts as admin. Read once per user object."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_tradeops_roles", None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    roles = {role for role in Role if str(role) in names}
    if user.is_superuser:
        roles.add(Role.ADMIN)
    user._tradeops_roles = frozenset(roles)
    return user._tradeops_roles


def role_may(user, resource: str, verb: str) -> bool:
    """Whether any of the user's roles may do ``verb`` on ``resource`` (scopes aside)."""
    return bool(roles_of(user) & rule_for(resource, verb).roles)


def visible_to(queryset, *, user, resource: str):
    """The selectors' half of the matrix: ``queryset`` for a user who may read ``resource``,
    an empty one for anybody else."""
    return queryset if role_may(user, resource, "read") else queryset.none()


def scopes_for_role(role: Role | str) -> frozenset[Scope]:
    """Every scope some row lets ``role`` use: the most an API client bound to it may hold."""
    return frozenset(rule.scope for rule in MATRIX.values() if Role(role) in rule.roles)


ROLE_COLUMNS = (T, R, C, A, X)


def matrix_markdown() -> str:
    """The matrix as docs/api.md's table (a test keeps the page equal to this)."""
    head = "| resource | verb | scope | " + " | ".join(str(r) for r in ROLE_COLUMNS) + " | note |"
    rule = "| --- | --- | --- | " + " | ".join(":---:" for _ in ROLE_COLUMNS) + " | --- |"
    rows = [
        f"| {resource} | {verb} | `{r.scope}` | "
        + " | ".join("yes" if role in r.roles else "-" for role in ROLE_COLUMNS)
        + f" | {r.note} |"
        for (resource, verb), r in MATRIX.items()
    ]
    return "\n".join([head, rule, *rows])
