"""Reconciliation with the broker (RTS 6 Art. 17): our records made to agree with the broker's.

The order, its fills and the position are written only AFTER the broker answered, so a crash
between the broker's fill and our commit leaves an order the broker has and we do not; a lost
reply leaves an order we sent whose fate we do not know. ``order_reconcile`` (the execution
worker calls it at start, after a reconnect, after any failed commit or unknown broker state)
reads the broker's deals and open orders, matches them to ours by the order comment (the client
order id), records what is missing once (fills are idempotent by broker deal id), closes orders
the broker no longer holds, and compares positions. A difference in positions raises a
``reconciliation_position_mismatch`` alert and, when asked, engages the account's kill switch
(``reconciliation_mismatch_raise``): orders sized on a position we cannot vouch for must not go
out until a risk manager has explained it.

A recovered order gets its pre-trade decision record (RTS 6 Art. 15), honestly: the gate's
decision travels in the order's own write (the ``risk.decision`` event in the same transaction),
so an order missing from our records has no decision anywhere (not in the outbox, not in the
audit trail), and the check results died with the process. What is known is recorded: the order
reached the broker, and the worker sends only what its gate approved, so the decision is
"approved" by inference, with one check, ``reconciliation.decision_not_recoverable``, whose
detail names the broker's evidence (ticket, deals, magic number and algorithm, times) and says
that the checks' results are not recoverable. ``decided_at`` is the broker's first time for the
order (the decision was at or before it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction

from tradeops.core.clock import utcnow
from tradeops.events import DECISION_NOT_RECOVERABLE, CheckResult, Envelope, RiskDecision, make_event
from tradeops.recorder import recording
from trading.brokers.base import Broker, Deal
from trading.controls.services import KillResult, kill_switch_engage, risk_alert_raise
from trading.models import Instrument, Order, TradingAccount, UnwritableOrder
from trading.order_states import OrderStatus
from trading.orders import selectors
from trading.orders.outcome import fill_of
from trading.orders.plan import OrderDraft, OrderStep
from trading.orders.services import (
    execution_record,
    order_broker_id_record,
    order_commit,
    order_transition,
)
from trading.orders.unrecorded import (
    UnrecordedOrder,
    unrecorded_given_up_evidence,
    unrecorded_unwritable_evidence,
)

logger = logging.getLogger(__name__)

RECOVERED = "recovered by reconciliation: at the broker but not in our records"
RECOVERED_DECISION_NS = uuid.UUID("0b1d8a52-5f5c-4a55-9d3c-6f1f2a7c9e21")
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ReconcileReport:
    account_id: int
    recovered_orders: list[str] = field(default_factory=list)
    recovered_fills: list[str] = field(default_factory=list)
    closed_orders: list[str] = field(default_factory=list)
    awaiting: list[str] = field(default_factory=list)  # sent moments ago, not yet visible at the broker
    position_mismatches: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol -> (ours, broker's)
    # symbol -> (ours, broker's, the waited-for unrecorded fills' net): a difference those fills
    # explain exactly, not a mismatch yet (set by the worker, ``positions_judge``)
    positions_held: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.recovered_orders or self.recovered_fills or self.closed_orders)


def order_reconcile(
    *,
    account: TradingAccount,
    broker: Broker,
    instruments: Mapping[str, Instrument],
    now: datetime | None,
    lookback: timedelta,
    unknown_grace: timedelta,
    algo_by_magic: Mapping[int, str] | None = None,
    actor: str,
    keep_open: Collection[str] = (),
) -> ReconcileReport:
    """Make our records of ``account`` agree with ``broker``: record every deal of ours the broker
    booked and we did not (creating the order, in one write, when the crash came before its
    commit), close orders the broker no longer holds, compare positions. Idempotent.

    ``now`` is the event time (the clock of the runner; None before a replay's first event:
    then every deal and every unsettled order is looked at). An order sent less than
    ``unknown_grace`` ago and not yet visible at the broker is left alone and listed in
    ``awaiting`` (MT5 polls its deal history); so is one in ``keep_open`` (the caller waits for
    the fill the broker reported and its deals did not show yet; it closes the order itself when
    the wait is over). Regulation: RTS 6 Art. 17."""
    since = now - lookback if now is not None else None
    report = ReconcileReport(account_id=account.pk)
    deals = [d for d in broker.deals_since(since or BEGINNING) if d.comment]
    resting = {o.comment: o for o in broker.open_orders() if o.comment}
    deals_by_order: dict[str, list[Deal]] = {}
    for deal in deals:
        deals_by_order.setdefault(deal.comment, []).append(deal)
    ids = set(deals_by_order) | set(resting)
    orders = selectors.orders_by_client_id(account_id=account.pk, client_order_ids=ids)
    recorded = selectors.deal_ids_recorded(account_id=account.pk, deal_ids=[d.deal_id for d in deals])
    algo_by_magic = algo_by_magic or {}
    for coid in sorted(ids):
        order_deals = deals_by_order.get(coid, [])
        missing = [d for d in order_deals if d.deal_id not in recorded]
        open_order = resting.get(coid)
        order = orders.get(coid)
        if order is not None and not missing and (open_order is not None or order.is_terminal):
            continue
        first = order_deals[0] if order_deals else None
        symbol = open_order.symbol if open_order else first.symbol
        instrument = instruments.get(symbol)
        if instrument is None:
            logger.error("reconciliation: broker order %s on unknown symbol %s left alone", coid, symbol)
            continue
        broker_order_id = open_order.ticket if open_order else first.order_id
        if order is None:
            _recover_order(
                account=account,
                instrument=instrument,
                coid=coid,
                open_order=open_order,
                deals=order_deals,
                broker_order_id=broker_order_id,
                now=now,
                algo_by_magic=algo_by_magic,
                actor=actor,
                report=report,
            )
            continue
        _settle_order(
            order=order,
            open_order=open_order,
            missing=missing,
            broker_order_id=broker_order_id,
            now=now,
            actor=actor,
            report=report,
        )
    _close_unknown(
        account=account,
        exclude=ids,
        since=since,
        now=now,
        grace=unknown_grace,
        actor=actor,
        report=report,
        keep_open=keep_open,
    )
    report.position_mismatches = positions_compare(account_id=account.pk, broker=broker)
    if report.changed:
        logger.warning(
            "reconciliation: account %s: recovered orders %s, fills %s, closed %s",
            account.pk,
            report.recovered_orders,
            report.recovered_fills,
            report.closed_orders,
        )
    return report


def _recover_order(*, account, instrument, coid, open_order, deals, broker_order_id, now, algo_by_magic, actor, report):
    """An order the broker has and we do not (a crash between its fill and our commit): ONE
    write with its life as the broker shows it, at the broker's times."""
    first = deals[0] if deals else None
    at = open_order.ts if open_order else first.ts
    magic = open_order.magic if open_order else first.magic
    quantity = open_order.volume_initial if open_order else sum((d.volume for d in deals), Decimal(0))
    draft = OrderDraft(
        client_order_id=coid,
        account=account,
        instrument=instrument,
        side=open_order.side if open_order else first.side,
        quantity=quantity,
        at=at,
        order_type=str(open_order.order_type) if open_order else "MARKET",
        limit_price=open_order.price if open_order and open_order.order_type == "LIMIT" else None,
        stop_price=open_order.price if open_order and open_order.order_type == "STOP" else None,
        algo_id=algo_by_magic.get(magic, f"magic:{magic}" if magic else ""),
    )
    steps = [
        OrderStep(OrderStatus.RISK_APPROVED, at, RECOVERED),
        OrderStep(OrderStatus.SUBMITTED, at, RECOVERED, broker_order_id=broker_order_id),
    ]
    fills = [fill_of(d) for d in deals]
    after = []
    filled = sum((d.volume for d in deals), Decimal(0))
    if open_order is None and filled < quantity:
        after.append(_closed_step(deals, now))
    decision = recovered_decision_event(
        draft=draft, open_order=open_order, deals=deals, broker_order_id=broker_order_id, magic=magic, source=actor
    )
    written = order_commit(draft=draft, steps=steps, fills=fills, after_fills=after, events=[decision], actor=actor)
    if written.created:
        report.recovered_orders.append(coid)
        report.recovered_fills.extend(f.broker_deal_id for f in written.fills)
        if after:
            report.closed_orders.append(coid)


