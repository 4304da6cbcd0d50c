"""The event envelope and every typed payload that travels between stages. One module.

Wire format: JSON (msgspec). Decoding is strict: an unknown ``type``/``version`` pair, a
missing field or a wrong type raises ``EventDecodeError`` whose message names the field
(``$.payload.bid``), so a consumer can dead-letter the message with the reason and go on.

Decimals travel as strings (exact); datetimes as RFC 3339 UTC with microseconds (RTS 25).
Add a payload: define a ``msgspec.Struct`` subclass of ``Payload`` with ``TYPE``, ``VERSION``
and ``TOPIC``, then list it in ``PAYLOADS``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from os import urandom as _urandom
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from tradeops.core.frozen import uuid_of_int

# Every timestamp on the wire must carry its UTC offset; a naive one is refused, never guessed.
UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

MAX_EVENT_BYTES = 1_000_000  # Kafka's default message.max.bytes is 1 MiB; leave room for headers


class Topic:
    MARKET_DATA = "market-data-events"
    FEATURES = "feature-events"
    PREDICTIONS = "prediction-events"
    TRADING = "trading-events"
    COMPLIANCE = "compliance-events"


class EventDecodeError(ValueError):
    """A message that cannot be decoded. ``reason`` is a stable code for the dead-letter topic."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Payload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]


# ---------------------------------------------------------------- market data


class Tick(Payload, frozen=True, kw_only=True):
    TYPE = "market.tick"
    TOPIC = Topic.MARKET_DATA
    symbol: str
    bid: Decimal
    ask: Decimal
    ts: UtcDatetime  # source (broker/venue) time
    received_at: UtcDatetime | None = None  # stamped by the collector
    last: Decimal | None = None
    volume: Decimal = Decimal(0)
    flags: tuple[str, ...] = ()  # market monitor findings: stale, gap, spike, crossed, locked, out_of_order


# Seconds in one bar of each timeframe (MetaTrader's names): the one table of bar lengths, for
# the sources, the market monitor, the features and the execution worker.
BAR_SECONDS: dict[str, int] = {
    "M1": 60,
    "M5": 300,
    "M15": 900,
    "M30": 1800,
    "H1": 3600,
    "H4": 14400,
    "D1": 86400,
    "W1": 7 * 86400,
}


class Bar(Payload, frozen=True, kw_only=True):
    TYPE = "market.bar"
    TOPIC = Topic.MARKET_DATA
    symbol: str
    timeframe: str  # M1, H1, D1, ...
    ts: UtcDatetime  # bar open time
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    spread: Decimal | None = None  # in price units, where the source has it
    received_at: UtcDatetime | None = None
    flags: tuple[str, ...] = ()


_BAR_LENGTH = {name: timedelta(seconds=seconds) for name, seconds in BAR_SECONDS.items()}
_NO_LENGTH = timedelta(0)


def bar_length(timeframe: str) -> timedelta:
    """One bar of ``timeframe``; none for an unknown timeframe (its close taken at its open)."""
    return _BAR_LENGTH.get(timeframe, _NO_LENGTH)


def bar_end(bar: Bar) -> datetime:
    """When a bar's data exists: its END (``ts`` is its open; its close is the price at its end)."""
    return bar.ts + bar_length(bar.timeframe)


# ---------------------------------------------------------------- ML


class Features(Payload, frozen=True, kw_only=True):
    TYPE = "feature.vector"
    TOPIC = Topic.FEATURES
    symbol: str
    ts: UtcDatetime  # time of the bar/tick the features were computed from (no later data used)
    values: dict[str, float]
    price: Decimal  # reference price at ts (close or mid)
    feature_set: str = "default"


class Prediction(Payload, frozen=True, kw_only=True):
    TYPE = "prediction.made"
    TOPIC = Topic.PREDICTIONS
    symbol: str
    ts: UtcDatetime
    model: str  # model name
    model_version: str
    direction: int  # +1 up, -1 down
    probability: float  # probability of the predicted direction
    horizon: str = "1"


