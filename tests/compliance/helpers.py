"""Builders for surveillance records: rows as the ``surveil`` JSONL lines, decoded by the real decoder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump, state_load

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (T0 + timedelta(microseconds=round(seconds * 1e6))).isoformat(timespec="microseconds").replace("+00:00", "Z")


def q(t, bid, ask, sym="EURUSD"):
    return {"type": "quote", "ts": ts(t), "symbol": sym, "bid": str(bid), "ask": str(ask)}


def o(t, action, oid, acct, side, qty, price=None, *, owner=None, sym="EURUSD", otype=None, reason=""):
    row = {
        "type": "order",
        "ts": ts(t),
        "action": action,
        "order_id": oid,
        "account": acct,
        "owner": owner or f"own-{acct}",
        "symbol": sym,
        "side": side,
        "qty": str(qty),
        "price": None if price is None else str(price),
        "order_type": otype or ("market" if price is None else "limit"),
    }
    if reason:
        row["reason"] = reason
    return row


def f(t, oid, acct, side, qty, price, *, owner=None, sym="EURUSD"):
    return {
        "type": "fill",
        "ts": ts(t),
        "order_id": oid,
        "account": acct,
        "owner": owner or f"own-{acct}",
        "symbol": sym,
        "side": side,
        "qty": str(qty),
        "price": str(price),
    }


def close(t, price, sym="EURUSD"):
    return {"type": "close", "ts": ts(t), "symbol": sym, "price": str(price)}


def market(t, oid, acct, side, qty, fill_price, *, owner=None, sym="EURUSD", latency=0.05):
    return [
        o(t, "new", oid, acct, side, qty, owner=owner, sym=sym),
        f(t + latency, oid, acct, side, qty, fill_price, owner=owner, sym=sym),
    ]


def quick_sells(*, at: float, qty: int) -> list[dict]:
    """Three quick sells of ``qty`` by account M at the flat market's bid (1.10000), 3 s apart
    from ``at``: a momentum chain that ignites (three orders within 10 s) and moves nothing."""
    rows = []
    for i in range(3):
        rows += market(at + 3.0 * i, f"s{i}", "M", "sell", qty, "1.10000")
    return rows


def pips_past_ask(pips: float) -> str:
    """The price this many pips past the ask of ``slipped_buys``'s quote (ask 1.10010)."""
    return f"{1.10010 + pips * 0.0001:.5f}"


def slipped_buys(pips: list[float], *, gap: float = 300.0) -> list[dict]:
    """One client's (K) EURUSD market buys after one quote (ask 1.10010, a 1-pip spread: best
    execution's bar is 2 pips), ``gap`` s apart, each filled once this many pips past the ask
    (0: at the ask; negative: improved)."""
    rows = [q(0, "1.10000", "1.10010")]
    for i, p in enumerate(pips):
        t = gap * i + 1
        rows += [o(t, "new", f"a{i}", "K", "buy", 100_000), f(t + 0.05, f"a{i}", "K", "buy", 100_000, pips_past_ask(p))]
    return rows


def parked_cancels(times, *, acct="S", sym="GBPUSD", tag="r"):
    """Orders the account parks and cancels half a second later, one per time (another symbol by
    default: the spoofing baselines are the account's across symbols)."""
    rows = []
    for i, t in enumerate(times):
        rows.append(o(t - 0.5, "new", f"{tag}{i}", acct, "sell", 100_000, "1.27000", sym=sym))
        rows.append(o(t, "cancel", f"{tag}{i}", acct, "sell", 100_000, "1.27000", sym=sym))
    return rows


def spoofing_episode(*, acct="S"):
    """A large buy behind the touch, a sell fill at 600 s, the buy cancelled 1 s later."""
    return [
        q(590, "1.10000", "1.10010"),
        o(595, "new", "s0", acct, "buy", 1_000_000, "1.09990"),
        *market(600 - 0.05, "real", acct, "sell", 100_000, "1.10000"),
        o(601, "cancel", "s0", acct, "buy", 1_000_000, "1.09990"),
        q(630, "1.10000", "1.10010"),
    ]


