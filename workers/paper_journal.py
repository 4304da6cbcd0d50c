"""A paper broker whose account survives the process: every state-changing call is journalled.

A real broker keeps its orders and deals when our worker dies; the in-memory ``PaperBroker``
does not. Crash recovery (a worker killed between the broker's fill and our DB commit) can only
be exercised, and the embedded run can only restart cleanly, if the paper account outlives the
process, so this subclass appends each call that changed the simulated account (a send that
booked a deal or rested an order, a quote that filled a resting order, a cancel, a modify) to a
JSON-lines file, fsynced before the call returns, and replays the file on construction with the
clock and quotes of the original call. Replay is deterministic because the paper broker is
(seeded jitter, injected clock). Calls that changed nothing (refusals, plain quotes) are not
written, so the journal grows with trading activity, not with market data.

Not part of the broker interface: the execution worker uses it when
``EXECUTION_PAPER_JOURNAL_DIR`` is set (one file per account).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from tradeops.core.clock import utcnow
from trading.brokers.base import OrderRequest, OrderResult, Quote, SymbolSpec
from trading.brokers.paper import PaperBroker, PaperConfig

_encoder = msgspec.json.Encoder(decimal_format="string")


class _Entry(msgspec.Struct, kw_only=True, omit_defaults=True):
    op: str  # send | quote | cancel | modify
    at: datetime
    quotes: list[Quote] = []
    request: OrderRequest | None = None
    broker_order_id: str = ""
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


_decoder = msgspec.json.Decoder(_Entry)


class JournaledPaperBroker(PaperBroker):
    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        path: str | os.PathLike,
        config: PaperConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        fsync: bool = True,
    ):
        self._live_clock = clock
        self._replay_at: datetime | None = None
        super().__init__(specs, config=config, clock=self._journal_clock)
        self.path = Path(path)
        self.fsync = fsync
        self.replayed = self._replay()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - held for the broker's lifetime

    @classmethod
    def from_instruments(cls, instruments: Iterable, **kwargs) -> JournaledPaperBroker:
        from trading.brokers.paper import spec_from_instrument

        return cls([spec_from_instrument(row) for row in instruments], **kwargs)

    def _journal_clock(self) -> datetime:
        return self._replay_at if self._replay_at is not None else self._live_clock()

    # ------------------------------------------------------------ journal

    def _fingerprint(self) -> tuple:
        return (len(self._deals), tuple(sorted((t, r.volume, r.price) for t, r in self._resting.items())))

    def _write(self, entry: _Entry) -> None:
        self._file.write(_encoder.encode(entry) + b"\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def _replay(self) -> int:
        if not self.path.exists():
            return 0
        count = 0
        was_connected = self._connected
        self._connected = True
        try:
            with open(self.path, "rb") as handle:
                for line in handle:
                    if not line.strip():
                        continue
                    try:
                        entry = _decoder.decode(line)
                    except msgspec.DecodeError:
                        break  # a torn last line from a crash mid-write: the call never returned
                    self._replay_at = entry.at
                    for quote in entry.quotes:
                        self._quotes[quote.symbol] = quote
                    if entry.op == "send":
                        super().send_order(entry.request)
                    elif entry.op == "quote":
                        super().update_quote(entry.quotes[-1])
                    elif entry.op == "cancel":
                        super().cancel_order(entry.broker_order_id)
                    elif entry.op == "modify":
                        super().modify_order(
                            entry.broker_order_id,
                            price=entry.price,
                            stop_loss=entry.stop_loss,
                            take_profit=entry.take_profit,
                        )
                    count += 1
        finally:
            self._replay_at = None
            self._connected = was_connected
        return count

    # ------------------------------------------------------------ journalled calls

    def send_order(self, request: OrderRequest) -> OrderResult:
        before = self._fingerprint()
        quotes = list(self._quotes.values())
        at = self._now()
        self._replay_at = at  # the same instant for the call and its journal entry
        try:
            result = super().send_order(request)
        finally:
            self._replay_at = None
        if self._fingerprint() != before:
            self._write(_Entry(op="send", at=at, quotes=quotes, request=request))
        return result

    def update_quote(self, quote: Quote) -> list:
        deals = super().update_quote(quote)
        if deals:
            self._write(_Entry(op="quote", at=quote.ts, quotes=[quote]))
        return deals

    def cancel_order(self, broker_order_id: str) -> OrderResult:
        at = self._now()
        result = super().cancel_order(broker_order_id)
        if result.outcome == "DONE":
            self._write(_Entry(op="cancel", at=at, broker_order_id=broker_order_id))
        return result

    def modify_order(self, broker_order_id: str, *, price=None, stop_loss=None, take_profit=None) -> OrderResult:
        at = self._now()
        result = super().modify_order(broker_order_id, price=price, stop_loss=stop_loss, take_profit=take_profit)
        if result.outcome == "DONE":
            self._write(
                _Entry(
                    op="modify",
                    at=at,
                    broker_order_id=broker_order_id,
                    price=price,
                    stop_loss=stop_loss,
                    take_profit=take_profit,
                )
            )
        return result

    def close_journal(self) -> None:
        self._file.close()
