"""Orders the broker answered whose write failed (the database went away between the answer and
the order's write): what the worker keeps of one, the rules that settle it once its account is
reconciled, and the line format of the worker's durable spool of them. No query, no file, no
clock (times come in as arguments).

A refusal leaves no trace at the broker, so what the worker kept is the only copy of it (RTS 25:
every order, refused ones too, with its times; RTS 6 Art. 17). The execution worker keeps each
entry in memory and appends it to its spool file before the failure is raised
(``workers.unrecorded_spool``); a restarted worker reads the spool and settles each entry by the
same rules (``unrecorded_settlement``), so a restart in between loses nothing.

The spool's line: ``{"v":2,"sha256":"<hex>","entry":<the entry as JSON>}`` and a newline, one
line per entry; the checksum is of the entry's bytes exactly as written. Format 2 added the
entry's ``unconfirmed_filled``; a format 1 line (without it) still reads, as 0. A line that is cut
short anywhere (a crash mid-write, a torn copy), altered, or not of this format is refused
(``SpoolLineError``): the caller quarantines it, never drops it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import msgspec

from trading.brokers.base import BrokerError, OrderResult
from trading.gate import GateDecision
from trading.intents import BUY, OrderIntent
from trading.order_states import OrderStatus
from trading.orders.outcome import Outcome

SPOOL_FORMAT = 2
SPOOL_FORMATS_READ = (1, 2)  # format 1: no unconfirmed_filled (read as 0)


@dataclass(frozen=True)
class UnrecordedOrder:
    """An order the broker answered whose write failed: what the write would have written (the
    intent, its event times, the gate's decision, the outcome with the broker's times), the
    broker's answer, and when the write failed on the wall clock (``failed_at``, the recorded
    time of the failure; the late write's own ``recorded_at`` is the wall clock of that write)."""

    intent: OrderIntent
    received_at: datetime  # event time: the order was received (RTS 25)
    decided_at: datetime  # event time: the gate decided
    decision: GateDecision
    trading_state: str  # the account's trading state at the decision (the decision record says it)
    outcome: Outcome
    answer_accepted: bool  # filled or placed at the broker
    refused: bool  # the broker's answer refused it (not an error, not an unknown state)
    answer: str  # the broker's answer in words (its outcome code, or the error's code)
    trial: bool  # the breaker's trial order when it was sent (its breaker is told by the trial's resolution)
    failed_at: datetime  # wall clock of the failed write
    traceparent: str = ""  # the signal's trace, named in the order's audit records
    # The volume the broker reported filled beyond the deals the answer carried, when its deals
    # were not confirmed before the adapter's poll timeout (MT5: ``deals_confirmed=False``); 0
    # otherwise. Not a fill we record (no deal, no price): it explains a position difference only
    # while the entry is waited for (``positions_judge``). Spool format 2.
    unconfirmed_filled: Decimal = Decimal(0)

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def account_id(self) -> int:
        return self.intent.account_id


def unconfirmed_filled_of(result: OrderResult | None) -> Decimal:
    """The volume ``result`` reports filled that its deals do not show: the broker's filled
    volume less its deals' volume when the deal history did not confirm every fill before the
    adapter's poll timeout (``deals_confirmed=False``), else 0."""
    if result is None or result.deals_confirmed:
        return Decimal(0)
    return max(result.filled_volume - sum((d.volume for d in result.deals), Decimal(0)), Decimal(0))


def broker_answer_of(result: OrderResult | None, error: BrokerError | None) -> tuple[bool, bool, str]:
    """The broker's answer to a sent order as an unrecorded entry keeps it: ``(accepted, refused,
    answer)``. Accepted: filled or placed; refused: the broker answered no (not an error, not an
    unknown state: those count as failures for the breaker but may have executed); the answer in
    words, as the worker tells the breaker (the error's code, or the outcome)."""
    if error is not None:
        return False, False, error.code
    if result.state_unknown:
        return False, False, str(result.outcome)
    accepted = bool(result.accepted or result.deals)
    return accepted, not accepted, str(result.outcome)


# ---------------------------------------------------------------- the settle rules


class Settlement(StrEnum):
    FOUND = "found"  # in our records now (recovered from the broker, or the failed write committed): done
    WRITE_REFUSED = "write_refused"  # refused by the broker: no trace will show there; write it from the entry
    WAIT = "wait"  # accepted or unknown, not in the broker's history yet: keep the account marked
    WRITE_GIVEN_UP = "write_given_up"  # waited past the bound: write it from the entry, with an alert


def unrecorded_settlement(*, entry: UnrecordedOrder, recorded: bool, waited: float, wait: float) -> Settlement:
    """What to do with ``entry`` once its account is reconciled: ``recorded`` says whether our
    records hold its client order id now, ``waited`` the wall-clock seconds since its write
    failed, ``wait`` the bound (``unrecorded_wait``). Found: done. Refused by the broker: written
    now (MT5 keeps no history of refused orders, so nothing will ever be recovered). Accepted, or
    its answer unknown: waited for (MT5's deal history lags) until ``wait`` has passed, then
    written from the entry with an alert for a person to look at. RTS 25, RTS 6 Art. 17."""
    if recorded:
        return Settlement.FOUND
    if entry.refused:
        return Settlement.WRITE_REFUSED
    if waited >= wait:
        return Settlement.WRITE_GIVEN_UP
    return Settlement.WAIT


