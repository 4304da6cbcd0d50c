"""The ``surveillance`` stage (``tradeops.stages``): post-trade surveillance on the live stream.

Consumes trading-events, market-data-events and compliance-events (rule changes and throttle
re-enables; its own alerts come back and are ignored). Orders, fills and ticks go through the pure
surveillance engine; its alerts are recorded (deduplicated, grouped into cases) and, in the same
transaction, their ``alert.raised`` and the touched cases' ``case.changed`` go on the outbox
(``compliance.services.alerts_record_published``, the same as ``surveil --record``: ids derived
from the audit records, so the audit trail records each alert once and a redelivered event that
changes no alert publishes nothing). Without recording (``record=False``) the alerts are returned
as ``alert.raised`` events for the runner to publish (deterministic ids). The engine runs in
``episodes="updates"`` mode: an episode's alert is raised when it opens and raised again, with
the same ``evidence.episode.id``, each time it grows, and the service keeps one row per episode.
``risk.decision`` events yield the pre-trade compliance record and ``compliance.decision``
(RTS 6 Art. 15); execution-throttle trips are persisted (``ThrottleTrip``) so a disabled
algorithm stays disabled across restarts.

Rules live (RTS 6 Art. 13: surveillance calibrated as the firm decides): a
``compliance.rule_changed`` event for a surveillance rule (a second officer approved a version,
or a version was retired) rebuilds the engine under the rules now in force and carries every
window it can across (``compliance.surveillance.state``), without a restart or a database read.

State across restarts: the engine's windows (every detector's, live orders, open episodes) are
saved into ``SurveillanceState`` as a versioned JSON snapshot (never a pickle: the row is
decoded into typed structs, and one that does not match is discarded, not trusted) every
``snapshot_every_s`` seconds of wall-clock time, after a rule change, and when the stage stops
(``shutdown``, called by the runner after its last commit). The stage factory restores it, so a
restart in the middle of an episode still catches it; a snapshot taken under other rules keeps
the windows of every detector whose parameters allow it. A crash loses at most the events after
the last snapshot that the bus had already committed; events after it that the bus delivers
again are recognised by id (the snapshot keeps the ids of the last ``RECENT_EVENT_IDS`` events)
and not counted twice. ``manage.py surveil`` can re-surveil any period in full.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.fixings import FixingClock, FixingSpec
from compliance.surveillance.params import DETECTOR_PARAMS, ParameterError
from compliance.surveillance.records import Quote
from compliance.surveillance.state import StateError, state_dump, state_load, state_read
from compliance.surveillance.stream import alert_payload, record_of
from tradeops.events import ComplianceRuleChanged, Envelope, RiskDecision, Tick, Topic, make_event

SOURCE = "surveillance"
RECENT_EVENT_IDS = 4096  # ids kept in the snapshot: more than a batch the bus can redeliver (1000 by default)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SurveillanceRule:
    """One surveillance rule in force: a detector's parameters for the firm or a scope.
    ``scope_value``: the symbol, the account (as on the stream: its primary key) or the
    algorithm id; empty for the firm. ``rule_id`` names the version (None when unknown)."""

    rule_type: str
    scope: str  # firm | instrument | account | algorithm
    scope_value: str
    parameters: Mapping[str, Any]
    rule_id: int | None = None


_SCOPE_ARGS = {"instrument": "instrument_params", "account": "account_params", "algorithm": "algo_params"}


def engine_build(rules: Iterable[SurveillanceRule], *, market: str = "otc") -> SurveillanceEngine:
    """The streaming engine under ``rules`` on ``market``'s profile (``ParameterError`` if one
    does not validate)."""
    kwargs: dict[str, dict] = {"params": {}, "instrument_params": {}, "account_params": {}, "algo_params": {}}
    for r in rules:
        if r.scope == "firm":
            kwargs["params"][r.rule_type] = dict(r.parameters)
        elif r.scope in _SCOPE_ARGS:
            kwargs[_SCOPE_ARGS[r.scope]].setdefault(r.rule_type, {})[r.scope_value] = dict(r.parameters)
        else:
            raise ParameterError(f"{r.rule_type}: unknown scope {r.scope!r}")
    return SurveillanceEngine(**kwargs, clamp_time=True, episodes="updates", market=market)


def _rules_of(params, instrument_params, account_params, algo_params) -> list[SurveillanceRule]:
    rules = [SurveillanceRule(t, "firm", "", p) for t, p in (params or {}).items()]
    for scope, scoped in (("instrument", instrument_params), ("account", account_params), ("algorithm", algo_params)):
        for rule_type, by_key in (scoped or {}).items():
            rules += [SurveillanceRule(rule_type, scope, str(k), p) for k, p in by_key.items()]
    return rules


class SurveillanceConsumer:
    def __init__(
        self,
        *,
        owners: Mapping[int, str] | None = None,
        contract_sizes: Mapping[str, float] | None = None,
        params: Mapping | None = None,
        instrument_params: Mapping | None = None,
        account_params: Mapping | None = None,
        algo_params: Mapping | None = None,
        rules: Iterable[SurveillanceRule] | None = None,
        record: bool = True,
        owner_lookup=None,
        throttle=None,
        state: bytes | None = None,
        save_state: Callable[[bytes, object, int], None] | None = None,
        snapshot_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        fixings: Mapping[str, FixingSpec] | None = None,
        idle_lateness_s: float = 30.0,
        market: str = "otc",
    ):
        # Close and fixing prints derived from the quotes (marking the close on the live stream);
        # None: every full hour, gold each half hour, the average mid of the last 30 s before.
        self.fixings = FixingClock(fixings)
        self.owners = dict(owners or {})
        self.owner_lookup = owner_lookup  # account_id -> owner key, for accounts opened after start
        self.contract_sizes = dict(contract_sizes or {})
        self.quotes: dict[str, Quote] = {}  # the last quote per symbol: bars are read against it
        # The rules in force, (rule type, scope, scope value) -> rule: ``rules`` or the mappings.
        given = list(rules) if rules is not None else _rules_of(params, instrument_params, account_params, algo_params)
        self.rules: dict[tuple[str, str, str], SurveillanceRule] = {
            (r.rule_type, r.scope, r.scope_value): r for r in given
        }
        self.market = market  # the detectors' profile (``MARKET_PROFILES``; SURVEILLANCE_MARKET)
        self.engine = engine_build(self.rules.values(), market=market)
        self.record = record
        self.save_state = save_state  # (snapshot, event ts, events) -> None
        self.snapshot_every_s = snapshot_every_s  # wall-clock seconds between snapshots
        self.clock = clock
        # The quiet-market sweep's allowed lateness: event time is taken to have moved on by the
        # wall-clock seconds since the last record less this, so a record up to this late (a slow
        # upstream stage, a broker's delayed report) still finds the windows it belongs to.
        self.idle_lateness_s = idle_lateness_s
        self.events = 0
        # Events written to the outbox (recording), per topic, counted as their transaction
        # commits: the runner's stats and metrics report them as this stage's (``Handler``), the
        # relay publishes them. ``alert.raised``/``case.changed`` and ``compliance.decision``.
        self.outboxed: dict[str, int] = {}
        self._last_ts = None
        self._recent_ids: deque = deque(maxlen=RECENT_EVENT_IDS)  # event_id.int of the last events handled
        self._replayed: set[int] = set()  # ids in the restored snapshot: already in the windows
        self._replay_budget = 0
        self.restore_report: dict[str, Any] | None = None
        if state is not None:
            self.restore_report = self.state_restore(state)
        self._last_save = clock()
        self._handled_at: float | None = None  # clock() when the last record was handled
        self._swept_at: float | None = None  # clock() at the last quiet-market sweep
        self._idle_out: list[Envelope] = []  # alerts a quiet-market sweep raised, not yet returned
        self._evicted_logged = 0  # the engine's ``evicted_resting`` last logged
        # The same execution-throttle check as the worker's gate, on the same events: its trips
        # are persisted here so the disabled state survives a worker restart (RTS 6 Art. 15(3)).
        self.throttle = throttle

    def handle(self, event: Envelope) -> list[Envelope]:
        if self._replayed:
            key = event.event_id.int
            self._replay_budget -= 1
            if self._replay_budget <= 0:
                self._replayed = set()
            if key in self._replayed:  # delivered again after a restart: already in the saved windows
                self._replayed.discard(key)
                return []
        self._recent_ids.append(event.event_id.int)
        payload = event.payload
        throttle = self.throttle
        # only the payloads it acts on (its ``event_types``, as the gate hands them): not a tick
        if throttle is not None and isinstance(payload, throttle.event_types):
            throttle.on_event(event)
            if throttle.trips:
                self._record_trips()
        if type(payload) is Tick:  # most events: ``record_of``'s quote, without its other branches
            rec = Quote(ts=payload.ts, symbol=payload.symbol, bid=float(payload.bid), ask=float(payload.ask))
            self.quotes[payload.symbol] = rec
        else:
            if isinstance(payload, RiskDecision):
                if self.record:
                    from compliance.services import pretrade_decision_record

                    if pretrade_decision_record(event=event) is not None:  # None: nothing published
                        self._outboxed_on_commit({Topic.COMPLIANCE: 1})
                return []
            if isinstance(payload, ComplianceRuleChanged):
                if payload.rule_type in DETECTOR_PARAMS:
                    self.rule_apply(payload)
                return []
            account_id = getattr(payload, "account_id", None)
            if account_id is not None and account_id not in self.owners and self.owner_lookup is not None:
                self.owners[account_id] = self.owner_lookup(account_id)
            rec = record_of(payload, owners=self.owners, contract_sizes=self.contract_sizes, quotes=self.quotes)
            if rec is None:
                return []
        engine = self.engine
        if type(rec) is Quote:
            for close in self.fixings.on_quote(rec):  # a print this quote has passed comes first
                engine.process(close)
        engine.process(rec)
        self.events += 1
        self._last_ts = rec.ts
        self._handled_at = self.clock()
        if engine.evicted_resting != self._evicted_logged:
            self._evictions_log()
        # Recorded at the market time that raised them: a bar's quote stands at the bar's END
        # (``bar_quote``), its envelope at its open (an hour before its hourly fixing print).
        at = rec.ts if type(rec) is Quote else event.occurred_at
        out = self._raise(engine.take_alerts(), at=at, cause=str(event.event_id)) if engine.alerts else []
        if self._idle_out:
            out, self._idle_out = [*self._idle_out, *out], []
        if self.save_state is not None and self.clock() - self._last_save >= self.snapshot_every_s:
            self.state_save()
        return out

    def _evictions_log(self) -> None:
        """Resting orders the engine dropped without a cancel or a fill (past its age or count
        bound, ``compliance.surveillance.engine``): never silently."""
        engine = self.engine
        new = engine.evicted_resting - self._evicted_logged
        self._evicted_logged = engine.evicted_resting
        if new < 0:  # an engine rebuilt under changed rules counts afresh
            new = engine.evicted_resting
        if not new:
            return
        logger.warning(
            "surveillance: %d live order(s) evicted without a cancel or fill (older than %.0f s: %d, "
            "over %d live orders: %d, in total)",
            new,
            engine.order_max_age_s,
            engine.evicted["aged"],
            engine.max_open_orders,
            engine.evicted["over_count"],
        )

    def idle(self) -> None:
        """The stage has nothing to handle (``tradeops.bus.runner.handler_idle``): the quiet-market
        sweep. A window that closes after a time without records (a wash trade's run,
        ``run_gap_s`` without a further pair; an episode's quiet period) must not wait for a next
        record that may not come: event time is taken to have moved on by the wall-clock seconds
        since the last record was handled, less the allowed lateness (``idle_lateness_s``, 30 s:
        a record that late still counts in its windows), and the engine closes what that time
        closes (``SurveillanceEngine.sweep_until``), at most once a second. Its alerts are recorded at
        once and their ``alert.raised`` events go out through the outbox in the same transaction
        (no batch is being handled to publish them with); without recording they are returned
        with the next record's."""
        if self._last_ts is None or self._handled_at is None:
            return
        now = self.clock()
        if self._swept_at is not None and now - self._swept_at < 1.0:
            return
        self._swept_at = now
        moved = now - self._handled_at - self.idle_lateness_s
        if moved <= 0:
            return
        t = self._last_ts.timestamp() + moved
        self.engine.sweep_until(t)
        if not self.engine.alerts:
            return
        alerts = self.engine.take_alerts()
        if not self.record:
            self._idle_out += self._raise(alerts)
            return
        at = self._last_ts + timedelta(seconds=moved)
        self._raise(alerts, at=at, cause=f"sweep:{at.isoformat()}")

    # ------------------------------------------------------------ rules in force

    def rule_apply(self, change: ComplianceRuleChanged) -> dict[str, Any] | None:
        """A surveillance rule version took effect or was retired: rebuild the engine under the
        rules now in force, carrying the windows across. A version that does not validate is
        logged and ignored (the rules in force stay); a retirement of a version that is no longer
        the one in force changes nothing. Returns the carry-over report, or None."""
        key = (change.rule_type, change.scope, change.scope_value)
        rules = dict(self.rules)
        current = rules.get(key)
        if change.active:
            rules[key] = SurveillanceRule(
                change.rule_type, change.scope, change.scope_value, change.parameters, change.rule_id
            )
        elif current is not None and current.rule_id in (None, change.rule_id):
            del rules[key]
        else:
            return None
        try:
            engine = engine_build(rules.values(), market=self.market)
        except ParameterError as exc:
            logger.error("surveillance: rule %s v%s not applied: %s", change.code, change.version, exc)
            return None
        report = state_load(engine, state_dump(self.engine))
        self.engine, self.rules = engine, rules
        logger.info(
            "surveillance: rule %s v%s (%s %s) %s; windows kept: %d, restarted: %s",
            change.code,
            change.version,
            change.scope,
            change.scope_value or "firm",
            "in force" if change.active else "retired",
            len(report["restored"]),
            "; ".join(report["restarted"]) or "none",
        )
        self.state_save()  # a restart resumes under the new rules
        return report

    # ------------------------------------------------------------ state across restarts

    def state_snapshot(self) -> bytes:
        """The engine's windows, live orders and open episodes, and the ids of the last events,
        as a versioned JSON snapshot (``compliance.surveillance.state``)."""
        return state_dump(
            self.engine,
            stream={"recent_event_ids": [f"{i:032x}" for i in self._recent_ids], "fixings": self.fixings.dump()},
        )

    def state_save(self) -> None:
        self._last_save = self.clock()
        if self.save_state is None:
            return
        self.save_state(self.state_snapshot(), self._last_ts, self.events)

    def shutdown(self) -> None:
        """The runner stops (after its last commit): save the windows."""
        self.state_save()

    def state_restore(self, state: bytes) -> dict[str, Any]:
        """Load a saved snapshot into the engine (built under the rules now in force). A snapshot
        that cannot be read (another format or version, or edited into something that does not
        match the schema) is discarded with an error in the log: the stage then starts with empty
        windows rather than not at all, and ``manage.py surveil`` can re-surveil the gap."""
        try:
            snapshot = state_read(state)
            report = state_load(self.engine, snapshot)
        except StateError as exc:
            self.engine = engine_build(self.rules.values(), market=self.market)  # nothing half-loaded
            logger.error("surveillance: saved windows discarded, starting afresh: %s", exc)
            return {"restored": [], "restarted": [], "discarded": str(exc)}
        fixings = report["stream"].get("fixings")
        if isinstance(fixings, dict):
            self.fixings.load(fixings)
        ids = report["stream"].get("recent_event_ids") or []
        try:
            self._replayed = {int(x, 16) for x in ids if isinstance(x, str)}
        except ValueError:
            self._replayed = set()
        self._recent_ids.extend(self._replayed)
        self._replay_budget = 2 * RECENT_EVENT_IDS
        if report["restarted"]:
            logger.warning("surveillance: windows restarted: %s", "; ".join(report["restarted"]))
        return report

    def _record_trips(self) -> None:
        trips, self.throttle.trips = self.throttle.trips, []
        if not self.record:
            return
        from compliance.services import execution_throttle_trip_record

        for algo_id, when, why, version in trips:
            execution_throttle_trip_record(algo_id=algo_id, at=when, detail=why, rule_version=version)

    def _raise(self, alerts, *, at=None, cause: str = "") -> list[Envelope]:
        """The engine's alerts. Recording: recorded (deduplicated, grouped into cases) and their
        ``alert.raised`` and ``case.changed`` events put on the outbox in the same transaction
        (``alerts_record_published``, as ``surveil --record`` does: one event per alert recorded
        or extended and per case touched, each ``alert.raised`` with its audit record's event id
        so the audit-trail stage appends nothing for it); nothing is returned, and an alert the
        rows already hold (a redelivered event) publishes nothing. Not recording: returned as
        ``alert.raised`` events for the runner to publish. ``at``: the event time of what raised
        them (a replay's market time); None: the wall clock. ``cause``: what raised them (the
        input event's id), part of the ``case.changed`` ids."""
        if not self.record:
            return [make_event(alert_payload(a), source=SOURCE, key=a.account or a.symbol) for a in alerts]
        from compliance.services import alerts_record_published
        from tradeops.core.clock import utcnow

        published = alerts_record_published(
            sightings=[(at or utcnow(), [a.as_dict() | {"severity": a.severity} for a in alerts])],
            source="surveillance-stream",
            event_source=SOURCE,
            cause=cause,
        )
        counts: dict[str, int] = {}
        for out in published.events:
            counts[out.topic] = counts.get(out.topic, 0) + 1
        self._outboxed_on_commit(counts)
        return []

    def _outboxed_on_commit(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (topic -> events just written to the outbox) to ``outboxed`` once their
        transaction commits (at once outside one): a write rolled back counts nothing."""
        if not counts:
            return
        from django.db import transaction

        def count() -> None:
            for topic, n in counts.items():
                self.outboxed[topic] = self.outboxed.get(topic, 0) + n

        transaction.on_commit(count)


def surveil_stage() -> SurveillanceConsumer:
    """Stage factory: owners, contract sizes and the firm's surveillance rules from the database,
    and the windows saved when the stage last stopped."""
    from compliance.models import ThrottleTrip
    from compliance.pretrade.checks import ExecutionThrottle
    from compliance.selectors import compliance_rules_effective, pretrade_rule_specs, surveillance_state_load
    from compliance.services import surveillance_state_save
    from trading.models import Instrument, TradingAccount

    def owner_of(account) -> str:
        return account.beneficial_owner or account.client_id

    def owner_lookup(account_id: int) -> str:
        account = TradingAccount.objects.filter(pk=account_id).first()
        return owner_of(account) if account is not None else str(account_id)

    throttle = ExecutionThrottle([s for s in pretrade_rule_specs() if s.rule_type == "execution_throttle"])
    for trip in ThrottleTrip.objects.filter(reset_at__isnull=True):
        throttle.disable(trip.algo_id, trip.detail)
    owners = {a.pk: owner_of(a) for a in TradingAccount.objects.all()}
    sizes = {i.symbol: float(i.contract_size) for i in Instrument.objects.all()}
    rules = [
        SurveillanceRule(r.rule_type, r.scope, r.scope_value, r.parameters, r.pk)
        for r in compliance_rules_effective(rule_types=DETECTOR_PARAMS).order_by("pk")
    ]
    saved = surveillance_state_load(stage=SOURCE)

    def save(state: bytes, event_ts, events: int) -> None:
        surveillance_state_save(stage=SOURCE, state=state, event_ts=event_ts, events=events)

    from django.conf import settings

    from compliance.surveillance.fixings import fixings_from_settings

    return SurveillanceConsumer(
        fixings=fixings_from_settings(getattr(settings, "SURVEILLANCE_FIXINGS", None)),
        market=getattr(settings, "SURVEILLANCE_MARKET", "otc"),
        owners=owners,
        contract_sizes=sizes,
        rules=rules,
        owner_lookup=owner_lookup,
        throttle=throttle,
        state=bytes(saved.state) if saved is not None else None,
        save_state=save,
    )
