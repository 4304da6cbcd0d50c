"""The ``surveillance`` stage (``tradeops.stages``): post-trade surveillance on the live stream.

Consumes trading-events, market-data-events and compliance-events (rule changes and throttle
re-enables; its own alerts come back and are ignored). Orders, fills and ticks go through the pure
surveillance engine; its alerts are recorded (deduplicated, grouped into cases) and returned as
``alert.raised`` events for the runner to publish on compliance-events (deterministic ids, so a
redelivered batch does not raise twice). The engine runs in ``episodes="updates"`` mode: an
episode's alert is raised when it opens and raised again, with the same
``evidence.episode.id``, each time it grows, and ``alerts_record`` keeps one row per episode.
``risk.decision`` events yield the pre-trade compliance record and ``compliance.decision``
(RTS 6 Art. 15); execution-throttle trips are persisted (``ThrottleTrip``) so a disabled
algorithm stays disabled across restarts.

State across restarts: the engine (every detector's windows, live orders, open episodes) is
snapshotted into ``SurveillanceState`` every ``snapshot_every_s`` seconds of event time (and
by ``state_save()``), and the stage factory restores it, so a restart in the middle of an
episode still catches it. What a restart can lose is at most the events of the last
``snapshot_every_s`` seconds that the bus had already committed (the runner commits after
each batch); ``manage.py surveil`` can re-surveil any period in full.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.stream import alert_payload, record_of
from tradeops.events import Envelope, RiskDecision, make_event

SOURCE = "surveillance"


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
        record: bool = True,
        owner_lookup=None,
        throttle=None,
        state: bytes | None = None,
        save_state: Callable[[bytes, object, int], None] | None = None,
        snapshot_every_s: float = 10.0,
    ):
        self.owners = dict(owners or {})
        self.owner_lookup = owner_lookup  # account_id -> owner key, for accounts opened after start
        self.contract_sizes = dict(contract_sizes or {})
        self.engine = SurveillanceEngine(
            params,
            instrument_params=instrument_params,
            account_params=account_params,
            algo_params=algo_params,
            clamp_time=True,
            episodes="updates",
        )
        if state is not None:
            self.engine = self.state_restore(state, fresh=self.engine)
        self.record = record
        self.save_state = save_state  # (snapshot, event ts, events) -> None
        self.snapshot_every_s = snapshot_every_s
        self.events = 0
        self._last_snapshot_t = self.engine.last_t
        self._last_ts = None
        # The same execution-throttle check as the worker's gate, on the same events: its trips
        # are persisted here so the disabled state survives a worker restart (RTS 6 Art. 15(3)).
        self.throttle = throttle

    def handle(self, event: Envelope) -> list[Envelope]:
        payload = event.payload
        if self.throttle is not None:
            self.throttle.on_event(event)
            if self.throttle.trips:
                self._record_trips()
        if isinstance(payload, RiskDecision):
            if self.record:
                from compliance.services import pretrade_decision_record

                pretrade_decision_record(event=event)
            return []
        account_id = getattr(payload, "account_id", None)
        if account_id is not None and account_id not in self.owners and self.owner_lookup is not None:
            self.owners[account_id] = self.owner_lookup(account_id)
        rec = record_of(payload, owners=self.owners, contract_sizes=self.contract_sizes)
        if rec is None:
            return []
        engine = self.engine
        engine.process(rec)
        self.events += 1
        self._last_ts = rec.ts
        out = self._raise(engine.take_alerts(), at=event.occurred_at) if engine.alerts else []
        if self.save_state is not None and engine.last_t - self._last_snapshot_t >= self.snapshot_every_s:
            self.state_save()
        return out

    # ------------------------------------------------------------ state across restarts

    def state_snapshot(self) -> bytes:
        """The engine with every window, live order and open episode, as bytes."""
        return pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL)

    def state_save(self) -> None:
        if self.save_state is None:
            return
        self.save_state(self.state_snapshot(), self._last_ts, self.events)
        self._last_snapshot_t = self.engine.last_t

    @staticmethod
    def state_restore(state: bytes, *, fresh: SurveillanceEngine) -> SurveillanceEngine:
        """The saved engine, if it was built with the rules now in force; else ``fresh`` (a rule
        change rebuilds the detectors: their windows start afresh and the batch command can
        re-surveil the gap). The snapshot is our own (``SurveillanceState``, written only by
        this stage), never outside input."""
        try:
            engine = pickle.loads(state)
        except Exception:  # an unreadable snapshot (older code): start afresh rather than not at all
            return fresh
        if not isinstance(engine, SurveillanceEngine) or engine.config != fresh.config:
            return fresh
        engine.clamp_time = True
        engine.merger.updates = True
        return engine

    def _record_trips(self) -> None:
        trips, self.throttle.trips = self.throttle.trips, []
        if not self.record:
            return
        from compliance.services import execution_throttle_trip_record

        for algo_id, when, why, version in trips:
            execution_throttle_trip_record(algo_id=algo_id, at=when, detail=why, rule_version=version)

    def _raise(self, alerts, *, at=None) -> list[Envelope]:
        if self.record:
            from compliance.services import alerts_record

            # ``at``: the event time of what raised them (a replay's market time); None: the wall clock
            alerts_record(
                alerts=[a.as_dict() | {"severity": a.severity} for a in alerts], source="surveillance-stream", at=at
            )
        return [make_event(alert_payload(a), source=SOURCE, key=a.account or a.symbol) for a in alerts]


def surveil_stage() -> SurveillanceConsumer:
    """Stage factory: owners, contract sizes and the firm's surveillance rules from the database."""
    from compliance.models import ThrottleTrip
    from compliance.pretrade.checks import ExecutionThrottle
    from compliance.selectors import (
        pretrade_rule_specs,
        surveillance_account_params_effective,
        surveillance_algo_params_effective,
        surveillance_instrument_params_effective,
        surveillance_params_effective,
        surveillance_state_load,
    )
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
    saved = surveillance_state_load(stage=SOURCE)

    def save(state: bytes, event_ts, events: int) -> None:
        surveillance_state_save(stage=SOURCE, state=state, event_ts=event_ts, events=events)

    return SurveillanceConsumer(
        owners=owners,
        contract_sizes=sizes,
        params=surveillance_params_effective(),
        instrument_params=surveillance_instrument_params_effective(),
        account_params=surveillance_account_params_effective(),
        algo_params=surveillance_algo_params_effective(),
        owner_lookup=owner_lookup,
        throttle=throttle,
        state=bytes(saved.state) if saved is not None else None,
        save_state=save,
    )