def run(rows, *, only=None, params=None, market="otc"):
    """Surveil rows (sorted by time, stable) on ``market``'s profile and return the alerts as
    output dicts."""
    engine = SurveillanceEngine(params, only=only, market=market)
    for row in sorted(rows, key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    return [a.as_dict() for a in engine.finish()]


def surveil_restarted(rows, *, only, restart_at=None, params=None):
    """Surveil rows (sorted by time, stable) and return the alerts as output dicts, those taken
    as they came and those of the end; with ``restart_at``, the engine's snapshot is restored
    into a fresh engine before that row (nothing may be dropped by the restore)."""
    engine = SurveillanceEngine(params, only=only)
    out = []
    for i, row in enumerate(sorted(rows, key=lambda r: r["ts"])):
        if i == restart_at:
            data = state_dump(engine)
            engine = SurveillanceEngine(params, only=only)
            assert state_load(engine, data)["restarted"] == []
        engine.process(record_decoder.decode(orjson.dumps(row)))
        out += [a.as_dict() for a in engine.take_alerts()]
    return out + [a.as_dict() for a in engine.finish()]


def of_type(alerts, alert_type):
    return [a for a in alerts if a["alert_type"] == alert_type]


def alert_dict(**over) -> dict:
    """A surveillance alert as ``surveil`` writes it (the input of ``alerts_record``): spoofing on
    EURUSD by ACC1 (owner OWN1), orders o1 and o2, a 5-s window on 5 January 2026."""
    alert = {
        "alert_type": "spoofing",
        "account": "ACC1",
        "owner": "OWN1",
        "symbol": "EURUSD",
        "order_ids": ["o1", "o2"],
        "score": 0.8,
        "start": "2026-01-05T10:00:00.000000Z",
        "end": "2026-01-05T10:00:05.000000Z",
        "evidence": {"size_ratio": 10},
    }
    alert.update(over)
    return alert


def restarted_before(rows, order_id, *, only) -> tuple[dict, SurveillanceEngine, list]:
    """A restart in the middle of an episode: ``rows`` (in time order) fed up to the row of
    ``order_id`` with nothing alerted yet, the engine's snapshot restored into a fresh engine.
    Returns the snapshot's document, the restored engine and the rows still to feed it."""
    cut = next(i for i, r in enumerate(rows) if r.get("order_id") == order_id)
    engine = SurveillanceEngine(only=only)
    for row in rows[:cut]:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    assert engine.take_alerts() == []
    snapshot = state_dump(engine)
    restarted = SurveillanceEngine(only=only)
    assert state_load(restarted, snapshot)["restarted"] == []
    return orjson.loads(snapshot), restarted, rows[cut:]


def book_with_and_without(monkeypatch, cfg, stream: str) -> tuple[tuple[list, list], tuple[list, list]]:
    """The generator's book for ``cfg``, then the same book with one of its random streams
    switched off (``stream``: a ``_Builder`` attribute such as ``"marking_rng"``): each as (rows
    serialised, episodes). For the tests that a stream adds only its own orders and moves nothing
    else."""
    from compliance.scenarios import generator

    rows, episodes = generator.generate(cfg)
    plain_with = generator._Builder._with_stream

    def without_stream(self, rng, fn):
        if rng is not getattr(self, stream):
            plain_with(self, rng, fn)

    monkeypatch.setattr(generator._Builder, "_with_stream", without_stream)
    rows_without, episodes_without = generator.generate(cfg)
    return ([orjson.dumps(r) for r in rows], episodes), ([orjson.dumps(r) for r in rows_without], episodes_without)


def pushed_print(before: list, print_at: int) -> list:
    """Marking the close: ``before`` (account C's earlier trading), then three buys of 1,000,000 by
    C in the last three minutes push the print at ``print_at`` s up from a 1.10000/1.10010 market
    to 1.10040."""
    rows = [q(0, "1.10000", "1.10010"), *before, q(print_at - 200, "1.10000", "1.10010")]
    for i, t in enumerate((print_at - 180, print_at - 100, print_at - 20)):
        rows += market(t, f"c{i}", "C", "buy", 1_000_000, "1.10010")
        rows.append(q(t + 1, f"1.100{15 + 10 * i}", f"1.100{25 + 10 * i}"))
    rows.append(close(print_at, "1.10040"))
    return rows


def cross(t, tag, resting, hitting, side_of_resting, qty):
    """Two owners' accounts crossing on the venue: ``resting`` rests a limit (passive),
    ``hitting`` (another owner) meets it with an IOC one second later: the two fills at one
    instant and one price."""
    other = "buy" if side_of_resting == "sell" else "sell"
    limit = "1.10010" if side_of_resting == "sell" else "1.10000"
    r_owner, h_owner = f"own-{resting}", f"own-{hitting}"
    return [
        o(t, "new", f"r{tag}", resting, side_of_resting, qty, limit, owner=r_owner),
        o(t + 1.0, "new", f"h{tag}", hitting, other, qty, limit, owner=h_owner, otype="ioc"),
        f(t + 1.0, f"r{tag}", resting, side_of_resting, qty, limit, owner=r_owner),
        f(t + 1.0, f"h{tag}", hitting, other, qty, limit, owner=h_owner),
    ]


def cross_book(*legs):
    """``cross`` legs in a 1.10000/1.10010 market, quoted before and after."""
    return [q(0, "1.10000", "1.10010"), *[r for leg in legs for r in leg], q(1000.0, "1.10000", "1.10010")]


def sweep(prices: list[str], *, t=1.0, oid="m1", sym="EURUSD") -> list[dict]:
    """Best execution: a buy market order of 300,000 by E filled in one instant at these prices,
    100,000 each."""
    return [
        o(t, "new", oid, "E", "buy", 300_000, sym=sym),
        *(f(t + 0.05, oid, "E", "buy", 100_000, p, sym=sym) for p in prices),
    ]