def signed_net(legs: Iterable[tuple[str, str, Decimal]]) -> dict[str, Decimal]:
    """``legs``, (symbol, side, volume), netted by symbol and signed by side (a buy adds, a sell
    takes away); a symbol whose legs are all of no volume is left out."""
    net: dict[str, Decimal] = {}
    for symbol, side, volume in legs:
        if volume:
            net[symbol] = net.get(symbol, Decimal(0)) + (volume if side == BUY else -volume)
    return net


def _kept_fills(entries: Iterable[UnrecordedOrder]) -> Iterable[tuple[str, str, Decimal]]:
    for entry in entries:
        filled = sum((f.quantity for f in entry.outcome.fills), entry.unconfirmed_filled)
        yield entry.intent.symbol, entry.intent.side, filled


def unrecorded_fills_net(entries: Iterable[UnrecordedOrder]) -> dict[str, Decimal]:
    """The fills ``entries`` kept (the broker's deals in its answer, and the volume it reported
    filled that its deals did not show yet, ``unconfirmed_filled``), netted by symbol and signed
    by side (``signed_net``): what our positions lack until they are written."""
    return signed_net(_kept_fills(entries))


@dataclass(frozen=True)
class PositionsJudged:
    """A reconciliation's position differences judged against the account's waited-for
    unrecorded orders: ``held``, symbol -> (ours, the broker's, the waited-for fills' net), each
    difference exactly those fills (not a mismatch yet: the account stays marked); ``mismatches``,
    symbol -> (ours, the broker's), every other difference (alert, kill switch)."""

    held: dict[str, tuple[str, str, str]]
    mismatches: dict[str, tuple[str, str]]


def positions_judge(
    *,
    mismatches: Mapping[str, tuple[str, str]],
    waiting: Iterable[UnrecordedOrder],
    reported: Iterable[tuple[str, str, Decimal]] = (),
) -> PositionsJudged:
    """Which position differences (``positions_compare``: symbol -> (ours, the broker's)) the
    account's unrecorded orders still waited for explain (``waiting``: accepted or unknown
    answers within ``unrecorded_wait``, ``Settlement.WAIT``; a refused entry explains nothing).
    MT5's positions show a fill at once, its deal history seconds later: an order whose write
    failed after its fill and that the history does not show yet leaves our net position short of
    the broker's by exactly its kept fills. An answer whose deals did not show before the
    adapter's poll timeout kept the volume the broker reported filled instead
    (``unconfirmed_filled``): it counts the same, for as long as the entry is waited for. Such a
    symbol is held: the broker's net minus ours equals the waited-for fills' signed net on that
    symbol, to the lot, and is not zero. Any other difference, whole (a symbol explained in part
    is not explained), is a mismatch. The same goes for an order whose write SUCCEEDED after such
    an answer (recorded SUBMITTED without a fill): ``reported``, (symbol, side, reported filled
    volume) of those still waited for (``unrecorded_wait`` from the send), counts with the rest.
    RTS 6 Art. 17."""
    pending = signed_net(itertools.chain(_kept_fills(e for e in waiting if not e.refused), reported))
    held: dict[str, tuple[str, str, str]] = {}
    left: dict[str, tuple[str, str]] = {}
    for symbol, (ours, broker) in mismatches.items():
        explained = pending.get(symbol, Decimal(0))
        if explained and Decimal(broker) - Decimal(ours) == explained:
            held[symbol] = (ours, broker, str(explained))
        else:
            left[symbol] = (ours, broker)
    return PositionsJudged(held=held, mismatches=left)


def unrecorded_given_up_evidence(*, entry: UnrecordedOrder, waited: float, written_as: str) -> dict:
    """The ``reconciliation_order_not_at_broker`` alert's evidence for an entry written past the
    bound: the sentence, client order id, the broker's answer, seconds waited, the status written."""
    coid = entry.client_order_id
    return {
        "explanation": (
            f"Order {coid} (broker answer {entry.answer}) not in the broker's history after "
            f"{waited:.0f} s: written from the answer the worker kept, as {written_as}."
        ),
        "client_order_id": coid,
        "broker_answer": entry.answer,
        "waited_seconds": round(waited, 3),
        "written_as": written_as,
    }