def recovered_decision_event(
    *, draft: OrderDraft, open_order, deals: list[Deal], broker_order_id: str, magic: int, source: str
) -> Envelope:
    """The pre-trade decision record of an order recovered from the broker (module doc): approved
    by inference, one check saying the results are not recoverable and naming the evidence. Its
    event id is derived from the client order id (a second reconciliation writes nothing new)."""
    evidence = [f"broker order {broker_order_id}"]
    if open_order is not None:
        evidence.append(f"open at the broker since {open_order.ts.isoformat()} ({open_order.volume_initial} lots)")
    if deals:
        evidence.append(
            "deals " + ", ".join(f"{d.deal_id} ({d.side} {d.volume} @ {d.price} at {d.ts.isoformat()})" for d in deals)
        )
    evidence.append(f"magic {magic} (algorithm {draft.algo_id or 'unknown'})")
    detail = (
        "recovered by reconciliation, decision not recoverable: the order reached the broker but was never "
        "recorded (the worker stopped between the broker's answer and its write), and the gate's check results "
        "went with it; approved is inferred (only approved orders are sent), not evidenced. Evidence: "
        + "; ".join(evidence)
    )
    payload = RiskDecision(
        client_order_id=draft.client_order_id,
        account_id=draft.account.pk,
        symbol=draft.instrument.symbol,
        approved=True,
        checks=(CheckResult(name="reconciliation", passed=True, code=DECISION_NOT_RECOVERABLE, detail=detail),),
        trading_state="UNKNOWN",
        ts=draft.at,
    )
    return make_event(
        payload,
        source=source.removeprefix("service:"),
        key=str(draft.account.pk),
        event_id=uuid.uuid5(RECOVERED_DECISION_NS, draft.client_order_id),
    )


