from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tradeops.core.roles import Role


@pytest.fixture
def make_user(db):
    def make(username: str, *roles: Role, staff: bool = True):
        user = get_user_model().objects.create_user(username=username, password="pw", is_staff=staff)
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=str(role))[0])
        return user

    return make


@pytest.fixture
def alice(make_user):
    """A compliance officer who is also a risk manager: two roles, still one person."""
    return make_user("alice", Role.COMPLIANCE_OFFICER, Role.RISK_MANAGER)


@pytest.fixture
def bob(make_user):
    return make_user("bob", Role.COMPLIANCE_OFFICER)


@pytest.fixture
def trader(make_user):
    return make_user("tina", Role.TRADER)


# Kafka fixtures of the event-backbone tests (unique topic prefix per test, tidied up after).
from tests.tradeops.conftest import kafka, kafka_bootstrap_session, kafka_bus, kafka_prefix  # noqa: E402, F401
