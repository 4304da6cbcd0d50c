"""The compliance desk's and the console's readers and writers, without a browser: case
assignment and comments (audited, pushed to compliance screens only), the alert queue's filters
and sorting, rule differences, the catch-up after a dropped connection (by role), number
formatting, and the live push's role separation over a real WebSocket."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from tests.screens.world import T0, order_filled, pump_live, world_build
from tradeops.core import formatting

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return world_build()


def test_assigning_and_commenting_a_case_is_audited_and_published_for_compliance_only(world):
    from compliance.services import case_assign, case_comment_add
    from tradeops.audit.models import AuditRecord
    from tradeops.events import Topic
    from tradeops.outbox.models import Outbox

    olga, oscar = world.users["officer"], world.users["officer2"]
    case_assign(case=world.case, officer=olga, assignee=oscar)
    case_comment_add(case=world.case, officer=oscar, note="Looked at the quotes: the sells were 2 levels away.")
    world.case.refresh_from_db()
    assert world.case.assigned_to == oscar
    steps = list(world.case.actions.values_list("action", flat=True))
    assert steps[-2:] == ["assigned", "commented"]
    audited = AuditRecord.objects.filter(object_type="case", object_id=world.case.reference).order_by("sequence")
    assert [r.action for r in audited] == ["case.assigned", "case.commented"]
    assert (
        audited[0].payload_data["before"]["assigned_to"] == ""
        and audited[0].payload_data["after"]["assigned_to"] == "oscar"
    )
    events = Outbox.objects.filter(event_type="case.changed").order_by("id")
    assert [e.topic for e in events] == [Topic.COMPLIANCE, Topic.COMPLIANCE]
    # one event id for the audit record and the event: the audit-trail stage will not record it twice
    assert {str(e.event_id) for e in events} == {str(r.event_id) for r in audited}


def test_a_case_goes_to_officers_only_and_a_comment_needs_text(world):
    from compliance.services import ComplianceError, case_assign, case_comment_add
    from tradeops.core.errors import PermissionDenied

    with pytest.raises(ComplianceError, match="not a compliance officer"):
        case_assign(case=world.case, officer=world.users["officer"], assignee=world.users["trader"])
    with pytest.raises(PermissionDenied):
        case_assign(case=world.case, officer=world.users["auditor"], assignee=world.users["officer"])
    with pytest.raises(ComplianceError, match="needs some text"):
        case_comment_add(case=world.case, officer=world.users["officer"], note="   ")


def test_the_alert_queue_filters_and_sorts(world):
    from compliance.desk.selectors import AlertFilters, alert_queue
    from compliance.services import alerts_record
    from tests.screens.world import T0, spoofing_alert

    low = spoofing_alert(account_id="77", order_ids=["x1", "x2"], start=T0 + timedelta(hours=3))
    low.update(alert_type="ping_orders", severity="low", score=0.4, symbol="GBPUSD")
    alerts_record(alerts=[low])
    officer = world.users["officer"]

    def types(**filters):
        return [a.alert_type for a in alert_queue(user=officer, filters=AlertFilters(**filters))]

    assert types(sort="-score") == ["spoofing", "ping_orders"]
    assert types(sort="severity") == ["ping_orders", "spoofing"]  # ascending severity: low first
    assert types(sort="-severity") == ["spoofing", "ping_orders"]
    assert types(symbol="gbpusd") == ["ping_orders"]
    assert types(severity="high") == ["spoofing"]
    assert types(since=T0 + timedelta(hours=1)) == ["ping_orders"]
    assert types(until=T0 + timedelta(hours=1)) == ["spoofing"]
    assert sorted(types(status="open")) == ["ping_orders", "spoofing"] and types(status="closed") == []
    assert len(types(assignee="-")) == 2 and types(assignee="olga") == []
    assert alert_queue(user=world.users["trader"], filters=AlertFilters()).count() == 0  # no tipping off


def test_the_alert_queue_reads_a_bare_until_date_as_that_whole_day(world, client):
    """From 5 to 5 January means the 5th: the officer's world has a spoofing alert at 10:00 that
    day and none the day before."""
    client.force_login(world.users["officer"])

    def shown(query):
        response = client.get("/compliance/alerts/?" + query)
        assert response.status_code == 200
        return "data-alert=" in response.content.decode()

    assert shown("since=2026-01-05&until=2026-01-05")
    assert not shown("since=2026-01-04&until=2026-01-04")
    assert shown("until=2026-01-05T10:00:01") and not shown("until=2026-01-05T10:00")  # until excluded


def test_the_last_representable_day_as_until_is_a_form_error_not_a_server_error(world, client):
    """A bare date ends a period at the next midnight: 9999-12-31 has none (OverflowError). The
    person is told the date cannot be used, as any other bad date, on both period screens."""
    client.force_login(world.users["officer"])
    response = client.get("/compliance/alerts/?until=9999-12-31")
    assert response.status_code == 200
    assert "ISO 8601" in response.content.decode()
    response = client.get("/compliance/audit/?until=9999-12-31")
    assert response.status_code == 200
    assert "ISO 8601" in response.content.decode()


def test_assigning_from_a_live_refreshed_queue_returns_to_the_queue_page_not_its_rows_fragment(world, client):
    """The live refresh replaces the table with ``?fragment=rows``; the assign forms in that
    fragment must still send the officer back to the whole queue page (filters kept), not to
    the bare unstyled rows."""
    import re
    from html import unescape

    client.force_login(world.users["officer"])
    rows = client.get("/compliance/alerts/?severity=high&sort=-score&fragment=rows").content.decode()
    nexts = {unescape(n) for n in re.findall(r'name="next" value="([^"]*)"', rows)}
    assert nexts == {"/compliance/alerts/?severity=high&sort=-score"}
    response = client.post(f"/compliance/cases/{world.case.pk}/assign/", {"assignee": "olga", "next": nexts.pop()})
    assert response.status_code == 302 and "fragment" not in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "<h1>Alert queue" in page and "assigned to olga" in page


def test_the_case_page_says_its_opening_is_in_event_time(world, client):
    """A case opens at the alert's raise time, which is event time (a replayed book's market
    time), not the wall-clock recording: the page said "recorded" over a January date."""
    client.force_login(world.users["officer"])
    page = client.get(f"/compliance/cases/{world.case.pk}/").content.decode()
    assert "Opened (event time, UTC)" in page and "Opened (recorded" not in page
    assert "officers' at the wall clock" in page


def test_filter_names_read_as_the_tables_do(world, client):
    """The queue's type filter named detectors as identifiers (ping_orders) beside a table that
    reads "ping orders"; the audit search's facet said "Object_type"."""
    client.force_login(world.users["officer"])
    queue = client.get("/compliance/alerts/").content.decode()
    assert '<option value="spoofing">spoofing</option>' in queue
    assert '<option value="ping_orders">ping orders</option>' in queue
    audit = client.get("/compliance/audit/").content.decode()
    assert "<h3>Object type</h3>" in audit and "Object_type" not in audit


