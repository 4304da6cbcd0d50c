"""manage.py kill_switch engage|release|list (RTS 6 Art. 12)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tradeops.audit.actors import username_actor
from tradeops.core.errors import ApplicationError
from trading.controls.selectors import kill_switch_get, kill_switch_get_engaged, kill_switch_list
from trading.controls.services import kill_switch_engage, kill_switch_release


class Command(BaseCommand):
    help = (
        "Engage the kill switch on a scope (cancels every unexecuted order in it and blocks new ones), "
        "release it (a user with the risk_manager role, with a reason), or list engaged switches."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["engage", "release", "list"])
        parser.add_argument("--scope", default="all", choices=["all", "account", "instrument", "algo", "trader"])
        parser.add_argument("--value", default="", help="account id, symbol, algo id or user id")
        parser.add_argument("--id", type=int, default=None, help="release: the switch id (instead of scope/value)")
        parser.add_argument("--reason", default="")
        parser.add_argument(
            "--user",
            default="",
            help="who: engage records it (the whole firm needs a risk manager); release requires a risk manager",
        )

    def handle(self, *args, **opts):
        try:
            if opts["action"] == "list":
                for switch in kill_switch_list():
                    self.stdout.write(
                        f"#{switch.pk} {switch.scope} {switch.scope_value or '-'} engaged "
                        f"{switch.engaged_at.isoformat()} by {switch.engaged_by} ({switch.source}): "
                        f"{switch.engage_reason}"
                    )
                return
            if opts["action"] == "engage":
                actor = username_actor(opts["user"]) if opts["user"] else "service:manage.py"
                user = get_user_model().objects.filter(username=opts["user"]).first() if opts["user"] else None
                if opts["user"] and user is None:
                    raise CommandError(f"no user {opts['user']!r}")
                result = kill_switch_engage(
                    scope=opts["scope"],
                    scope_value=opts["value"],
                    actor=actor,
                    reason=opts["reason"],
                    source="command",
                    user=user,
                )
                self.stdout.write(
                    f"engaged #{result.switch.pk} on {opts['scope']} {opts['value']}: "
                    f"cancelled {len(result.cancelled)} order(s) {result.cancelled}"
                )
                for coid, why in result.failed.items():
                    self.stdout.write(f"  still open: {coid}: {why}")
                return
            if not opts["user"]:
                raise CommandError("release needs --user (a user with the risk_manager role)")
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"no user {opts['user']!r}")
            switch = (
                kill_switch_get(pk=opts["id"])
                if opts["id"]
                else kill_switch_get_engaged(scope=opts["scope"], scope_value=opts["value"])
            )
            kill_switch_release(switch=switch, user=user, reason=opts["reason"])
            self.stdout.write(f"released #{switch.pk} ({switch.scope} {switch.scope_value})")
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None
