"""Sign-in throttling (docs/security.md): django-axes counts failed logins per account and per
client address and refuses further attempts for ``AXES_COOLOFF_TIME`` once either reaches
``AXES_FAILURE_LIMIT``."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' backend, for sign-ins that come with a request (every web sign-in does). A call
    without one (``manage.py`` code, Django's test client) has no client address to count and is
    left to the next backend instead of failing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
