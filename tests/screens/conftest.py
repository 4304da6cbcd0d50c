import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    """Seven users per test: a fast hasher keeps the server-side tests quick. Not for the browser
    tests: their server process signs people in with the project's own hashers."""
    if request.node.get_closest_marker("browser") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
