"""The pre-trade compliance controls (RTS 6 Art. 15) as checks for ``trading.gate.PreTradeGate``.

Pure: no Django, no I/O, no clock (``context.now``). Every check has the gate's one signature,
``check(intent, context) -> CheckResult``, and carries the rule versions it applies, so each
decision names the version behind it (``CheckResult.rule_version``, e.g. ``price_collar#12@v3``).

Rules and scope: a check holds ``RuleSpec`` values keyed by scope; for an intent the most
specific applies: algorithm, then instrument, then account, then firm (the restricted list
takes the union instead). No applicable rule: the check passes and says so. Rules change at run
time through ``on_event(compliance.rule_changed)`` (published when a second officer approves a
version), so a change takes effect in the worker without a restart or a database read.

Counting (Art. 15(2)): message counters advance in ``on_sent``, when the order is sent, not on
fill. Cancels bypass every control (``applies_to_cancels`` is false): a compliance limit must
never stop the firm from cancelling.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from compliance.pretrade.params import Params, pretrade_params_convert
from tradeops.events import (
    CheckResult,
    ComplianceRuleChanged,
    ExecutionThrottleReset,
    Fill,
    OrderEvent,
    PositionChanged,
    Tick,
)

BPS = Decimal(10_000)
ZERO = Decimal(0)
SCOPE_ORDER = ("algorithm", "instrument", "account", "firm")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One effective rule version as a plain value. ``label`` goes into ``CheckResult.rule_version``;
    ``passed`` is the (immutable, shared) result of a check that let an order through under it."""

    rule_type: str
    scope: str  # firm | account | instrument | algorithm
    scope_value: str
    params: Params
    version: int = 1
    rule_id: int = 0
    code: str = ""
    label: str = field(init=False, compare=False, repr=False)
    passed: CheckResult = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        label = f"{self.code or self.rule_type}#{self.rule_id}@v{self.version}"
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "passed", CheckResult(name=self.rule_type, passed=True, rule_version=label))

    @classmethod
    def from_event(cls, p: ComplianceRuleChanged) -> RuleSpec:
        return cls(
            rule_type=p.rule_type,
            scope=p.scope,
            scope_value=p.scope_value,
            params=pretrade_params_convert(p.rule_type, p.parameters),
            version=p.version,
            rule_id=p.rule_id,
            code=p.code,
        )


class ComplianceCheck:
    """Base of the controls. Subclasses set ``name``/``rule_type`` and implement ``decide``."""

    name = ""
    rule_type = ""
    applies_to_cancels = False

    def __init__(self, rules: Iterable[RuleSpec] = ()):
        self.rules: dict[tuple[str, str], RuleSpec] = {}
        # The same rules indexed for the hot path: no key tuples, no str(account_id) per decision.
        self._by_algo: dict[str, RuleSpec] = {}
        self._by_symbol: dict[str, RuleSpec] = {}
        self._by_account: dict[int, RuleSpec] = {}
        self._firm: RuleSpec | None = None
        for spec in rules:
            self.rule_set(spec)
        self._no_rule = CheckResult(name=self.name, passed=True, detail="no rule in force")

    def rule_set(self, spec: RuleSpec) -> None:
        if spec.rule_type != self.rule_type:
            raise ValueError(f"{self.name}: a {spec.rule_type!r} rule does not belong here")
        if spec.scope not in SCOPE_ORDER:
            raise ValueError(f"{self.name}: unknown scope {spec.scope!r}")
        self.rules[(spec.scope, spec.scope_value)] = spec
        self._reindex()

    def rule_remove(self, scope: str, scope_value: str) -> None:
        self.rules.pop((scope, scope_value), None)
        self._reindex()

    def _reindex(self) -> None:
        rules = self.rules.values()
        self._by_algo = {s.scope_value: s for s in rules if s.scope == "algorithm"}
        self._by_symbol = {s.scope_value: s for s in rules if s.scope == "instrument"}
        self._by_account = {int(s.scope_value): s for s in rules if s.scope == "account"}
        self._firm = self.rules.get(("firm", ""))

    def resolve(self, intent) -> RuleSpec | None:
        """Most specific first: algorithm, instrument, account, firm."""
        if self._by_algo and intent.algo_id:
            spec = self._by_algo.get(intent.algo_id)
            if spec is not None:
                return spec
        if self._by_symbol:
            spec = self._by_symbol.get(intent.symbol)
            if spec is not None:
                return spec
        if self._by_account:
            spec = self._by_account.get(intent.account_id)
            if spec is not None:
                return spec
        return self._firm

    def __call__(self, intent, context) -> CheckResult:
        spec = self.resolve(intent)
        if spec is None:
            return self._no_rule
        return self.decide(intent, context, spec)

    def decide(self, intent, context, spec: RuleSpec) -> CheckResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def ok(self, spec: RuleSpec, detail: str = "", code: str = "") -> CheckResult:
        if not detail and not code:
            return spec.passed
        return CheckResult(name=self.name, passed=True, code=code, detail=detail, rule_version=spec.label)

    def refuse(self, spec: RuleSpec, detail: str) -> CheckResult:
        return CheckResult(
            name=self.name, passed=False, code=f"compliance.{self.name}", detail=detail, rule_version=spec.label
        )

    event_types: tuple[type, ...] = (ComplianceRuleChanged,)  # what on_event acts on (trading.gate)

    def on_event(self, event) -> None:
        payload = event.payload
        if isinstance(payload, ComplianceRuleChanged) and payload.rule_type == self.rule_type:
            if payload.active:
                self.rule_set(RuleSpec.from_event(payload))
            else:
                current = self.rules.get((payload.scope, payload.scope_value))
                if current is not None and current.rule_id == payload.rule_id:
                    self.rule_remove(payload.scope, payload.scope_value)