class Signal(Payload, frozen=True, kw_only=True):
    """A validated trade signal (pattern validator): both models agree above the threshold."""

    TYPE = "signal.validated"
    TOPIC = Topic.PREDICTIONS
    signal_id: str
    symbol: str
    ts: UtcDatetime
    side: str  # BUY | SELL
    confidence: float
    price: Decimal  # reference price when the signal was formed
    model_versions: dict[str, str]  # model name -> version (RTS 6 algorithm attribution)
    algo_id: str
    atr: float | None = None
    volatility: float | None = None


# ---------------------------------------------------------------- trading


class OrderRequested(Payload, frozen=True, kw_only=True):
    """An order asked for from outside the execution worker (the integration API), for the worker
    that trades the account: it goes through the same pre-trade gate, broker and one write as
    the worker's own orders. ``client_order_id`` is the idempotency key end to end; ``ts`` is
    when the request was received (event time); ``actor`` who asked (RTS 6 Art. 12)."""

    TYPE = "order.requested"
    TOPIC = Topic.TRADING
    client_order_id: str
    account_id: int
    symbol: str
    side: str  # BUY | SELL
    quantity: Decimal  # lots
    order_type: str = "MARKET"  # MARKET | LIMIT
    limit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    algo_id: str = ""
    desk: str = ""
    trader_id: int | None = None
    actor: str
    ts: UtcDatetime
    # Wall clock past which the worker must not take the request up (API_ORDER_REQUEST_TTL_SECONDS
    # after ``ts``); None: no expiry (requests recorded before expiry existed).
    expires_at: UtcDatetime | None = None


class OrderEvent(Payload, frozen=True, kw_only=True):
    """An order lifecycle change (created, approved, rejected, submitted, filled, cancelled...)."""

    TYPE = "order.lifecycle"
    TOPIC = Topic.TRADING
    client_order_id: str
    account_id: int
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    status: str
    previous_status: str | None = None
    filled_quantity: Decimal = Decimal(0)
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    # GTC | DAY | IOC | FOK (``trading.models.TimeInForce``). Defaulted: an event recorded before
    # the field existed decodes as GTC, the order model's default.
    time_in_force: str = "GTC"
    average_fill_price: Decimal | None = None
    broker_order_id: str = ""
    algo_id: str = ""
    trader_id: int | None = None
    desk: str = ""
    signal_id: str = ""
    reason: str = ""
    ts: UtcDatetime


class Fill(Payload, frozen=True, kw_only=True):
    TYPE = "execution.fill"
    TOPIC = Topic.TRADING
    client_order_id: str
    broker_deal_id: str
    account_id: int
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)
    venue: str = "XXXX"
    arrival_mid: Decimal | None = None
    # The touch when the order arrived (trading 0009); a fill encoded before it decodes as None.
    arrival_bid: Decimal | None = None
    arrival_ask: Decimal | None = None
    ts: UtcDatetime


class PositionChanged(Payload, frozen=True, kw_only=True):
    TYPE = "position.changed"
    TOPIC = Topic.TRADING
    account_id: int
    symbol: str
    net_quantity: Decimal
    average_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal = Decimal(0)
    ts: UtcDatetime


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # e.g. "max_order_value"
    passed: bool
    code: str = ""  # stable reason code when failed
    detail: str = ""
    rule_version: str = ""  # for compliance rules (versioned)


# The one check of a decision that reconciliation records for an order it recovered (an order at
# the broker that we never recorded: the process stopped between the broker's answer and the
# write, and the gate's results died with it). Its ``detail`` carries the broker's evidence.
DECISION_NOT_RECOVERABLE = "reconciliation.decision_not_recoverable"