def test_an_empty_queue_says_whether_a_filter_hid_the_alerts(world, client):
    from compliance.models import Alert

    client.force_login(world.users["officer"])
    filtered = client.get("/compliance/alerts/?symbol=NOSUCH").content.decode()
    assert "No alert matches these filters." in filtered
    Alert.objects.all().delete()
    empty = client.get("/compliance/alerts/").content.decode()
    assert "No alert yet" in empty and "No alert matches" not in empty


def test_rule_versions_side_by_side_mark_what_changed(world):
    from compliance.desk.selectors import rule_diff, rule_versions

    versions = rule_versions(user=world.users["auditor"], code="max-order-value-firm")
    rows = {row["name"]: row for row in rule_diff(versions)}
    assert [c["value"] for c in rows["max_value"]["cells"]] == ["500000", "250000"]
    assert [c["state"] for c in rows["max_value"]["cells"]] == ["", "changed"]
    assert not rows["scope"]["differs"]


def test_catch_up_rebuilds_what_a_screen_missed_and_never_shows_a_trader_an_alert(world):
    from compliance.desk.selectors import live_catch_up as desk_catch_up
    from compliance.services import case_comment_add
    from tradeops.core.clock import utcnow
    from trading.consumers import catch_up_events

    since = utcnow()
    order = order_filled(account=world.accounts[1], instrument=world.instrument, quantity=D("0.7"))
    case_comment_add(case=world.case, officer=world.users["officer"], note="noted")
    for_trader = catch_up_events(user=world.users["trader"], since=since)
    kinds = {e["type"] for e in for_trader}
    assert {"order.lifecycle", "execution.fill", "position.changed"} <= kinds
    assert not kinds & {"alert.raised", "case.changed"}
    assert any(e["payload"].get("client_order_id") == order.client_order_id for e in for_trader)
    for_officer = {e["type"] for e in catch_up_events(user=world.users["officer"], since=since)}
    assert "case.changed" in for_officer
    assert desk_catch_up(user=world.users["risk"], since=since) == []


