import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Seven users per test: a fast hasher keeps the suite quick (sign-in itself is unchanged)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