def _closed_step(deals, now) -> OrderStep:
    at = deals[-1].ts if deals else now
    return OrderStep(OrderStatus.CANCELLED, at, "reconciliation: no longer open at the broker; remainder not executed")


def _settle_order(*, order: Order, open_order, missing, broker_order_id, now, actor, report) -> None:
    """An order we have whose broker side moved on: its submission, its missing fills, its end."""
    at = open_order.ts if open_order else (missing[0].ts if missing else now)
    with recording() as recorder:
        if order.status in (OrderStatus.NEW, OrderStatus.RISK_APPROVED):
            if order.status == OrderStatus.NEW:
                order_transition(
                    order=order, to=OrderStatus.RISK_APPROVED, at=at, reason=RECOVERED, actor=actor, recorder=recorder
                )
            order_transition(
                order=order,
                to=OrderStatus.SUBMITTED,
                at=at,
                broker_order_id=broker_order_id,
                reason=RECOVERED,
                actor=actor,
                recorder=recorder,
            )
        elif order.status == OrderStatus.SUBMITTED and not order.broker_order_id:
            order_broker_id_record(order=order, broker_order_id=broker_order_id, at=at, actor=actor, recorder=recorder)
        for deal in missing:
            if order.is_terminal or deal.volume > order.remaining_quantity:
                logger.error(
                    "reconciliation: deal %s does not fit order %s (%s)",
                    deal.deal_id,
                    order.client_order_id,
                    order.status,
                )
                continue
            fill = execution_record(order=order, fill=fill_of(deal), actor=actor, recorder=recorder)
            if fill.created:
                report.recovered_fills.append(deal.deal_id)
        if open_order is None and not order.is_terminal:
            step = _closed_step(missing, now)
            order_transition(order=order, to=step.to, at=step.at, reason=step.reason, actor=actor, recorder=recorder)
            report.closed_orders.append(order.client_order_id)


def _close_unknown(*, account, exclude, since, now, grace, actor, report, keep_open=()) -> None:
    """Our unsettled orders the broker does not know (and never filled): they never got there.
    One sent moments ago may not show yet: keep it, and the account blocked, until the grace ends.
    One in ``keep_open`` (a fill the broker reported whose deals are waited for) is kept too."""
    for order in selectors.orders_unsettled(account_id=account.pk, since=since, exclude=exclude):
        sent = order.submitted_at or order.created_at
        if order.client_order_id in keep_open or (
            order.status == OrderStatus.SUBMITTED and now is not None and now - sent < grace
        ):
            report.awaiting.append(order.client_order_id)
            continue
        target = OrderStatus.REJECTED if order.status == OrderStatus.NEW else OrderStatus.CANCELLED
        order_transition(
            order=order,
            to=target,
            at=now or sent,
            reason="reconciliation: the broker has no trace of this order",
            actor=actor,
        )
        report.closed_orders.append(order.client_order_id)


def positions_compare(*, account_id: int, broker: Broker) -> dict[str, tuple[str, str]]:
    """Symbols whose net position differs between our records and the broker: symbol -> (ours,
    the broker's), as strings."""
    broker_net: dict[str, Decimal] = {}
    for position in broker.positions():
        broker_net[position.symbol] = broker_net.get(position.symbol, Decimal(0)) + position.signed_volume
    ours = selectors.positions_net(account_id=account_id)
    mismatches = {}
    for symbol in sorted(set(broker_net) | set(ours)):
        a, b = ours.get(symbol, Decimal(0)), broker_net.get(symbol, Decimal(0))
        if a != b:
            mismatches[symbol] = (str(a), str(b))
    return mismatches