class RiskDecision(Payload, frozen=True, kw_only=True):
    TYPE = "risk.decision"
    TOPIC = Topic.TRADING
    client_order_id: str
    account_id: int
    symbol: str
    approved: bool
    checks: tuple[CheckResult, ...]
    trading_state: str = "ACTIVE"
    ts: UtcDatetime


class RiskLimitChanged(Payload, frozen=True, kw_only=True):
    """A risk limit was created, changed or removed (audited with before/after by the service);
    the execution worker reloads its limits. ``account_id``/``symbol`` empty = firm-wide."""

    TYPE = "risk.limit_changed"
    TOPIC = Topic.TRADING
    limit_id: int
    account_id: int | None = None
    symbol: str = ""
    actor: str
    ts: UtcDatetime


class DrawdownRebased(Payload, frozen=True, kw_only=True):
    """A second risk manager approved re-basing an account's peak equity (four eyes; audited by
    the service): the execution worker trading the account re-bases it on its equity now and
    records the figures (``trading.controls.drawdown``)."""

    TYPE = "risk.drawdown_rebased"
    TOPIC = Topic.TRADING
    rebase_id: int
    account_id: int
    actor: str
    ts: UtcDatetime


# ---------------------------------------------------------------- compliance


class ComplianceDecision(Payload, frozen=True, kw_only=True):
    TYPE = "compliance.decision"
    TOPIC = Topic.COMPLIANCE
    client_order_id: str
    account_id: int
    symbol: str
    approved: bool
    checks: tuple[CheckResult, ...]
    ts: UtcDatetime


class Alert(Payload, frozen=True, kw_only=True):
    """A finding for a person to look at: surveillance, market monitor, drift, breaker."""

    TYPE = "alert.raised"
    TOPIC = Topic.COMPLIANCE
    alert_type: str
    severity: str = "medium"  # low | medium | high | critical
    symbol: str = ""
    account: str = ""
    owner: str = ""
    order_ids: tuple[str, ...] = ()
    score: float = 0.0
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    evidence: dict[str, Any] = {}
    ts: UtcDatetime


# The evidence of a market-data alert (``market_data.<flag>``), per flag: what integrations read
# from ``Alert.evidence`` (the JSON schema's ``if alert_type ... then evidence ...``). Every field
# is optional in the schema: an alert raised before a field existed (compliance-events keeps 7
# years) still validates. The figures as fields since 2026-12-06 (trading.marketdata.monitor's
# table): numbers as numbers, times as RFC 3339 UTC, units in the names; ``reason`` keeps the
# monitor's words for people, never to be parsed. Not payloads: nothing is decoded into them.


class MarketDataEvidence(msgspec.Struct, kw_only=True):
    """A market monitor's finding on a tick or bar (the fields every flag has)."""

    flag: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET  # the monitor's words, for people
    action: Literal["quarantined", "published_with_flag"] | UnsetType = UNSET
    event_type: Literal["market.tick", "market.bar"] | UnsetType = UNSET
    source_ts: UtcDatetime | UnsetType = UNSET  # the tick's time, the bar's open
    similar_since_last_alert: int | UnsetType = UNSET  # findings the throttle folded into this one
    cooldown_seconds: float | UnsetType = UNSET
    # Since 2026-12-06, when ``similar_since_last_alert`` > 0: the span of the findings the
    # throttle suppressed (the first's and the last's ``source_ts``); the worst of them is the
    # flag's ``suppressed_worst`` (gap, spike, stale, out of order).
    suppressed_from: UtcDatetime | UnsetType = UNSET
    suppressed_to: UtcDatetime | UnsetType = UNSET
    # True on the summary raised when a cool-down ended with suppressed findings and no new
    # finding carried them: no finding of its own (no figures, ``source_ts``, ``action``).
    window_closed: bool | UnsetType = UNSET
    bid: Decimal | UnsetType = UNSET  # a tick's
    ask: Decimal | UnsetType = UNSET
    timeframe: str | UnsetType = UNSET  # a bar's
    open: Decimal | UnsetType = UNSET
    high: Decimal | UnsetType = UNSET
    low: Decimal | UnsetType = UNSET
    close: Decimal | UnsetType = UNSET


