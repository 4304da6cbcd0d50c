"""Make a signed-in browser session in a cluster test's database (run as a process with the
cluster test's environment) and print its key, last: what a user's ``sessionid`` cookie carries;
before it, ``user NAME PASSWORD`` for a sign-in through the form.

    python -m tests.cluster.web_session
"""

from __future__ import annotations

import os
import secrets

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    password = secrets.token_hex(16)
    user = get_user_model().objects.create_user(f"gateway-{secrets.token_hex(4)}", password=password)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    print(f"user {user.get_username()} {password}")  # for a sign-in through the form
    print(session.session_key)


if __name__ == "__main__":
    main()
