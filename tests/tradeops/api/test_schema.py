"""The published schemas: OpenAPI 3 of the API (valid, every operation with its scope, roles and
error shapes), the events' JSON Schema (generated from tradeops.events, valid, and every real
event validates against it), and docs/api.md's role matrix (the same table as the code)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import orjson
import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from tests.tradeops.api.endpoints import ENDPOINTS
from tests.tradeops.samples import sample_event
from tests.trading.marketdata.alerts import every_market_data_alert
from tradeops.api.matrix import matrix_markdown
from tradeops.events import PAYLOADS, encode, events_json_schema

API_DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


@pytest.fixture(scope="module")
def openapi() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_openapi_schema_is_valid_and_generates_without_warnings(openapi, tmp_path):
    validate_schema(openapi)
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_states_its_scope_roles_and_errors(openapi):
    operations = [(path, method, op) for path, item in openapi["paths"].items() for method, op in item.items()]
    documented = {(method.upper(), re.sub(r"\{\w+\}", "{}", path)) for path, method, _ in operations}
    served = {
        (e.method, "/api/v1/" + re.sub(r"<\w+:\w+>", "{}", e.route))
        for e in ENDPOINTS
        if not e.route.startswith("legacy:")
    }
    assert documented == served
    for path, method, op in operations:
        scope = op["x-required-scope"]
        assert {"oauth2": [scope]} in op["security"], (path, method)
        assert {"cookieAuth": []} in op["security"]
        assert op["x-roles"] and f"**Scope** `{scope}`" in op["description"]
        for code in ("401", "403", "429"):
            assert op["responses"][code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }, (path, method, code)
    flows = openapi["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "/o/token/"
    assert "audit:read" in flows["clientCredentials"]["scopes"]


def test_decimals_are_strings_and_times_are_date_time_in_the_schema(openapi):
    position = openapi["components"]["schemas"]["PositionOutput"]["properties"]
    assert position["net_quantity"]["type"] == "string" and position["net_quantity"]["format"] == "decimal"
    assert position["updated_at"]["format"] == "date-time"


def test_the_events_schema_is_valid_and_every_event_validates():
    schema = events_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert {v["properties"]["type"]["const"] for v in schema["oneOf"]} == {p.TYPE for p in PAYLOADS}
    for payload in PAYLOADS:
        wire = orjson.loads(encode(sample_event(payload)))
        errors = list(validator.iter_errors(wire))
        assert not errors, (payload.TYPE, [e.message for e in errors][:3])
    tick = orjson.loads(encode(sample_event(PAYLOADS[0])))
    for broken in (
        {**tick, "type": "market.unknown"},
        {**tick, "version": 99},
        {**tick, "payload": {k: v for k, v in tick["payload"].items() if k != "bid"}},
        {**tick, "payload": {**tick["payload"], "bid": 1.1}},  # decimals travel as strings
        {**tick, "extra": 1},
    ):
        assert not validator.is_valid(broken), json.dumps(broken)[:120]


def test_the_readme_documents_the_matrix_in_the_code():
    text = API_DOC.read_text()
    match = re.search(r"<!-- matrix:begin -->\n(.*?)\n<!-- matrix:end -->", text, re.S)
    assert match, "docs/api.md: the role matrix goes between <!-- matrix:begin --> and <!-- matrix:end -->"
    assert match.group(1).strip() == matrix_markdown(), "docs/api.md's role matrix differs: paste matrix_markdown()"


def test_no_page_of_the_docs_carries_an_unresolved_merge():
    """A merge once left its conflict markers in docs/api.md: an integrator read both sides of the
    audit proof's rule (served, and refused) in the endpoint table."""
    docs = API_DOC.parents[1] / "docs"
    pages = [*docs.glob("*.md"), API_DOC.parents[1] / "README.md"]
    marked = [
        f"{page.name}:{number}"
        for page in pages
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if re.match(r"^(<{7}|>{7})( |$)|^={7}$", line)
    ]
    assert not marked, f"conflict markers left by a merge: {marked}"


def test_the_schema_says_a_proof_of_today_is_a_409(openapi):
    """The API answers 409 ``audit_proof_day_open`` to a GET of a proof of today; the schema gave
    that GET no 409 (the walk of 2026-12-06)."""
    responses = openapi["paths"]["/api/v1/audit/records/{sequence}/proof/"]["get"]["responses"]
    assert "409" in responses and "audit_proof_day_open" in responses["409"]["description"]


def test_every_market_data_alert_validates_with_its_evidence_typed_by_flag():
    """The schema types an ``alert.raised``'s evidence by its market-data flag (the figures as
    fields since 2026-12-06: numbers, RFC 3339 UTC times); every field the monitor and the
    collector write is declared there (the writer and the contract cannot drift), a figure of the
    wrong type is refused, and an alert recorded before the figures existed still validates."""
    from tradeops.events import MARKET_DATA_EVIDENCE, Alert, make_event

    validator = jsonschema.Draft202012Validator(events_json_schema(), format_checker=jsonschema.FormatChecker())
    alerts = every_market_data_alert()
    assert {a.alert_type for a in alerts} == set(MARKET_DATA_EVIDENCE), "a flag with no alert here"
    for alert in alerts:
        declared = set(MARKET_DATA_EVIDENCE[alert.alert_type].__struct_fields__)
        assert set(alert.evidence) <= declared, (alert.alert_type, set(alert.evidence) - declared)
        wire = orjson.loads(encode(make_event(alert, source="market-monitor", key="EURUSD")))
        errors = [e.message for e in validator.iter_errors(wire)]
        assert not errors, (alert.alert_type, errors[:3])

    def valid(alert_type: str, evidence: dict) -> bool:
        event = make_event(Alert(alert_type=alert_type, evidence=evidence, ts=alerts[0].ts), source="s", key="k")
        return validator.is_valid(orjson.loads(encode(event)))

    gap = next(a for a in alerts if a.alert_type == "market_data.gap").evidence
    assert not valid("market_data.gap", {**gap, "gap_seconds": "600"})  # a number, not its text
    since = events_json_schema()["$defs"]["MarketDataGapEvidence"]["properties"]["since"]
    assert since == {"type": "string", "format": "date-time"}  # (checked where rfc3339-validator is installed)
    before = {k: v for k, v in gap.items() if k not in ("gap_seconds", "gap_limit_seconds", "since")}
    assert valid("market_data.gap", before)  # an alert of before 2026-12-06
    assert valid("spoofing", {"gap_seconds": "anything"})  # surveillance's evidence is its own