def test_a_breaker_move_is_audited_published_and_shown_on_the_console(world, client):
    from tradeops.audit.models import AuditRecord
    from tradeops.core.clock import utcnow
    from tradeops.events import Topic
    from tradeops.outbox.models import Outbox
    from trading.console.selectors import trading_breakers
    from trading.consumers import catch_up_events
    from trading.controls.services import trading_breaker_change_record

    since = utcnow()
    at = since - timedelta(minutes=3)  # event time (a replayed bar), not the wall clock
    alpha, beta = world.accounts
    kwargs = dict(source="execution-eu", actor="service:execution", auto_kill_on_loss=False)
    trading_breaker_change_record(
        account_id=alpha.pk, old="closed", new="open", reason="loss_threshold: 3 losses", at=at, **kwargs
    )
    audited = AuditRecord.objects.get(object_type="trading_breaker", action="trading_breaker.open")
    assert audited.object_id == f"execution-eu:{alpha.pk}"  # one breaker per (worker, account)
    published = Outbox.objects.get(event_type="breaker.changed")
    assert published.topic == Topic.TRADING and str(published.event_id) == str(audited.event_id)
    assert trading_breakers() == [
        {
            "source": "execution-eu",
            "account": "Alpha fund",
            "state": "open",
            "reason": "loss_threshold: 3 losses",
            "at": at,
            "extended": False,
        }
    ]
    trading_breaker_change_record(
        account_id=alpha.pk, old="open", new="half_open", reason="cool-down over", at=at, **kwargs
    )
    trading_breaker_change_record(
        account_id=beta.pk, old="closed", new="open", reason="consecutive_failures:REJECT", at=at, **kwargs
    )
    # the latest move per breaker, each account's own
    assert [(b["account"], b["state"]) for b in trading_breakers()] == [
        ("Alpha fund", "half_open"),
        ("Beta book", "open"),
    ]

    moves = [e for e in catch_up_events(user=world.users["trader"], since=since) if e["type"] == "breaker.changed"]
    assert [(m["payload"]["account"], m["payload"]["old"], m["payload"]["new"]) for m in moves] == [
        (str(alpha.pk), "closed", "open"),
        (str(alpha.pk), "open", "half_open"),
        (str(beta.pk), "closed", "open"),
    ]
    assert {m["payload"]["source"] for m in moves} == {"execution-eu"}
    assert moves[0]["occurred_at"] == at.isoformat()

    client.force_login(world.users["trader"])
    fragment = client.get("/console/?fragment=breakers").content.decode()
    breakers_table = fragment.split('id="trading-breakers"')[1].split("</table>")[0]
    assert '<td>execution-eu</td><td>Alpha fund</td><td><span class="badge half_open">' in breakers_table
    assert '<td>execution-eu</td><td>Beta book</td><td><span class="badge open">' in breakers_table
    assert "cool-down over" in breakers_table and "consecutive_failures:REJECT" in breakers_table