def _order_price(intent, context) -> Decimal | None:
    """The price the order would trade at: its limit, else the touch it would take, else the
    intent's reference price."""
    if intent.limit_price is not None:
        return intent.limit_price
    if context.quote is not None:
        return context.quote.price_for(intent.side)
    return intent.reference_price


class PriceCollar(ComplianceCheck):
    """RTS 6 Art. 15(1)(a): refuse an order priced more than ``max_deviation_bps`` from the
    latest mid (order by order) or, when the rule sets a period, more than
    ``max_period_deviation_bps`` from the mid ``period_s`` ago (over a period: no chasing a
    runaway market). Mids come from ticks (``on_event``), sampled once a second per symbol.
    No quote: refused (fail closed: nothing to measure against)."""

    name = rule_type = "price_collar"
    HISTORY_S = 3600.0  # longest period kept

    def __init__(self, rules: Iterable[RuleSpec] = ()):
        super().__init__(rules)
        self.mids: dict[str, deque] = {}  # symbol -> (t, bid, ask) a second apart: the mid taken on read

    def decide(self, intent, context, spec):
        quote = context.quote
        if quote is None:
            return self.refuse(spec, f"no reference price for {intent.symbol}: no quote received")
        mid = (quote.bid + quote.ask) / 2
        price = _order_price(intent, context)
        deviation = abs(price - mid) / mid * BPS
        p = spec.params
        if deviation > p.max_deviation_bps:
            return self.refuse(
                spec, f"price {price} is {deviation:.2f} bps from mid {mid}; collar {p.max_deviation_bps} bps"
            )
        if p.period_s is not None:
            reference = self._mid_at(intent.symbol, context.now.timestamp() - p.period_s)
            if reference is not None:
                drift = abs(price - reference) / reference * BPS
                if drift > p.max_period_deviation_bps:
                    return self.refuse(
                        spec,
                        f"price {price} is {drift:.2f} bps from the mid {reference} of {p.period_s:g}s ago; "
                        f"collar over the period {p.max_period_deviation_bps} bps",
                    )
        return self.ok(spec)

    def _mid_at(self, symbol: str, when: float):
        """The last sampled mid at or before ``when`` (None without history that old)."""
        dq = self.mids.get(symbol)
        if not dq or dq[0][0] > when:
            return None
        found = dq[0]
        for entry in dq:
            if entry[0] > when:
                break
            found = entry
        return (found[1] + found[2]) / 2  # the mid, as it was computed when the tick was kept

    event_types = (Tick, ComplianceRuleChanged)

    def on_event(self, event) -> None:
        payload = event.payload
        if isinstance(payload, Tick):
            t = payload.ts.timestamp()
            dq = self.mids.get(payload.symbol)
            if dq is None:
                dq = self.mids[payload.symbol] = deque()
            elif t - dq[-1][0] < 1.0:
                return
            dq.append((t, payload.bid, payload.ask))  # the mid only for the one a collar reads
            while dq[0][0] < t - self.HISTORY_S:
                dq.popleft()
        else:
            super().on_event(event)


