"""Who may open the compliance desk's screens, and who may act on them.

Compliance officers read and act; auditors read only; nobody else opens them (MAR Art. 16,
2016/957 Art. 5: the subject's desk never learns a surveillance alert exists). The rules are the
compliance selectors' (``can_see_surveillance``) and the services' (an officer, four eyes), so
the screens cannot drift from what the services accept."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from compliance.selectors import can_see_surveillance
from tradeops.core.roles import Role, user_has_role


def desk_check_read(user) -> None:
    """Alerts, cases and rules: compliance officers and auditors only; not even an administrator
    (the API's matrix draws the same line: surveillance is never the subject's desk's business,
    and an administrator is not a compliance function)."""
    if not can_see_surveillance(user):
        raise PermissionDenied("the compliance desk is for compliance officers and auditors")


def reports_check_read(user) -> None:
    """Report runs: compliance officers, auditors and administrators (``report_visible``)."""
    from compliance.reports.selectors import report_visible

    if not report_visible(user):
        raise PermissionDenied("regulatory reports are for compliance officers, auditors and administrators")


def reports_may_run(user) -> bool:
    """Who may start a report run: the API's ``("reports", "run")`` row (compliance officers;
    ``report_run_create`` checks the officer again)."""
    from tradeops.api.matrix import role_may

    return role_may(user, "reports", "run")


def reports_check_run(user) -> None:
    if not reports_may_run(user):
        raise PermissionDenied("only compliance officers run reports; this screen is read-only for you")


def desk_may_act(user) -> bool:
    """Compliance officers act (the services check again, four eyes included); auditors read."""
    return user_has_role(user, Role.COMPLIANCE_OFFICER)


def desk_check_act(user) -> None:
    if not desk_may_act(user):
        raise PermissionDenied("only compliance officers act on the compliance desk; this view is read-only for you")