def test_a_breaker_record_from_before_breakers_were_per_account_shows_every_account(world, client):
    """An audit record of the worker's one breaker (before 2026-12-06) names no account: the
    console says it guarded every account of that worker."""
    from tradeops.core.clock import utcnow
    from trading.console.selectors import trading_breakers
    from trading.controls.services import trading_breaker_change_record

    at = utcnow()
    trading_breaker_change_record(
        old="closed",
        new="open",
        reason="x",
        at=at,
        source="execution-old",
        actor="service:execution",
        auto_kill_on_loss=False,
    )
    assert trading_breakers() == [
        {"source": "execution-old", "account": "", "state": "open", "reason": "x", "at": at, "extended": False}
    ]
    client.force_login(world.users["trader"])
    fragment = client.get("/console/?fragment=breakers").content.decode()
    assert "<td>execution-old</td><td>every account</td>" in fragment


def test_a_breaker_stays_on_the_panel_however_much_another_has_moved_since(world):
    """The panel read the newest 200 breaker records: Alpha's open breaker fell off it once Beta's
    breaker had flapped 200 times since (a risk manager would have read Alpha as closed)."""
    from tradeops.core.clock import utcnow
    from trading.console.selectors import trading_breakers
    from trading.controls.services import trading_breaker_change_record

    at = utcnow()
    alpha, beta = world.accounts
    kwargs = dict(source="execution-eu", actor="service:execution", auto_kill_on_loss=False, at=at)
    trading_breaker_change_record(account_id=alpha.pk, old="closed", new="open", reason="loss_threshold", **kwargs)
    state = "closed"
    for _ in range(205):
        new = "open" if state == "closed" else "closed"
        trading_breaker_change_record(account_id=beta.pk, old=state, new=new, reason="flap", **kwargs)
        state = new
    assert [(b["account"], b["state"], b["reason"]) for b in trading_breakers()] == [
        ("Alpha fund", "open", "loss_threshold"),
        ("Beta book", "open", "flap"),
    ]


def test_evidence_figures_read_as_a_compliance_officer_reads_them(world, client):
    """The case screen's alert cards show each evidence figure formatted (prices at the symbol's
    digits, ratios to 2 decimals, durations in s or ms) with its threshold beside it; the
    evidence JSON beside the table keeps the exact values (tests/compliance/desk/test_evidence.py
    covers the formatter)."""
    from compliance.desk.evidence import evidence_figures

    figures = evidence_figures(
        {"mid_at_window_start": 1.0584799999999999, "orders": 5, "one_sided": True, "qty": -6405000.0}, digits=5
    )
    assert figures == [
        ("mid at window start", "1.05848", ""),
        ("orders", "5", ""),
        ("one sided", "yes", ""),
        ("qty", "-6,405,000", ""),
    ]
    client.force_login(world.users["officer"])
    page = client.get(f"/compliance/cases/{world.case.pk}/").content.decode()
    # the world's spoofing alert: size_ratio 4.2 against min_size_ratio 3.0
    assert '<th>size ratio</th><td class="mono num">4.20</td><td class="mono muted">min 3.00</td>' in page
    assert "&quot;size_ratio&quot;: 4.2" in page  # the JSON, exact


def test_the_story_puts_the_limit_in_force_beside_each_risk_check(world):
    from compliance.story import Check, _limits_now

    order = order_filled(account=world.accounts[0], instrument=world.instrument, quantity=D("0.1"))
    names = ["max_position", "max_gross_exposure", "max_net_exposure", "trading_state"]
    checks = [Check(name, True, "", "") for name in names] + [Check("max_position", True, "", "", source="compliance")]
    _limits_now(order, checks)
    step = world.instrument.volume_step
    assert [c.limit for c in checks] == [
        f"{formatting.lots(D('2'), step)} lots",
        f"1,000,000.00 {world.accounts[0].base_currency}",
        "none",  # a risk check with no limit set
        "",  # a check without a limit
        "",  # a compliance check: its rule version stands beside it instead
    ]


