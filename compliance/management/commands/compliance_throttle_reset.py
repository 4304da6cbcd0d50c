"""``manage.py compliance_throttle_reset ALGO --user NAME --reason TEXT``: a designated person
re-enables an algorithm the execution throttle disabled (RTS 6 Art. 15(3)). Audited; the
execution worker's check re-enables the algorithm when the event reaches it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from compliance.services import execution_throttle_reset
from tradeops.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Re-enable an algorithm disabled by the execution throttle (RTS 6 Art. 15(3))."

    def add_arguments(self, parser):
        parser.add_argument("algo_id")
        parser.add_argument("--user", required=True, help="the compliance officer or risk manager re-enabling it")
        parser.add_argument("--reason", required=True)

    def handle(self, *args, **opts):
        try:
            user = get_user_model().objects.get(username=opts["user"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {opts['user']!r}") from None
        try:
            execution_throttle_reset(algo_id=opts["algo_id"], officer=user, reason=opts["reason"])
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{opts['algo_id']}: re-enable published by {user.get_username()}")
