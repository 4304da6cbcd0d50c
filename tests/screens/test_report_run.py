"""Running a report from the reports screen (``/compliance/reports/``): offered to compliance
officers only (the API's ``("reports", "run")`` row) and refused to everyone else (403, nothing
written); pre-filled with the kind's period (the last closed trading date for the transaction
report); the API's service path (``report_run_request``: opened, then generated and validated
by the ``reports`` queue on commit), then to the new run, whose page follows its status; every
bad input shown on the form as typed, and nothing created."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from compliance.reports.models import ReportKind, ReportRun, RunStatus
from tests.screens.world import world_build
from tradeops.audit.models import AuditRecord

pytestmark = pytest.mark.django_db
LIST, RUN = "/compliance/reports/", "/compliance/reports/run/"
WEEK = {"kind": "alerts_summary", "period_start": "2026-01-05", "period_end": "2026-01-11"}


@pytest.fixture
def world(db):
    return world_build()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _execution_queued(callbacks) -> list:
    """The on-commit callbacks that queue the run's generation (the audit trail has its own)."""
    return [c for c in callbacks if c.__qualname__.startswith("report_run_request.")]


def _report_audit() -> int:
    return AuditRecord.objects.filter(object_type="report_run").count()


def test_the_form_is_offered_to_compliance_officers_only(world):
    officer = _client(world.users["officer"]).get(LIST)
    assert officer.status_code == 200 and 'id="run-form"' in officer.content.decode()
    for role in ("auditor", "admin"):  # they read the runs, they do not run reports
        page = _client(world.users[role]).get(LIST)
        assert page.status_code == 200 and 'id="run-form"' not in page.content.decode(), role
    for role in ("trader", "risk", "nobody"):
        assert _client(world.users[role]).get(LIST).status_code == 403, role


def test_everyone_but_an_officer_is_refused_the_post_and_nothing_is_written(world):
    before = _report_audit()
    for role in ("trader", "risk", "auditor", "admin", "nobody"):
        assert _client(world.users[role]).post(RUN, WEEK).status_code == 403, role
    anonymous = Client().post(RUN, WEEK)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert not ReportRun.objects.exists() and _report_audit() == before


def test_the_post_needs_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["officer"])
    assert client.post(RUN, WEEK).status_code == 403
    assert not ReportRun.objects.exists()


def test_the_form_defaults_to_the_last_closed_trading_date_and_takes_a_prefill(world):
    from compliance.reports.services import trading_date_closed

    officer = _client(world.users["officer"])
    page = officer.get(LIST).content.decode()
    closed = f"{trading_date_closed():%Y-%m-%d}"
    assert '<option value="transaction" selected>' in page
    assert f'name="period_start" id="run-from" value="{closed}"' in page
    assert f'name="period_end" id="run-to" value="{closed}"' in page
    # each kind's default period travels with the page, for the kind selector
    assert '"alerts_summary"' in page and 'id="run-defaults"' in page
    # the home page's T+1 tile links here so
    page = officer.get(LIST + "?run=transaction&from=2026-01-05&to=2026-01-05").content.decode()
    assert 'id="run-from" value="2026-01-05"' in page and 'id="run-to" value="2026-01-05"' in page
    page = officer.get(LIST + "?run=alerts_summary&from=nonsense").content.decode()
    assert '<option value="alerts_summary" selected>' in page  # a bad date falls back to the default


def test_an_officer_runs_a_report_and_lands_on_it(world, celery_eager, django_capture_on_commit_callbacks):
    officer = _client(world.users["officer"])
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = officer.post(RUN, WEEK)
    run = ReportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/compliance/reports/{run.reference}/"
    assert len(_execution_queued(queued)) == 1  # report_run_execute_queued, on commit: the API's path
    run.refresh_from_db()
    assert (run.kind, str(run.period_start), str(run.period_end)) == ("alerts_summary", "2026-01-05", "2026-01-11")
    assert run.status == RunStatus.VALIDATED and run.generated_by == world.users["officer"]
    # audited once by the service (created, generated, validated), not again by the screen
    assert list(
        AuditRecord.objects.filter(object_id=run.reference).order_by("sequence").values_list("action", flat=True)
    ) == ["report.created", "report.generated", "report.validated"]
    page = officer.get(response["Location"]).content.decode()
    assert f"{run.reference} opened" in page and 'data-status="validated"' in page
    assert "?fragment=status" not in page  # done: nothing to follow
    assert "a second compliance officer must approve it" in page  # four eyes: not who ran it


