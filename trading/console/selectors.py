"""Readers for the operations console (traders, risk managers): positions and P&L per account by
name, exposure against each limit, equity and drawdown, breaker and trading state per account and
instrument, kill switches, recent orders and fills; and the live screens' catch-up.

Limits resolve as the execution worker resolves them (``trading.risk.limits.LimitBook``: the most
specific row with a value wins). Exposure is in the account's currency where the instrument
quotes in it or is based in it; otherwise the quote-currency notional is shown (marked
approximate). RTS 6 Art. 16-17: real-time monitoring of positions, exposure and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Max, Q, Subquery

from tradeops.audit.models import AuditRecord
from tradeops.core.attention import ATTENTION, CALM, URGENT, Item
from tradeops.core.clock import utcnow
from tradeops.core.roles import Role, user_has_role
from trading.console.alerts import operator_alerts_high_count, operator_alerts_recent
from trading.controls.selectors import kill_switch_list, risk_limit_list
from trading.models import (
    AccountRiskSnapshot,
    DrawdownRebase,
    Execution,
    Instrument,
    KillScope,
    KillSwitch,
    Order,
    Position,
    ProposalStatus,
    TradingAccount,
    UnwritableOrder,
)
from trading.risk.breaker import BREAKER_OBJECT_TYPE, breaker_object_source
from trading.risk.limits import LimitBook

CONSOLE_ROLES = (Role.TRADER, Role.RISK_MANAGER, Role.COMPLIANCE_OFFICER, Role.AUDITOR)
AMBER, RED = Decimal("0.75"), Decimal("0.90")  # share of a limit used: amber from 75 %, red from 90 %
ZERO = Decimal(0)


def console_visible(user) -> bool:
    return bool(user.is_superuser or any(user_has_role(user, r) for r in CONSOLE_ROLES))


@dataclass
class Usage:
    """One figure against one limit: ``share`` of the limit used (None when no limit)."""

    name: str
    value: Decimal
    limit: Decimal | None
    unit: str = ""

    @property
    def share(self) -> Decimal | None:
        if self.limit is None or self.limit <= 0:
            return None
        return abs(self.value) / self.limit

    @property
    def level(self) -> str:
        share = self.share
        if share is None:
            return ""
        return "red" if share >= RED else ("amber" if share >= AMBER else "green")

    @property
    def percent(self) -> int:
        share = self.share
        return 0 if share is None else int(min(share, Decimal(1)) * 100)


@dataclass
class PositionRow:
    position: Position
    notional: Decimal
    approximate: bool
    usage: Usage


@dataclass
class AccountView:
    account: TradingAccount
    snapshot: AccountRiskSnapshot | None
    positions: list[PositionRow] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    realised: Decimal = ZERO
    unrealised: Decimal = ZERO
    kill_switch: KillSwitch | None = None  # on the account, else on everything
    # The execution worker deciding this account's orders: the wall-clock time its database
    # session (which holds the account's lock) started; False: no worker holds the account now;
    # None: cannot be told (not PostgreSQL).
    worker_since: datetime | bool | None = None
    # Which loss limit the snapshot's figures breach, each with its figure against the limit
    # (what makes the worker say REDUCING; empty: none now, so a limit changed since the snapshot).
    reducing_because: list[str] = field(default_factory=list)
    drawdown_breached: bool = False  # the drawdown limit is one of them: re-basing the peak ends it
    rebase_pending: DrawdownRebase | None = None  # a re-base of the peak awaiting a second risk manager
    rebase_last: DrawdownRebase | None = None  # the latest one decided
    # Orders the broker answered that the execution worker cannot write (``UnwritableOrder``): while
    # any is here the account needs reconcile and sends nothing; each says why.
    unwritable: list[UnwritableOrder] = field(default_factory=list)

    @property
    def trading_state(self) -> str:
        """The worker's state from its last snapshot, except that a kill switch covering the
        account halts it now: the snapshot is rewritten only at the worker's next mark, and the
        console once showed ACTIVE beside "kill switch engaged" (the walk of 2026-12-06)."""
        state = self.snapshot.trading_state if self.snapshot is not None else ""
        return "HALTED" if self.kill_switch is not None and state != "HALTED" else state

    @property
    def worst(self) -> str:
        levels = [u.level for u in self.usages] + [p.usage.level for p in self.positions]
        return "red" if "red" in levels else ("amber" if "amber" in levels else "green")


def limit_book() -> LimitBook:
    """The active limit rows, as the worker resolves them."""
    from trading.controls.services import LIMIT_VALUE_FIELDS

    book = LimitBook()
    for row in risk_limit_list():
        book.set(
            account_id=row.account_id,
            symbol=row.instrument.symbol if row.instrument_id else None,
            **{n: getattr(row, n) for n in LIMIT_VALUE_FIELDS},
        )
    return book


def _notional(position: Position, account: TradingAccount) -> tuple[Decimal, bool]:
    inst = position.instrument
    units = position.net_quantity * inst.contract_size
    if inst.currency == account.base_currency and inst.asset_class == "FX":
        return units, False
    mark = position.mark_price or position.average_price or ZERO
    return units * mark, inst.quote_currency != account.base_currency


# The advisory lock class of "one execution worker per account" (``workers.execution`` takes it,
# ``tradeops.core.locks.NamedLock``: a session lock, released when the worker's session ends,
# however the process died).
EXECUTION_LOCK_CLASS = 0x7472_6578  # "trex"


def execution_workers_holding(account_ids: list[int]) -> dict[int, datetime | bool] | None:
    """Which accounts an execution worker holds now, read from the PRIMARY's lock table (a
    replica has no view of the primary's sessions): each held account with the wall-clock start of
    the holding session (or True when that session's details are not visible to this role), False
    for one nobody holds: no process decides its orders. None where it cannot be told (SQLite:
    the lock is a file the web tier does not open). Until 2026-12-06 (wip/walk50) nothing on the
    console said the worker was down: a SIGKILLed worker was gone 28 s on the cluster, unseen."""
    from django.db import connections

    connection = connections["default"]
    if connection.vendor != "postgresql" or not account_ids:
        return None
    keys = {int(a) & 0x7FFF_FFFF: int(a) for a in account_ids}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.objid, a.backend_start FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objsubid = 2 AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.objid = ANY(%s)",
            [EXECUTION_LOCK_CLASS, list(keys)],
        )
        held = {keys[int(objid)]: since or True for objid, since in cursor.fetchall() if int(objid) in keys}
    return {a: held.get(a, False) for a in keys.values()}


def console_accounts() -> list[AccountView]:
    """Every active account with its positions, P&L, equity snapshot and limits used."""
    book = limit_book()
    engaged = {(k.scope, k.scope_value): k for k in kill_switch_list()}
    accounts = list(TradingAccount.objects.filter(is_active=True).select_related("risk_snapshot").order_by("name"))
    positions = (
        Position.objects.filter(account__in=accounts).select_related("instrument").order_by("instrument__symbol")
    )
    by_account: dict[int, list[Position]] = {}
    for p in positions:
        by_account.setdefault(p.account_id, []).append(p)
    views = []
    workers = execution_workers_holding([a.pk for a in accounts]) or {}
    rebases = _drawdown_rebases([a.pk for a in accounts])
    unwritable: dict[int, list[UnwritableOrder]] = {}
    for row in UnwritableOrder.objects.filter(account__in=accounts).order_by("account_id", "recorded_at"):
        unwritable.setdefault(row.account_id, []).append(row)
    for account in accounts:
        snapshot = getattr(account, "risk_snapshot", None)
        view = AccountView(
            account=account,
            snapshot=snapshot,
            kill_switch=engaged.get((KillScope.ACCOUNT, str(account.pk))) or engaged.get((KillScope.ALL, "")),
            worker_since=workers.get(account.pk),
            unwritable=unwritable.get(account.pk, []),
        )
        gross = net = ZERO
        any_approx = False
        for p in by_account.get(account.pk, []):
            notional, approximate = _notional(p, account)
            any_approx |= approximate
            gross += abs(notional)
            net += notional
            view.realised += p.realised_pnl
            view.unrealised += p.unrealised_pnl
            limits = book.for_instrument(account.pk, p.instrument.symbol)
            view.positions.append(
                PositionRow(
                    position=p,
                    notional=notional,
                    approximate=approximate,
                    usage=Usage("position", p.net_quantity, limits.max_position_lots, "lots"),
                )
            )
        limits = book.for_account(account.pk)
        unit = account.base_currency + (" (approx.)" if any_approx else "")
        view.usages = [
            Usage("gross exposure", gross, limits.max_gross_exposure, unit),
            Usage("net exposure", net, limits.max_net_exposure, unit),
        ]
        if snapshot is not None:
            daily_loss = -snapshot.daily_pnl if snapshot.daily_pnl < 0 else ZERO
            view.usages.append(Usage("daily loss", daily_loss, limits.daily_loss_limit, account.base_currency))
            view.usages.append(Usage("drawdown", snapshot.drawdown, limits.max_drawdown, "of peak equity"))
            _reducing_because(view, snapshot, limits, daily_loss)
        view.rebase_pending, view.rebase_last = rebases.get(account.pk, (None, None))
        views.append(view)
    return views


def _reducing_because(view: AccountView, snapshot: AccountRiskSnapshot, limits, daily_loss: Decimal) -> None:
    """The loss limits the snapshot breaches, as the worker tests them (``RiskManager.
    reducing_reason``: at or past the limit), in the console's words."""
    if limits.max_drawdown is not None and snapshot.drawdown >= limits.max_drawdown:
        view.drawdown_breached = True
        view.reducing_because.append(
            f"drawdown {snapshot.drawdown * 100:.2f} % of peak equity {snapshot.peak_equity:,.2f} "
            f"(equity {snapshot.equity:,.2f}) at or past its limit {limits.max_drawdown * 100:.2f} %"
        )
    if limits.daily_loss_limit is not None and daily_loss >= limits.daily_loss_limit:
        view.reducing_because.append(
            f"today's loss {daily_loss:,.2f} at or past its limit {limits.daily_loss_limit:,.2f} "
            f"(the day ends at 00:00 UTC, event time)"
        )


def _drawdown_rebases(account_ids: list[int]) -> dict[int, tuple[DrawdownRebase | None, DrawdownRebase | None]]:
    """Per account: its pending re-base of the peak equity and its latest decided one (two reads)."""
    rows = DrawdownRebase.objects.filter(account_id__in=account_ids).select_related("proposed_by", "decided_by")
    pending = {r.account_id: r for r in rows.filter(status=ProposalStatus.PENDING)}
    latest = rows.exclude(status=ProposalStatus.PENDING).order_by().values("account_id").annotate(newest=Max("pk"))
    last = {r.account_id: r for r in rows.filter(pk__in=Subquery(latest.values("newest")))}
    return {a: (pending.get(a), last.get(a)) for a in account_ids}


def console_instruments() -> list[dict[str, Any]]:
    """Per instrument: active, in session now, kill switch on it."""
    from trading.marketdata.sessions import is_open

    now = utcnow()
    switches = list(kill_switch_list().filter(scope__in=[KillScope.INSTRUMENT, KillScope.ALL]))
    engaged = {k.scope_value: k for k in switches if k.scope == KillScope.INSTRUMENT}
    everything = next((k for k in switches if k.scope == KillScope.ALL), None)
    rows = []
    for inst in Instrument.objects.order_by("symbol"):
        try:
            session = is_open(inst.trading_hours, now)
        except (ValueError, TypeError, KeyError, AttributeError):  # a malformed schedule: shown as unknown, never a 500
            session = None
        rows.append(
            {"instrument": inst, "session_open": session, "kill_switch": engaged.get(inst.symbol) or everything}
        )
    return rows


def trading_breakers() -> list[dict[str, Any]]:
    """Each trading breaker's latest move (``trading_breaker.<state>`` in the audit trail): state,
    when (event time), why, and whose. One per (execution worker, account): ``source`` is the
    worker, ``account`` the account's name (its id if it is gone; empty for a record from before
    breakers were per account, 2026-12-06, when one breaker guarded all the worker's accounts).
    ``extended``: the latest move is an open breaker tripped again (``trading_breaker.extended``),
    its cool-down restarted at ``at`` with ``reason``; before 2026-12-06 that went unrecorded and
    the panel showed the first opening while the breaker stayed open past its cool-down.

    Every breaker's latest record, however old (one grouped read of ``audit_breaker_latest_idx``,
    the breaker records only): until 2026-12-06 the panel read the newest 200 breaker records,
    and a breaker whose last move was older than another's flapping history (an open breaker
    among them) fell off the panel."""
    breaker_records = AuditRecord.objects.filter(object_type=BREAKER_OBJECT_TYPE)
    newest = breaker_records.order_by().values("object_id").annotate(newest=Max("sequence")).values("newest")
    latest: dict[str, dict[str, Any]] = {}
    for record in breaker_records.filter(sequence__in=Subquery(newest)):
        after = (record.payload_data or {}).get("after") or {}
        account = str(after.get("account") or "")
        latest[record.object_id] = {
            "source": breaker_object_source(record.object_id, account=account),
            "account": account,
            "state": after.get("state", record.action.split(".")[-1]),
            "reason": after.get("reason", ""),
            "at": record.occurred_at,
            "extended": record.action == "trading_breaker.extended",
        }
    names = dict(
        TradingAccount.objects.filter(
            pk__in=[int(b["account"]) for b in latest.values() if b["account"].isdigit()]
        ).values_list("pk", "name")
    )
    for b in latest.values():
        b["account"] = names.get(int(b["account"]), b["account"]) if b["account"].isdigit() else b["account"]
    return sorted(latest.values(), key=lambda b: (b["source"], b["account"]))


def console_orders(*, limit: int = 50) -> list[Order]:
    return list(Order.objects.select_related("account", "instrument", "trader").order_by("-created_at", "-pk")[:limit])


def console_fills(*, limit: int = 50) -> list[Execution]:
    return list(
        Execution.objects.select_related("account", "instrument", "order").order_by("-executed_at", "-pk")[:limit]
    )


def kill_switch_labels(switches) -> None:
    """Name what each switch covers: ``target`` = "everything", "account Alpha fund (9)", ..."""
    switches = list(switches)
    names = account_names()
    traders = trader_names() if any(k.scope == KillScope.TRADER for k in switches) else {}
    for k in switches:
        if k.scope == KillScope.ALL:
            k.target = "everything"
        elif k.scope == KillScope.ACCOUNT and k.scope_value.isdigit() and int(k.scope_value) in names:
            k.target = f"account {names[int(k.scope_value)]} ({k.scope_value})"
        elif k.scope == KillScope.TRADER and k.scope_value.isdigit() and int(k.scope_value) in traders:
            k.target = f"trader {traders[int(k.scope_value)]} ({k.scope_value})"
        else:
            k.target = f"{k.scope} {k.scope_value}"


def console_kill_switches() -> dict[str, Any]:
    engaged = list(kill_switch_list().order_by("-engaged_at"))
    recent = list(KillSwitch.objects.filter(engaged=False).select_related("released_by").order_by("-released_at")[:10])
    kill_switch_labels(engaged + recent)
    return {
        "engaged": engaged,
        "recent": recent,
    }


def instrument_meta() -> dict[str, dict[str, Any]]:
    """What the live script needs to format numbers like the server: symbol -> digits, step."""
    return {
        i.symbol: {"digits": i.digits, "step": str(i.volume_step.normalize())}
        for i in Instrument.objects.only("symbol", "digits", "volume_step")
    }


def account_names() -> dict[int, str]:
    return dict(TradingAccount.objects.values_list("pk", "name"))


def trader_names() -> dict[int, str]:
    """Every user with the trader role (people and API clients' service users), by id: a switch
    on a trader takes the id, which the console otherwise never shows."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(groups__name=str(Role.TRADER)).order_by("username")
    return dict(users.values_list("pk", "username"))


def algo_ids(*, limit: int = 50) -> list[str]:
    """The algorithm ids the kill switch takes (``algo_ids_known``: those orders carry and those
    signal producers are configured with), for its choices."""
    from trading.controls.selectors import algo_ids_known

    return sorted(algo_ids_known())[:limit]


# ---------------------------------------------------------------- equity and drawdown


def equity_curve(*, account: TradingAccount, points: int = 400) -> list[dict[str, Any]]:
    """Equity and drawdown over time, rebuilt from the position records the audit trail holds
    (``position.updated``: realised and unrealised P&L per symbol at each fill and mark) on top
    of the starting balance (today's balance less the realised P&L of every position). Event time.
    At most ``points`` points (``equity_curve_thin``: the first, the last and every re-base kept).

    The drawdown is measured from the peak equity as the execution worker measured it: from the
    highest equity so far, and from each re-base of the peak the worker applied
    (``DrawdownRebase``, ``trading.controls.drawdown``) on: at its ``applied_at`` (event time) a
    point with the equity it re-based on (``peak_after``), drawdown 0 and ``rebase`` (its id), and
    the peak starts again from there. Until 2026-12-07 the chart measured from the first peak in
    the trail, so after a re-base only its last point (the snapshot's) showed the re-based figure."""
    snapshot = AccountRiskSnapshot.objects.filter(account=account).first()
    if snapshot is None:  # no balance to start from: no honest equity figure
        return []
    positions = list(Position.objects.filter(account=account).select_related("instrument"))
    realised_now = sum((p.realised_pnl for p in positions), ZERO)
    start_balance = (snapshot.balance - realised_now) if snapshot is not None else ZERO
    ids = [str(p.pk) for p in positions]
    records = (
        AuditRecord.objects.filter(action="position.updated", object_type="position", object_id__in=ids)
        .order_by("occurred_at", "sequence")
        .values_list("object_id", "occurred_at", "payload")
    )
    import json

    rebases = list(
        DrawdownRebase.objects.filter(account=account, applied_at__isnull=False, peak_after__isnull=False)
        .order_by("applied_at", "pk")
        .values_list("pk", "applied_at", "peak_after")
    )
    by_symbol: dict[str, Decimal] = {}
    curve: list[dict[str, Any]] = []
    peak = None

    def rebase_until(at) -> Decimal | None:
        """Apply the re-bases up to ``at`` (None: all that are left); the last one's peak."""
        rebased = None
        while rebases and (at is None or rebases[0][1] <= at):
            pk, applied_at, peak_after = rebases.pop(0)
            curve.append({"t": applied_at.isoformat(), "equity": float(peak_after), "drawdown": 0.0, "rebase": pk})
            rebased = peak_after
        return rebased

    for object_id, at, payload in records.iterator(chunk_size=2000):
        rebased = rebase_until(at)
        if rebased is not None:
            peak = rebased
        data = json.loads(payload)
        data = data.get("after", data)
        try:
            total = Decimal(str(data.get("realised_pnl") or 0)) + Decimal(str(data.get("unrealised_pnl") or 0))
        except ArithmeticError:
            continue
        by_symbol[object_id] = total
        equity = start_balance + sum(by_symbol.values(), ZERO)
        peak = equity if peak is None or equity > peak else peak
        drawdown = (peak - equity) / peak if peak and peak > 0 else ZERO
        curve.append({"t": at.isoformat(), "equity": float(equity), "drawdown": float(drawdown)})
    rebase_until(None)  # applied after the last position record: the snapshot's point follows them
    if snapshot is not None:
        curve.append(
            {
                "t": snapshot.as_of.isoformat(),
                "equity": float(snapshot.equity),
                "drawdown": float(snapshot.drawdown),
            }
        )
    return equity_curve_thin(curve, points=points)


def equity_curve_thin(curve: list[dict[str, Any]], *, points: int) -> list[dict[str, Any]]:
    """``curve`` cut to ``points`` points, in order: the first, the last and every re-base point
    (``"rebase"`` in it) always (so more than ``points`` only when the re-bases alone are more),
    the rest evenly spaced among the others. A re-base point is where the chart's drawdown
    restarts from the re-based peak: thinned away, the line would run on from the old peak to
    whichever point came next, and the note under the chart would name no re-base. Until
    2026-12-07 every n-th point was kept, re-base or not."""
    if len(curve) <= points:
        return curve
    kept = {0, len(curve) - 1} | {i for i, point in enumerate(curve) if "rebase" in point}
    room = points - len(kept)
    if room > 0:
        others = [i for i in range(len(curve)) if i not in kept]
        step = len(others) / room
        kept.update(others[int(j * step)] for j in range(room))
    return [curve[i] for i in sorted(kept)]


# ---------------------------------------------------------------- home


def attention_for(user) -> list[Item]:
    """Operations items for the home page: engaged kill switches (everyone must know), accounts
    near or over a limit, accounts not trading normally, high-severity operator alerts of the last
    hour (risk managers and traders), orders refused in the last hour."""
    if not console_visible(user):
        return []
    items: list[Item] = []
    engaged = list(kill_switch_list().order_by("-engaged_at"))
    # The console's own names ("account Paper demo (1)", "instrument EURUSD", "everything"): the
    # scope's form label ("An account (id)") once read "An account 1" here.
    kill_switch_labels(engaged)
    items.append(
        Item(
            "Kill switches engaged",
            len(engaged),
            "; ".join(f"{k.target}: {k.engage_reason}" for k in engaged[:3])
            + (f"; and {len(engaged) - 3} more" if len(engaged) > 3 else "")
            if engaged
            else "Nothing is blocked: every account, instrument and algorithm may trade.",
            "/console/#kill-switch",
            URGENT if engaged else CALM,
        )
    )
    views = console_accounts()
    hot = [v for v in views if v.worst in ("amber", "red")]
    items.append(
        Item(
            "Accounts near a limit",
            len(hot),
            ", ".join(f"{v.account.name} ({v.worst})" for v in hot[:4])
            if hot
            else "Every account is under 75 % of each limit.",
            "/console/#accounts",
            URGENT if any(v.worst == "red" for v in hot) else (ATTENTION if hot else CALM),
        )
    )
    halted = [
        v
        for v in views
        if v.snapshot is not None and (v.trading_state != "ACTIVE" or v.snapshot.breaker_state != "closed")
    ]
    if halted:
        items.append(
            Item(
                "Accounts not trading normally",
                len(halted),
                ", ".join(
                    f"{v.account.name}: {v.trading_state}"
                    + (" (kill switch)" if v.kill_switch is not None else "")
                    + f", breaker {v.snapshot.breaker_state}"
                    for v in halted[:4]
                ),
                "/console/#breakers",
                URGENT,
            )
        )
    # Risk managers and traders act on these (a breaker, a reconciliation mismatch stops their
    # trading); compliance and auditors read the console's panel.
    if user.is_superuser or user_has_role(user, Role.RISK_MANAGER) or user_has_role(user, Role.TRADER):
        high = operator_alerts_high_count()
        items.append(
            Item(
                "Operator alerts of high severity in the last hour",
                high,
                "Reconciliation, breaker, model drift, market data or anomalies: the console's panel says what each is."
                if high
                else "None in the last hour.",
                "/console/#operator-alerts",
                URGENT if high else CALM,
            )
        )
    since = utcnow() - timedelta(hours=1)
    refused = Order.objects.filter(status="REJECTED").filter(Q(updated_at__gte=since)).count()
    items.append(
        Item(
            "Orders refused in the last hour",
            refused,
            "By the pre-trade controls or the broker; the orders table says why." if refused else "None.",
            "/console/#orders",
            ATTENTION if refused else CALM,
        )
    )
    return items


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ---------------------------------------------------------------- live screens: catch-up

CATCH_UP_MARGIN = timedelta(seconds=5)  # record times come from several processes' clocks
CATCH_UP_MAX = 500  # per kind; a screen shows the latest 50 rows anyway


def _screen_event(kind: str, at: datetime, key: str, payload: dict) -> dict:
    return {"event_id": None, "type": kind, "occurred_at": _iso(at), "key": key, "payload": payload, "catch_up": True}


def _s(value) -> str | None:
    return None if value is None else str(value)


def live_catch_up(*, user, since: datetime) -> list[dict]:
    """What a trading screen missed since ``since`` (record time, wall clock), as the events the
    live push sends (same types and payload fields), rebuilt from the system of record: orders,
    fills, positions, trading-breaker moves, kill switches and operator alerts (never surveillance's)
    written since then. Oldest first; upserts, so an event seen twice changes nothing on the screen."""
    if not console_visible(user):
        return []
    since = since - CATCH_UP_MARGIN
    out: list[tuple[datetime, dict]] = []
    orders = Order.objects.filter(updated_at__gte=since).select_related("instrument").order_by("-updated_at")
    for o in orders[:CATCH_UP_MAX]:
        out.append(
            (
                o.updated_at,
                _screen_event(
                    "order.lifecycle",
                    o.created_at,
                    str(o.account_id),
                    {
                        "client_order_id": o.client_order_id,
                        "account_id": o.account_id,
                        "symbol": o.instrument.symbol,
                        "side": o.side,
                        "order_type": o.order_type,
                        "quantity": _s(o.quantity),
                        "status": o.status,
                        "filled_quantity": _s(o.filled_quantity),
                        "limit_price": _s(o.limit_price),
                        "average_fill_price": _s(o.average_fill_price),
                        "reason": o.reject_reason,
                        "ts": _iso(o.created_at),
                    },
                ),
            )
        )
    fills = (
        Execution.objects.filter(recorded_at__gte=since).select_related("instrument", "order").order_by("-recorded_at")
    )
    for x in fills[:CATCH_UP_MAX]:
        out.append(
            (
                x.recorded_at,
                _screen_event(
                    "execution.fill",
                    x.executed_at,
                    str(x.account_id),
                    {
                        "client_order_id": x.order.client_order_id,
                        "broker_deal_id": x.broker_deal_id,
                        "account_id": x.account_id,
                        "symbol": x.instrument.symbol,
                        "side": x.side,
                        "quantity": _s(x.quantity),
                        "price": _s(x.price),
                        "arrival_mid": _s(x.arrival_mid),
                        "arrival_bid": _s(x.arrival_bid),
                        "arrival_ask": _s(x.arrival_ask),
                        "ts": _iso(x.executed_at),
                    },
                ),
            )
        )
    positions = Position.objects.filter(updated_at__gte=since).select_related("instrument").order_by("-updated_at")
    for p in positions[:CATCH_UP_MAX]:
        out.append(
            (
                p.updated_at,
                _screen_event(
                    "position.changed",
                    p.as_of or p.updated_at,
                    str(p.account_id),
                    {
                        "account_id": p.account_id,
                        "symbol": p.instrument.symbol,
                        "net_quantity": _s(p.net_quantity),
                        "average_price": _s(p.average_price),
                        "realised_pnl": _s(p.realised_pnl),
                        "unrealised_pnl": _s(p.unrealised_pnl),
                        "ts": _iso(p.as_of or p.updated_at),
                    },
                ),
            )
        )
    for record in AuditRecord.objects.filter(object_type=BREAKER_OBJECT_TYPE, recorded_at__gte=since).order_by(
        "-sequence"
    )[:CATCH_UP_MAX]:
        data = record.payload_data or {}
        account = str((data.get("after") or {}).get("account") or "")  # empty before 2026-12-06
        out.append(
            (
                record.recorded_at,
                _screen_event(
                    "breaker.changed",
                    record.occurred_at,
                    record.object_id,
                    {
                        "source": breaker_object_source(record.object_id, account=account),
                        "account": account,
                        "old": (data.get("before") or {}).get("state", ""),
                        "new": (data.get("after") or {}).get("state", ""),
                        "reason": data.get("reason", ""),
                        "ts": _iso(record.occurred_at),
                    },
                ),
            )
        )
    switches = KillSwitch.objects.filter(Q(engaged_at__gte=since) | Q(released_at__gte=since)).order_by("-engaged_at")
    for k in switches[:CATCH_UP_MAX]:
        at = k.released_at if not k.engaged and k.released_at else k.engaged_at
        out.append(
            (
                at,
                _screen_event(
                    "killswitch.changed",
                    at,
                    k.scope,
                    {
                        "scope": k.scope,
                        "scope_value": k.scope_value,
                        "engaged": k.engaged,
                        "actor": k.engaged_by,
                        "reason": k.engage_reason if k.engaged else k.release_reason,
                        "ts": _iso(at),
                    },
                ),
            )
        )
    for a in operator_alerts_recent(since=since, limit=CATCH_UP_MAX):
        out.append(
            (
                a.recorded_at,
                _screen_event(
                    "alert.raised",
                    a.occurred_at,
                    a.account or a.symbol or a.alert_type,
                    {
                        "alert_type": a.alert_type,
                        "severity": a.severity,
                        "symbol": a.symbol,
                        "account": a.account,
                        "ts": _iso(a.occurred_at),
                    },
                ),
            )
        )
    out.sort(key=lambda pair: pair[0])
    return [event for _, event in out]