def unrecorded_unwritable_evidence(*, entry: UnrecordedOrder, reason: str) -> dict:
    """The ``reconciliation_order_unwritable`` alert's evidence for an entry the worker cannot
    write for a reason retrying will not change: the sentence (what it is, why, what holds), the
    client order id, the symbol, the broker's answer, the reason, the failed write's wall clock."""
    coid = entry.client_order_id
    return {
        "explanation": (
            f"Order {coid} ({entry.intent.symbol}, broker answer {entry.answer}) answered by the broker, its "
            f"write failed, and it cannot be written now: {reason}. Account {entry.account_id} stays blocked "
            "(needs reconcile) until it is written or found in our records."
        ),
        "client_order_id": coid,
        "symbol": entry.intent.symbol,
        "broker_answer": entry.answer,
        "reason": reason,
        "failed_at": entry.failed_at.isoformat(),
    }


def unrecorded_order_outcome(*, order, answer_accepted: bool, answer: str) -> tuple[bool, str]:
    """How an order whose write failed after the broker answered turned out, once reconciliation
    has settled its account: ``(accepted, why)``, what the worker would have told the account's
    breaker had the write succeeded (accepted: filled or placed at the broker; refused: anything
    else). ``order`` is our record of it now (an ``Order``, recovered from the broker, or None:
    the broker has no trace of it, so it never executed nor rests there); ``answer_accepted`` and
    ``answer`` are the broker's answer the worker held when the write failed.

    The broker's evidence decides when there is some (a recorded order that reached the broker
    with fills or a broker order id was accepted there, whatever the answer said, as a lost
    answer's order is); with none, the broker's answer does (a refusal leaves no trace at the
    broker; an order it accepted may not show in MT5's deal history yet)."""
    if order is not None and (order.filled_quantity > 0 or order.broker_order_id):
        state = "filled" if order.filled_quantity > 0 else "accepted"
        return True, f"{state} at the broker (order {order.broker_order_id or '?'}), recovered by reconciliation"
    if order is not None:
        return False, f"{order.status} ({order.reject_reason or 'no broker order'}), recorded by reconciliation"
    if answer_accepted:
        return True, f"accepted by the broker ({answer}); not yet in its history"
    return False, f"refused by the broker ({answer}); no trace at the broker after reconciliation"


def unrecorded_trial_outcome(*, client_order_id: str, order, answer_accepted: bool, answer: str) -> tuple[bool, str]:
    """A breaker's trial order whose write failed, once its account is reconciled: ``(succeeded,
    reason)`` to resolve the trial with (``TradingBreaker.trial_resolve``: accepted closes the
    breaker, refused opens it again), as its outcome would have (``unrecorded_order_outcome``)."""
    accepted, why = unrecorded_order_outcome(order=order, answer_accepted=answer_accepted, answer=answer)
    return accepted, f"trial order {client_order_id} {why}"


# ---------------------------------------------------------------- the spool's line format


class SpoolLineError(ValueError):
    """A spool line that is not a whole, intact entry: cut short, altered, or of another format."""


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(UnrecordedOrder)
_HEAD = b'{"v":%d,"sha256":"' % SPOOL_FORMAT
_HEADS_READ = tuple(b'{"v":%d,"sha256":"' % v for v in SPOOL_FORMATS_READ)  # all of one length
_DIGEST = 64  # hex characters of a SHA-256
_MIDDLE = b'","entry":'
_TAIL = b"}\n"


def spool_line_encode(entry: UnrecordedOrder) -> bytes:
    """One spool line for ``entry``, newline included (JSON: strings carry no raw newline)."""
    body = _encoder.encode(entry)
    return _HEAD + hashlib.sha256(body).hexdigest().encode() + _MIDDLE + body + _TAIL


def spool_line_decode(line: bytes) -> UnrecordedOrder:
    """The entry of one spool line (newline included). Raises ``SpoolLineError`` saying why for
    any line that is not whole: no newline at its end (cut short), another format or version,
    a checksum that does not match its entry (altered, or cut inside), an entry that does not
    decode."""
    if not line.endswith(_TAIL):
        raise SpoolLineError("cut short: the line does not end with '}' and a newline")
    if not line.startswith(_HEADS_READ):
        raise SpoolLineError(f"not a spool line of format {' or '.join(map(str, SPOOL_FORMATS_READ))}")
    digest_end = len(_HEAD) + _DIGEST
    digest = line[len(_HEAD) : digest_end]
    if line[digest_end : digest_end + len(_MIDDLE)] != _MIDDLE:
        raise SpoolLineError("malformed: no checksum of 64 hex digits before the entry")
    body = line[digest_end + len(_MIDDLE) : -len(_TAIL)]
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise SpoolLineError("checksum mismatch: the entry is not the one written")
    try:
        entry = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise SpoolLineError(f"the entry does not decode: {exc}") from exc
    return _statuses_typed(entry)


def _statuses_typed(entry: UnrecordedOrder) -> UnrecordedOrder:
    """JSON carries a step's status as its string; the write takes ``OrderStatus``."""

    def typed(steps):
        return tuple(dataclasses.replace(step, to=OrderStatus(step.to)) for step in steps)

    outcome = dataclasses.replace(
        entry.outcome, steps=typed(entry.outcome.steps), after_fills=typed(entry.outcome.after_fills)
    )
    return dataclasses.replace(entry, outcome=outcome)
