"""Every endpoint of the integration API with what it takes to call it successfully: the matrix
test and the 401/403 tests walk this table, and a test checks it covers every route.

Each entry's ``setup(ctx)`` makes what one successful call needs (a fresh pending proposal by
another person, a fresh engaged switch...) and returns ``(path, body)``, so every allowed role
really succeeds and every write really happens once per call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tradeops.core.roles import Role

_n = itertools.count(1)


@dataclass
class Endpoint:
    method: str
    route: str  # as in the URLconf
    matrix: tuple[str, str]
    setup: Any
    ok: int = 200

    @property
    def label(self) -> str:
        return f"{self.method} {self.route}"

    def example_path(self) -> str:
        """The route with a made-up value in each parameter (for what needs no real object)."""
        import re

        values = {"int": "1", "str": "X", "isoday": "2026-01-01"}
        route = re.sub(r"<(\w+):\w+>", lambda m: values[m.group(1)], self.route)
        return f"/api/trading/{route.removeprefix('legacy:')}" if route.startswith("legacy:") else f"/api/v1/{route}"


class Ctx:
    """What setups need: the book, people of each role to act as 'the other person'."""

    def __init__(self, *, book, person, tmp_path):
        self.book = book
        self.person = person
        self.tmp_path = tmp_path
        self._others: dict[Role, Any] = {}

    def other(self, role: Role):
        if role not in self._others:
            self._others[role] = self.person(role, f"other-{role}")
        return self._others[role]

    # ---- fresh objects

    def instrument(self):
        from trading.models import Instrument

        n = next(_n)
        return Instrument.objects.create(
            symbol=f"X{n:05d}",
            asset_class="CFD_INDEX",
            currency="USD",
            quote_currency="USD",
            tick_size=Decimal("0.1"),
            contract_size=Decimal(1),
        )

    def limit(self):
        from trading.controls.services import risk_limit_save

        return risk_limit_save(actor="user:test", instrument=self.instrument(), max_position_lots=Decimal(5))

    def proposal(self):
        from trading.controls.limit_changes import risk_limit_change_propose

        return risk_limit_change_propose(
            proposed_by=self.other(Role.RISK_MANAGER),
            instrument=self.instrument(),
            values={"max_position_lots": "3"},
            reason="tighter",
        )

    def account(self):
        """A fresh trading account (nothing pending on it)."""
        from tradeops.core.identifiers import lei_with_check_digits
        from trading.models import TradingAccount

        n = next(_n)
        return TradingAccount.objects.create(
            name=f"Account {n}",
            mt5_login=7100000 + n,
            mt5_server="test-server",
            firm_lei=lei_with_check_digits("TRADEOPSTEST000000"),
            client_id=f"CLIENT-{n}",
            beneficial_owner=f"OWNER-{n}",
        )

    def rebase(self):
        """A pending re-base of a fresh account's peak equity, proposed by another risk manager."""
        from trading.controls.drawdown import drawdown_rebase_propose

        return drawdown_rebase_propose(
            proposed_by=self.other(Role.RISK_MANAGER), account=self.account(), reason="drawdown understood"
        )

    def switch(self):
        from trading.controls.services import kill_switch_engage

        return kill_switch_engage(
            scope="algo", scope_value=f"algo-{next(_n)}", actor="user:test", reason="test", source="api"
        ).switch

    def alert(self):
        from compliance.services import alerts_record

        n = next(_n)
        # a day apart: each is an episode of its own (alerts_record merges one episode's sightings)
        start = self.book["orders"][0].created_at + timedelta(days=n)
        (alert,) = alerts_record(
            alerts=[
                {
                    "alert_type": "spoofing",
                    "account": str(self.book["account"].pk),
                    "owner": f"OWNER-{n}",
                    "symbol": "EURUSD",
                    "order_ids": ["API-T-1"],
                    "score": 0.8,
                    "start": start.isoformat(),
                    "end": (start + timedelta(seconds=5)).isoformat(),
                    "evidence": {"cancelled_size": 12, "fill_size": 1},
                }
            ]
        )
        return alert

    def case_pending_close(self):
        from compliance.services import case_disposition_request, case_review_start

        officer = self.other(Role.COMPLIANCE_OFFICER)
        case = case_review_start(case=self.alert().case, officer=officer)
        return case_disposition_request(case=case, officer=officer, action="close", reason="hedging, not abuse")

    def rule(self):
        from compliance.services import compliance_rule_propose

        return compliance_rule_propose(
            proposed_by=self.other(Role.COMPLIANCE_OFFICER),
            code=f"mov-{next(_n)}",
            rule_type="max_order_volume",
            parameters={"max_lots": "5"},
            reason="initial",
        )

    def report(self, *, validated: bool = True):
        """An alerts-summary run generated (and validated) by another compliance officer."""
        from compliance.reports.services import report_run_create, report_run_execute

        day = self.book["orders"][0].created_at.date() - timedelta(days=next(_n))
        run = report_run_create(
            kind="alerts_summary", period_start=day, period_end=day, user=self.other(Role.COMPLIANCE_OFFICER)
        )
        return report_run_execute(run=run) if validated else run

    def transaction_report(self):
        """A transaction report (RTS 22) of the book's trading date, with a record per fill: the
        firm, the instruments and the account configured as the reporting tests do."""
        from compliance.reports.configuration import (
            account_reporting_profile_save,
            instrument_reporting_profile_save,
            reporting_firm_save,
        )
        from compliance.reports.services import report_run_create, report_run_execute
        from tests.compliance.reports.conftest import COUNTERPARTY_LEI

        account = self.book["account"]
        reporting_firm_save(
            actor="service:test",
            executing_entity_lei=account.firm_lei,
            submitting_entity_lei=account.firm_lei,
            home_country="CY",
            header_to="CY",
        )
        for instrument in (self.book["instrument"], self.book["gbp"]):
            instrument_reporting_profile_save(
                instrument=instrument,
                actor="service:test",
                reportability="mifir",
                full_name=f"{instrument.symbol} CFD",
                cfi_code="JFTXFC",
                notional_currency_1=instrument.currency,
                notional_currency_2=instrument.quote_currency,
                quantity_type="NOML",
                price_currency=instrument.quote_currency,
                venue="XXXX",
            )
        account_reporting_profile_save(
            account=account,
            actor="service:test",
            trading_capacity="DEAL",
            owner_type="firm",
            counterparty_lei=COUNTERPARTY_LEI,
        )
        day = self.book["orders"][0].created_at.date()
        run = report_run_create(
            kind="transaction", period_start=day, period_end=day, user=self.other(Role.COMPLIANCE_OFFICER)
        )
        return report_run_execute(run=run)

    def record(self):
        from tradeops.audit.models import AuditRecord

        return AuditRecord.objects.order_by("-sequence").first()

    def verified(self):
        """The verification's path, with a run recorded (a GET reads the latest; 404 before one)."""
        from tradeops.audit.services import audit_verification_run

        audit_verification_run(actor="user:setup", checkpoints=False)
        return "/api/v1/audit/verification/", None

    def record_of_a_finished_day(self):
        """A record of yesterday (UTC): one of today has no inclusion proof yet (its day grows)."""
        from tradeops.audit.models import AuditRecord
        from tradeops.audit.services import AuditEntry, audit_append_many
        from tradeops.core.clock import utcnow

        yesterday = utcnow() - timedelta(days=1)
        found = AuditRecord.objects.filter(recorded_at__date=yesterday.date()).order_by("-sequence").first()
        if found is None:
            entry = AuditEntry(action="report.generated", object_type="report", object_id="R-0", occurred_at=yesterday)
            (found,) = audit_append_many(entries=[entry], recorded_at=yesterday)
        return found

    def digest_day(self):
        from tradeops.audit.digest import audit_digest_create
        from tradeops.audit.models import Digest
        from tradeops.core.clock import utcnow

        day = utcnow().date() - timedelta(days=1)
        if not Digest.objects.filter(day=day).exists():
            audit_digest_create(day=day, directory=self.tmp_path)
        return day