class MaxOrderValue(ComplianceCheck):
    """RTS 6 Art. 15(1)(b): notional = lots x contract size x price, in the quote currency."""

    name = rule_type = "max_order_value"

    def decide(self, intent, context, spec):
        price = _order_price(intent, context)
        value = intent.quantity * context.instrument.contract_size * price
        limit = spec.params.max_value
        if value > limit:
            return self.refuse(spec, f"order value {value:.2f} {context.instrument.quote_currency} exceeds {limit}")
        return self.ok(spec)


class MaxOrderVolume(ComplianceCheck):
    """RTS 6 Art. 15(1)(c): lots per order."""

    name = rule_type = "max_order_volume"

    def decide(self, intent, context, spec):
        limit = spec.params.max_lots
        if intent.quantity > limit:
            return self.refuse(spec, f"order volume {intent.quantity} lots exceeds {limit}")
        return self.ok(spec)


class MessageRate(ComplianceCheck):
    """RTS 6 Art. 15(1)(d): at most ``max_messages`` messages (submissions, modifications,
    cancellations) per ``window_s``, per account (``max_messages_per_account``) or per algorithm
    (``max_messages_per_algo``). The message being decided counts: with a limit of 10 and 9
    sent in the window, the 10th passes and the 11th is refused."""

    applies_to_cancels = False

    def __init__(self, rules: Iterable[RuleSpec] = (), *, per: str = "account"):
        if per not in ("account", "algo"):
            raise ValueError("per must be 'account' or 'algo'")
        self.per = per
        self.name = self.rule_type = f"max_messages_per_{per}"
        self.sent: dict[str, deque] = {}
        super().__init__(rules)

    def _key(self, intent) -> str:
        return str(intent.account_id) if self.per == "account" else intent.algo_id

    def decide(self, intent, context, spec):
        key = self._key(intent)
        if not key:
            return self.ok(spec, "no algorithm id")
        p = spec.params
        now = context.now.timestamp()
        dq = self.sent.get(key)
        count = 0
        if dq:
            edge = now - p.window_s
            while dq and dq[0] <= edge:
                dq.popleft()
            count = len(dq)
        if count + 1 > p.max_messages:
            return self.refuse(
                spec, f"{count} messages in the last {p.window_s:g}s for {self.per} {key}; limit {p.max_messages}"
            )
        return self.ok(spec)

    def on_sent(self, intent, context) -> None:
        key = self._key(intent)
        if key:
            self.sent.setdefault(key, deque()).append(context.now.timestamp())


class ExecutionThrottle(ComplianceCheck):
    """RTS 6 Art. 15(3): counts executions per algorithm (fills seen on trading-events); more
    than ``max_executions`` within ``window_s`` disables the algorithm, and every order it sends
    is refused until a designated person re-enables it (``compliance.throttle_reset``, published
    by ``compliance.services.execution_throttle_reset``). ``max_executions`` executions in the
    window are allowed; the next one trips the throttle."""

    name = rule_type = "execution_throttle"

    def __init__(self, rules: Iterable[RuleSpec] = ()):
        super().__init__(rules)
        self.algo_of: dict[str, str] = {}  # client_order_id -> algo_id
        self.executions: dict[str, deque] = {}
        self.disabled: dict[str, str] = {}  # algo_id -> why
        # Trips not yet taken by a recorder: (algo_id, when, why, rule version). The surveillance
        # stage runs this same check on the same events and persists them (ThrottleTrip), so a
        # disabled algorithm stays disabled across a worker restart (``disable`` at load).
        self.trips: list[tuple] = []

    def resolve_algo(self, algo_id: str) -> RuleSpec | None:
        return self.rules.get(("algorithm", algo_id)) or self.rules.get(("firm", ""))

    def decide(self, intent, context, spec):
        why = self.disabled.get(intent.algo_id)
        if why is not None:
            return self.refuse(spec, f"algorithm {intent.algo_id} disabled by the execution throttle: {why}")
        return self.ok(spec)

    def record_execution(self, algo_id: str, when) -> None:
        spec = self.resolve_algo(algo_id)
        if spec is None or algo_id in self.disabled:
            return
        p = spec.params
        t = when.timestamp()
        dq = self.executions.setdefault(algo_id, deque())
        dq.append(t)
        edge = t - p.window_s
        while dq and dq[0] <= edge:
            dq.popleft()
        if len(dq) > p.max_executions:
            why = (
                f"{len(dq)} executions within {p.window_s:g}s at {when.isoformat()} (limit {p.max_executions}, "
                f"{spec.label}); a designated person must re-enable it"
            )
            self.disabled[algo_id] = why
            self.trips.append((algo_id, when, why, spec.label))

    def disable(self, algo_id: str, why: str) -> None:
        """Restore a trip recorded before a restart (it stays until a person re-enables it)."""
        self.disabled[algo_id] = why

    def reenable(self, algo_id: str) -> None:
        self.disabled.pop(algo_id, None)
        self.executions.pop(algo_id, None)

    event_types = (OrderEvent, Fill, ExecutionThrottleReset, ComplianceRuleChanged)

    def on_event(self, event) -> None:
        payload = event.payload
        if isinstance(payload, OrderEvent):
            if payload.algo_id:
                self.algo_of[payload.client_order_id] = payload.algo_id
        elif isinstance(payload, Fill):
            algo_id = self.algo_of.get(payload.client_order_id)
            if algo_id:
                self.record_execution(algo_id, payload.ts)
        elif isinstance(payload, ExecutionThrottleReset):
            self.reenable(payload.algo_id)
        else:
            super().on_event(event)


