"""Role by role, every screen allowed or refused as designed (server side), and every write a
role may not make refused by the view and the service alike.

Design: traders and risk managers use the operations console; compliance officers use everything
and act on the compliance desk; auditors read everything and write nothing; a user without a role
sees only the home page; surveillance (alerts, cases, rules, reports, audit trail) is never
shown to a trader or a risk manager (MAR Art. 16, 2016/957 Art. 5); an administrator reads
reports and the audit trail but not alerts, cases or rules (the API's authorisation matrix)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.screens.world import world_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return world_build()


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


ROLES = ("trader", "risk", "officer", "auditor", "nobody", "admin")
OK, NO = 200, 403

# screen -> expected status per role (anonymous is always sent to the sign-in page)
SCREENS = {
    "/": dict(trader=OK, risk=OK, officer=OK, auditor=OK, nobody=OK, admin=OK),
    "/console/": dict(trader=OK, risk=OK, officer=OK, auditor=OK, nobody=NO, admin=OK),
    "/compliance/alerts/": dict(trader=NO, risk=NO, officer=OK, auditor=OK, nobody=NO, admin=NO),
    "/compliance/cases/{case}/": dict(trader=NO, risk=NO, officer=OK, auditor=OK, nobody=NO, admin=NO),
    "/compliance/cases/{case}/stor.json": dict(trader=NO, risk=NO, officer=OK, auditor=NO, nobody=NO, admin=NO),
    "/compliance/rules/": dict(trader=NO, risk=NO, officer=OK, auditor=OK, nobody=NO, admin=NO),
    "/compliance/rules/max-order-value-firm/": dict(trader=NO, risk=NO, officer=OK, auditor=OK, nobody=NO, admin=NO),
    "/compliance/reports/": dict(trader=NO, risk=NO, officer=OK, auditor=OK, nobody=NO, admin=OK),
    "/compliance/audit/": dict(trader=NO, risk=NO, officer=OK, auditor=OK, nobody=NO, admin=OK),
    "/orders/{order}/": dict(trader=OK, risk=OK, officer=OK, auditor=OK, nobody=NO, admin=OK),
}


@pytest.mark.parametrize("path", list(SCREENS))
def test_every_screen_is_allowed_or_refused_per_role(world, path):
    url = path.format(case=world.case.pk, order=world.order.client_order_id)
    got = {role: _client(world.users[role]).get(url).status_code for role in ROLES}
    assert got == SCREENS[path]
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_the_desk_address_the_readme_gives_opens_the_alert_queue(world):
    """README's "where to look" names /compliance/; it answered 404 before."""
    response = _client(world.users["officer"]).get("/compliance/", follow=True)
    assert response.status_code == OK
    assert response.redirect_chain == [("/compliance/alerts/", 302)]
    anonymous = Client().get("/compliance/", follow=True)
    assert anonymous.redirect_chain[-1][0].startswith("/login/")


def test_a_trader_never_sees_that_an_alert_exists(world):
    trader = _client(world.users["trader"])
    home = trader.get("/").content.decode()
    # surveillance's alerts, never; the operator alerts' tile (the platform about itself, which a
    # trader acts on: a breaker, a reconciliation mismatch) is the only "alert" on a trader's home
    assert "Operator alerts of high severity in the last hour" in home
    surveillance = home.lower().replace("operator alerts of high severity in the last hour", "")
    surveillance = surveillance.replace("/console/#operator-alerts", "")
    assert "alert" not in surveillance and "case" not in home.lower()
    console = trader.get("/console/").content.decode()
    assert "spoofing" not in console and "/compliance/" not in console
    story = trader.get(f"/orders/{world.order.client_order_id}/").content.decode()
    assert "spoofing" not in story and world.case.reference not in story


