"""Seed reference data: instruments, the demo account, roles and one user per role.

Other apps add their own reference data through ``settings.SEED_EXTENSIONS`` (dotted paths to
callables taking ``stdout=``), run after these steps: trading never imports them.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from tradeops.core.identifiers import lei_with_check_digits
from tradeops.core.roles import Role
from tradeops.core.services import roles_sync, user_ensure_with_role
from trading.controls.services import risk_limit_save
from trading.models import RiskLimit
from trading.seed_data import DEMO_ACCOUNT, DEMO_RISK_LIMITS, INSTRUMENTS
from trading.services import account_upsert, instrument_upsert

USERS = {
    Role.COMPLIANCE_OFFICER: "compliance",
    Role.TRADER: "trader",
    Role.RISK_MANAGER: "risk",
    Role.AUDITOR: "auditor",
    Role.ADMIN: "admin",
}


class Command(BaseCommand):
    help = "Create instrument specs, a demo account, role groups and one user per role (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Generate and print new passwords for existing users"
        )

    def handle(self, *args, reset_passwords: bool = False, **options):
        created = sum(instrument_upsert(**dict(spec))[1] for spec in INSTRUMENTS)
        self.stdout.write(f"instruments: {len(INSTRUMENTS)} ({created} new)")
        spec = dict(DEMO_ACCOUNT)
        spec["firm_lei"] = lei_with_check_digits(spec.pop("firm_lei_prefix"))
        account, new = account_upsert(**spec)
        self.stdout.write(f"account: {account} ({'new' if new else 'existing'})")
        if not RiskLimit.objects.filter(account=account, instrument__isnull=True).exists():
            risk_limit_save(actor="service:seed", account=account, reason="demo defaults", **DEMO_RISK_LIMITS)
            self.stdout.write(f"risk limits for {account.name}: {DEMO_RISK_LIMITS}")
        roles_sync()
        printed = False
        for role, username in USERS.items():
            user, password = user_ensure_with_role(username=username, role=role, reset_password=reset_passwords)
            if password:
                if not printed:
                    self.stdout.write(self.style.WARNING("Passwords (shown once, not stored anywhere):"))
                    printed = True
                self.stdout.write(f"  {username:<12} role={role:<20} password={password}")
            else:
                self.stdout.write(f"  {username:<12} role={role:<20} (exists; --reset-passwords for a new one)")
        for path in getattr(settings, "SEED_EXTENSIONS", ()):
            import_string(path)(stdout=self.stdout)