class RestrictedList(ComplianceCheck):
    """Restricted list: orders in a restricted symbol are refused. Watch list: they pass, with
    ``code=compliance.watch_list`` so the decision record flags them for compliance. The lists of
    every applicable scope (firm, account, algorithm) are combined."""

    name = rule_type = "restricted_list"

    def resolve(self, intent):
        return None  # unused: __call__ combines scopes

    def __call__(self, intent, context):
        rules = self.rules
        if not rules:
            return self._no_rule
        specs = [
            s
            for s in (
                rules.get(("firm", "")),
                rules.get(("account", str(intent.account_id))),
                rules.get(("algorithm", intent.algo_id)) if intent.algo_id else None,
                rules.get(("instrument", intent.symbol)),
            )
            if s is not None
        ]
        if not specs:
            return self._no_rule
        symbol = intent.symbol
        for spec in specs:
            if symbol in spec.params.restricted:
                reason = f": {spec.params.reason}" if spec.params.reason else ""
                return self.refuse(spec, f"{symbol} is on the restricted list{reason}")
        for spec in specs:
            if symbol in spec.params.watch:
                return self.ok(spec, f"{symbol} is on the watch list", code="compliance.watch_list")
        return self.ok(specs[0])


class PositionLimit(ComplianceCheck):
    """Position limit per account and instrument (RTS 6 Art. 17 for derivatives): |net position
    after the order| <= ``max_net_lots``; an order that reduces |net position| always passes.
    Positions come from ``position.changed`` events (``on_event``) or ``load``."""

    name = rule_type = "position_limit"

    def __init__(self, rules: Iterable[RuleSpec] = ()):
        super().__init__(rules)
        self.positions: dict[tuple[int, str], Decimal] = {}

    def load(self, account_id: int, symbol: str, net_quantity: Decimal) -> None:
        self.positions[(account_id, symbol)] = net_quantity

    def decide(self, intent, context, spec):
        current = self.positions.get((intent.account_id, intent.symbol), ZERO)
        after = current + intent.signed_quantity
        limit = spec.params.max_net_lots
        if abs(after) > limit and abs(after) >= abs(current):
            return self.refuse(spec, f"net position would be {after} lots (now {current}); limit {limit}")
        return self.ok(spec)

    event_types = (PositionChanged, ComplianceRuleChanged)

    def on_event(self, event) -> None:
        payload = event.payload
        if isinstance(payload, PositionChanged):
            self.positions[(payload.account_id, payload.symbol)] = payload.net_quantity
        else:
            super().on_event(event)


CHECK_CLASSES = {
    "price_collar": PriceCollar,
    "max_order_value": MaxOrderValue,
    "max_order_volume": MaxOrderVolume,
    "execution_throttle": ExecutionThrottle,
    "restricted_list": RestrictedList,
    "position_limit": PositionLimit,
}


def checks_build(specs: Iterable[RuleSpec] = ()) -> list[ComplianceCheck]:
    """One instance of every control, each holding its rules (controls without rules pass)."""
    by_type: dict[str, list[RuleSpec]] = {}
    for spec in specs:
        by_type.setdefault(spec.rule_type, []).append(spec)
    checks: list[ComplianceCheck] = [cls(by_type.get(rt, ())) for rt, cls in CHECK_CLASSES.items()]
    checks.append(MessageRate(by_type.get("max_messages_per_account", ()), per="account"))
    checks.append(MessageRate(by_type.get("max_messages_per_algo", ()), per="algo"))
    return checks


COMPLIANCE_CHECK_NAMES = frozenset([*CHECK_CLASSES, "max_messages_per_account", "max_messages_per_algo"])
