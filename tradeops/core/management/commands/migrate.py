"""``manage.py migrate`` as the database owner (``MIGRATE_DATABASE_URL``), not the runtime role.

Django's own command, run on a connection switched to the owner's credentials
(``tradeops.core.db_roles.database_owner``); its ``post_migrate`` step then grants the runtime
role its rights on every table (``runtime_grants_apply``). Without ``MIGRATE_DATABASE_URL`` it is
Django's command unchanged.
"""

from __future__ import annotations

from django.core.management.commands import migrate

from tradeops.core.db_roles import database_owner


class Command(migrate.Command):
    def handle(self, *args, **options):
        with database_owner(options["database"]):
            return super().handle(*args, **options)