def reconciliation_mismatch_raise(
    *,
    account_id: int,
    mismatches: Mapping[str, tuple[str, str]],
    at: datetime,
    source: str,
    actor: str,
    auto_kill: bool,
    broker_for: Callable | None = None,
) -> KillResult | None:
    """Positions differ from the broker's after reconciliation: raise a
    ``reconciliation_position_mismatch`` alert (high) and, with ``auto_kill``, engage the kill
    switch on the account (RTS 6 Art. 12, 17) until a risk manager releases it. Returns the kill
    switch's result, or None."""
    if not mismatches:
        return None
    logger.error("reconciliation: account %s positions differ from the broker: %s", account_id, dict(mismatches))
    risk_alert_raise(
        alert_type="reconciliation_position_mismatch",
        severity="high",
        account=str(account_id),
        evidence={s: {"ours": o, "broker": b} for s, (o, b) in mismatches.items()},
        at=at,
        source=source,
    )
    if not auto_kill:
        return None
    differences = ", ".join(f"{s} ours {o} broker {b}" for s, (o, b) in mismatches.items())
    return kill_switch_engage(
        scope="account",
        scope_value=str(account_id),
        actor=actor,
        reason=f"automatic: positions differ from the broker's after reconciliation ({differences})",
        source="automatic",
        broker_for=broker_for,
        at=at,
    )


def reconciliation_order_not_at_broker_raise(
    *, entry: UnrecordedOrder, waited: float, written_as: str, at: datetime, source: str
) -> None:
    """An order the broker accepted (or whose answer was lost), whose write failed, not in the
    broker's history after the worker's wait and written from the answer it kept as
    ``written_as``: an error log and a high ``reconciliation_order_not_at_broker`` alert (an
    operator alert on the console) for a person to look at. RTS 6 Art. 17."""
    logger.error(
        "execution: order %s (broker answer %s) not in the broker's history after %.0f s; written "
        "from the answer the worker kept, as %s: look at it",
        entry.client_order_id,
        entry.answer,
        waited,
        written_as,
    )
    risk_alert_raise(
        alert_type="reconciliation_order_not_at_broker",
        severity="high",
        account=str(entry.account_id),
        evidence=unrecorded_given_up_evidence(entry=entry, waited=waited, written_as=written_as),
        at=at,
        source=source,
    )


def unwritable_order_raise(*, entry: UnrecordedOrder, reason: str, at: datetime, source: str) -> bool:
    """An order the broker answered whose write failed cannot be written now, for ``reason``, a
    cause retrying will not change (its instrument not loaded by the worker, a row the database
    refuses): said ONCE per entry, across restarts too, as its ``UnwritableOrder`` row (the
    console's account row shows it, with the reason), a high ``reconciliation_order_unwritable``
    alert (an operator alert, by ``risk_alert_raise``, in the row's transaction) and an error log.
    The account stays "needs reconcile": the caller keeps the entry and retries it silently each
    turn. Returns True when this call said it (the row is new). RTS 25, RTS 6 Art. 17."""
    with transaction.atomic():
        _, created = UnwritableOrder.objects.get_or_create(
            client_order_id=entry.client_order_id,
            defaults={
                "account_id": entry.account_id,
                "symbol": entry.intent.symbol[:32],
                "broker_answer": entry.answer[:64],
                "reason": reason,
                "occurred_at": entry.received_at,
                "failed_at": entry.failed_at,
                "recorded_at": utcnow(),
            },
        )
        if created:
            risk_alert_raise(
                alert_type="reconciliation_order_unwritable",
                severity="high",
                account=str(entry.account_id),
                evidence=unrecorded_unwritable_evidence(entry=entry, reason=reason),
                at=at,
                source=source,
            )
    if created:
        logger.error(
            "execution: order %s of account %s (%s, broker answer %s), unrecorded when its write failed at %s, "
            "cannot be written: %s. The account stays blocked (needs reconcile); retried each turn without "
            "another word until it is written (docs/execution-worker.md, The spool)",
            entry.client_order_id,
            entry.account_id,
            entry.intent.symbol,
            entry.answer,
            entry.failed_at.isoformat(),
            reason,
        )
    return created


def unwritable_orders_forget(*, account_ids: Collection[int], keep: Collection[str]) -> int:
    """Start-up of the worker that trades ``account_ids``: their ``UnwritableOrder`` rows whose
    order is not among ``keep`` (the entries it took back from the spools) go, so the console
    does not show an account blocked by an order no spool holds any more (a spool removed by
    hand, with the database's state kept). Logged as a warning naming each. Returns how many."""
    stale = list(
        UnwritableOrder.objects.filter(account_id__in=list(account_ids))
        .exclude(client_order_id__in=list(keep))
        .values_list("client_order_id", "account_id")
    )
    for coid, account_id in stale:
        logger.warning(
            "execution: account %s: order %s was recorded as one the worker could not write, and no spool "
            "holds it now: no longer shown as blocking the account (is it in our records?)",
            account_id,
            coid,
        )
    if stale:
        UnwritableOrder.objects.filter(client_order_id__in=[c for c, _ in stale]).delete()
    return len(stale)


