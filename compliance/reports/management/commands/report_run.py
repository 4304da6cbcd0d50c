"""manage.py report_run KIND --from YYYY-MM-DD --to YYYY-MM-DD [--format F] [--user NAME]

Open a run, generate and validate it. The run is opened by the service the screen and the API
call (``report_run_request``), so the command refuses what they refuse, in the words the form
shows (``Refused: ...``, exit 1, nothing created): a period ending after today (UTC), an end
before the start, a transaction run over 31 days, a format or layout the kind does not have, a
``--supersedes`` of another kind or period or one already superseded, a submitted period not
named. Unlike them it generates and validates in its own process before it exits (nothing is
queued). KIND: transaction, best_execution, alerts_summary, order_record, rts6_pack. Prints the
reference, status, counts, file and SHA-256; held-back records go to stderr. Exit 0 when the
run is validated, 1 otherwise. Approval (four eyes) is a second person's step.
"""

from __future__ import annotations

from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from compliance.reports.models import ReportKind, RunStatus
from tradeops.core.errors import ApplicationError, NotFound, refusal_text


def _date(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Generate and validate a regulatory report run for a period."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=[k.value for k in ReportKind])
        parser.add_argument("--from", dest="start", required=True)
        parser.add_argument("--to", dest="end", required=True)
        parser.add_argument("--format", default="", help="transaction: xml (default) or csv")
        parser.add_argument("--layout", default="", help="transaction XML: envelope or document")
        parser.add_argument("--user", default="", help="Compliance officer generating it (default: the service)")
        parser.add_argument("--supersedes", default="", help="Reference of a submitted run this one replaces")
        parser.add_argument("--reason", default="")

    def handle(self, *args, **options):
        from compliance.reports.models import ReportRun
        from compliance.reports.services import held_back_summary, report_run_execute, report_run_request

        start, end = _date(options["start"], "--from"), _date(options["end"], "--to")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
        supersedes = None
        if options["supersedes"]:
            supersedes = ReportRun.objects.filter(reference=options["supersedes"]).first()
            if supersedes is None:
                raise CommandError(refusal_text(NotFound(f"no report {options['supersedes']}")))
        try:
            run = report_run_request(
                kind=options["kind"],
                period_start=start,
                period_end=end,
                user=user,
                actor="" if user else "service:command",
                file_format=options["format"],
                options={"layout": options["layout"]} if options["layout"] else None,
                supersedes=supersedes,
                reason=options["reason"],
                generate_on_commit=False,  # generated here, before the command exits
            )
            run = report_run_execute(run=run)
        except ApplicationError as exc:
            raise CommandError(refusal_text(exc)) from None
        for held in held_back_summary(run):
            reasons = "; ".join(f"{r['code']} ({r['field']}): {r['message']}" for r in held["reasons"])
            self.stderr.write(f"held back: {held['trn']} (execution {held['execution_id']}): {reasons}")
        self.stdout.write(
            f"{run.reference} {run.kind} {run.period_start}..{run.period_end}: {run.status}; "
            f"{run.record_count} records, {run.held_back_count} held back, {run.out_of_scope_count} out of scope"
        )
        if run.file:
            try:
                location = run.file.path
            except NotImplementedError:  # a storage without local paths
                location = run.file.name
            self.stdout.write(f"file: {location}")
            self.stdout.write(f"sha256: {run.sha256}")
        if run.status != RunStatus.VALIDATED:
            raise CommandError(f"{run.reference} is {run.status}: {run.errors[-1]['error'] if run.errors else ''}")