def test_numbers_follow_each_instruments_step_and_digits():
    assert formatting.lots(D("2.250000"), D("0.01")) == "2.25"
    assert formatting.lots(D("2.01"), D("0.01")) == "2.01"
    assert formatting.lots(D("3"), D("1")) == "3"
    assert formatting.lots(D("0.5"), D("0.1")) == "0.5"
    assert formatting.price(D("1.1"), 5) == "1.10000"
    assert formatting.price(D("149.5871"), 3) == "149.587"
    assert formatting.money(D("-1234567.891")) == "-1,234,567.89"
    assert formatting.money(D("12.5"), sign=True) == "+12.50"


def test_the_console_shows_limits_used_with_their_level(world):
    from trading.console.selectors import console_accounts

    alpha = next(v for v in console_accounts() if v.account == world.accounts[0])
    row = alpha.positions[0]
    assert row.usage.limit == D("2") and row.usage.percent == 62 and row.usage.level == "green"
    order_filled(account=world.accounts[0], instrument=world.instrument, quantity=D("0.6"))
    alpha = next(v for v in console_accounts() if v.account == world.accounts[0])
    assert alpha.positions[0].usage.level == "red"  # 1.85 of 2 lots: 92 %
    gross = next(u for u in alpha.usages if u.name == "gross exposure")
    assert gross.limit == D("1000000") and gross.level == "green"


def test_the_console_fills_show_the_touch_beside_the_mid_and_the_catch_up_carries_it(world, client):
    """Since trading 0009 a fill keeps the bid and ask quoted when its order arrived: the console's
    fills table shows them ("bid / ask") beside the mid, empty for a fill recorded before; the
    catch-up a screen gets after a dropped connection carries them too (console.js draws the
    live row from that payload, the same cells)."""
    from tradeops.core.clock import utcnow
    from trading.consumers import catch_up_events

    since = utcnow()
    order = order_filled(
        account=world.accounts[1],
        instrument=world.instrument,
        price=D("1.10125"),
        arrival_bid=D("1.10119"),
        arrival_ask=D("1.10125"),
    )
    client.force_login(world.users["trader"])
    html = client.get("/console/").content.decode()
    table = html[html.index('id="fills-table"') : html.index("</table>", html.index('id="fills-table"'))]
    assert '>Bid / ask<br>at arrival</th><th class="num">Mid<br>at arrival</th>' in table
    touched = table[table.index(order.client_order_id) :]
    assert '<td class="num">1.10125</td><td class="num">1.10119 / 1.10125</td><td class="num">1.10123</td>' in touched
    # the world's own fill was recorded without the touch: that cell is empty, the mid is kept
    assert '<td class="num">1.10123</td><td class="num"></td><td class="num">1.10121</td>' in table
    (fill,) = [
        e["payload"]
        for e in catch_up_events(user=world.users["trader"], since=since)
        if e["type"] == "execution.fill" and e["payload"]["client_order_id"] == order.client_order_id
    ]
    assert [D(fill[k]) for k in ("arrival_bid", "arrival_ask", "arrival_mid")] == [
        D("1.10119"),
        D("1.10125"),
        D("1.10123"),
    ]


def test_the_case_timeline_draws_the_touch_each_fill_was_measured_against(world, client):
    """The case's timeline plots, beside the mid, the bid and ask quoted when each order arrived
    (sources "bid" and "ask"; kept since trading 0009), so a reader sees the touch a fill is
    measured against; a fill recorded before has the mid alone, and the sources line says which."""
    from compliance.desk.selectors import case_timeline
    from compliance.models import Alert

    def timeline():
        return case_timeline(case=world.case, alerts=list(Alert.objects.filter(case=world.case)))

    before = timeline()
    assert {q["source"] for q in before.quotes} == {"mid", "touch"}  # the world's fill: no touch kept
    assert before.sources[0] == "system of record (orders, fills, mid at arrival)"
    order = order_filled(
        account=world.accounts[0],
        instrument=world.instrument,
        side="SELL",
        quantity=D("0.4"),
        price=D("1.10119"),
        arrival_bid=D("1.10119"),
        arrival_ask=D("1.10125"),
        at=T0 + timedelta(seconds=3),
    )
    after = timeline()
    arrived = order.created_at.isoformat()
    assert [(q["source"], q["price"]) for q in after.quotes if q["t"] == arrived] == [
        ("mid", 1.10117),
        ("bid", 1.10119),
        ("ask", 1.10125),
    ]
    assert after.sources[0] == "system of record (orders, fills, bid, ask and mid at arrival)"
    client.force_login(world.users["officer"])
    page = client.get(f"/compliance/cases/{world.case.pk}/").content.decode()
    assert "Price line: system of record (orders, fills, bid, ask and mid at arrival);" in page
    assert '"source": "bid"' in page and '"source": "ask"' in page  # the chart's data (timeline.js draws the band)