def test_the_home_page_tells_each_role_what_needs_attention(world):
    officer = _client(world.users["officer2"] if "officer2" in world.users else world.users["officer"]).get("/")
    text = officer.content.decode()
    assert "Open alerts" in text and "Rule changes pending" in text and "Transaction report due" in text
    # what is due follows the fills' event time (the world trades on 2026-01-05), not the calendar
    assert "Trading day 2026-01-05 awaits its report." in text
    # the officer's tile opens "Run a report" for that day; the auditor's (read-only) the runs
    assert 'href="/compliance/reports/?run=transaction&amp;from=2026-01-05&amp;to=2026-01-05#run-report"' in text
    auditor = _client(world.users["auditor"]).get("/").content.decode()
    assert "Trading day 2026-01-05 awaits its report." in auditor
    assert 'href="/compliance/reports/?kind=transaction"' in auditor
    risk = _client(world.users["risk"]).get("/").content.decode()
    assert "Kill switches engaged" in risk and "Accounts near a limit" in risk and "Open alerts" not in risk


WRITES = [
    # (path, form, roles refused)
    ("/compliance/cases/{case}/review/", {}, ("trader", "risk", "auditor", "nobody")),
    ("/compliance/cases/{case}/comment/", {"note": "x"}, ("trader", "risk", "auditor", "nobody")),
    ("/compliance/cases/{case}/assign/", {"assignee": "olga"}, ("trader", "risk", "auditor", "nobody")),
    ("/compliance/rules/versions/{rule}/approve/", {"reason": "ok"}, ("trader", "risk", "auditor", "nobody")),
    (
        "/compliance/reports/run/",
        {"kind": "alerts_summary", "period_start": "2026-01-05", "period_end": "2026-01-11"},
        ("trader", "risk", "auditor", "nobody", "admin"),
    ),
    (
        "/console/kill-switch/engage/",
        {"scope": "account", "scope_value": "{account}", "reason": "r", "confirm": "yes"},
        ("auditor", "nobody"),
    ),
]


@pytest.mark.parametrize("path,form,refused", WRITES)
def test_writes_are_refused_to_the_roles_that_may_not_make_them(world, path, form, refused):
    fill = {"case": world.case.pk, "rule": world.rule.pk, "account": world.accounts[0].pk}
    url = path.format(**fill)
    data = {k: v.format(**fill) for k, v in form.items()}
    from tradeops.audit.models import AuditRecord

    before = AuditRecord.objects.exclude(action__startswith="auth.").count()
    for role in refused:
        assert _client(world.users[role]).post(url, data).status_code == 403, role
    assert AuditRecord.objects.exclude(action__startswith="auth.").count() == before  # nothing written


def test_only_a_risk_manager_releases_the_kill_switch(world):
    from trading.models import KillSwitch

    account = world.accounts[0]
    engaged = _client(world.users["trader"]).post(
        "/console/kill-switch/engage/",
        {"scope": "account", "scope_value": str(account.pk), "reason": "fat finger", "confirm": "yes"},
    )
    assert engaged.status_code == 302
    switch = KillSwitch.objects.get(engaged=True)
    for role in ("trader", "officer", "auditor"):
        assert (
            _client(world.users[role]).post(f"/console/kill-switch/{switch.pk}/release/", {"reason": "ok"}).status_code
            == 403
        )
    released = _client(world.users["risk"]).post(f"/console/kill-switch/{switch.pk}/release/", {"reason": "checked"})
    assert released.status_code == 302
    switch.refresh_from_db()
    assert not switch.engaged and switch.released_by == world.users["risk"] and switch.release_reason == "checked"


def test_engaging_needs_the_confirmation_and_a_reason_and_the_whole_firm_needs_a_risk_manager(world):
    from trading.models import KillSwitch

    trader = _client(world.users["trader"])
    trader.post(
        "/console/kill-switch/engage/", {"scope": "account", "scope_value": str(world.accounts[0].pk), "reason": "r"}
    )
    trader.post(
        "/console/kill-switch/engage/", {"scope": "account", "scope_value": str(world.accounts[0].pk), "confirm": "yes"}
    )
    trader.post("/console/kill-switch/engage/", {"scope": "all", "reason": "panic", "confirm": "yes"})
    assert not KillSwitch.objects.exists()
    page = trader.get("/console/").content.decode()
    assert "Refused" in page