def unwritable_orders_clear(*, account_id: int, client_order_ids: Collection[str]) -> int:
    """``client_order_ids`` of the account were written or found in our records: their
    ``UnwritableOrder`` rows go (the console stops showing them). Returns how many went."""
    if not client_order_ids:
        return 0
    deleted, _ = UnwritableOrder.objects.filter(account_id=account_id, client_order_id__in=client_order_ids).delete()
    if deleted:
        logger.warning(
            "execution: account %s: %s order(s) that could not be written are now settled: %s",
            account_id,
            deleted,
            ", ".join(sorted(client_order_ids)),
        )
    return deleted


MARKET_ORDER_EXPIRED = "market order not executed within {waited:.0f} s of being sent ({why}): expired"
MARKET_ORDER_REST_EXPIRED = (
    "market order {filled} of {quantity} lots executed; the rest, {rest} lots, not executed within "
    "{waited:.0f} s of being sent ({why}): expired"
)


def _lots(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


def market_order_expire(
    *,
    account: TradingAccount,
    client_order_id: str,
    broker: Broker,
    at: datetime,
    waited: timedelta,
    why: str,
    since: datetime | None,
    actor: str,
) -> Order | None:
    """A market order is immediate or cancel (MT5 fills it against the quote there is, or refuses
    it: TRADE_RETCODE_PRICE_OFF 10021 "no quotes", TRADE_RETCODE_MARKET_CLOSED 10018). One left
    SUBMITTED without a fill ``waited`` after it was sent (the broker accepted it without executing
    it, MT5's PLACED with no deal; or its answer was lost and reconciliation has found nothing) is
    closed EXPIRED, at ``at`` (event time), with ``why`` in its reason, its audit record
    (``order.expired``), its trading-event and ``reject_reason``, so the API and the order's story
    say why. The caller reconciled the account first (a deal the broker booked is recorded, not
    expired).

    The same holds for the rest of a market order filled in part under the RETURN filling mode
    (MetaQuotes: "a market or limit order with the remaining volume is not canceled but processed
    further": the order keeps working at the broker, PARTIALLY_FILLED here): once ``waited``, the
    rest is cancelled at the broker and the order closed EXPIRED with what was executed kept
    (its fills and position are untouched; the reason says how much was executed).

    The broker is asked again: a deal of the order booked since ``since`` and not yet recorded
    leaves it to reconciliation (returns None); an order the broker still holds open is
    cancelled there first (a market order must not rest). Returns the expired order, or None
    when it was settled or is no longer SUBMITTED or PARTIALLY_FILLED. Raises ``BrokerError`` if
    the broker cannot be asked."""
    order = selectors.orders_by_client_id(account_id=account.pk, client_order_ids={client_order_id}).get(
        client_order_id
    )
    if order is None or order.status not in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED):
        return None
    booked = sum((d.volume for d in broker.deals_since(since or BEGINNING) if d.comment == client_order_id), Decimal(0))
    if booked > order.filled_quantity:
        return None  # executed (further) after all: reconciliation records it
    resting = next((o for o in broker.open_orders() if o.comment == client_order_id), None)
    if resting is not None:
        cancelled = broker.cancel_order(resting.ticket)
        if not cancelled.accepted and cancelled.outcome != "CANCELLED":
            logger.warning(
                "execution: market order %s rests at the broker and its cancel was refused (%s: %s); left SUBMITTED",
                client_order_id,
                cancelled.outcome,
                cancelled.message,
            )
            return None
        why = f"{why}; cancelled at the broker (order {resting.ticket})"
    if order.filled_quantity > 0:
        reason = MARKET_ORDER_REST_EXPIRED.format(
            filled=_lots(order.filled_quantity),
            quantity=_lots(order.quantity),
            rest=_lots(order.quantity - order.filled_quantity),
            waited=waited.total_seconds(),
            why=why,
        )
    else:
        reason = MARKET_ORDER_EXPIRED.format(waited=waited.total_seconds(), why=why)
    logger.warning("execution: %s %s", client_order_id, reason)
    return order_transition(order=order, to=OrderStatus.EXPIRED, at=at, reason=reason, actor=actor)