def test_a_case_of_two_alert_types_draws_every_alerts_orders_each_marked_with_its_alert(world, client, monkeypatch):
    """A case groups a spoofing and a layering alert on one account: the timeline draws both
    alerts' orders (from the system of record and from the evidence), each marked with the alert
    that names it, and the subject's other orders in the window only as context, capped
    (``TIMELINE_MAX_ORDERS``) without costing an alert any of its own. Until 2026-12-06 the cap
    was shared, earliest first, so a busy first alert's window hid the later alert's orders."""
    import json
    from html import unescape

    from compliance.desk import selectors
    from compliance.models import Alert
    from compliance.services import alerts_record
    from tests.screens.world import spoofing_alert

    account = world.accounts[0]
    noise = [
        order_filled(account=account, instrument=world.instrument, at=T0 + timedelta(seconds=n), coid=f"CTX{n}")
        for n in (1, 2)
    ]
    layers = [
        order_filled(account=account, instrument=world.instrument, at=T0 + timedelta(seconds=n), coid=f"LAY{n}")
        for n in (20, 21)
    ]
    layering = spoofing_alert(
        account_id=str(account.pk),
        order_ids=["f1", "f2", *(o.client_order_id for o in layers)],
        start=T0 + timedelta(seconds=18),
    )
    layering["alert_type"] = "layering"
    alerts_record(alerts=[layering], source="surveillance-stream")
    alerts = list(Alert.objects.filter(case=world.case).order_by("start", "pk"))
    assert [a.alert_type for a in alerts] == ["spoofing", "layering"]
    spoof, layer = alerts
    monkeypatch.setattr(selectors, "TIMELINE_MAX_ORDERS", 1)  # one context order, whatever the alerts name
    timeline = selectors.case_timeline(case=world.case, alerts=alerts)
    drawn = {o["id"]: o["alerts"] for o in timeline.orders}
    assert drawn == {
        world.order.client_order_id: [spoof.pk],  # the spoofing fill's order (system of record)
        "s1": [spoof.pk],  # the spoofing alert's cancelled orders (its evidence)
        "s2": [spoof.pk],
        noise[0].client_order_id: [],  # context: the account's first other order, the cap's one
        "f1": [layer.pk],  # the layering alert's cancelled orders (its evidence)
        "f2": [layer.pk],
        "LAY20": [layer.pk],  # and its orders in the system of record
        "LAY21": [layer.pk],
    }
    assert {f["order"]: f["alerts"] for f in timeline.fills} == {
        world.order.client_order_id: [spoof.pk],
        noise[0].client_order_id: [],
        "LAY20": [layer.pk],
        "LAY21": [layer.pk],
    }
    assert timeline.alerts == [
        {"id": spoof.pk, "type": "spoofing", "label": f"spoofing #{spoof.pk}"},
        {"id": layer.pk, "type": "layering", "label": f"layering #{layer.pk}"},
    ]
    client.force_login(world.users["officer"])
    page = client.get(f"/compliance/cases/{world.case.pk}/").content.decode()
    data = json.loads(unescape(page.split('id="timeline-data" type="application/json">')[1].split("</script>")[0]))
    assert {o["id"] for o in data["orders"]} == set(drawn)
    assert [a["label"] for a in data["alerts"]] == [f"spoofing #{spoof.pk}", f"layering #{layer.pk}"]


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_an_idle_screen_outlasts_the_channel_layers_blocking_read():
    """channels_redis waits for a screen's next message in BZPOPMIN for ``brpop_timeout`` (5 s);
    the Redis client's read timeout (redis-py 8: 5 s by default) must outlast it, or every idle
    screen's consumer dies with "Timeout reading from Redis"."""
    import asyncio

    from channels.layers import get_channel_layer

    async def idle() -> str:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        try:
            await asyncio.wait_for(layer.receive(channel), layer.brpop_timeout + 2)
        except TimeoutError:  # ours: nothing arrived, and the receive was still waiting
            return "waiting"
        finally:
            await layer.close_pools()
        return "received"

    assert async_to_sync(idle)() == "waiting"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_live_push_sends_case_events_to_compliance_screens_only():
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from compliance.services import case_comment_add
    from tradeops.asgi import application

    world = world_build()
    pump_live()

    async def connect(user):
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://localhost")])
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from()
        assert hello["type"] == "hello" and hello["now"]
        return communicator

    async def scenario():
        trader = await connect(world.users["trader"])
        officer = await connect(world.users["officer"])
        await database_sync_to_async(case_comment_add)(case=world.case, officer=world.users["officer2"], note="seen")
        await database_sync_to_async(pump_live)()
        got = await officer.receive_json_from(timeout=5)
        assert got["type"] == "case.changed" and got["payload"]["reference"] == world.case.reference
        assert got["pushed_at"]
        assert await trader.receive_nothing(timeout=0.5)
        # the officer asks what it missed since before the comment: the case step comes back
        await officer.send_json_to({"type": "catch_up", "since": got["pushed_at"][:19]})
        answer = await officer.receive_json_from(timeout=5)
        assert answer["type"] == "catch_up" and any(e["type"] == "case.changed" for e in answer["events"])
        await trader.send_json_to({"type": "catch_up", "since": got["pushed_at"][:19]})
        answer = await trader.receive_json_from(timeout=5)
        assert not [e for e in answer["events"] if e["type"] in ("case.changed", "alert.raised")]
        await trader.disconnect()
        await officer.disconnect()

    async_to_sync(scenario)()


