"""What every cluster test checks after its run (nothing lost, nothing duplicated)."""

from __future__ import annotations

import re

BARS = 300  # about two weeks of EURUSD hours: 1,500 market-data events, a few dozen trades


def published_count(done) -> int:
    """How many market-data events the replay published (``manage.py replay`` says per topic)."""
    match = re.search(r"market-data-events (\d+)", done.stdout if hasattr(done, "stdout") else done)
    assert match, f"the replay did not say how many events it published: {done}"
    return int(match.group(1))


def assert_reconciled(run, probe: dict, *, published: int | None = None) -> None:
    """Orders, fills, positions, outbox, audit trail and topics agree."""
    assert probe["orders"] > 0 and probe["fills"] > 0, probe["orders_by_status"]
    assert probe["position_mismatches"] == [], "positions differ from the sum of their fills"
    assert probe["fill_mismatches"] == [], "orders whose filled quantity is not the sum of their fills"
    assert len(probe["fill_deals"]) == len(set(probe["fill_deals"])), "a broker deal recorded twice"
    assert probe["orders_not_audited"] == [], "orders missing from the audit trail"
    assert probe["audit_verified"], probe["audit_verify_output"]
    assert probe["outbox_unsent"] == 0
    on_topics = set(run.topic_event_ids("trading-events")) | set(run.topic_event_ids("compliance-events"))
    missing = set(probe["outbox_event_ids"]) - on_topics
    assert not missing, f"{len(missing)} outbox events never reached their topic"
    assert probe["broker_deals"] == probe["fill_deals"], (
        f"broker deals {probe['broker_deals']} != fills {probe['fill_deals']}"
    )
    if published is not None:
        market = run.topic_event_ids("market-data-events")
        assert len(market) == len(set(market)), "a market-data event written twice"
        assert len(market) == published, f"{published} market-data events published, {len(market)} on the topic"


# The breaker's moves (trading/risk/breaker.py): closed -> open -> half_open -> closed | open. A
# restarted worker restores its breaker from the latest recorded move (since 2026-12-06,
# wip/breaker48): after an "open" or "half_open" one it records "restored" and the breaker is open
# again (its cool-down over or not; its trial then records "half_open"); after "closed", or none,
# it starts closed. A move the stopped worker made but never recorded (killed between the move
# and its record; the database down when it moved: logged, not recorded) is not restored, so
# after a restart an opening may still follow anything, and "restored" only follows a restart.
# One breaker per account (since 2026-12-06): the moves are read as one sequence because the
# cluster run trades one account. A trip of an open breaker restarts its cool-down and records
# "extended" (since 2026-12-06): it follows an open move and leaves the breaker open.
_BREAKER_MOVES = {("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open")}


def assert_controls(
    probe: dict, *, opens_on: tuple[str, ...] = (), restarted: bool = False, drilled: tuple[str, ...] = ()
) -> None:
    """The breaker and the kill switch behaved as documented (docs/execution-worker.md): every
    move audited and a legal step, each opening for one of the reasons this run provokes
    (``opens_on``: prefixes; besides, refusals of late signals' stops, the only broker refusals a
    run without broker faults may see: ``assert_refusals_stale_stops``) and alerted (one
    ``trading_breaker_open`` alert published per opening); no kill switch engaged (only a
    loss-threshold opening or a position mismatch engages one, and no test provokes those); every
    order with its decision."""
    if assert_refusals_stale_stops(probe, drilled=drilled):
        opens_on = (*opens_on, "consecutive_failures:INVALID_STOPS", "consecutive_failures:MARKET_CLOSED")
    moves = probe["breaker_moves"]
    state = "closed"
    for action, reason in moves:
        new = action.removeprefix("trading_breaker.")
        if new == "restored":  # from the latest move, which left it open or half-open
            legal = restarted and state in ("open", "half_open")
            assert legal, f"breaker restored from {state} (restarted: {restarted}): {moves}"
            state = "open"
            continue
        if new == "extended":  # a trip of an open breaker: its cool-down restarts, no alert
            assert state == "open", f"breaker extended while {state}: {moves}"
            continue
        legal = (state, new) in _BREAKER_MOVES or (restarted and new == "open")
        assert legal, f"breaker moved {state} -> {new} ({reason}): {moves}"
        if new == "open":
            assert reason.startswith(opens_on) if opens_on else False, f"breaker opened on {reason!r}: {moves}"
        state = new
    opened = sum(1 for action, _ in moves if action == "trading_breaker.open")
    if opened:
        assert probe["alerts_published"].get("trading_breaker_open", 0) == opened, probe["alerts_published"]
    assert probe["kill_switches_engaged"] == [], probe["kill_switches_engaged"]
    assert probe["orders_without_decision"] == [], "orders without their pre-trade decision"


_STOPS = re.compile(r"(stop loss|take profit) (\S+) must be (below|above) (\S+) for a (buy|sell)")
_CLOSED = re.compile(r"^broker MARKET_CLOSED: (\S+) is outside its trading hours at (.+)$")


def assert_refusals_stale_stops(probe: dict, *, drilled: tuple[str, ...] = ()) -> int:
    """Every broker refusal is one a late signal earns (docs/topology.md): decided after the
    quotes had run on (a backlog after a restart, a broker of the cluster killed; no signal-age
    limit in a replay), either its stop (or target), which the strategy sets from the signal's
    price, is already on the wrong side of the broker's price (INVALID_STOPS), or the market has
    closed for the week meanwhile (MARKET_CLOSED, at a time really outside the instrument's
    sessions). The broker refuses both as MT5 would. Refusals the test provoked (``drilled``:
    outcomes) are the test's to check. Returns how many late-signal refusals there were."""
    from datetime import datetime
    from decimal import Decimal

    from trading.marketdata.sessions import is_open
    from trading.seed_data import INSTRUMENTS

    hours = {row["symbol"]: row.get("trading_hours") or {} for row in INSTRUMENTS}
    count = 0
    for refusal in probe["broker_refusals"]:
        if refusal["outcome"] in drilled:
            continue
        count += 1
        if refusal["outcome"] == "MARKET_CLOSED":
            match = _CLOSED.match(refusal["reason"])
            assert match, refusal
            symbol, at = match.groups()
            assert not is_open(hours[symbol], datetime.fromisoformat(at)), refusal
            continue
        assert refusal["outcome"] == "INVALID_STOPS", refusal
        match = _STOPS.search(refusal["reason"])
        assert match, refusal
        which, level, where, price, side = match.groups()
        assert side.upper() == refusal["side"], refusal
        level, price = Decimal(level), Decimal(price)
        assert level == Decimal(refusal["stop_loss" if which == "stop loss" else "take_profit"]), refusal
        assert (level >= price) if where == "below" else (level <= price), refusal
    return count
