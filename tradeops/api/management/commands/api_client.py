"""``manage.py api_client create|list|revoke``: the integration API's OAuth2 clients.

    python manage.py api_client create --name risk-feed --role risk_manager --scopes trading:read risk:write
    python manage.py api_client list [--all]
    python manage.py api_client revoke --name risk-feed --reason "contract ended"

``create`` prints the client id and secret once (only the secret's hash is kept). A runner: it
parses, then calls one service or selector of ``tradeops.api``.
"""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from tradeops.api.matrix import Scope, scopes_for_role
from tradeops.api.selectors import api_client_get, api_client_list
from tradeops.api.services import api_client_create, api_client_revoke
from tradeops.audit.actors import username_actor
from tradeops.core.errors import ApplicationError
from tradeops.core.roles import Role


class Command(BaseCommand):
    help = "Create, list or revoke OAuth2 clients of the integration API (each bound to one role)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a client; prints its id and secret once")
        create.add_argument("--name", required=True, help="letters, digits, '-' or '_'")
        create.add_argument("--role", required=True, choices=[r.value for r in Role])
        create.add_argument(
            "--scopes",
            required=True,
            nargs="+",
            help=f"space- or comma-separated, within the role's: {', '.join(s.value for s in Scope)}",
        )
        create.add_argument("--rate", default="", help='its own throttle, e.g. "600/min" (default API_THROTTLE_CLIENT)')
        create.add_argument("--user", default="", help="who creates it (recorded); default: the OS user")
        listing = sub.add_parser("list", help="list active clients")
        listing.add_argument("--all", action="store_true", help="include revoked clients")
        revoke = sub.add_parser("revoke", help="revoke a client: its tokens stop working at once")
        revoke.add_argument("--name", required=True)
        revoke.add_argument("--reason", required=True)
        revoke.add_argument("--user", default="", help="who revokes it (recorded); default: the OS user")

    def _actor(self, options) -> str:
        return (
            username_actor(options["user"])
            if options["user"]
            else f"service:manage.py api_client ({getpass.getuser()})"
        )

    def handle(self, *args, **options):
        try:
            getattr(self, f"_{options['action']}")(options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None

    def _create(self, options):
        scopes = [s for chunk in options["scopes"] for s in chunk.replace(",", " ").split()]
        client, secret = api_client_create(
            name=options["name"],
            role=options["role"],
            scopes=scopes,
            throttle_rate=options["rate"],
            actor=self._actor(options),
        )
        self.stdout.write(f"API client {client.name}: role {client.role}, scopes {' '.join(client.scopes)}")
        self.stdout.write(f"client_id:     {client.application.client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write("The secret is shown once; only its hash is kept. Get a token with:")
        self.stdout.write('  curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials <host>/o/token/')

    def _list(self, options):
        clients = list(api_client_list(include_revoked=options["all"]))
        if not clients:
            self.stdout.write("no API clients")
            return
        for client in clients:
            state = "active"
            if client.revoked_at:
                state = f"revoked {client.revoked_at:%Y-%m-%d %H:%M} by {client.revoked_by}"
            allowed = " ".join(sorted(scopes_for_role(client.role)))
            self.stdout.write(
                f"{client.name:24} {client.role:18} {' '.join(client.scopes):40} {client.throttle_rate or '-':10} "
                f"{client.application.client_id}  {state}  (role allows: {allowed})"
            )

    def _revoke(self, options):
        client = api_client_revoke(
            client=api_client_get(name=options["name"]), actor=self._actor(options), reason=options["reason"]
        )
        self.stdout.write(f"API client {client.name} revoked at {client.revoked_at.isoformat()}")