def test_the_story_names_the_signal_bar_by_its_close_time():
    """The signal's ``ts`` is the END of the bar it was computed on (``Features.ts``: the bar's
    close, when its information exists). Shown as "bar at 11:00" it read as the bar OPENING at
    11:00 (MT5 and every chart name a bar by its open), whose close comes an hour after the
    signal: an order's reconstruction (RTS 6 Art. 17) looked like it had traded on the future."""
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    signal = {"ts": "2017-05-01T11:00:00+00:00", "price": "1.09123", "side": "BUY", "confidence": 0.6}
    story = SimpleNamespace(signal=signal)
    html = render_to_string(
        "compliance/story.html", {"o": SimpleNamespace(instrument=SimpleNamespace(symbol="EURUSD")), "story": story}
    )
    assert "EURUSD bar closing at 2017-05-01T11:00:00+00:00; close 1.09123" in html
    assert "bar at 2017" not in html


def test_the_story_shows_the_touch_a_fill_is_judged_against():
    """A fill keeps the bid and ask quoted when its order arrived (trading 0009): the story shows
    them beside the price, so a buy filled at the ask reads as filled at the touch, not half a
    spread past the mid; a fill recorded before the touch was kept says so."""
    from decimal import Decimal
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    eurusd = SimpleNamespace(symbol="EURUSD", digits=5, volume_step=Decimal("0.01"))

    def fill(bid, ask):
        return SimpleNamespace(
            executed_at=None,
            broker_deal_id="1278",
            quantity=Decimal("2.43"),
            instrument=eurusd,
            price=Decimal("1.24084"),
            arrival_bid=bid,
            arrival_ask=ask,
            arrival_mid=Decimal("1.24080"),
            venue="XOFF",
        )

    def story_of(f):
        story = SimpleNamespace(signal=None, fills=[f])
        return render_to_string("compliance/story.html", {"o": SimpleNamespace(instrument=eurusd), "story": story})

    html = story_of(fill(Decimal("1.24076"), Decimal("1.24084")))
    assert "Quotes when the order arrived: bid 1.24076, ask 1.24084 (mid 1.24080)" in html
    assert '<th class="num">Bid at arrival</th><th class="num">Ask at arrival</th>' in html
    assert '<td class="num">1.24076</td><td class="num">1.24084</td><td class="num">1.24080</td>' in html
    older = story_of(fill(None, None))
    assert "the mid when the order arrived was 1.24080 (its bid and ask were not recorded then)" in older


