"""The ``surveillance`` stage (``tradeops.stages``): post-trade surveillance on the live stream.

Consumes trading-events, market-data-events and compliance-events (rule changes and throttle
re-enables; its own alerts come back and are ignored). Orders, fills and ticks go through the pure
surveillance engine; its alerts are recorded (deduplicated, grouped into cases) and returned as
``alert.raised`` events for the runner to publish on compliance-events (deterministic ids, so a
redelivered batch does not raise twice). ``risk.decision`` events yield the pre-trade compliance
record and ``compliance.decision`` (RTS 6 Art. 15); execution-throttle trips are persisted
(``ThrottleTrip``) so a disabled algorithm stays disabled across restarts. Stateful: windows
live in memory; a restart starts them afresh (the batch command can re-surveil any period).
"""

from __future__ import annotations

from collections.abc import Mapping

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
        record: bool = True,
        owner_lookup=None,
        throttle=None,
    ):
        self.owners = dict(owners or {})
        self.owner_lookup = owner_lookup  # account_id -> owner key, for accounts opened after start
        self.contract_sizes = dict(contract_sizes or {})
        self.engine = SurveillanceEngine(params, instrument_params=instrument_params, clamp_time=True)
        self.record = record
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
        self.engine.process(rec)
        if not self.engine.alerts:
            return []
        return self._raise(self.engine.take_alerts())

    def _record_trips(self) -> None:
        trips, self.throttle.trips = self.throttle.trips, []
        if not self.record:
            return
        from compliance.services import execution_throttle_trip_record

        for algo_id, when, why, version in trips:
            execution_throttle_trip_record(algo_id=algo_id, at=when, detail=why, rule_version=version)

    def _raise(self, alerts) -> list[Envelope]:
        if self.record:
            from compliance.services import alerts_record

            alerts_record(alerts=[a.as_dict() | {"severity": a.severity} for a in alerts], source="surveillance-stream")
        return [make_event(alert_payload(a), source=SOURCE, key=a.account or a.symbol) for a in alerts]


def surveil_stage() -> SurveillanceConsumer:
    """Stage factory: owners, contract sizes and the firm's surveillance rules from the database."""
    from compliance.models import ThrottleTrip
    from compliance.pretrade.checks import ExecutionThrottle
    from compliance.selectors import (
        pretrade_rule_specs,
        surveillance_instrument_params_effective,
        surveillance_params_effective,
    )
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
    return SurveillanceConsumer(
        owners=owners,
        contract_sizes=sizes,
        params=surveillance_params_effective(),
        instrument_params=surveillance_instrument_params_effective(),
        owner_lookup=owner_lookup,
        throttle=throttle,
    )