def test_a_pending_run_page_follows_its_status_until_the_queue_is_done(world, django_capture_on_commit_callbacks):
    from compliance.reports.tasks import report_run_execute_queued

    officer = _client(world.users["officer"])
    with django_capture_on_commit_callbacks(execute=False) as queued:  # a broker: the worker is elsewhere
        location = officer.post(RUN, WEEK)["Location"]
    run = ReportRun.objects.get()
    assert run.status == RunStatus.PENDING and len(_execution_queued(queued)) == 1
    page = officer.get(location).content.decode()
    assert 'data-status="pending"' in page and "?fragment=status" in page and 'id="run-progress"' in page
    assert officer.get(location + "?fragment=status").json() == {"status": "pending", "label": "Pending"}
    report_run_execute_queued(run.pk)  # the reports worker's turn
    assert officer.get(location + "?fragment=status").json() == {"status": "validated", "label": "Validated"}
    auditor = _client(world.users["auditor"])
    assert auditor.get(location + "?fragment=status").json()["status"] == "validated"
    assert _client(world.users["trader"]).get(location + "?fragment=status").status_code == 403


BAD = [
    # (what, form, field whose error is shown, text of the error)
    ("end before start", {**WEEK, "period_end": "2026-01-04"}, "period_end", "before it starts"),
    ("unknown kind", {**WEEK, "kind": "horoscope"}, "kind", "Unknown report kind horoscope"),
    ("not a date", {**WEEK, "period_start": "5 Jan"}, "period_start", "Enter a date (YYYY-MM-DD)."),
    ("no date", {**WEEK, "period_end": ""}, "period_end", "This field is required."),
    (
        "too long a transaction run",
        {"kind": "transaction", "period_start": "2026-01-01", "period_end": "2026-02-28"},
        "period_end",
        "covers at most 31 days",
    ),
    ("no such run to supersede", {**WEEK, "supersedes": "ALS-NOPE", "reason": "r"}, "supersedes", "no report ALS-NOPE"),
]


@pytest.mark.parametrize("what,form,field,text", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_shown_on_the_form_as_typed_and_nothing_is_created(world, what, form, field, text):
    before = _report_audit()
    response = _client(world.users["officer"]).post(RUN, form)
    page = response.content.decode()
    assert response.status_code == 400, what
    assert text in page, page[page.find('id="run-report"') :][:3000]
    assert 'class="field-error"' in page
    assert f'value="{form["period_start"]}"' in page  # what was typed stays
    assert not ReportRun.objects.exists() and _report_audit() == before


def test_a_future_period_is_refused_on_the_form(world):
    from tradeops.core.clock import utcnow

    tomorrow = utcnow().date() + timedelta(days=1)
    form = {**WEEK, "period_end": f"{tomorrow:%Y-%m-%d}"}
    response = _client(world.users["officer"]).post(RUN, form)
    assert response.status_code == 400 and "after today" in response.content.decode()
    assert not ReportRun.objects.exists()


def _submitted_run(world):
    """An alerts summary of the week, as if it had gone out (the status submitted runs have)."""
    from datetime import date

    from compliance.reports.services import report_run_create

    run = report_run_create(
        kind=ReportKind.ALERTS_SUMMARY,
        period_start=date(2026, 1, 5),
        period_end=date(2026, 1, 11),
        user=world.users["officer2"],
    )
    ReportRun.objects.filter(pk=run.pk).update(status=RunStatus.ACCEPTED)
    run.refresh_from_db()
    return run


def test_a_period_already_submitted_needs_the_run_it_replaces_and_a_reason(world, django_capture_on_commit_callbacks):
    old = _submitted_run(world)
    officer = _client(world.users["officer"])
    # offered as such when the form is opened for that period
    page = officer.get(LIST + "?run=alerts_summary&from=2026-01-05&to=2026-01-11").content.decode()
    assert 'id="run-standing"' in page and "It was submitted" in page
    assert f'id="run-supersedes" maxlength="35" value="{old.reference}"' in page
    assert '<details id="run-replace" open>' in page

    refused = officer.post(RUN, WEEK)
    page = refused.content.decode()
    assert refused.status_code == 400 and "was already submitted" in page
    assert f'value="{old.reference}"' in page  # the run to name, filled in for the officer
    refused = officer.post(RUN, {**WEEK, "supersedes": old.reference})
    assert refused.status_code == 400 and "superseding a run needs a reason" in refused.content.decode()
    other = officer.post(RUN, {**WEEK, "period_end": "2026-01-10", "supersedes": old.reference, "reason": "r"})
    assert other.status_code == 400 and "supersedes only a run of its own kind and period" in other.content.decode()
    assert ReportRun.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=False):
        done = officer.post(RUN, {**WEEK, "supersedes": old.reference, "reason": "an alert was reclassified"})
    new = ReportRun.objects.exclude(pk=old.pk).get()
    assert done.status_code == 302 and done["Location"] == f"/compliance/reports/{new.reference}/"
    assert new.supersedes == old and new.reason == "an alert was reclassified"
    old.refresh_from_db()
    assert old.status == RunStatus.ACCEPTED  # what went out stays as it went out
    assert "an alert was reclassified" in officer.get(done["Location"]).content.decode()


