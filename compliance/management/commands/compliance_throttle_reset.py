"""``manage.py compliance_throttle_reset ALGO --user NAME --reason TEXT``: a designated person
re-enables an algorithm the execution throttle disabled (RTS 6 Art. 15(3)). Audited; the
execution worker's check re-enables the algorithm when the event reaches it. An algorithm with no
open trip is refused (nothing published) unless ``--unrecorded-trip``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from compliance.services import execution_throttle_reset
from tradeops.core.errors import ApplicationError, refusal_text


class Command(BaseCommand):
    help = "Re-enable an algorithm disabled by the execution throttle (RTS 6 Art. 15(3))."

    def add_arguments(self, parser):
        parser.add_argument("algo_id")
        parser.add_argument("--user", required=True, help="the compliance officer or risk manager re-enabling it")
        parser.add_argument("--reason", required=True)
        parser.add_argument(
            "--unrecorded-trip",
            action="store_true",
            help="publish the re-enable although no open trip is recorded (a worker refuses the algorithm's "
            "orders before the surveillance stage recorded the trip)",
        )

    def handle(self, *args, **opts):
        try:
            user = get_user_model().objects.get(username=opts["user"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {opts['user']!r}") from None
        try:
            trip = execution_throttle_reset(
                algo_id=opts["algo_id"], officer=user, reason=opts["reason"], unrecorded_trip=opts["unrecorded_trip"]
            )
        except ApplicationError as exc:
            raise CommandError(refusal_text(exc)) from None
        closed = (
            f"trip of {trip.tripped_at:%Y-%m-%d %H:%M:%S} UTC closed"
            if trip is not None
            else "WARNING: no trip was recorded for it, none closed"
        )
        self.stdout.write(
            f"{opts['algo_id']}: {closed}; re-enable published (compliance.throttle_reset) by {user.get_username()}; "
            "each execution worker re-enables it when the event reaches it"
        )
