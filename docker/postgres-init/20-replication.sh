#!/bin/sh
# Runs once, when the primary initialises its data directory: the role the streaming replica
# (compose service postgres-replica: pg_basebackup -R, then hot standby) connects as, and the
# pg_hba line that lets it in. Password: REPLICATION_PASSWORD from docker/.env.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v repl_password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'repl_password';
SQL
echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