def test_a_run_not_yet_submitted_is_superseded_by_a_new_one_and_the_form_says_so(
    world, django_capture_on_commit_callbacks
):
    officer = _client(world.users["officer"])
    with django_capture_on_commit_callbacks(execute=False):
        officer.post(RUN, WEEK)
    first = ReportRun.objects.get()
    page = officer.get(LIST + "?run=alerts_summary&from=2026-01-05&to=2026-01-11").content.decode()
    assert first.reference in page and "A new run supersedes it" in page
    assert '<details id="run-replace">' in page  # nothing to name: closed
    with django_capture_on_commit_callbacks(execute=False):
        assert officer.post(RUN, WEEK).status_code == 302
    first.refresh_from_db()
    assert first.status == RunStatus.SUPERSEDED
    assert AuditRecord.objects.filter(action="report.superseded", object_id=first.reference).count() == 1


# ---------------------------------------------------------------- manage.py report_run: the same refusals


def _command(form: dict, user) -> str:
    """``manage.py report_run`` with the form's fields; its CommandError's text ("" when it ran)."""
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    args = [form["kind"], "--from", form["period_start"], "--to", form["period_end"], "--user", user.username]
    for option, field in (("--supersedes", "supersedes"), ("--reason", "reason")):
        if form.get(field):
            args += [option, form[field]]
    try:
        call_command("report_run", *args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        return str(exc)
    return ""


REFUSED = [
    # (what, the form, the words both show; a submitted alerts summary of WEEK exists when marked)
    ("a future period", {**WEEK, "period_end": "2999-01-01"}, "after today", False),
    ("end before start", {**WEEK, "period_end": "2026-01-04"}, "before it starts", False),
    (
        "a transaction run over 31 days",
        {"kind": "transaction", "period_start": "2026-01-01", "period_end": "2026-02-28"},
        "covers at most 31 days",
        False,
    ),
    ("no such run to supersede", {**WEEK, "supersedes": "ALS-NOPE", "reason": "r"}, "no report ALS-NOPE", False),
    ("a submitted period not named", WEEK, "was already submitted", True),
    ("superseding without a reason", {**WEEK, "supersedes": "SUBMITTED"}, "superseding a run needs a reason", True),
    (
        "superseding a run of another period",
        {**WEEK, "period_end": "2026-01-10", "supersedes": "SUBMITTED", "reason": "r"},
        "supersedes only a run of its own kind and period",
        True,
    ),
    (
        "superseding a run of another kind",
        {**WEEK, "kind": "order_record", "supersedes": "SUBMITTED", "reason": "r"},
        "supersedes only a run of its own kind and period",
        True,
    ),
]


@pytest.mark.parametrize("what,form,text,submitted", REFUSED, ids=[r[0] for r in REFUSED])
def test_the_command_refuses_what_the_form_refuses_in_the_same_words(world, what, form, text, submitted):
    """``manage.py report_run`` goes through the form's and the API's service
    (``report_run_request``): each refusal is a CommandError whose text is the form's, word for
    word, and nothing is created (no run, no audit record)."""
    from html import escape

    if submitted:
        old = _submitted_run(world)
        form = {k: (old.reference if v == "SUBMITTED" else v) for k, v in form.items()}
    runs, before = ReportRun.objects.count(), _report_audit()
    page = _client(world.users["officer"]).post(RUN, form).content.decode()
    said = _command(form, world.users["officer"])
    assert said.startswith("Refused: ") and text in said, said
    assert escape(said) in page, (said, page[page.find('id="run-report"') :][:3000])
    assert ReportRun.objects.count() == runs and _report_audit() == before


def test_a_superseded_run_cannot_be_superseded_again_by_the_command(world):
    """A run already replaced is refused as ``supersedes`` (``report_supersedes_superseded``),
    by the command as by the form: name the run that replaced it."""
    import io

    from django.core.management import call_command

    call_command("report_run", "alerts_summary", "--from", "2026-01-05", "--to", "2026-01-11", stdout=io.StringIO())
    first = ReportRun.objects.get()
    call_command("report_run", "alerts_summary", "--from", "2026-01-05", "--to", "2026-01-11", stdout=io.StringIO())
    first.refresh_from_db()
    assert first.status == RunStatus.SUPERSEDED  # a run not yet submitted steps aside, as on the form
    form = {**WEEK, "supersedes": first.reference, "reason": "r"}
    runs, before = ReportRun.objects.count(), _report_audit()
    said = _command(form, world.users["officer"])
    assert said == f"Refused: {first.reference} was already superseded; name the run that replaced it"
    assert said in _client(world.users["officer"]).post(RUN, form).content.decode()
    assert ReportRun.objects.count() == runs and _report_audit() == before


def test_the_command_still_generates_a_valid_run_itself_queueing_nothing(world, django_capture_on_commit_callbacks):
    """A valid run through the command: opened by the request service, generated and validated in
    the command's own process (nothing queued on commit), as ``service:command`` without
    ``--user``."""
    import io

    from django.core.management import call_command

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("report_run", "alerts_summary", "--from", "2026-01-05", "--to", "2026-01-11", stdout=out)
    run = ReportRun.objects.get()
    assert run.status == RunStatus.VALIDATED and run.generated_by_label == "service:command"
    assert not _execution_queued(callbacks)
    assert run.reference in out.getvalue() and run.sha256 in out.getvalue()
    audit = AuditRecord.objects.filter(object_type="report_run", object_id=run.reference)
    assert {"report.created", "report.generated", "report.validated"} <= set(audit.values_list("action", flat=True))


def test_an_empty_report_list_says_whether_a_filter_hid_the_runs(world):
    """With no run at all the list said "No report run matches", as if a filter were set."""
    officer = _client(world.users["officer"])
    ReportRun.objects.all().delete()
    empty = officer.get(LIST).content.decode()
    assert "No report run yet." in empty and "matches" not in empty
    filtered = officer.get(LIST + "?kind=alerts_summary").content.decode()
    assert "No report run matches these filters." in filtered


def test_a_transaction_run_over_an_open_trading_day_is_refused_by_the_form_the_api_and_the_command(world):
    """MiFIR Art. 26 reports are T+1: a transaction run whose period includes today (not yet
    closed) would report part of the day and invite a second, conflicting submission. The form,
    ``POST /api/v1/reports/`` and ``manage.py report_run`` all go through ``report_run_request``
    and refuse it (``report_day_open``) in the same words, saying from when the day can be
    reported; nothing is created. Other kinds may still cover today (an interim summary)."""
    from html import escape

    from rest_framework.test import APIClient

    from tradeops.core.clock import utcnow

    today = utcnow().date()
    opens = f"{today + timedelta(days=1):%Y-%m-%d} 00:15 UTC"  # the next midnight, plus the close grace (15 min)
    officer = world.users["officer"]
    for start in (today - timedelta(days=2), today):
        form = {"kind": "transaction", "period_start": f"{start:%Y-%m-%d}", "period_end": f"{today:%Y-%m-%d}"}
        said = _command(form, officer)
        assert said == (
            f"Refused: the trading date {today:%Y-%m-%d} has not closed yet (a transaction report, T+1,"
            f" covers a finished day): it can be reported from {opens}"
        ), said
        response = _client(officer).post(RUN, form)
        assert response.status_code == 400 and escape(said) in response.content.decode()
        api = APIClient()
        api.force_login(officer)
        answer = api.post("/api/v1/reports/", form, format="json")
        assert answer.status_code == 400, answer.content
        error = answer.json()["error"]
        assert error["code"] == "report_day_open" and f"Refused: {error['message']}" == said
    assert not ReportRun.objects.exists() and _report_audit() == 0
