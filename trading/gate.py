"""The pre-trade gate: the one call the order path makes before an order may leave the firm.

RTS 6 Art. 15 (pre-trade controls) and the risk limits of Art. 17 meet here. The gate composes an
ordered list of checks that share ONE signature, runs every one of them (no short-circuit, so a
rejection names every failing check, not just the first), and returns a ``GateDecision``.

Pure: no Django, no clock, no I/O. Evaluating a decision costs microseconds (see
``bench/order_path.py``), so checks must only read in-memory state.

The check protocol (for the compliance engineer and anyone adding a control)
---------------------------------------------------------------------------
A check is any object with:

``name: str``
    Stable identifier, e.g. ``"price_collar"``; it appears in ``CheckResult.name``, the
    ``risk.decision`` event and the order's reject reason. Unique within one gate.

``__call__(self, intent: OrderIntent, context: GateContext) -> CheckResult``
    Decide one intent. Return ``CheckResult(name=self.name, passed=True)`` to let it through, or
    ``passed=False`` with a stable ``code`` (``"compliance.price_collar"``), a human ``detail``
    that names the numbers (``"price 1.2 is 3.1% from mid 1.16; collar 2%"``) and, for versioned
    compliance rules, ``rule_version``. Must not mutate the intent or the context, must not do
    I/O, must not read the clock (use ``context.now``). It may raise: the gate turns an exception
    into a failed result with code ``"gate.check_error"`` (fail closed) and the order is refused.

Optional hooks (the gate calls them when present):

``on_sent(self, intent: OrderIntent, context: GateContext) -> None``
    The order was approved and is being sent. RTS 6 Art. 15(2): an order counts toward message
    limits the moment it is sent, not when it fills, so rate and message counters advance here.

``on_event(self, event: tradeops.events.Envelope) -> None``
    Keep the check's own hot state current (fills, order updates, ticks, rule changes). The
    execution worker feeds every event it consumes or produces to ``PreTradeGate.on_event``.

``event_types: tuple[type, ...]`` (optional, with ``on_event``)
    The payload classes ``on_event`` acts on: the gate then calls it only for events whose
    payload is one of them (or a subclass), not for every tick of the feed. Without it the hook
    gets every event. A subclass that overrides ``on_event`` must state its own.

``applies_to_cancels: bool`` (default False)
    Cancels bypass every check unless the check sets this: a kill switch, a halted trading
    state or an open breaker must never stop the firm from cancelling (RTS 6 Art. 12).

Composition: ``trading`` never imports ``compliance``. The execution worker builds the gate
from ``trading.risk.risk_checks(...)`` and then appends the compliance checks it loads by dotted
path (setting ``PRETRADE_COMPLIANCE_CHECKS``), so the compliance app plugs in without trading
knowing it exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from tradeops.events import CheckResult, Envelope, RiskDecision
from trading.intents import InstrumentSpec, IntentAction, OrderIntent, Quote

CHECK_ERROR = "gate.check_error"


@dataclass(frozen=True, slots=True)
class GateContext:
    """What a check may read. Built by the runner per intent; read-only by convention.

    ``now``: the decision time (from the event, UTC). ``instrument``: the intent's instrument.
    ``quote``: latest quote for the symbol, or None if none has arrived. ``trading_state``:
    ACTIVE / REDUCING / HALTED for the intent's account. ``account``: the risk manager's view of
    the account (``trading.risk.state.AccountBook``: positions, open orders, equity), or None in
    a gate used without a risk manager. ``extra``: runner-supplied facts for other checks.
    """

    now: datetime
    instrument: InstrumentSpec
    quote: Quote | None = None
    trading_state: str = "ACTIVE"
    account: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class PreTradeCheck(Protocol):
    name: str

    def __call__(self, intent: OrderIntent, context: GateContext) -> CheckResult: ...


@dataclass(frozen=True, slots=True)
class GateDecision:
    approved: bool
    checks: tuple[CheckResult, ...]

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reason(self) -> str:
        """Every failing check, ``code: detail`` joined by ``; `` (the order's reject reason)."""
        return "; ".join(f"{c.code}: {c.detail}" if c.detail else c.code for c in self.failures)

    def to_payload(self, intent: OrderIntent, *, trading_state: str, at: datetime | None = None) -> RiskDecision:
        """The decision as an event payload; ``at`` is when it was decided (event time; the
        intent's time when not given)."""
        return RiskDecision(
            client_order_id=intent.client_order_id,
            account_id=intent.account_id,
            symbol=intent.symbol,
            approved=self.approved,
            checks=self.checks,
            trading_state=trading_state,
            ts=at or intent.ts,
        )


class PreTradeGate:
    """Runs every check on an intent; approved only if all pass. See the module docstring."""

    def __init__(self, checks: Iterable[PreTradeCheck] = ()):
        self._checks: list[PreTradeCheck] = []
        # The checks' optional hooks, looked up once: the order path calls them for every event
        # of every order (8 events x 22 checks of getattr per order otherwise).
        self._on_sent: list = []
        self._on_event: list[tuple[Any, tuple[type, ...] | None]] = []  # (hook, payload types or None: all)
        self._hooks_by_type: dict[type, list] = {}  # payload class -> the hooks that want it
        for check in checks:
            self.add(check)

    @property
    def checks(self) -> Sequence[PreTradeCheck]:
        return tuple(self._checks)

    def add(self, check: PreTradeCheck) -> None:
        name = getattr(check, "name", None)
        if not name or not callable(check):
            raise TypeError(f"{check!r} is not a pre-trade check: it needs a `name` and __call__(intent, context)")
        if any(c.name == name for c in self._checks):
            raise ValueError(f"a check named {name!r} is already in the gate")
        self._checks.append(check)
        if getattr(check, "on_sent", None) is not None:
            self._on_sent.append(check.on_sent)
        if getattr(check, "on_event", None) is not None:
            types = getattr(check, "event_types", None)
            self._on_event.append((check.on_event, tuple(types) if types is not None else None))
            self._hooks_by_type.clear()

    def evaluate(self, intent: OrderIntent, context: GateContext) -> GateDecision:
        """Decide one intent. Cancels only meet checks with ``applies_to_cancels``."""
        is_cancel = intent.action == IntentAction.CANCEL
        results = []
        approved = True
        for check in self._checks:
            if is_cancel and not getattr(check, "applies_to_cancels", False):
                continue
            try:
                result = check(intent, context)
            except Exception as exc:  # noqa: BLE001 - fail closed: a broken check refuses, never waves through
                result = CheckResult(
                    name=check.name, passed=False, code=CHECK_ERROR, detail=f"{type(exc).__name__}: {exc}"
                )
            if not result.passed:
                approved = False
            results.append(result)
        return GateDecision(approved, tuple(results))

    def on_sent(self, intent: OrderIntent, context: GateContext) -> None:
        for hook in self._on_sent:
            hook(intent, context)

    def on_event(self, event: Envelope) -> None:
        kind = type(getattr(event, "payload", None))  # an envelope's payload class
        hooks = self._hooks_by_type.get(kind)
        if hooks is None:
            hooks = self._hooks(kind)
        for hook in hooks:
            hook(event)

    def wants(self, kind: type) -> bool:
        """Whether any check's ``on_event`` acts on payloads of class ``kind``."""
        hooks = self._hooks_by_type.get(kind)
        return bool(hooks if hooks is not None else self._hooks(kind))

    def _hooks(self, kind: type) -> list:
        hooks = self._hooks_by_type[kind] = [
            hook for hook, types in self._on_event if types is None or issubclass(kind, types)
        ]
        return hooks


def passed(name: str) -> CheckResult:
    return CheckResult(name=name, passed=True)


def failed(name: str, code: str, detail: str, rule_version: str = "") -> CheckResult:
    return CheckResult(name=name, passed=False, code=code, detail=detail, rule_version=rule_version)