class SuppressedGap(msgspec.Struct, kw_only=True):
    """The longest gap the alert throttle suppressed."""

    gap_seconds: float | UnsetType = UNSET
    since: UtcDatetime | UnsetType = UNSET
    source_ts: UtcDatetime | UnsetType = UNSET  # the tick or bar after the gap


class SuppressedSpike(msgspec.Struct, kw_only=True):
    """The largest move (by its size; signed as it moved) the alert throttle suppressed."""

    move_bp: float | UnsetType = UNSET
    sigma: float | UnsetType = UNSET
    price: Literal["mid", "close"] | UnsetType = UNSET
    source_ts: UtcDatetime | UnsetType = UNSET


class SuppressedStale(msgspec.Struct, kw_only=True):
    """The longest delay the alert throttle suppressed."""

    delay_seconds: float | UnsetType = UNSET
    known_at: UtcDatetime | UnsetType = UNSET
    source_ts: UtcDatetime | UnsetType = UNSET


class SuppressedOutOfOrder(msgspec.Struct, kw_only=True):
    """The furthest behind of the out-of-order events the alert throttle suppressed."""

    behind_seconds: float | UnsetType = UNSET
    previous_ts: UtcDatetime | UnsetType = UNSET
    source_ts: UtcDatetime | UnsetType = UNSET


class MarketDataGapEvidence(MarketDataEvidence, kw_only=True):
    """More session time than the limit without data before this tick or bar."""

    gap_seconds: float | UnsetType = UNSET  # session time without data (a closed market is not counted)
    gap_limit_seconds: float | UnsetType = UNSET
    since: UtcDatetime | UnsetType = UNSET  # the previous event's time
    suppressed_worst: SuppressedGap | UnsetType = UNSET


class MarketDataSpikeEvidence(MarketDataEvidence, kw_only=True):
    """A move of more sigmas of recent moves than the limit."""

    price: Literal["mid", "close"] | UnsetType = UNSET  # a tick's mid, a bar's close
    move_bp: float | UnsetType = UNSET  # signed log return, in basis points
    sigma: float | UnsetType = UNSET  # the move in sigmas of recent moves (EWMA)
    sigma_limit: float | UnsetType = UNSET
    suppressed_worst: SuppressedSpike | UnsetType = UNSET


class MarketDataStaleEvidence(MarketDataEvidence, kw_only=True):
    """Received later than the limit after the source had it."""

    delay_seconds: float | UnsetType = UNSET  # received_at - known_at
    delay_limit_seconds: float | UnsetType = UNSET
    known_at: UtcDatetime | UnsetType = UNSET  # when the source had it: a tick's time, a bar's END
    received_at: UtcDatetime | UnsetType = UNSET
    suppressed_worst: SuppressedStale | UnsetType = UNSET


class MarketDataOutOfOrderEvidence(MarketDataEvidence, kw_only=True):
    """Earlier than the symbol's previous event of the same feed."""

    previous_ts: UtcDatetime | UnsetType = UNSET  # the symbol's previous event, later than this one
    behind_seconds: float | UnsetType = UNSET
    suppressed_worst: SuppressedOutOfOrder | UnsetType = UNSET


class MarketDataStaleFeedEvidence(msgspec.Struct, kw_only=True):
    """A feed (ticks, or bars of a timeframe) of a symbol silent while other feeds tick."""

    flag: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    feed: str | UnsetType = UNSET  # "tick" or a timeframe ("H1")
    silent_seconds: float | UnsetType = UNSET
    silent_limit_seconds: float | UnsetType = UNSET
    last_seen: UtcDatetime | UnsetType = UNSET  # the feed's last event (a bar's END)
    newest: UtcDatetime | UnsetType = UNSET  # the newest event of any feed


