"""Actor strings (tradeops/audit/actors.py): the text every writer hands the trail, which is hashed
into the chain, so it keeps the shape the records already carry."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import transaction

from tradeops.audit.actors import event_actor, user_actor, username_actor
from tradeops.audit.models import ActorType, AuditRecord
from tradeops.audit.services import actor_parse, audit_append

AT = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)


def test_a_person_is_recorded_as_user_and_their_username(armed):
    alice = get_user_model().objects.create_user(username="alice.o'neil")
    assert user_actor(alice) == "user:alice.o'neil" == username_actor("alice.o'neil")
    with transaction.atomic():
        record = audit_append(
            action="limit.changed", object_type="account", object_id="7", occurred_at=AT, actor=user_actor(alice)
        )
    stored = AuditRecord.objects.get(pk=record.pk)
    assert (stored.actor_type, stored.actor_id, stored.actor) == (ActorType.USER, "alice.o'neil", "user:alice.o'neil")


def test_an_events_actor_is_its_person_or_else_the_stage_that_emitted_it():
    assert event_actor("", "execution-worker") == "service:execution-worker"
    assert event_actor("bob", "execution-worker") == "user:bob"  # a bare name on an event is a person
    assert event_actor("user:bob", "execution-worker") == "user:bob"
    assert event_actor("service:manage.py", "risk") == "service:manage.py"
    assert actor_parse(event_actor("", "surveillance")) == (ActorType.SERVICE, "surveillance")
