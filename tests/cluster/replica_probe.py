"""Read a cluster test database through the replica router (run as a process with the cluster
test's environment: ``DATABASE_URL`` on the primary, ``DATABASE_REPLICA_URL`` on the streaming
replica, same database). Writes one position on the primary, waits until the replica has
replayed that WAL, reads it back through a read-only selector, and prints what happened as JSON:
which server answered each alias, the queries each connection ran, and the replica's answer to a
write.

    python -m tests.cluster.replica_probe
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    django.setup()
    from django.db import DatabaseError, connections
    from django.test.utils import CaptureQueriesContext

    from tradeops.core.db_router import REPLICA
    from trading.models import Instrument, Position, TradingAccount
    from trading.selectors import position_list

    primary, replica = connections["default"], connections[REPLICA]

    def server(conn) -> dict:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery(), current_database(), inet_server_port()")
            in_recovery, database, port = cursor.fetchone()
        return {"in_recovery": in_recovery, "database": database, "port": port}

    position = Position.objects.create(
        account=TradingAccount.objects.order_by("pk").first(),
        instrument=Instrument.objects.order_by("pk").first(),
        net_quantity=Decimal("1.5"),
        updated_at=datetime.now(UTC),
    )
    with primary.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        lsn = cursor.fetchone()[0]
    deadline = time.monotonic() + 60
    while True:  # the replica is asynchronous: read once it has replayed the write
        with replica.cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
            if cursor.fetchone()[0] or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    with CaptureQueriesContext(replica) as on_replica, CaptureQueriesContext(primary) as on_primary:
        rows = list(position_list(open_only=True))
    try:
        with replica.cursor() as cursor:
            cursor.execute(f"UPDATE {Position._meta.db_table} SET net_quantity = net_quantity WHERE false")
        write = "accepted"
    except DatabaseError as exc:
        write = str(exc).strip()
    print(
        json.dumps(
            {
                "primary": server(primary),
                "replica": server(replica),
                "created": position.pk,
                "rows": [p.pk for p in rows],
                "rows_from": sorted({p._state.db for p in rows}),
                "replica_queries": len(on_replica.captured_queries),
                "primary_queries": len(on_primary.captured_queries),
                "replica_write": write,
            }
        )
    )


if __name__ == "__main__":
    main()