class MarketDataFeedEvidence(msgspec.Struct, kw_only=True):
    """The collector's broker feed going down or coming back."""

    broker: str | UnsetType = UNSET
    symbols: list[str] | UnsetType = UNSET
    error: str | UnsetType = UNSET
    code: str | int | UnsetType = UNSET


MARKET_DATA_EVIDENCE: dict[str, type[msgspec.Struct]] = {
    "market_data.gap": MarketDataGapEvidence,
    "market_data.spike": MarketDataSpikeEvidence,
    "market_data.stale": MarketDataStaleEvidence,
    "market_data.out_of_order": MarketDataOutOfOrderEvidence,
    "market_data.crossed": MarketDataEvidence,
    "market_data.locked": MarketDataEvidence,
    "market_data.duplicate": MarketDataEvidence,
    "market_data.stale_feed": MarketDataStaleFeedEvidence,
    "market_data.feed_down": MarketDataFeedEvidence,
    "market_data.feed_restored": MarketDataFeedEvidence,
}


class KillSwitchChanged(Payload, frozen=True, kw_only=True):
    """Kill switch engaged or released (RTS 6 Art. 12). scope: all | account | instrument | algo | trader."""

    TYPE = "killswitch.changed"
    TOPIC = Topic.COMPLIANCE
    scope: str
    scope_value: str = ""
    engaged: bool
    actor: str
    reason: str
    cancelled_orders: tuple[str, ...] = ()
    ts: UtcDatetime


class ComplianceRuleChanged(Payload, frozen=True, kw_only=True):
    """A compliance rule version took effect (approved by a second officer) or was retired.
    Carries the whole rule so pure pre-trade checks can apply it without a database read.
    ``scope``: firm | account | instrument | algorithm; ``scope_value`` the account id, symbol or
    algo id (empty for firm)."""

    TYPE = "compliance.rule_changed"
    TOPIC = Topic.COMPLIANCE
    rule_id: int
    code: str
    rule_type: str
    scope: str
    scope_value: str = ""
    version: int
    active: bool
    parameters: dict[str, Any] = {}
    actor: str
    ts: UtcDatetime


class ExecutionThrottleReset(Payload, frozen=True, kw_only=True):
    """A designated person re-enabled an algorithm the execution throttle disabled (RTS 6 Art. 15(3))."""

    TYPE = "compliance.throttle_reset"
    TOPIC = Topic.COMPLIANCE
    algo_id: str
    actor: str
    reason: str = ""
    ts: UtcDatetime


class BreakerChanged(Payload, frozen=True, kw_only=True):
    """The trading circuit breaker moved (closed, open, half-open; RTS 6 Art. 12): every trading
    screen shows it at once. ``source`` names the execution worker, ``account`` the trading
    account whose breaker it is (one per account; empty in events from before 2026-12-06)."""

    TYPE = "breaker.changed"
    TOPIC = Topic.TRADING
    source: str
    account: str = ""
    old: str
    new: str
    reason: str = ""
    ts: UtcDatetime


class CaseChanged(Payload, frozen=True, kw_only=True):
    """A step on a surveillance case (review, assignment, comment, escalation, a four-eyes request
    or decision). Compliance screens only: never the subject's (2016/957 Art. 5). ``action`` is the
    case action's name (``review_started``, ``assigned``, ``commented``, ``close_requested`` ...)."""

    TYPE = "case.changed"
    TOPIC = Topic.COMPLIANCE
    case_id: int
    reference: str
    status: str
    action: str
    pending_action: str = ""
    assigned_to: str = ""
    actor: str
    ts: UtcDatetime


