"""What the integration API returns and does, resource by resource: shapes (Decimals as
strings, UTC times), cursor pages, filters, stable error codes, and every write through the
same services (four eyes, audit records, outbox events)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from rest_framework.test import APIClient

from tests.tradeops.api.endpoints import Ctx
from tradeops.audit.models import AuditRecord
from tradeops.core.roles import Role
from tradeops.outbox.models import Outbox

T_SNAPSHOT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def as_role(person):
    def make(role: Role, name: str | None = None):
        http = APIClient()
        user = person(role, name)
        http.force_login(user)
        http.user = user
        return http

    return make


@pytest.fixture
def ctx(book, person, tmp_path, settings):
    settings.AUDIT_EXPORT_DIR = str(tmp_path)
    return Ctx(book=book, person=person, tmp_path=tmp_path)


def _walk(http: APIClient, path: str) -> list[dict]:
    """Every result, following the cursor links."""
    results = []
    while path:
        response = http.get(path)
        assert response.status_code == 200, response.content
        body = response.json()
        results.extend(body["results"])
        path = body["next"] and urlsplit(body["next"])._replace(scheme="", netloc="").geturl()
    return results


def test_positions_have_decimals_as_strings_and_utc_times(book, issue_token, bearer):
    token, _ = issue_token(Role.TRADER)
    body = bearer(token).get("/api/v1/positions/").json()
    assert body["previous"] is None and body["next"] is None
    eurusd = next(p for p in body["results"] if p["symbol"] == "EURUSD")
    assert eurusd["net_quantity"] == "1.000000" and eurusd["average_price"] == "1.1000000000"
    assert eurusd["realised_pnl"] == "0.000000" and eurusd["pnl_currency"] == "USD"
    assert eurusd["updated_at"].endswith("Z")
    order = bearer(token).get("/api/v1/orders/API-T-1/").json()
    assert order["created_at"] == "2026-03-02T09:30:00.123456Z"
    assert order["first_fill_at"] == "2026-03-02T09:30:00.163456Z"
    assert order["quantity"] == "1.000000" and order["status"] == "FILLED"


def test_times_always_carry_their_microseconds_even_on_the_second(book, issue_token, bearer):
    """A replayed bar's time is on the hour: DRF's "iso-8601" rendered it "...T15:00:00Z", not
    the documented "...T15:00:00.000000Z", and a client parsing the documented form failed."""
    from trading.models import Order

    Order.objects.filter(client_order_id="API-T-1").update(
        created_at=Order.objects.get(client_order_id="API-T-1").created_at.replace(microsecond=0)
    )
    token, _ = issue_token(Role.TRADER)
    http = bearer(token)
    order = http.get("/api/v1/orders/API-T-1/").json()
    assert order["created_at"] == "2026-03-02T09:30:00.000000Z"
    listed = next(o for o in http.get("/api/v1/orders/").json()["results"] if o["client_order_id"] == "API-T-1")
    assert listed["created_at"] == "2026-03-02T09:30:00.000000Z"


def test_cursor_pages_walk_everything_once_and_refuse_bad_input(book, as_role):
    from tests.tradeops.api.conftest import filled_order

    for i in range(5):
        filled_order(account=book["account"], instrument=book["instrument"], client_order_id=f"PAGE-{i}")
    http = as_role(Role.AUDITOR)
    everything = [o["client_order_id"] for o in _walk(http, "/api/v1/orders/")]
    paged = [o["client_order_id"] for o in _walk(http, "/api/v1/orders/?page_size=2")]
    assert paged == everything and len(everything) == 7 and len(set(everything)) == 7
    assert everything[0] == "PAGE-4"  # newest first
    for bad in ("0", "501", "abc", "-1"):
        response = http.get(f"/api/v1/orders/?page_size={bad}")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_page_size", bad
    for bad in ("zzz", "cD1hYmM="):  # garbage, and a well-formed cursor at position "abc"
        response = http.get(f"/api/v1/orders/?cursor={bad}")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor", bad


def test_filters_narrow_and_bad_filters_are_400(book, as_role):
    http = as_role(Role.TRADER)
    assert [o["client_order_id"] for o in http.get("/api/v1/orders/?symbol=GBPUSD").json()["results"]] == ["API-T-2"]
    assert http.get("/api/v1/orders/?status=FILLED&status=REJECTED").json()["results"]
    assert not http.get("/api/v1/orders/?status=REJECTED").json()["results"]
    assert len(http.get("/api/v1/orders/?created_after=2026-03-02T09:30:00Z").json()["results"]) == 2
    assert len(http.get("/api/v1/orders/?created_after=2026-03-02T10:30:00%2B01:00").json()["results"]) == 2
    assert not http.get("/api/v1/orders/?created_before=2026-03-02T09:00:00").json()["results"]  # naive = UTC
    positions = http.get(f"/api/v1/positions/?account={book['account'].pk}&open=true").json()["results"]
    assert {p["symbol"] for p in positions} == {"EURUSD", "GBPUSD"}
    for bad in ("status=LOST", "account=1.5", "account=x", "created_after=yesterday", "side=LONG"):
        response = http.get(f"/api/v1/orders/?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] in ("invalid", "invalid_choice"), response.json()


def test_risk_limit_changes_need_a_second_risk_manager(book, as_role):
    from trading.models import RiskLimit

    alice, bob = as_role(Role.RISK_MANAGER, "alice"), as_role(Role.RISK_MANAGER, "bob")
    body = {
        "account": book["account"].pk,
        "symbol": "EURUSD",
        "values": {"max_position_lots": "7.5", "max_drawdown": "0.1", "max_open_orders": 20},
        "reason": "new desk limits",
    }
    response = alice.post("/api/v1/risk-limits/proposals/", body, format="json")
    assert response.status_code == 201, response.content
    proposal = response.json()
    assert proposal["status"] == "pending"
    assert proposal["values"] == {"max_position_lots": "7.500000", "max_drawdown": "0.1000", "max_open_orders": 20}
    assert not RiskLimit.objects.exists()  # nothing in force yet
    again = alice.post("/api/v1/risk-limits/proposals/", body, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "risk_limit_change_pending"

    response = alice.post(f"/api/v1/risk-limits/proposals/{proposal['id']}/approve/", {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "four_eyes"
    response = bob.post(f"/api/v1/risk-limits/proposals/{proposal['id']}/approve/", {"note": "ok"}, format="json")
    assert response.status_code == 200, response.content
    limit = RiskLimit.objects.get()
    assert response.json()["id"] == limit.pk and response.json()["max_position_lots"] == "7.500000"
    assert str(limit.max_drawdown) == "0.1000" and limit.max_open_orders == 20
    actions = list(
        AuditRecord.objects.filter(object_type__in=["risk_limit", "risk_limit_proposal"]).values_list(
            "action", flat=True
        )
    )
    assert actions == ["risk_limit.change_proposed", "risk_limit.created", "risk_limit.change_approved"]
    assert Outbox.objects.filter(event_type="risk.limit_changed").count() == 1
    done = bob.post(f"/api/v1/risk-limits/proposals/{proposal['id']}/approve/", {}, format="json")
    assert done.status_code == 409 and done.json()["error"]["code"] == "risk_limit_change_not_pending"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"max_drawdown": "2"}, "max_drawdown"),
        ({"max_position_lots": "-1"}, "max_position_lots"),
        ({}, None),
        ({"max_open_orders": "many"}, "max_open_orders"),
    ],
)
def test_bad_limit_changes_are_400(book, as_role, values, field):
    http = as_role(Role.RISK_MANAGER)
    response = http.post("/api/v1/risk-limits/proposals/", {"values": values, "reason": "x"}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] in ("invalid", "risk_limit_invalid")
    if field:
        assert field in str(error)


def test_kill_switch_engage_list_release(book, as_role):
    trader, risk = as_role(Role.TRADER), as_role(Role.RISK_MANAGER)
    body = {"scope": "instrument", "scope_value": "EURUSD", "reason": "runaway algo"}
    first = trader.post("/api/v1/kill-switch/", body, format="json")
    assert first.status_code == 201 and first.json()["switch"]["engaged"] is True
    assert trader.post("/api/v1/kill-switch/", body, format="json").status_code == 200  # already engaged
    switch_id = first.json()["switch"]["id"]
    assert [s["id"] for s in trader.get("/api/v1/kill-switch/?engaged=true").json()["results"]] == [switch_id]
    assert trader.get("/api/trading/kill-switch/").json()[0]["id"] == switch_id  # the first route's shape
    refused = trader.post(f"/api/v1/kill-switch/{switch_id}/release/", {"reason": "mine"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "kill_switch_release_forbidden"
    released = risk.post(f"/api/v1/kill-switch/{switch_id}/release/", {"reason": "reviewed"}, format="json")
    assert released.status_code == 200 and released.json()["engaged"] is False
    assert released.json()["released_by"] == risk.user.username
    again = risk.post(f"/api/v1/kill-switch/{switch_id}/release/", {"reason": "again"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "kill_switch_not_engaged"
    bad = trader.post("/api/v1/kill-switch/", {"scope": "account", "scope_value": "abc", "reason": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "kill_switch_scope"
    assert trader.post("/api/v1/kill-switch/", {"scope": "all"}, format="json").json()["error"]["detail"]["reason"]


def test_a_case_is_closed_by_two_officers(ctx, as_role):
    alice, bob = as_role(Role.COMPLIANCE_OFFICER, "alice"), as_role(Role.COMPLIANCE_OFFICER, "bob")
    case_id = ctx.alert().case_id
    steps = [
        {"action": "review_start"},
        {"action": "close_request", "note": "a hedge between the owner's accounts, no intent"},
    ]
    for step in steps:
        response = alice.post(f"/api/v1/cases/{case_id}/actions/", step, format="json")
        assert response.status_code == 200, response.content
    assert response.json()["pending_action"] == "close" and response.json()["status"] == "in_review"
    refused = alice.post(f"/api/v1/cases/{case_id}/decision/", {"decision": "approve"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
    done = bob.post(f"/api/v1/cases/{case_id}/decision/", {"decision": "approve", "note": "agreed"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "closed"
    assert done.json()["outcome_reason"].startswith("a hedge")
    actions = [a["action"] for a in bob.get(f"/api/v1/cases/{case_id}/actions/").json()["results"]]
    assert actions == ["opened", "alert_added", "review_started", "close_requested", "close_approved"]
    wrong = bob.post(f"/api/v1/cases/{case_id}/actions/", {"action": "escalate"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_case_transition"
    stor = alice.get(f"/api/v1/cases/{case_id}/stor-draft/").json()
    assert stor["case"].startswith("CASE-") and "section_3_nature_of_suspicion" in stor
    alerts = alice.get("/api/v1/alerts/?alert_type=spoofing&case_status=closed").json()["results"]
    assert [a["case"] for a in alerts] == [case_id]


def test_rules_are_proposed_and_approved_by_two_officers(book, as_role):
    alice, bob = as_role(Role.COMPLIANCE_OFFICER, "alice"), as_role(Role.COMPLIANCE_OFFICER, "bob")
    bad = alice.post(
        "/api/v1/rules/", {"rule_type": "max_order_volume", "parameters": {"max_lots": "-1"}}, format="json"
    )
    assert bad.status_code == 400 and "parameters" in bad.json()["error"]["detail"]
    rule = alice.post(
        "/api/v1/rules/",
        {"code": "volume-cap", "rule_type": "max_order_volume", "parameters": {"max_lots": "5"}, "reason": "RTS 6"},
        format="json",
    ).json()
    assert rule["status"] == "pending" and rule["version"] == 1 and rule["proposed_by"] == "alice"
    refused = alice.post(f"/api/v1/rules/{rule['id']}/approve/", {}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
    approved = bob.post(f"/api/v1/rules/{rule['id']}/approve/", {"note": "fine"}, format="json").json()
    assert approved["status"] == "active" and approved["effective_from"].endswith("Z")
    v2 = alice.post(
        "/api/v1/rules/",
        {"code": "volume-cap", "rule_type": "max_order_volume", "parameters": {"max_lots": "3"}},
        format="json",
    ).json()
    assert v2["version"] == 2 and v2["previous"] == rule["id"]
    history = bob.get("/api/v1/rules/?code=volume-cap").json()["results"]
    assert [(r["version"], r["status"]) for r in history] == [(2, "pending"), (1, "active")]
    assert Outbox.objects.filter(event_type="compliance.rule_changed").count() == 1


def test_a_rule_proposal_through_the_api_that_leaves_out_a_parameter_in_force_is_refused(book, as_role):
    """The API proposes through the same service as the admin form: a new version is the whole
    parameter set, so leaving out one the version in force sets is refused, naming it; null
    returns it to its default on purpose."""
    alice, bob = as_role(Role.COMPLIANCE_OFFICER, "alice"), as_role(Role.COMPLIANCE_OFFICER, "bob")
    v1 = alice.post(
        "/api/v1/rules/",
        {"code": "spoof-firm", "rule_type": "spoofing", "parameters": {"min_size_ratio": 4.0, "max_lead_s": 20.0}},
        format="json",
    ).json()
    bob.post(f"/api/v1/rules/{v1['id']}/approve/", {}, format="json")
    left_out = alice.post(
        "/api/v1/rules/",
        {"code": "spoof-firm", "rule_type": "spoofing", "parameters": {"min_size_ratio": 5.0}},
        format="json",
    )
    assert left_out.status_code == 400
    assert "max_lead_s is left out: the version in force sets it to 20.0" in str(left_out.json()["error"]["detail"])
    v2 = alice.post(
        "/api/v1/rules/",
        {"code": "spoof-firm", "rule_type": "spoofing", "parameters": {"min_size_ratio": 5.0, "max_lead_s": None}},
        format="json",
    ).json()
    assert v2["version"] == 2 and v2["parameters"] == {"min_size_ratio": 5.0}


def test_audit_search_records_corrections_proofs_digests_and_verification(ctx, as_role, tmp_path):
    from tradeops.audit.digest import audit_digest_create, proof_verify
    from tradeops.audit.services import AuditEntry, audit_append_many, audit_correct
    from tradeops.core.clock import utcnow

    yesterday = utcnow() - timedelta(days=1)
    (old,) = audit_append_many(
        entries=[
            AuditEntry(
                action="report.generated",
                object_type="report",
                object_id="R-1",
                occurred_at=yesterday,
                payload={"rows": 3, "note": "quarterly best execution"},
                actor="user:carol",
                category="compliance",
            )
        ],
        recorded_at=yesterday,
    )
    correction = audit_correct(corrects=old.event_id, actor="user:carol", reason="typo", corrected={"rows": 4})
    audit_digest_create(day=yesterday.date(), directory=tmp_path)
    http = as_role(Role.AUDITOR)

    found = http.get("/api/v1/audit/records/?action=report.&actor=user:carol").json()["results"]
    assert [r["sequence"] for r in found] == [old.sequence]
    assert found[0]["payload"] == {"rows": 3, "note": "quarterly best execution"}
    assert found[0]["occurred_at"].endswith("Z") and found[0]["hash"] == old.hash
    text = http.get("/api/v1/audit/records/?q=quarterly").json()["results"]
    assert [r["sequence"] for r in text] == [correction.sequence, old.sequence]  # the correction quotes it
    assert http.get("/api/v1/audit/records/?category=security&object_type=report").json()["results"] == []
    assert http.get("/api/v1/audit/records/?since=yesterday").status_code == 400

    detail = http.get(f"/api/v1/audit/records/{old.sequence}/").json()
    assert detail["corrections"] == [correction.sequence] and detail["corrected"] is None
    assert http.get(f"/api/v1/audit/records/{correction.sequence}/").json()["corrected"] == old.sequence

    proof = http.get(f"/api/v1/audit/records/{old.sequence}/proof/").json()
    digest = http.get(f"/api/v1/audit/digests/{yesterday.date().isoformat()}/").json()
    assert digest["check"]["ok"] is True
    assert proof_verify(proof=proof, digest=digest["document"]).ok
    assert [d["day"] for d in http.get("/api/v1/audit/digests/").json()["results"]] == [yesterday.date().isoformat()]
    assert http.get("/api/v1/audit/verification/").json()["error"]["code"] == "audit_not_verified"
    verification = http.post("/api/v1/audit/verification/").json()
    assert verification["ok"] is True and verification["problem"] is None and verification["checked"] >= 2
    assert http.get("/api/v1/audit/verification/").json() == verification
    missing = http.get("/api/v1/audit/records/999999999/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "audit_record_not_found"
    assert http.get("/api/v1/audit/digests/2001-01-01/").json()["error"]["code"] == "audit_digest_not_found"


def test_stable_error_codes_for_what_http_itself_refuses(book, as_role):
    http = as_role(Role.RISK_MANAGER)
    missing = http.get("/api/v1/orders/NOPE/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "order_not_found"
    assert http.delete("/api/v1/orders/").json()["error"]["code"] == "method_not_allowed"
    form = http.post("/api/v1/kill-switch/", {"scope": "all", "reason": "x"})  # multipart, not JSON
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    broken = http.post("/api/v1/kill-switch/", "{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "parse_error"
    nul = http.post(
        "/api/v1/risk-limits/proposals/", {"values": {"max_open_orders": 3}, "reason": "x", "\x00": 1}, format="json"
    )
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "nul_character"
    assert http.get("/api/v1/orders/?symbol=EUR%00USD").json()["error"]["code"] == "nul_character"
    invalid = http.post("/api/v1/kill-switch/", {"scope": "galaxy", "reason": "x"}, format="json")
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "invalid_choice" and "scope" in invalid.json()["error"]["detail"]


def test_the_schema_and_docs_are_served(db):
    http = APIClient()
    schema = http.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    docs = http.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content.lower()
    # served from this app (sidecar), not a CDN; the page embeds a random 64-character CSRF token,
    # which spells "cdn" once in several hundred renders: it is not a URL, so it is left out
    page = re.sub(rb'(X-CSRFTOKEN"\] = ")[A-Za-z0-9]+"', rb'\1"', docs.content)
    assert b"cdn" not in page.lower()
    events = http.get("/api/v1/events/schema/")
    assert events.status_code == 200 and events.json()["title"] == "tradeops event envelope"


def test_the_api_root_lists_every_resource_with_its_url_and_scopes_without_a_token(db):
    """GET /api/v1/ is the API's index (like DRF's DefaultRouter root): public, as the schema that
    lists the same routes; every collection route of the schema is there, and each URL answers."""
    http = APIClient()
    root = http.get("/api/v1/")
    assert root.status_code == 200 and root["Content-Type"] == "application/json"
    index = root.json()
    assert index["version"] == "v1"
    assert index["token"] == "http://testserver/o/token/"
    assert index["schema"] == "http://testserver/api/v1/schema/"
    assert index["docs"] == "http://testserver/api/v1/docs/"
    resources = index["resources"]
    assert resources["orders"] == {
        "url": "http://testserver/api/v1/orders/",
        "scopes": {"GET": "trading:read", "POST": "trading:write"},
    }
    assert resources["audit/records"]["scopes"] == {"GET": "audit:read"}
    schema = http.get("/api/v1/schema/?format=json").json()
    collections = {path for path in schema["paths"] if "{" not in path}
    assert {r["url"].removeprefix("http://testserver") for r in resources.values()} == collections
    for name, resource in resources.items():  # each is a route: 401 without a token, not 404
        answer = http.get(resource["url"])
        assert answer.status_code == 401, (name, answer.status_code)
    assert http.get(index["schema"]).status_code == 200
    assert http.get("/api/v1/nothing-here/").status_code == 404  # the root does not swallow the rest


def test_a_report_is_run_generated_approved_by_another_officer_and_downloaded(
    book, as_role, celery_eager, django_capture_on_commit_callbacks
):
    import hashlib

    alice, bob = as_role(Role.COMPLIANCE_OFFICER, "alice"), as_role(Role.COMPLIANCE_OFFICER, "bob")
    auditor = as_role(Role.AUDITOR)
    body = {"kind": "alerts_summary", "period_start": "2026-03-02", "period_end": "2026-03-08"}
    assert auditor.post("/api/v1/reports/", body, format="json").json()["error"]["code"] == "role_forbidden"
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/v1/reports/", body, format="json")
    assert response.status_code == 202 and response.json()["status"] == "pending", response.content
    reference = response.json()["reference"]
    run = auditor.get(f"/api/v1/reports/{reference}/").json()
    assert run["status"] == "validated" and run["generated_by"] == "user:alice" and run["has_file"]
    refused = alice.post(f"/api/v1/reports/{reference}/approve/", {}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
    approved = bob.post(f"/api/v1/reports/{reference}/approve/", {"note": "checked"}, format="json").json()
    assert approved["status"] == "approved" and approved["approved_by"] == "bob"
    download = auditor.get(f"/api/v1/reports/{reference}/file/")
    content = b"".join(download.streaming_content)
    assert download.status_code == 200 and download["Content-Type"] == "application/json"
    assert download["X-Content-SHA256"] == hashlib.sha256(content).hexdigest() == run["sha256"]
    assert "attachment" in download["Content-Disposition"]
    assert auditor.get(f"/api/v1/reports/{reference}/file/?feedback=true").json()["error"]["code"] == (
        "report_file_missing"
    )
    assert auditor.get(f"/api/v1/reports/{reference}/records/").json()["results"] == []
    listed = auditor.get("/api/v1/reports/?kind=alerts_summary&status=approved").json()["results"]
    assert [r["reference"] for r in listed] == [reference]
    bad = alice.post("/api/v1/reports/", {**body, "period_end": "2026-03-01"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "report_period_invalid"
    assert auditor.get("/api/v1/reports/NOPE/").json()["error"]["code"] == "report_not_found"


def test_a_drawdown_rebase_is_proposed_and_approved_by_two_risk_managers_auditors_read_it(
    book, as_role, issue_token, bearer
):
    """The re-base of an account's peak equity over the API (the console's four eyes, the same
    services): proposed with a reason, 409 while one is pending, 403 ``four_eyes`` for the
    proposer's approval, approved by a second risk manager (published for the execution worker),
    read by an auditor's client, refused to a trader's write."""
    from trading.models import AccountRiskSnapshot, DrawdownRebase

    account = book["account"]
    AccountRiskSnapshot.objects.create(
        account=account,
        balance=Decimal("98800"),
        equity=Decimal("98800"),
        unrealised_pnl=Decimal(0),
        peak_equity=Decimal("100000"),
        drawdown=Decimal("0.012"),
        daily_pnl=Decimal("-200"),
        trading_state="REDUCING",
        as_of=T_SNAPSHOT,
        updated_at=T_SNAPSHOT,
    )
    alice, bob = as_role(Role.RISK_MANAGER, "alice"), as_role(Role.RISK_MANAGER, "bob")
    response = alice.post("/api/v1/drawdown-rebases/", {"account": account.pk, "reason": "  "}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "blank"  # a reason is needed
    body = {"account": account.pk, "reason": "the loss was the data vendor's outage; understood"}
    response = alice.post("/api/v1/drawdown-rebases/", body, format="json")
    assert response.status_code == 201, response.content
    rebase = response.json()
    assert rebase["status"] == "pending" and rebase["proposed_by"] == "alice" and rebase["decided_by"] is None
    assert rebase["account"] == account.pk and rebase["reason"] == body["reason"]
    assert (rebase["seen_peak_equity"], rebase["seen_equity"], rebase["seen_drawdown"]) == (
        "100000.000000",
        "98800.000000",
        "0.012000",
    )
    assert rebase["applied_at"] is None and rebase["proposed_at"].endswith("Z")

    again = bob.post("/api/v1/drawdown-rebases/", body, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "drawdown_rebase_pending"
    own = alice.post(f"/api/v1/drawdown-rebases/{rebase['id']}/approve/", {}, format="json")
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    assert "alice proposed drawdown re-base" in own.json()["error"]["message"]
    trader = as_role(Role.TRADER)
    refused = trader.post(f"/api/v1/drawdown-rebases/{rebase['id']}/approve/", {}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_forbidden"
    assert DrawdownRebase.objects.get().status == "pending"

    response = bob.post(f"/api/v1/drawdown-rebases/{rebase['id']}/approve/", {"note": "agreed"}, format="json")
    assert response.status_code == 200, response.content
    approved = response.json()
    assert (approved["status"], approved["decided_by"], approved["decision_note"]) == ("approved", "bob", "agreed")
    assert Outbox.objects.filter(event_type="risk.drawdown_rebased").count() == 1
    actions = list(
        AuditRecord.objects.filter(object_type="drawdown_rebase").order_by("sequence").values_list("action", flat=True)
    )
    assert actions == ["drawdown_rebase.proposed", "drawdown_rebase.approved"]
    done = bob.post(f"/api/v1/drawdown-rebases/{rebase['id']}/reject/", {"note": "late"}, format="json")
    assert done.status_code == 409 and done.json()["error"]["code"] == "drawdown_rebase_decided"
    # approved, not yet applied by the worker: a second proposal would re-base on the same equity
    waiting = alice.post("/api/v1/drawdown-rebases/", body, format="json")
    assert waiting.status_code == 409 and waiting.json()["error"]["code"] == "drawdown_rebase_pending"

    # An auditor's client reads them (list, filters, one); it may not propose.
    token, _ = issue_token(Role.AUDITOR)
    auditor = bearer(token)
    listed = auditor.get(f"/api/v1/drawdown-rebases/?account={account.pk}&status=approved").json()["results"]
    assert [r["id"] for r in listed] == [rebase["id"]]
    assert auditor.get("/api/v1/drawdown-rebases/?applied=true").json()["results"] == []
    assert auditor.get(f"/api/v1/drawdown-rebases/{rebase['id']}/").json()["decided_by"] == "bob"
    assert auditor.get("/api/v1/drawdown-rebases/999999/").json()["error"]["code"] == "drawdown_rebase_not_found"
    refused = auditor.post("/api/v1/drawdown-rebases/", body, format="json")
    assert refused.status_code == 403


def test_a_pending_drawdown_rebase_is_withdrawn_by_its_proposer_with_a_note(book, as_role):
    alice = as_role(Role.RISK_MANAGER, "alice")
    body = {"account": book["account"].pk, "reason": "understood"}
    rebase = alice.post("/api/v1/drawdown-rebases/", body, format="json").json()
    no_note = alice.post(f"/api/v1/drawdown-rebases/{rebase['id']}/reject/", {}, format="json")
    assert no_note.status_code == 400
    response = alice.post(
        f"/api/v1/drawdown-rebases/{rebase['id']}/reject/", {"note": "proposed too early"}, format="json"
    )
    assert response.status_code == 200, response.content
    withdrawn = response.json()
    assert (withdrawn["status"], withdrawn["decided_by"], withdrawn["decision_note"]) == (
        "rejected",
        None,
        "proposed too early",
    )
    assert not Outbox.objects.filter(event_type="risk.drawdown_rebased").exists()
    # nothing pending now: a new one may be proposed
    assert alice.post("/api/v1/drawdown-rebases/", body, format="json").status_code == 201
