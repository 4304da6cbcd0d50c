"""Per-quote CPU of the risk book's mark: ``RiskManager.on_quote`` on one account holding one
EURUSD position, 20,000 quotes 15 minutes apart, 7 repetitions (CPU time, pure Python, no
database). Run it from the tree to measure (``cd /tmp/<name>_main && python /path/to/this``
for main's code): it imports the code of the current directory.

Usage: ``python bench/risk_mark.py``
"""

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

sys.path.insert(0, os.getcwd())  # the tree it is run from

from trading.intents import InstrumentSpec, Quote
from trading.risk import RiskManager

EURUSD = InstrumentSpec(
    symbol="EURUSD",
    contract_size=Decimal(100000),
    tick_size=Decimal("0.00001"),
    volume_step=Decimal("0.01"),
    min_volume=Decimal("0.01"),
    max_volume=Decimal(100),
    margin_rate=Decimal("0.0333"),
)
T0 = datetime(2017, 3, 2, 9, 0, tzinfo=UTC)
N = 20000


def main() -> None:
    m = RiskManager()
    m.add_instrument(EURUSD)
    book = m.add_account(1, balance=Decimal(100000), now=T0)
    book.apply_fill("EURUSD", Decimal("0.93"), Decimal("1.0898"))
    quotes = []
    px = Decimal("1.08980")
    for i in range(N):
        px += Decimal((i * 7919) % 61 - 30) * Decimal("0.00001")
        quotes.append(Quote("EURUSD", px, px + Decimal("0.00008"), T0 + timedelta(minutes=15 * i)))
    per_quote = []
    for rep in range(7):
        shift = timedelta(minutes=15 * N * rep)  # each run newer than the last (older quotes are ignored)
        run = [Quote(q.symbol, q.bid, q.ask, q.ts + shift) for q in quotes]
        t = time.process_time()
        for q in run:
            m.on_quote(q, mid=(q.bid + q.ask) / 2)
        per_quote.append((time.process_time() - t) / N * 1e6)
        _ = book.peak_equity  # a read now and then (a snapshot)
    print(
        f"risk on_quote (mid included): min {min(per_quote):.2f} us, median {sorted(per_quote)[3]:.2f} us"
        f" per quote; peak equity {book.peak_equity}; load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