PAYLOADS: tuple[type[Payload], ...] = (
    Tick,
    Bar,
    Features,
    Prediction,
    Signal,
    OrderRequested,
    OrderEvent,
    Fill,
    PositionChanged,
    RiskDecision,
    RiskLimitChanged,
    DrawdownRebased,
    ComplianceDecision,
    Alert,
    KillSwitchChanged,
    ComplianceRuleChanged,
    ExecutionThrottleReset,
    CaseChanged,
    BreakerChanged,
)
SCHEMAS: dict[tuple[str, int], type[Payload]] = {(p.TYPE, p.VERSION): p for p in PAYLOADS}
TOPICS_BY_TYPE: dict[str, str] = {p.TYPE: p.TOPIC for p in PAYLOADS}


# ---------------------------------------------------------------- envelope


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: UtcDatetime
    source: str
    key: str  # symbol or account: picks the Kafka partition, keeps per-key order
    payload: Any
    traceparent: str = ""

    @property
    def topic(self) -> str:
        return TOPICS_BY_TYPE[self.type]


class _WireEnvelope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: UtcDatetime
    source: str
    key: str
    payload: msgspec.Raw
    traceparent: str = ""


# uuid.UUID(bytes=..., version=4)'s bits: the variant (RFC 4122) and the version set, the rest random
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID4_SET = (0x8000 << 48) | (4 << 76)


# Random ids are drawn from ``os.urandom`` this many at a time: one system call per id cost
# 3-6 us on the shared benchmark machine (a getrandom call), more than the rest of an event.
_RANDOM_IDS_PER_DRAW = 256
_random_ids: Iterator[int] = iter(())


def _random_ids_draw() -> Iterator[int]:
    """A fresh iterator over ``_RANDOM_IDS_PER_DRAW`` version 4 UUIDs' integers, from one
    ``os.urandom`` call (16 bytes each, version and variant bits set as ``uuid.uuid4`` sets them)."""
    global _random_ids
    pool = _urandom(16 * _RANDOM_IDS_PER_DRAW)
    ids = iter([(int.from_bytes(pool[i : i + 16]) & _UUID4_CLEAR) | _UUID4_SET for i in range(0, len(pool), 16)])
    _random_ids = ids
    return ids


def _random_ids_forget() -> None:
    """In a forked child: drop the parent's undrawn ids (both processes would hand them out)."""
    global _random_ids
    _random_ids = iter(())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random_ids_forget)


def random_event_id() -> uuid.UUID:
    """``uuid.uuid4()`` (16 random bytes from ``os.urandom``, version and variant bits set as it
    sets them) without ``UUID.__init__``'s argument checks: every handler output gets one (the
    runner then replaces it with its deterministic id), tens of thousands a second in a replay.

    The bytes are drawn from ``os.urandom`` for many ids at once (``_random_ids_draw``) and each
    handed out once: ``next`` on a list iterator is one C call, so two threads never get the same
    one (a thread that finds the pool empty draws a new one and takes its first id from it), and a
    forked child drops what its parent had drawn."""
    value = next(_random_ids, None)
    if value is None:
        value = next(_random_ids_draw())
    return uuid_of_int(value)