def test_the_admin_and_the_screens_share_one_sign_in_page(world):
    client = Client()
    admin_login = client.get("/admin/login/?next=/admin/")
    screen_login = client.get("/login/")
    assert admin_login.status_code == screen_login.status_code == 200
    assert admin_login.templates[0].name == screen_login.templates[0].name == "registration/signin.html"
    assert client.get("/admin/").headers["Location"].startswith("/admin/login/")
    response = client.post(
        "/login/",
        {"username": "olga", "password": "a-long-test-password-1", "next": "/admin/"},
        REMOTE_ADDR="192.0.2.9",
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200  # a staff officer reaches the admin, styled
    css = client.get("/static/admin/css/base.css")
    assert css.status_code == 200 and b"body" in b"".join(css.streaming_content)


def test_a_wrong_password_is_refused_and_audited(world):
    from tradeops.audit.models import AuditRecord

    response = Client().post("/login/", {"username": "tina", "password": "nope"}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 200 and "did not match" in response.content.decode()
    assert AuditRecord.objects.filter(action="auth.login_failed", object_id="tina").exists()


def test_a_refused_screen_says_why_inside_the_product(world):
    """A risk manager who types the reports address gets the product's page (its bar, the
    reason the view gave, the way home), not the server's bare '403 Forbidden'."""
    response = _client(world.users["risk"]).get("/compliance/reports/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Not for your role" in body
    assert "Regulatory reports are for compliance officers, auditors and administrators." in body
    assert 'aria-label="Screens"' in body and 'href="/"' in body


def test_the_kill_switch_is_named_as_the_console_names_it_on_engage_release_and_the_home_page(world):
    """The walk of 2026-12-06: engaging read "Kill switch engaged on account 1." and the home
    tile "An account 1: ..." (the form's scope label) while the banner said "account <name> (1)";
    engaging again said "engaged" as if new; a lower-case symbol was refused without a hint."""
    from trading.models import Instrument, KillSwitch

    account = world.accounts[0]
    target = f"account {account.name} ({account.pk})"
    risk = _client(world.users["risk"])
    form = {"scope": "account", "scope_value": str(account.pk), "reason": "runaway", "confirm": "yes"}
    page = risk.post("/console/kill-switch/engage/", form, follow=True).content.decode()
    assert f"Kill switch engaged on {target}." in page
    page = risk.post("/console/kill-switch/engage/", form, follow=True).content.decode()
    assert f"The kill switch on {target} was already engaged; it stays engaged." in page
    home = risk.get("/").content.decode()
    assert f"{target}: runaway" in home and "An account" not in home
    symbol = Instrument.objects.order_by("symbol").first().symbol
    page = risk.post(
        "/console/kill-switch/engage/",
        {"scope": "instrument", "scope_value": symbol.lower(), "reason": "r", "confirm": "yes"},
        follow=True,
    ).content.decode()
    assert f"did you mean &#x27;{symbol}&#x27;?" in page
    switch = KillSwitch.objects.get(engaged=True)
    page = risk.post(f"/console/kill-switch/{switch.pk}/release/", {"reason": "checked"}, follow=True)
    assert f"Kill switch on {target} released." in page.content.decode()


def test_an_account_under_a_kill_switch_reads_halted_not_its_last_snapshots_active(world):
    """The walk of 2026-12-06: the console showed ACTIVE beside "kill switch engaged" (the
    worker's snapshot, rewritten only at its next mark), and a switch on everything left each
    account's and instrument's kill switch column at "—"."""
    from decimal import Decimal as D

    from tradeops.core.clock import utcnow
    from trading.models import AccountRiskSnapshot

    account = world.accounts[0]
    zero = D(0)
    AccountRiskSnapshot.objects.update_or_create(
        account=account,
        defaults=dict(
            balance=D(100000), equity=D(100000), unrealised_pnl=zero, peak_equity=D(100000), drawdown=zero,
            daily_pnl=zero, trading_state="ACTIVE", as_of=utcnow(), updated_at=utcnow(),
        ),
    )  # fmt: skip
    risk = _client(world.users["risk"])
    page = risk.get("/console/?fragment=breakers").content.decode()
    assert ">ACTIVE</span>" in page and "engaged (everything)" not in page
    risk.post("/console/kill-switch/engage/", {"scope": "all", "reason": "desk fire", "confirm": "yes"})
    page = risk.get("/console/?fragment=breakers").content.decode()
    assert ">ACTIVE</span>" not in page and ">HALTED</span>" in page
    assert page.count("engaged (everything)") >= 1 + len(world.accounts)  # every account and instrument row
    assert "Session now (wall clock)" in page
    home = risk.get("/").content.decode()
    assert f"{account.name}: HALTED (kill switch), breaker closed" in home


def test_a_trader_can_be_stopped_by_name_from_the_console(world):
    """A switch on a trader takes a user id, which the console never showed (its choices listed
    accounts and instruments only), and was then named "trader 5"."""
    trader = world.users["trader"]
    risk = _client(world.users["risk"])
    page = risk.get("/console/").content.decode()
    assert f'<option value="{trader.pk}">trader {trader.get_username()}</option>' in page
    page = risk.post(
        "/console/kill-switch/engage/",
        {"scope": "trader", "scope_value": str(trader.pk), "reason": "fat finger", "confirm": "yes"},
        follow=True,
    ).content.decode()
    assert f"Kill switch engaged on trader {trader.get_username()} ({trader.pk})." in page


def test_a_switch_on_an_unknown_algorithm_is_a_form_error_on_the_console(world):
    from trading.models import KillSwitch

    risk = _client(world.users["risk"])
    form = {"scope": "algo", "scope_value": "momentum-typo", "reason": "runaway", "confirm": "yes"}
    page = risk.post("/console/kill-switch/engage/", form, follow=True).content.decode()
    assert "no algorithm &#x27;momentum-typo&#x27; is known to the platform" in page
    assert "a switch on it would block nothing" in page
    assert not KillSwitch.objects.filter(scope="algo").exists()
    form["scope_value"] = "algo-test"  # the algorithm the world's orders carry
    page = risk.post("/console/kill-switch/engage/", form, follow=True).content.decode()
    assert "Kill switch engaged on" in page and KillSwitch.objects.filter(scope="algo", engaged=True).exists()


def test_the_harness_push_never_drops_a_frame_silently(world, monkeypatch):
    """The browser tests' stand-in for the relay and the live-push stage (``pump_live``) sends
    once: a frame the live-push stage drops because the channel layer was slow (its 2 s send
    timeout, on a loaded machine) would be lost for good and a page would wait for it in vain.
    It waits for a slow layer instead, and fails loudly if a frame still does not go."""
    import asyncio

    from channels.layers import channel_layers, get_channel_layer

    from tests.screens import world as harness
    from trading.controls.services import kill_switch_engage

    # a layer of this test's own: the live-push loop's connections stay with it (a later test
    # closing the process's layer on its own loop would meet them)
    monkeypatch.setattr(channel_layers, "backends", {})
    layer = get_channel_layer()
    original = layer.group_send

    async def slow(group, message):  # slower than the stage's SEND_TIMEOUT_S
        await asyncio.sleep(2.5)
        return await original(group, message)

    harness.pump_live()  # the world's own events
    kill_switch_engage(scope="all", actor="user:test", reason="drill", source="automatic")
    monkeypatch.setattr(layer, "group_send", slow)
    assert harness.pump_live() > 0  # taken, late
    monkeypatch.setattr(harness, "PUMP_SEND_TIMEOUT_S", 0.5)
    kill_switch_engage(
        scope="instrument", scope_value=world.instrument.symbol, actor="user:test", reason="x", source="automatic"
    )
    with pytest.raises(AssertionError, match="screen updates dropped"):
        harness.pump_live()


def test_a_refused_engage_keeps_what_was_typed_and_says_why_beside_the_form(world):
    """A refused engage (here a mistyped algorithm id) flashed at the top of the page while the
    redirect landed on the kill switch below it, with the form empty: the scope, the value and
    the reason come back as typed, the refusal beside the form; the confirmation is not kept,
    and the draft is read once."""
    risk = _client(world.users["risk"])
    form = {"scope": "algo", "scope_value": "ml-valdator", "reason": "runaway algo", "confirm": "yes"}
    page = risk.post("/console/kill-switch/engage/", form, follow=True).content.decode()
    assert 'id="kill-refused"' in page and "no algorithm &#x27;ml-valdator&#x27; is known" in page
    assert '<option value="algo" selected>' in page
    assert 'value="ml-valdator"' in page and ">runaway algo</textarea>" in page
    assert '<input type="checkbox" name="confirm" value="yes" required>' in page  # given again
    again = risk.get("/console/").content.decode()
    assert 'id="kill-refused"' not in again and 'value="ml-valdator"' not in again
