"""``manage.py flush`` as the database owner: the runtime role has no ``TRUNCATE``.

Tests need it (Django's ``TransactionTestCase`` empties every table after each test). Only on a
test database does the flush also put a flush permit in ``audit_flush_permit`` for its duration,
so the audit triggers let the append-only tables be emptied; anywhere else they still refuse,
so a flush of a production database fails on the audit trail (migration 0002 of the audit app).
"""

from __future__ import annotations

from django.core.management.commands import flush

from tradeops.audit.testing import flush_permit
from tradeops.core.db_roles import database_owner


class Command(flush.Command):
    def handle(self, **options):
        with database_owner(options["database"]), flush_permit(options["database"]):
            return super().handle(**options)