def _get(path):
    return lambda ctx: (path, None)


def _order_requested(ctx):
    """A fresh order request (another trader's: every reader of orders may follow it)."""
    from trading.orders.requests import order_request

    client_order_id = f"API-R-{next(_n)}"
    order_request(
        requested_by=ctx.other(Role.TRADER),
        client_order_id=client_order_id,
        account=ctx.book["account"],
        instrument=ctx.book["instrument"],
        side="SELL",
        quantity=Decimal("0.10"),
    )
    return f"/api/v1/order-requests/{client_order_id}/", None


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "instruments/", ("instruments", "read"), _get("/api/v1/instruments/")),
    Endpoint("GET", "instruments/<str:symbol>/", ("instruments", "read"), _get("/api/v1/instruments/EURUSD/")),
    Endpoint("GET", "accounts/", ("accounts", "read"), _get("/api/v1/accounts/")),
    Endpoint(
        "GET",
        "accounts/<int:pk>/",
        ("accounts", "read"),
        lambda ctx: (f"/api/v1/accounts/{ctx.book['account'].pk}/", None),
    ),
    Endpoint("GET", "orders/", ("orders", "read"), _get("/api/v1/orders/")),
    Endpoint(
        "POST",
        "orders/",
        ("orders", "create"),
        lambda ctx: (
            "/api/v1/orders/",
            {
                "client_order_id": f"API-M-{next(_n)}",
                "account": ctx.book["account"].pk,
                "symbol": "EURUSD",
                "side": "BUY",
                "quantity": "0.10",
            },
        ),
        ok=202,
    ),
    Endpoint("GET", "orders/<str:client_order_id>/", ("orders", "read"), _get("/api/v1/orders/API-T-1/")),
    Endpoint("GET", "order-requests/<str:client_order_id>/", ("orders", "read"), _order_requested),
    Endpoint("GET", "executions/", ("executions", "read"), _get("/api/v1/executions/")),
    Endpoint("GET", "positions/", ("positions", "read"), _get("/api/v1/positions/")),
    Endpoint("GET", "pretrade-decisions/", ("pretrade_decisions", "read"), _get("/api/v1/pretrade-decisions/")),
    Endpoint("GET", "risk-limits/", ("risk_limits", "read"), _get("/api/v1/risk-limits/")),
    Endpoint(
        "GET",
        "risk-limits/<int:pk>/",
        ("risk_limits", "read"),
        lambda ctx: (f"/api/v1/risk-limits/{ctx.limit().pk}/", None),
    ),
    Endpoint("GET", "risk-limits/proposals/", ("risk_limits", "read"), _get("/api/v1/risk-limits/proposals/")),
    Endpoint(
        "POST",
        "risk-limits/proposals/",
        ("risk_limits", "propose"),
        lambda ctx: (
            "/api/v1/risk-limits/proposals/",
            {"symbol": ctx.instrument().symbol, "values": {"max_position_lots": "4.5"}, "reason": "new desk"},
        ),
        ok=201,
    ),
    Endpoint(
        "GET",
        "risk-limits/proposals/<int:pk>/",
        ("risk_limits", "read"),
        lambda ctx: (f"/api/v1/risk-limits/proposals/{ctx.proposal().pk}/", None),
    ),
    Endpoint(
        "POST",
        "risk-limits/proposals/<int:pk>/approve/",
        ("risk_limits", "approve"),
        lambda ctx: (f"/api/v1/risk-limits/proposals/{ctx.proposal().pk}/approve/", {"note": "agreed"}),
    ),
    Endpoint(
        "POST",
        "risk-limits/proposals/<int:pk>/reject/",
        ("risk_limits", "approve"),
        lambda ctx: (f"/api/v1/risk-limits/proposals/{ctx.proposal().pk}/reject/", {"note": "too tight"}),
    ),
    Endpoint("GET", "drawdown-rebases/", ("drawdown_rebases", "read"), _get("/api/v1/drawdown-rebases/")),
    Endpoint(
        "POST",
        "drawdown-rebases/",
        ("drawdown_rebases", "propose"),
        lambda ctx: ("/api/v1/drawdown-rebases/", {"account": ctx.account().pk, "reason": "loss understood"}),
        ok=201,
    ),
    Endpoint(
        "GET",
        "drawdown-rebases/<int:pk>/",
        ("drawdown_rebases", "read"),
        lambda ctx: (f"/api/v1/drawdown-rebases/{ctx.rebase().pk}/", None),
    ),
    Endpoint(
        "POST",
        "drawdown-rebases/<int:pk>/approve/",
        ("drawdown_rebases", "approve"),
        lambda ctx: (f"/api/v1/drawdown-rebases/{ctx.rebase().pk}/approve/", {"note": "agreed"}),
    ),
    Endpoint(
        "POST",
        "drawdown-rebases/<int:pk>/reject/",
        ("drawdown_rebases", "approve"),
        lambda ctx: (f"/api/v1/drawdown-rebases/{ctx.rebase().pk}/reject/", {"note": "not yet"}),
    ),
    Endpoint("GET", "kill-switch/", ("kill_switch", "read"), _get("/api/v1/kill-switch/")),
    Endpoint(
        "POST",
        "kill-switch/",
        ("kill_switch", "engage"),
        lambda ctx: ("/api/v1/kill-switch/", {"scope": "algo", "scope_value": f"algo-{next(_n)}", "reason": "runaway"}),
        ok=201,
    ),
    Endpoint(
        "GET",
        "kill-switch/<int:pk>/",
        ("kill_switch", "read"),
        lambda ctx: (f"/api/v1/kill-switch/{ctx.switch().pk}/", None),
    ),
    Endpoint(
        "POST",
        "kill-switch/<int:pk>/release/",
        ("kill_switch", "release"),
        lambda ctx: (f"/api/v1/kill-switch/{ctx.switch().pk}/release/", {"reason": "reviewed"}),
    ),
    Endpoint("GET", "alerts/", ("alerts", "read"), _get("/api/v1/alerts/")),
    Endpoint("GET", "alerts/<int:pk>/", ("alerts", "read"), lambda ctx: (f"/api/v1/alerts/{ctx.alert().pk}/", None)),
    Endpoint("GET", "cases/", ("cases", "read"), _get("/api/v1/cases/")),
    Endpoint("GET", "cases/<int:pk>/", ("cases", "read"), lambda ctx: (f"/api/v1/cases/{ctx.alert().case_id}/", None)),
    Endpoint(
        "GET",
        "cases/<int:pk>/actions/",
        ("cases", "read"),
        lambda ctx: (f"/api/v1/cases/{ctx.alert().case_id}/actions/", None),
    ),
    Endpoint(
        "POST",
        "cases/<int:pk>/actions/",
        ("cases", "act"),
        lambda ctx: (f"/api/v1/cases/{ctx.alert().case_id}/actions/", {"action": "review_start"}),
    ),
    Endpoint(
        "POST",
        "cases/<int:pk>/decision/",
        ("cases", "decide"),
        lambda ctx: (f"/api/v1/cases/{ctx.case_pending_close().pk}/decision/", {"decision": "approve", "note": "ok"}),
    ),
    Endpoint(
        "GET",
        "cases/<int:pk>/stor-draft/",
        ("stor_drafts", "read"),
        lambda ctx: (f"/api/v1/cases/{ctx.alert().case_id}/stor-draft/", None),
    ),
    Endpoint("GET", "rules/", ("rules", "read"), _get("/api/v1/rules/")),
    Endpoint(
        "POST",
        "rules/",
        ("rules", "propose"),
        lambda ctx: (
            "/api/v1/rules/",
            {"code": f"mov-api-{next(_n)}", "rule_type": "max_order_volume", "parameters": {"max_lots": "2"}},
        ),
        ok=201,
    ),
    Endpoint("GET", "rules/<int:pk>/", ("rules", "read"), lambda ctx: (f"/api/v1/rules/{ctx.rule().pk}/", None)),
    Endpoint(
        "POST",
        "rules/<int:pk>/approve/",
        ("rules", "approve"),
        lambda ctx: (f"/api/v1/rules/{ctx.rule().pk}/approve/", {"note": "second pair of eyes"}),
    ),
    Endpoint(
        "POST",
        "rules/<int:pk>/reject/",
        ("rules", "approve"),
        lambda ctx: (f"/api/v1/rules/{ctx.rule().pk}/reject/", {"note": "no"}),
    ),
    Endpoint("GET", "audit/records/", ("audit_records", "read"), _get("/api/v1/audit/records/")),
    Endpoint(
        "GET",
        "audit/records/<int:sequence>/",
        ("audit_records", "read"),
        lambda ctx: (f"/api/v1/audit/records/{ctx.record().sequence}/", None),
    ),
    Endpoint(
        "GET",
        "audit/records/<int:sequence>/proof/",
        ("audit_records", "read"),
        lambda ctx: (f"/api/v1/audit/records/{ctx.record_of_a_finished_day().sequence}/proof/", None),
    ),
    Endpoint("GET", "audit/verification/", ("audit_verification", "read"), lambda ctx: ctx.verified()),
    Endpoint("POST", "audit/verification/", ("audit_verification", "run"), _get("/api/v1/audit/verification/"), ok=201),
    Endpoint("GET", "audit/digests/", ("audit_digests", "read"), _get("/api/v1/audit/digests/")),
    Endpoint(
        "GET",
        "audit/digests/<isoday:day>/",
        ("audit_digests", "read"),
        lambda ctx: (f"/api/v1/audit/digests/{ctx.digest_day().isoformat()}/", None),
    ),
    Endpoint("GET", "reports/", ("reports", "read"), _get("/api/v1/reports/")),
    Endpoint(
        "POST",
        "reports/",
        ("reports", "run"),
        lambda ctx: (
            "/api/v1/reports/",
            {"kind": "alerts_summary", "period_start": "2026-03-02", "period_end": "2026-03-08"},
        ),
        ok=202,
    ),
    Endpoint(
        "GET",
        "reports/<str:reference>/",
        ("reports", "read"),
        lambda ctx: (f"/api/v1/reports/{ctx.report(validated=False).reference}/", None),
    ),
    Endpoint(
        "POST",
        "reports/<str:reference>/approve/",
        ("reports", "approve"),
        lambda ctx: (f"/api/v1/reports/{ctx.report().reference}/approve/", {"note": "checked"}),
    ),
    Endpoint(
        "GET",
        "reports/<str:reference>/records/",
        ("reports", "read"),
        lambda ctx: (f"/api/v1/reports/{ctx.report(validated=False).reference}/records/", None),
    ),
    Endpoint(
        "GET",
        "reports/<str:reference>/file/",
        ("reports", "read"),
        lambda ctx: (f"/api/v1/reports/{ctx.report().reference}/file/", None),
    ),
    # the first kill switch routes, kept working under the same matrix
    Endpoint("GET", "legacy:kill-switch/", ("kill_switch", "read"), _get("/api/trading/kill-switch/")),
    Endpoint(
        "POST",
        "legacy:kill-switch/",
        ("kill_switch", "engage"),
        lambda ctx: (
            "/api/trading/kill-switch/",
            {"scope": "algo", "scope_value": f"algo-{next(_n)}", "reason": "runaway"},
        ),
        ok=201,
    ),
    Endpoint(
        "POST",
        "legacy:kill-switch/<int:pk>/release/",
        ("kill_switch", "release"),
        lambda ctx: (f"/api/trading/kill-switch/{ctx.switch().pk}/release/", {"reason": "reviewed"}),
    ),
]
