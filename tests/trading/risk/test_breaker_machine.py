"""The trading breaker against a model, as a hypothesis state machine: any order of broker
failures and successes, trials, trips and losses, with event time and the wall clock moving
independently (either may stand still: a replay that ended, a replay running flat out), and
the worker restarting at any point: a new breaker restored from what the old one's listener
recorded, as the execution worker restores it from the audit trail (open or half-open: open, its
cool-down on the wall clock from the opening's record). The breaker must read as the model says,
refuse exactly when the model does, never stay open once ``cool_down`` has passed on either
clock, and its cool-down must always end when its latest record says: a trip of an open breaker
restarts the cool-down and is recorded as an extension (until 2026-12-06 it was not, and the
trail, the console and a restart counted from the first opening)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.trading.risk.helpers import T0
from tradeops.breaker import BreakerState
from trading.risk import TradingBreaker

COOL_DOWN = 10.0
FAIL_MAX = 3
LOSS = Decimal(100)
S = BreakerState


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.event = T0
        self.wall = 1000.0
        self.breaker = self._new_breaker()
        self.changes: list[tuple[S, S]] = []
        self.reasons: list[str] = []  # what the listener was told with each change
        # The latest record, as the worker's listener writes it: (state, wall time it opened or was
        # extended, or None for a half-open record: its cool-down was over).
        self.record: tuple[S, float | None] = (S.CLOSED, None)
        # the model
        self.state = S.CLOSED  # as stored: an expired OPEN still reads OPEN here
        self.failures = 0
        self.trial = False
        self.loss = Decimal(0)
        self.opened = (self.event, self.wall)
        self.trial_id = ""
        self.sent = 0  # orders sent: each one's id names it, the trial's among them

    def _new_breaker(self) -> TradingBreaker:
        return TradingBreaker(
            failure_threshold=FAIL_MAX,
            cool_down=timedelta(seconds=COOL_DOWN),
            loss_threshold=LOSS,
            wall_clock=lambda: self.wall,
            listeners=[self._changed],
        )

    def _changed(self, _breaker, old, new, reason):
        self.changes.append((old, new))
        self.reasons.append(reason)
        self.record = (new, self.wall if new is S.OPEN else None)  # an extension (open, open): from now

    # ------------------------------------------------------------ the model

    def _cool_down_over(self) -> bool:
        event, wall = self.opened  # event None: restored, only the wall clock counts
        if event is not None and (self.event - event).total_seconds() >= COOL_DOWN:
            return True
        return self.wall - wall >= COOL_DOWN

    def reading(self) -> S:
        if self.state is S.OPEN and self._cool_down_over():
            return S.HALF_OPEN
        return self.state

    def _open(self):
        self.state = S.OPEN
        self.opened = (self.event, self.wall)
        self.trial = False

    # ------------------------------------------------------------ clocks

    @rule(seconds=st.sampled_from([0.0, 0.5, 3.0, 9.99, 10.0, 25.0, 3600.0]))
    def event_time_moves(self, seconds):
        self.event += timedelta(seconds=seconds)

    @rule(seconds=st.sampled_from([0.0, 0.5, 3.0, 9.99, 10.0, 25.0]))
    def wall_clock_moves(self, seconds):
        self.wall += seconds

    # ------------------------------------------------------------ events

    @rule(reason=st.sampled_from(["REJECT", "TIMEOUT", "CONNECTION"]))
    def broker_fails(self, reason):
        reading = self.reading()
        self.breaker.record_failure(reason, now=self.event)
        self.failures += 1
        if reading is S.HALF_OPEN or (self.failures >= FAIL_MAX and self.state is not S.OPEN):
            self._open()

    @rule()
    def broker_accepts(self):
        self.breaker.record_success(now=self.event)
        self.failures = 0
        if self.state is not S.CLOSED:
            self.loss = Decimal(0)
        self.state = S.CLOSED
        self.trial = False

    @rule()
    def an_order_is_sent_if_allowed(self):
        allowed = self.breaker.allow(self.event)
        assert allowed == (self.reading() is S.CLOSED or (self.reading() is S.HALF_OPEN and not self.trial))
        if allowed:
            self.sent += 1
            self.breaker.on_trial(self.event, order_id=f"order-{self.sent}")
            if self.reading() is S.HALF_OPEN:
                self.state = S.HALF_OPEN
                self.trial = True
                self.trial_id = f"order-{self.sent}"

    @rule()
    def a_trial_goes_out(self):
        """Opened (unless it is already), its cool-down over on the wall clock, one trial sent: the
        state the late resolution below needs, which the single steps above reach too seldom."""
        if self.reading() is S.CLOSED:
            self.an_operator_trips_it()
        self.wall_clock_moves(COOL_DOWN)
        self.an_order_is_sent_if_allowed()

    @rule(succeeded=st.booleans(), which=st.sampled_from(["the trial", "another order", "no order"]))
    def a_trial_is_resolved_late(self, succeeded, which):
        """Reconciliation recovered an order whose write failed (``trial_resolve``): when it is the
        trial still out, the trial resolves as its outcome would have (success closes the breaker,
        failure opens it again), told to the listeners with the reason; any other order, or a
        breaker with no trial out, is left as it was (until 2026-12-07 a trial whose write failed
        stayed out until the worker restarted)."""
        out = self.trial and self.reading() is S.HALF_OPEN
        order_id = {"the trial": self.trial_id, "another order": f"order-{self.sent + 1}", "no order": ""}[which]
        before = len(self.changes)
        resolved = self.breaker.trial_resolve(order_id, succeeded=succeeded, reason="recovered", now=self.event)
        assert resolved == (out and which == "the trial")
        if not resolved:
            assert len(self.changes) == before
            return
        if succeeded:
            self.failures, self.loss, self.state, self.trial = 0, Decimal(0), S.CLOSED, False
            assert self.changes[-1] == (S.HALF_OPEN, S.CLOSED) and self.reasons[-1] == "recovered"
        else:
            self.failures += 1
            self._open()
            assert self.changes[-1] == (S.HALF_OPEN, S.OPEN) and "recovered" in self.reasons[-1]

    @rule()
    def an_operator_trips_it(self):
        self.breaker.trip("operator", now=self.event)
        self._open()

    @rule(amount=st.sampled_from([Decimal(-60), Decimal(-30), Decimal(20)]))
    def a_fill_realises(self, amount):
        self.breaker.record_pnl(amount, now=self.event)
        self.loss -= amount
        if self.loss > LOSS and self.reading() is not S.OPEN:  # a loss in a half-open breaker re-opens it
            self._open()

    @rule()
    def the_worker_restarts(self):
        """A new process: a new breaker, restored from the latest record (the failures counted
        and the losses since it closed are the old process's and go with it)."""
        state, opened_wall = self.record
        self.breaker = self._new_breaker()
        self.failures, self.loss, self.trial = 0, Decimal(0), False
        self.trial_id = ""
        if state is S.CLOSED:
            self.state = S.CLOSED
            return
        open_for = None if opened_wall is None else timedelta(seconds=self.wall - opened_wall)
        self.breaker.restore(reason="restored", open_for=open_for, now=self.event)
        self.state = S.OPEN
        self.opened = (None, self.wall - COOL_DOWN if opened_wall is None else opened_wall)
        # the restore's record carries the opening forward: a further restart counts from it too

    # ------------------------------------------------------------ what must hold

    @invariant()
    def it_reads_as_the_model(self):
        assert self.breaker.state(self.event) is self.reading()
        assert self.breaker.trial_in_flight == (self.trial and self.reading() is S.HALF_OPEN)

    @invariant()
    def a_trial_out_is_named_and_stops_the_sizing(self):
        """Half-open with the trial out: not OPEN, yet nothing may go, and the sizing skips with
        the trial's id (``RiskManager.breaker_trial_reason``) instead of sizing an order the
        gate refuses (until 2026-12-07 every signal meanwhile became a ``risk.breaker_open``)."""
        out = self.trial and self.reading() is S.HALF_OPEN
        assert self.breaker.trial_out(self.event) == out
        assert self.breaker.trial_order_id == (self.trial_id if out else "")
        if out:
            assert not self.breaker.allow(self.event)

    @invariant()
    def a_cool_down_always_ends(self):
        """Past ``cool_down`` on either clock the breaker is never OPEN (a trial may go)."""
        if self.state is S.OPEN and self._cool_down_over():
            assert self.breaker.state(self.event) is S.HALF_OPEN and self.breaker.allow(self.event)

    @invariant()
    def only_lifecycle_transitions_are_reported(self):
        allowed = {(S.CLOSED, S.OPEN), (S.OPEN, S.HALF_OPEN), (S.HALF_OPEN, S.OPEN), (S.HALF_OPEN, S.CLOSED)}
        allowed |= {(S.OPEN, S.CLOSED)}  # a broker success (a resting order's fill) while open
        allowed |= {(S.OPEN, S.OPEN)}  # an extension: a trip of an open breaker restarts its cool-down
        assert set(self.changes) <= allowed

    @invariant()
    def the_record_says_when_the_cool_down_ends(self):
        """An open breaker's latest record says when it opened (or was extended) on the wall
        clock, which is what a restart counts its cool-down from: it must be when this breaker's
        cool-down counts from, whatever trips, restarts and clocks came before."""
        if self.state is not S.OPEN:
            return
        state, opened_wall = self.record
        if state is S.HALF_OPEN:  # restored from a half-open record: its cool-down was over already
            assert self.opened[0] is None and self.wall - self.opened[1] >= COOL_DOWN
            return
        assert state is S.OPEN and opened_wall == self.opened[1] == self.breaker._opened_wall


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_the_breaker_follows_its_model = BreakerMachine.TestCase