def make_event(
    payload: Payload,
    *,
    source: str,
    key: str,
    occurred_at: UtcDatetime | None = None,
    traceparent: str = "",
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Wrap a payload. ``occurred_at`` defaults to the payload's ``ts`` (handlers never read the
    clock); it must be timezone-aware."""
    when = occurred_at or getattr(payload, "ts", None)
    if when is None:
        raise ValueError(f"{payload.TYPE}: occurred_at is required when the payload has no ts")
    if when.tzinfo is None:
        raise ValueError(f"{payload.TYPE}: occurred_at must be timezone-aware UTC, got naive {when.isoformat()}")
    return Envelope(
        event_id=event_id or random_event_id(),
        type=payload.TYPE,
        version=payload.VERSION,
        occurred_at=when.astimezone(UTC),
        source=source,
        key=key,
        payload=payload,
        traceparent=traceparent,
    )


def events_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of every event on the wire, generated from the structs above
    (``msgspec.json.schema_components``), never written by hand: one envelope variant per
    (type, version), its ``payload`` pointing at the payload's schema, its topic in ``x-topic``;
    an ``alert.raised`` of a market-data type has its ``evidence`` typed by
    ``MARKET_DATA_EVIDENCE``. Served at ``/api/v1/events/schema/`` for integrations that consume
    the Kafka topics."""
    evidences = dict.fromkeys(MARKET_DATA_EVIDENCE.values())  # each once, in order
    _, defs = msgspec.json.schema_components([Envelope, *PAYLOADS, *evidences], ref_template="#/$defs/{name}")
    defs[Alert.__name__]["allOf"] = [
        {
            "if": {"properties": {"alert_type": {"const": alert_type}}, "required": ["alert_type"]},
            "then": {"properties": {"evidence": {"$ref": f"#/$defs/{evidence.__name__}"}}},
        }
        for alert_type, evidence in MARKET_DATA_EVIDENCE.items()
    ]
    envelope = defs.pop("Envelope")
    variants = []
    for payload in PAYLOADS:
        properties = {
            **envelope["properties"],
            "type": {"const": payload.TYPE},
            "version": {"const": payload.VERSION},
            "payload": {"$ref": f"#/$defs/{payload.__name__}"},
        }
        variants.append(
            {
                "title": f"{payload.TYPE} v{payload.VERSION}",
                "description": f"On the {payload.TOPIC} topic.",
                "type": "object",
                "properties": properties,
                "required": envelope["required"],
                "additionalProperties": False,
                "x-topic": payload.TOPIC,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tradeops event envelope",
        "description": (
            "Every event on the tradeops Kafka topics: JSON, one envelope per message. Decimals are "
            "strings; times are RFC 3339 UTC with microseconds (RTS 25). An unknown (type, version) "
            "is refused, never guessed."
        ),
        "oneOf": variants,
        "$defs": defs,
    }


_encoder = msgspec.json.Encoder(decimal_format="string")
_wire_decoder = msgspec.json.Decoder(_WireEnvelope)
_payload_decoders = {key: msgspec.json.Decoder(cls) for key, cls in SCHEMAS.items()}


def encode(event: Envelope) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> Envelope:
    """Decode and validate one message. Raises EventDecodeError(reason, detail) naming the field."""
    if len(data) > MAX_EVENT_BYTES:
        raise EventDecodeError("oversized", f"{len(data)} bytes exceeds the limit of {MAX_EVENT_BYTES}")
    try:
        wire = _wire_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise EventDecodeError("invalid_envelope", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise EventDecodeError("malformed", str(exc)) from None
    decoder = _payload_decoders.get((wire.type, wire.version))
    if decoder is None:
        known = sorted(v for (t, v) in SCHEMAS if t == wire.type)
        detail = (
            f"unknown version {wire.version} of {wire.type!r} (known: {known})"
            if known
            else f"unknown event type {wire.type!r}"
        )
        raise EventDecodeError("unknown_schema", detail)
    if wire.occurred_at.tzinfo is None:
        raise EventDecodeError("invalid_envelope", "occurred_at must carry a UTC offset - at `$.occurred_at`")
    try:
        payload = decoder.decode(wire.payload)
    except msgspec.ValidationError as exc:
        detail = str(exc)
        # msgspec names no path when the payload itself is the wrong type (null, a list...).
        detail = detail.replace("`$", "`$.payload") if "`$" in detail else f"{detail} - at `$.payload`"
        raise EventDecodeError("invalid_payload", detail) from None
    return Envelope(
        event_id=wire.event_id,
        type=wire.type,
        version=wire.version,
        occurred_at=wire.occurred_at,
        source=wire.source,
        key=wire.key,
        payload=payload,
        traceparent=wire.traceparent,
    )