def test_the_audit_search_finds_an_orders_records_by_either_of_its_ids(world, client):
    """The order path files an order's records under its database number, the decisions about it
    under its client order id: a search by either id finds both."""
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.services import AuditEntry, audit_append_many

    order = world.order
    audit_append_many(
        entries=[
            AuditEntry(
                action="compliance.decision",
                object_type="order",
                object_id=order.client_order_id,
                actor="service:compliance",
                payload={"decision": "approved"},
                occurred_at=order.created_at,
            )
        ]
    )
    by_pk = set(
        AuditRecord.objects.filter(object_type="order", object_id=str(order.pk)).values_list("action", flat=True)
    )
    assert "order.created" in by_pk  # the order path's records, under the database number
    client.force_login(world.users["auditor"])
    for object_id in (order.client_order_id, str(order.pk)):
        body = client.get("/compliance/audit/", {"object_type": "order", "object_id": object_id}).content.decode()
        results = body.split('id="audit-results"')[1]
        assert "order.created" in results and "compliance.decision" in results, object_id
    # another type's id is taken as given
    body = client.get("/compliance/audit/", {"object_type": "execution", "object_id": order.client_order_id})
    assert "compliance.decision" not in body.content.decode().split('id="audit-results"')[1]


def test_the_story_of_an_order_placed_by_a_person_says_no_model_took_part():
    """The walk of 2026-12-06: an order a trader placed over the API listed the models serving
    then with "not recorded" predictions, as if they had decided it."""
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    models = [SimpleNamespace(name="deep", version="deep-1", model=None, source="active then")]
    story = SimpleNamespace(signal=None, model_versions=models, predictions=[])
    trader = SimpleNamespace(get_username="api.desk")
    order = SimpleNamespace(instrument=SimpleNamespace(symbol="EURUSD"), signal_id="", trader=trader)
    html = render_to_string("compliance/story.html", {"o": order, "story": story})
    assert "No model took part: api.desk placed this order, not the model pipeline" in html
    assert "(the models serving then: deep deep-1)" in html
    assert "not recorded</span>" not in html


def test_the_console_says_whether_an_execution_worker_holds_each_account(world, client):
    """The account's lock (``NamedLock``, a PostgreSQL session lock the execution worker holds
    while it decides the account's orders) read from the primary: "running since" while a worker
    holds it, "none running" once its session is gone, as after a SIGKILL (2026-12-06, wip/walk50:
    a killed worker was down 28 s on the cluster and the console said nothing)."""
    from django.db import connection

    from tradeops.core.locks import LockKey, NamedLock
    from trading.console.selectors import EXECUTION_LOCK_CLASS

    if connection.vendor != "postgresql":
        pytest.skip("the worker's lock is a PostgreSQL session lock (SQLite: a file the web tier does not read)")
    account = world.accounts[0]
    client.force_login(world.users["risk"])

    def states() -> str:
        page = client.get("/console/?fragment=breakers").content.decode()
        return page[page.index('id="account-states"') :]

    def header() -> str:
        page = client.get("/console/?fragment=accounts").content.decode()
        return page[page.index(f'data-account="{account.pk}"') :].split("</h3>")[0]

    assert "none running" in states()
    assert "no execution worker" in header()
    lock = NamedLock(LockKey("worker", EXECUTION_LOCK_CLASS, account.pk), application_name="tradeops-test-worker")
    lock.acquire()
    try:
        assert "running since 20" in states()  # the session's wall-clock start, UTC
        assert "none running" not in states().split("</tr>")[1]
        assert "no execution worker" not in header()
    finally:
        lock.release()
    assert "none running" in states()
