"""GroupAdmin (tradeops/bus/settle.py): consumer-group look-ups that survive a coordinator move.
librdkafka's admin client keeps a group's coordinator cached and a NOT_COORDINATOR inside a
describe or offset-fetch answer does not evict it, so after a coordinator error the next look
goes through a new client; the look says what failed. A fake admin client stands in for
librdkafka (no broker needed)."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import tradeops.bus.settle as settle
from tradeops.bus.settle import GroupAdmin, GroupLook, coordinator_error


def _done(value=None, error=None) -> Future:
    future = Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


def _refused(code=KafkaError.NOT_COORDINATOR):
    return KafkaException(KafkaError(code, "ConsumerGroupDescribe: "))


def _description(*assignments):
    members = [SimpleNamespace(assignment=SimpleNamespace(topic_partitions=a)) for a in assignments]
    return SimpleNamespace(members=members, state=SimpleNamespace(name="STABLE"))


class FakeAdmin:
    """Answers from a script shared by every client made: each client keeps the answers it was
    built to give (``stale``: a client that keeps asking the old coordinator)."""

    made: list[FakeAdmin] = []
    script: list = []

    def __init__(self, config):
        self.config = config
        self.calls = 0
        FakeAdmin.made.append(self)

    def describe_consumer_groups(self, groups, request_timeout):
        self.calls += 1
        answer = FakeAdmin.script[len(FakeAdmin.made) - 1]
        return {g: _done(*answer[g]) for g in groups}

    def list_consumer_group_offsets(self, requests, request_timeout):
        self.calls += 1
        answer = FakeAdmin.script[len(FakeAdmin.made) - 1]
        group = requests[0].group_id
        return {group: _done(*answer[group])}


@pytest.fixture
def fake_admin(monkeypatch):
    FakeAdmin.made = []
    FakeAdmin.script = []
    monkeypatch.setattr(settle, "AdminClient", FakeAdmin)
    monkeypatch.setattr(settle.time, "sleep", lambda s: None)
    return FakeAdmin


def test_a_coordinator_refusal_is_asked_again_through_a_new_client(fake_admin):
    joined = (_description([TopicPartition("t", 0)]),)
    stale = {"a": joined, "b": (None, _refused())}
    fake_admin.script = [stale, {"a": joined, "b": joined}]
    admin = GroupAdmin("k:1")
    first = admin.describe(["a", "b"])
    assert first["a"].assigned and not first["b"].assigned
    assert first["b"].coordinator_refused
    assert str(first["b"]).startswith("describe failed: KafkaError{code=NOT_COORDINATOR")
    assert admin.renewals == 1 and len(fake_admin.made) == 2
    second = admin.describe(["a", "b"])
    assert second["b"].assigned and str(second["b"]) == "state STABLE, 1 member(s), every one assigned"
    assert admin.renewals == 1  # no refusal: the same client goes on


def test_a_member_without_partitions_or_no_member_is_not_assigned_and_no_client_is_renewed(fake_admin):
    fake_admin.script = [
        {"a": (_description([]),), "b": (_description(),), "c": (None, _refused(KafkaError._TIMED_OUT))}
    ]
    admin = GroupAdmin("k:1")
    looks = admin.describe(["a", "b", "c"])
    assert not any(look.assigned for look in looks.values())
    assert str(looks["b"]) == "state STABLE, 0 member(s)"
    assert not looks["c"].coordinator_refused and admin.renewals == 0


def test_committed_offsets_are_fetched_again_through_a_new_client_after_a_coordinator_refusal(fake_admin):
    offsets = (SimpleNamespace(topic_partitions=[TopicPartition("t", 0, 42)]),)
    fake_admin.script = [
        {"a": offsets, "b": (None, _refused(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))},
        {"a": (None, _refused()), "b": offsets},
    ]
    admin = GroupAdmin("k:1")
    out = admin.committed({"a": [TopicPartition("t", 0)], "b": [TopicPartition("t", 0)]})
    assert {g: [tp.offset for tp in tps] for g, tps in out.items()} == {"a": [42], "b": [42]}
    assert admin.renewals == 1 and fake_admin.made[1].calls == 1  # only b was asked again


def test_a_coordinator_that_keeps_refusing_is_raised_after_the_attempts(fake_admin):
    fake_admin.script = [{"a": (None, _refused())}] * 3
    admin = GroupAdmin("k:1")
    with pytest.raises(KafkaException) as raised:
        admin.committed({"a": [TopicPartition("t", 0)]}, attempts=3)
    assert coordinator_error(raised.value) and admin.renewals == 3


def test_any_other_error_is_raised_at_once(fake_admin):
    fake_admin.script = [{"a": (None, KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)))}]
    with pytest.raises(KafkaException):
        GroupAdmin("k:1").committed({"a": [TopicPartition("t", 0)]})


def test_a_look_says_what_it_saw():
    assert str(GroupLook(error="boom")) == "describe failed: boom"
    assert (
        str(GroupLook(state="PREPARING_REBALANCE", members=2))
        == "state PREPARING_REBALANCE, 2 member(s), not all assigned"
    )


def test_a_moved_partition_leader_is_asked_again_not_raised():
    """``list_offsets`` answering FENCED_LEADER_EPOCH (a leader moved: leadership rebalanced ~5
    minutes after a cluster's start) is a look that did not settle, asked again; until
    2026-12-06 (wip/walk50) it ended a settled ``cluster.sh replay`` with a traceback. Any other
    error still raises."""
    from tradeops.bus.settle import PipelineSettle, leadership_error

    assert leadership_error(_refused(KafkaError.FENCED_LEADER_EPOCH))
    assert leadership_error(_refused(KafkaError.NOT_LEADER_FOR_PARTITION))
    assert not leadership_error(_refused(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    answers = [_refused(KafkaError.FENCED_LEADER_EPOCH), {("t", 0): 4}, {("t", 0): 4}]
    look = PipelineSettle.__new__(PipelineSettle)  # no cluster: the looks are scripted
    look.coordinator_refusal = ""

    def ends():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    look._end_offsets = ends
    look.lag = lambda ends=None: {"g": 0}
    look.pending = lambda: 0
    assert look.settled() is False  # the moved leader: not settled yet, no traceback
    assert "FENCED_LEADER_EPOCH" in look.coordinator_refusal or "Leader epoch" in look.coordinator_refusal
    assert look.settled() is True  # the next look reaches the new leader

    # a broker SIGKILLed: the committed-offsets look at its group coordinator times out
    look._end_offsets = lambda: {("t", 0): 4}
    timeouts = [_refused(KafkaError._TIMED_OUT)]
    look.lag = lambda ends=None: (_ for _ in ()).throw(timeouts.pop()) if timeouts else {"g": 0}
    assert look.settled() is False
    assert look.settled() is True

    look._end_offsets = lambda: (_ for _ in ()).throw(_refused(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(KafkaException):
        look.settled()


def test_a_database_that_went_away_is_asked_again_on_a_new_connection(monkeypatch):
    """The outbox look failing (the primary restarting, ``cluster.sh pg-restart``) is a look that
    did not settle: the connections are closed and the next look opens a new one. Until
    2026-12-06 (wip/walk50) the settled replay died with a traceback on the dead connection."""
    from django.db import OperationalError

    from tradeops.bus.settle import PipelineSettle

    closed = []
    monkeypatch.setattr("django.db.connections.close_all", lambda: closed.append(True))
    answers = [OperationalError("terminating connection due to administrator command"), 0]

    def pending():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    look = PipelineSettle.__new__(PipelineSettle)
    look.coordinator_refusal = ""
    look._end_offsets = lambda: {("t", 0): 4}
    look.lag = lambda ends=None: {"g": 0}
    look.pending = pending
    assert look.settled() is False
    assert closed == [True]
    assert "administrator command" in look.coordinator_refusal
    assert look.settled() is True
