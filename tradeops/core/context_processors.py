"""Template context shared by every screen: the signed-in user's roles and the navigation
they may use, and when the page was rendered (a live page's catch-up cursor). Links are URL
names (core never imports a domain app); which roles see which screen follows
``tradeops.core.roles`` (the views refuse the rest on the server)."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from tradeops.core.clock import utcnow
from tradeops.core.roles import Role

# (label, URL name, roles that see the link; a superuser acts as admin).
NAV = (
    ("Console", "trading:console", {Role.TRADER, Role.RISK_MANAGER, Role.COMPLIANCE_OFFICER, Role.AUDITOR, Role.ADMIN}),
    ("Alerts", "desk:alerts", {Role.COMPLIANCE_OFFICER, Role.AUDITOR}),
    ("Rules", "desk:rules", {Role.COMPLIANCE_OFFICER, Role.AUDITOR}),
    ("Reports", "desk:reports", {Role.COMPLIANCE_OFFICER, Role.AUDITOR, Role.ADMIN}),
    ("Audit trail", "audit:search", {Role.COMPLIANCE_OFFICER, Role.AUDITOR, Role.ADMIN}),
)


def user_roles(user) -> frozenset[str]:
    """The user's roles (group names that are roles), read once per request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_screen_roles", None)
    if cached is None:
        known = {str(r) for r in Role}
        cached = frozenset(n for n in user.groups.values_list("name", flat=True) if n in known)
        if user.is_superuser:
            cached |= {str(Role.ADMIN)}
        user._screen_roles = cached
    return cached


def screens(request) -> dict:
    user = getattr(request, "user", None)
    roles = user_roles(user)
    links = []
    for label, name, allowed in NAV:
        if not roles & {str(r) for r in allowed}:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        links.append({"label": label, "url": url, "active": request.path.startswith(url)})
    if user is not None and getattr(user, "is_staff", False):
        links.append({"label": "Admin", "url": reverse("admin:index"), "active": request.path.startswith("/admin/")})
    return {
        "nav_links": links,
        "user_roles": sorted(roles),
        "read_only": bool(roles) and roles <= {str(Role.AUDITOR)},
        "session_idle_minutes": settings.SESSION_COOKIE_AGE // 60,
        # When the page was rendered (record time, UTC): a live page's first catch-up cursor
        # (``data-since``, static/js/live.js), so what is recorded between the render and its
        # socket joining its groups is not missed. The catch-up selectors reach back a margin
        # before it (the view read its rows a moment earlier).
        "rendered_at": utcnow().isoformat(timespec="microseconds"),
    }
