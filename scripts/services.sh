#!/usr/bin/env bash
# Local backing services for tradeops development and CI:
#   PostgreSQL  127.0.0.1:5432  (Debian's packages; database tradeops, two roles:
#               tradeops_owner/tradeops_owner owns the tables and runs migrations,
#               tradeops/tradeops is the application's runtime role: no superuser, no ownership)
#   Redis       127.0.0.1:6379  (Debian's redis-server)
#   Kafka       127.0.0.1:9092  (Apache Kafka 4.1.1, KRaft single node, jars via Maven)
#
# Usage: scripts/services.sh up|down|status|restart|clean|logs|kafka-classpath|kafka-run CLASS [ARGS...]
#
#   up               start whatever is not running yet and wait until each answers (idempotent)
#   down             stop the services this script started (leaves foreign ones alone)
#   status           print each service's state; exit 1 if any is down
#   restart          down, then up
#   clean            down, then delete all service data (keeps the downloaded Kafka jars)
#   logs             print where the logs are, and their last lines
#   kafka-classpath  print the directory holding the Kafka jars (use: java -cp "$DIR/*" ...)
#   kafka-run        run a Java main class from the Kafka jars, e.g.
#                      scripts/services.sh kafka-run org.apache.kafka.tools.ProducerPerformance --help
#
# Everything lives in ${TRADEOPS_SERVICES_DIR:-/var/tmp/tradeops-services} (outside the git
# checkout, so the postgres OS user can reach it whatever the checkout's permissions are).
# Environment knobs: TRADEOPS_SERVICES_DIR, TRADEOPS_PG_PORT (default 5432; a second PostgreSQL for
# experiments that must not touch the shared one), TRADEOPS_SERVICES_TIMEOUT (seconds per service wait,
# default 120), KAFKA_HEAP_OPTS (broker JVM heap, default "-Xms256m -Xmx1g"), KAFKA_TOOLS_JAVA_OPTS
# (JVM flags for kafka-run, default "-Xmx512m").
set -euo pipefail

SERVICES_DIR="${TRADEOPS_SERVICES_DIR:-/var/tmp/tradeops-services}"
WAIT_TIMEOUT="${TRADEOPS_SERVICES_TIMEOUT:-120}"

HOST=127.0.0.1
PG_PORT="${TRADEOPS_PG_PORT:-5432}"
PG_USER=tradeops # the runtime role (DATABASE_URL): rights granted per table by `manage.py migrate`
PG_PASSWORD=tradeops
PG_OWNER=tradeops_owner # owns the database and its tables; runs migrations (MIGRATE_DATABASE_URL)
PG_OWNER_PASSWORD=tradeops_owner
PG_DB=tradeops
REDIS_PORT=6379
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_VERSION=4.1.1
LOG4J_VERSION=2.24.3 # the log4j2 version kafka 4.1.1 itself depends on

PG_DIR="$SERVICES_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCK="$PG_DIR/run"
PG_LOG="$PG_DIR/log/postgres.log"
REDIS_DIR="$SERVICES_DIR/redis"
REDIS_CONF="$REDIS_DIR/redis.conf"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
KAFKA_DIR="$SERVICES_DIR/kafka"
KAFKA_JARS_DIR="$KAFKA_DIR/jars-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_JARS_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_TOOLS_LOG4J="$KAFKA_DIR/tools-log4j2.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_OUT="$KAFKA_LOGS/kafka.out"

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------------
# helpers

log() { printf '[services] %s\n' "$*" >&2; }
die() {
	printf '[services] ERROR: %s\n' "$*" >&2
	exit 1
}

# Print the last lines of a log file to stderr (for failure reports).
# stop_pid NAME PID SECONDS: SIGTERM, wait up to SECONDS for it to exit, then SIGKILL.
stop_pid() {
	local name=$1 pid=$2 grace=$3 i
	log "$name: stopping (pid $pid)"
	kill -TERM "$pid"
	for ((i = 0; i < grace; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 1
	done
	log "$name: still running after ${grace}s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	sleep 1
}

tail_log() {
	local file=$1 lines=${2:-40}
	if [[ -f $file ]]; then
		printf '[services] ---- last %s lines of %s ----\n' "$lines" "$file" >&2
		tail -n "$lines" "$file" >&2 || true
		printf '[services] ---- end of %s ----\n' "$file" >&2
	else
		printf '[services] (no log file at %s)\n' "$file" >&2
	fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
	timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# wait_for DESCRIPTION TIMEOUT CHECK_FUNCTION [ARGS...]: poll every second until CHECK succeeds.
wait_for() {
	local what=$1 limit=$2
	shift 2
	local start=$SECONDS
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - start >= limit)); then
			log "$what did not answer within ${limit}s"
			return 1
		fi
		sleep 1
	done
	log "$what answered after $((SECONDS - start))s"
}

# True when process $1 is alive and its command line contains $2.
pid_matches() {
	local pid=$1 pattern=$2
	[[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"
}

read_pid() { [[ -f $1 ]] && tr -dc '0-9' <"$1" || true; }

APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
	[[ $(id -u) -eq 0 ]] || die "need root to install Debian packages: $*"
	if ((APT_UPDATED == 0)); then
		log "apt-get update"
		apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2 9>&-
}

# Serialise concurrent invocations (two worktrees running `up` at once, say).
take_lock() {
	mkdir -p "$SERVICES_DIR"
	chmod 755 "$SERVICES_DIR" 2>/dev/null || true
	# Every daemon below is started with 9>&- so that it does not inherit (and keep) this lock.
	exec 9>"$SERVICES_DIR/services.lock"
	if ! flock -w 600 9; then
		die "another scripts/services.sh has held $SERVICES_DIR/services.lock for 10 minutes"
	fi
	LOCKED=1
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

PG_BIN=""
find_pg_bin() {
	# Newest major version installed under Debian's layout.
	PG_BIN=""
	local dir
	while read -r dir; do
		[[ -x $dir/postgres && -x $dir/pg_ctl && -x $dir/initdb ]] && PG_BIN=$dir
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
	return 0
}

# Run a command as the postgres OS user (postgres refuses to run as root).
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_creds_ok() {
	command -v psql >/dev/null || return 1
	PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" \
		-tAc 'select 1' 2>/dev/null | grep -qx 1
}

pg_owner_creds_ok() {
	PGPASSWORD=$PG_OWNER_PASSWORD PGCONNECT_TIMEOUT=3 psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_OWNER" -d "$PG_DB" \
		-tAc 'select 1' 2>/dev/null | grep -qx 1
}

pg_ours_running() {
	[[ -n $PG_BIN && -f $PG_DATA/PG_VERSION ]] || return 1
	as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_admin_sql() {
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres "$@"
}

# Two roles (docs/security.md): the owner runs migrations and owns every table; the runtime role
# the application connects as gets only the rights each table needs (granted after every
# `manage.py migrate`, tradeops/core/db_roles.py). Idempotent. On a machine set up by an older
# version of this script the runtime role is a superuser that owns the database and its tables:
# it is ALTERed down and everything it owns is handed to the owner, in every database (test
# databases included, so the owner can drop them).
pg_ensure_role_and_db() {
	log "postgres: ensuring owner role '$PG_OWNER', runtime role '$PG_USER' (no superuser, no ownership) and database '$PG_DB'"
	pg_admin_sql <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_OWNER') THEN
    CREATE ROLE $PG_OWNER LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN;
  END IF;
END
\$\$;
ALTER ROLE $PG_OWNER WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$PG_OWNER_PASSWORD';
ALTER ROLE $PG_USER WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$PG_PASSWORD';
SQL
	if ! pg_admin_sql -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -qx 1; then
		pg_admin_sql -c "CREATE DATABASE $PG_DB OWNER $PG_OWNER"
	fi
	local db
	while read -r db; do
		[[ -n $db ]] || continue
		if pg_admin_sql -d "$db" -tAc "SELECT 1 FROM pg_shdepend d JOIN pg_database b ON b.oid = d.dbid
				WHERE b.datname = current_database() AND d.deptype = 'o'
				AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = '$PG_USER') LIMIT 1" | grep -qx 1; then
			log "postgres: database $db: handing what $PG_USER owns to $PG_OWNER"
			pg_admin_sql -d "$db" -c "REASSIGN OWNED BY $PG_USER TO $PG_OWNER"
		fi
	done < <(pg_admin_sql -tAc "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate")
	while read -r db; do
		[[ -n $db ]] || continue
		log "postgres: database $db now owned by $PG_OWNER"
		pg_admin_sql -c "ALTER DATABASE \"$db\" OWNER TO $PG_OWNER"
	done < <(pg_admin_sql -tAc "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = '$PG_USER')")
}

pg_write_config() {
	# Rewritten on every start so that changes here take effect; included from postgresql.conf.
	cat >"$PG_DATA/tradeops.conf" <<CONF
# Managed by scripts/services.sh; rewritten on every start.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 128MB
log_timezone = 'UTC'
timezone = 'UTC'
CONF
	grep -qx "include 'tradeops.conf'" "$PG_DATA/postgresql.conf" ||
		printf "\ninclude 'tradeops.conf'\n" >>"$PG_DATA/postgresql.conf"
	cat >"$PG_DATA/pg_hba.conf" <<HBA
# Managed by scripts/services.sh; rewritten on every start.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 peer
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
HBA
	chown postgres:postgres "$PG_DATA/tradeops.conf" "$PG_DATA/pg_hba.conf" 2>/dev/null || true
}

# A Debian cluster the package install just auto-started would squat on 5432 without our role.
pg_stop_debian_clusters() {
	command -v pg_lsclusters >/dev/null || return 0
	local ver name port status
	while read -r ver name port status _; do
		if [[ $port == "$PG_PORT" && $status == online* ]]; then
			log "postgres: stopping Debian's cluster $ver/$name on port $port"
			pg_ctlcluster "$ver" "$name" stop 9>&- || true
		fi
	done < <(pg_lsclusters -h 2>/dev/null || true)
}

pg_up() {
	if pg_creds_ok; then
		find_pg_bin
		if pg_ours_running; then
			log "postgres: already up on $HOST:$PG_PORT (ours, data in $PG_DATA)"
			pg_ensure_role_and_db || die "postgres: could not set up the roles"
		elif pg_owner_creds_ok; then
			log "postgres: already up on $HOST:$PG_PORT (not started by this script; $PG_USER and $PG_OWNER credentials work)"
		else
			log "postgres: already up on $HOST:$PG_PORT (not started by this script; $PG_USER works but $PG_OWNER/$PG_OWNER_PASSWORD does not: create that role as docs/security.md says)"
		fi
		return 0
	fi

	local installed_now=0
	find_pg_bin
	if [[ -z $PG_BIN ]]; then
		apt_install postgresql
		installed_now=1
		find_pg_bin
		[[ -n $PG_BIN ]] || die "postgres: installed 'postgresql' but found no server under /usr/lib/postgresql/*/bin"
	fi
	command -v psql >/dev/null || {
		apt_install postgresql-client
		installed_now=1
	}
	if [[ $(id -u) -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "postgres: no 'postgres' OS user (is Debian's postgresql package installed?)"
	fi
	((installed_now)) && pg_stop_debian_clusters

	if pg_ours_running; then
		log "postgres: our server is running but $PG_USER login failed; repairing role/database"
	else
		if port_open "$PG_PORT" && [[ ${CI:-} == true ]] && ((installed_now == 0)); then
			# On a CI machine a Debian cluster squatting on the port is never wanted.
			pg_stop_debian_clusters
		fi
		if port_open "$PG_PORT"; then
			log "postgres: something else listens on $HOST:$PG_PORT and does not accept $PG_USER/$PG_PASSWORD:"
			ss -ltnp "sport = :$PG_PORT" >&2 2>/dev/null || true
			die "postgres: port $PG_PORT is taken; stop that server (or give it a $PG_USER role/database) and retry"
		fi
		mkdir -p "$PG_DIR" "$PG_SOCK" "$(dirname "$PG_LOG")"
		chmod 755 "$SERVICES_DIR" "$PG_DIR"
		if [[ $(id -u) -eq 0 ]]; then
			chown postgres:postgres "$PG_SOCK" "$(dirname "$PG_LOG")"
			[[ -d $PG_DATA ]] && chown -R postgres:postgres "$PG_DATA"
			as_pg test -x "$PG_DIR" ||
				die "postgres: the postgres OS user cannot reach $PG_DIR (a parent directory is not world-executable?); set TRADEOPS_SERVICES_DIR elsewhere"
		fi

		local bin_major
		bin_major=$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
		if [[ -f $PG_DATA/PG_VERSION ]]; then
			local data_major
			data_major=$(cat "$PG_DATA/PG_VERSION")
			[[ $data_major == "$bin_major" ]] ||
				die "postgres: data dir $PG_DATA is version $data_major but the server is $bin_major; run 'scripts/services.sh clean' to start afresh"
		else
			log "postgres: initdb ($PG_BIN, version $bin_major) in $PG_DATA"
			rm -rf "$PG_DATA"
			mkdir -p "$PG_DATA"
			if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$PG_DATA"; fi
			chmod 700 "$PG_DATA"
			if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C \
				--auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1; then
				tail_log "$PG_DIR/initdb.log"
				rm -rf "$PG_DATA"
				die "postgres: initdb failed"
			fi
		fi
		pg_write_config

		log "postgres: starting on $HOST:$PG_PORT (log: $PG_LOG)"
		if ! as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$WAIT_TIMEOUT" >/dev/null 2>&1 9>&-; then
			tail_log "$PG_LOG"
			die "postgres: failed to start within ${WAIT_TIMEOUT}s"
		fi
	fi

	if ! wait_for "postgres (socket)" "$WAIT_TIMEOUT" as_pg "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT"; then
		tail_log "$PG_LOG"
		die "postgres: server not ready"
	fi
	if ! pg_ensure_role_and_db; then
		tail_log "$PG_LOG"
		die "postgres: could not create role/database"
	fi
	if ! wait_for "postgres ($PG_USER@$HOST:$PG_PORT/$PG_DB)" 30 pg_creds_ok; then
		tail_log "$PG_LOG"
		die "postgres: $PG_USER cannot log in over TCP"
	fi
	log "postgres: up"
}

pg_down() {
	find_pg_bin
	if pg_ours_running; then
		log "postgres: stopping"
		if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null 2>&1; then
			tail_log "$PG_LOG"
			die "postgres: pg_ctl stop failed"
		fi
		log "postgres: stopped"
	elif pg_creds_ok; then
		log "postgres: running on $HOST:$PG_PORT but not started by this script; leaving it alone"
	else
		log "postgres: not running"
	fi
}

pg_status() {
	find_pg_bin
	if pg_creds_ok; then
		if pg_ours_running; then
			echo "postgres  up    $HOST:$PG_PORT  db=$PG_DB user=$PG_USER owner=$PG_OWNER  data=$PG_DATA"
		else
			echo "postgres  up    $HOST:$PG_PORT  db=$PG_DB user=$PG_USER  (external, not managed here)"
		fi
		return 0
	fi
	if pg_ours_running; then
		echo "postgres  down  server process running but $PG_USER login fails (log: $PG_LOG)"
	elif port_open "$PG_PORT"; then
		echo "postgres  down  port $PG_PORT taken by something that rejects $PG_USER/$PG_PASSWORD"
	else
		echo "postgres  down"
	fi
	return 1
}

# ---------------------------------------------------------------------------------------------
# Redis

redis_ping() {
	if command -v redis-cli >/dev/null; then
		[[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
	else
		# No client: speak RESP over bash's /dev/tcp.
		timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$REDIS_PORT; printf 'PING\r\n' >&3; read -r line <&3; [[ \$line == +PONG* ]]" 2>/dev/null
	fi
}

redis_ours_pid() {
	local pid
	pid=$(read_pid "$REDIS_PID")
	pid_matches "$pid" redis-server && echo "$pid"
}

redis_up() {
	if redis_ping; then
		if [[ -n $(redis_ours_pid) ]]; then
			log "redis: already up on $HOST:$REDIS_PORT (ours)"
		else
			log "redis: already up on $HOST:$REDIS_PORT (not started by this script)"
		fi
		return 0
	fi
	if ! command -v redis-server >/dev/null; then
		apt_install redis-server
		# The package may have started its own daemon on 6379; that is as good as ours.
		if redis_ping; then
			log "redis: the freshly installed package's server answers on $HOST:$REDIS_PORT; using it"
			return 0
		fi
	fi
	if port_open "$REDIS_PORT"; then
		ss -ltnp "sport = :$REDIS_PORT" >&2 2>/dev/null || true
		die "redis: port $REDIS_PORT is taken by something that does not answer PING"
	fi
	mkdir -p "$REDIS_DIR"
	rm -f "$REDIS_PID"
	cat >"$REDIS_CONF" <<CONF
# Managed by scripts/services.sh; rewritten on every start.
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile $REDIS_PID
logfile $REDIS_LOG
loglevel notice
dir $REDIS_DIR
databases 16
save ""
appendonly no
CONF
	log "redis: starting on $HOST:$REDIS_PORT (log: $REDIS_LOG)"
	if ! redis-server "$REDIS_CONF" >>"$REDIS_LOG" 2>&1 9>&-; then
		tail_log "$REDIS_LOG"
		die "redis: redis-server failed to start"
	fi
	if ! wait_for "redis ($HOST:$REDIS_PORT)" "$WAIT_TIMEOUT" redis_ping; then
		tail_log "$REDIS_LOG"
		die "redis: no PONG"
	fi
	log "redis: up"
}

redis_down() {
	local pid
	pid=$(redis_ours_pid || true)
	if [[ -n $pid ]]; then
		stop_pid redis "$pid" 30
		rm -f "$REDIS_PID"
		log "redis: stopped"
	elif redis_ping; then
		log "redis: running on $HOST:$REDIS_PORT but not started by this script; leaving it alone"
	else
		log "redis: not running"
	fi
}

redis_status() {
	if redis_ping; then
		if [[ -n $(redis_ours_pid) ]]; then
			echo "redis     up    $HOST:$REDIS_PORT  pid=$(redis_ours_pid)"
		else
			echo "redis     up    $HOST:$REDIS_PORT  (external, not managed here)"
		fi
		return 0
	fi
	echo "redis     down"
	return 1
}

# ---------------------------------------------------------------------------------------------
# Kafka

kafka_write_pom() {
	mkdir -p "$KAFKA_JARS_DIR"
	cat >"$KAFKA_JARS_DIR/pom.xml.new" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/services.sh: only used to fetch the Kafka jars. -->
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.tradeops</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- Kafka logs through slf4j 1.7 and configures log4j2; bind the one to the other. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
	if cmp -s "$KAFKA_JARS_DIR/pom.xml.new" "$KAFKA_JARS_DIR/pom.xml" 2>/dev/null; then
		rm -f "$KAFKA_JARS_DIR/pom.xml.new"
	else
		mv "$KAFKA_JARS_DIR/pom.xml.new" "$KAFKA_JARS_DIR/pom.xml"
	fi
}

# Download the jars once; a marker holding the pom's checksum says the copy is complete.
kafka_ensure_jars() {
	kafka_write_pom
	local sum
	sum=$(sha256sum "$KAFKA_JARS_DIR/pom.xml" | cut -d' ' -f1)
	if [[ -f $KAFKA_LIBS/.complete && $(cat "$KAFKA_LIBS/.complete") == "$sum" ]]; then
		return 0
	fi
	# Not there yet: take the lock (kafka-classpath/kafka-run may race with `up`) and look again.
	[[ -n ${LOCKED:-} ]] || take_lock
	if [[ -f $KAFKA_LIBS/.complete && $(cat "$KAFKA_LIBS/.complete") == "$sum" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || die "kafka: mvn not found (need Maven to fetch the Kafka $KAFKA_VERSION jars)"
	log "kafka: fetching Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS"
	# Fill a fresh directory, then swap it in, so a running broker never sees a half-copied one.
	local tmp="$KAFKA_LIBS.tmp" mvn_log="$KAFKA_JARS_DIR/mvn.log"
	rm -rf "$tmp"
	if ! (cd "$KAFKA_JARS_DIR" && mvn -q -B dependency:copy-dependencies \
		-DoutputDirectory="$tmp" -DincludeScope=runtime >"$mvn_log" 2>&1); then
		tail_log "$mvn_log"
		die "kafka: mvn dependency:copy-dependencies failed"
	fi
	ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar "$tmp"/kafka-tools-"$KAFKA_VERSION".jar >/dev/null ||
		die "kafka: jars missing after Maven ran (see $mvn_log)"
	echo "$sum" >"$tmp/.complete"
	rm -rf "$KAFKA_LIBS.old"
	if [[ -d $KAFKA_LIBS ]]; then mv "$KAFKA_LIBS" "$KAFKA_LIBS.old"; fi
	mv "$tmp" "$KAFKA_LIBS"
	rm -rf "$KAFKA_LIBS.old"
	log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

need_java() {
	command -v java >/dev/null || die "kafka: java not found (Kafka $KAFKA_VERSION needs Java 17+)"
	local major
	major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)
	[[ ${major%%.*} -ge 17 ]] 2>/dev/null || die "kafka: Java ${major:-?} found; Kafka $KAFKA_VERSION needs Java 17+"
}

kafka_write_config() {
	mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
	cat >"$KAFKA_CONF" <<CONF
# Managed by scripts/services.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=268435456
CONF
	cat >"$KAFKA_LOG4J" <<'CONF'
# Managed by scripts/services.sh.
status = warn
name = tradeops-kafka
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 50MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
logger.request.name = kafka.request.logger
logger.request.level = WARN
CONF
	cat >"$KAFKA_TOOLS_LOG4J" <<'CONF'
# Managed by scripts/services.sh: command-line tools log warnings to stderr.
status = warn
name = tradeops-kafka-tools
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
CONF
}

# Send a Metadata v4 request and succeed when the answer lists at least one broker and a
# controller: the broker is not just listening but serving requests. Python's standard library
# only, so it works before any virtualenv exists.
kafka_probe() {
	if ! command -v python3 >/dev/null; then
		port_open "$KAFKA_PORT"
		return
	fi
	python3 - "$HOST" "$KAFKA_PORT" <<'PY'
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
client_id = b"tradeops-services"
# Request header v1 (api_key=3 Metadata, api_version=4, correlation_id, client_id),
# body v4: topics = empty array (no topics), allow_auto_topic_creation = false.
payload = struct.pack(">hhih", 3, 4, 4242, len(client_id)) + client_id + struct.pack(">i?", 0, False)
try:
    with socket.create_connection((host, port), timeout=3) as s:
        s.settimeout(5)
        s.sendall(struct.pack(">i", len(payload)) + payload)

        def recv(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise EOFError("connection closed")
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", recv(4))
        data = recv(size)
except Exception as exc:  # noqa: BLE001
    print(f"kafka: no metadata answer: {exc}")
    sys.exit(1)

off = 0

def take(fmt):
    global off
    vals = struct.unpack_from(fmt, data, off)
    off += struct.calcsize(fmt)
    return vals

def take_str():
    global off
    (n,) = take(">h")
    if n < 0:
        return None
    s = data[off : off + n].decode()
    off += n
    return s

corr, _throttle, n_brokers = take(">iii")
brokers = []
for _ in range(n_brokers):
    (node_id,) = take(">i")
    bhost = take_str()
    (bport,) = take(">i")
    take_str()  # rack
    brokers.append(f"{node_id}@{bhost}:{bport}")
cluster_id = take_str()
(controller,) = take(">i")
if corr != 4242 or not brokers or controller < 0:
    print(f"kafka: not ready (brokers={brokers}, controller={controller})")
    sys.exit(1)
print(f"cluster {cluster_id}, brokers {', '.join(brokers)}, controller {controller}")
PY
}

# A freshly formatted broker creates __consumer_offsets on the first FindCoordinator request and
# then loads its partitions for a few seconds; a consumer group that joins meanwhile is told
# "coordinator load in progress" and a test with a short idle timeout can give up before it has
# joined. Ask for a group coordinator (FindCoordinator v0) until one answers without an error.
kafka_warm_coordinator() {
	command -v python3 >/dev/null || return 0
	python3 - "$HOST" "$KAFKA_PORT" "$WAIT_TIMEOUT" <<'PY'
import socket, struct, sys, time

host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
client_id, group = b"tradeops-services", b"tradeops-services-warmup"
payload = struct.pack(">hhih", 10, 0, 4243, len(client_id)) + client_id + struct.pack(">h", len(group)) + group
deadline = time.monotonic() + timeout
error = None
while time.monotonic() < deadline:
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.settimeout(5)
            s.sendall(struct.pack(">i", len(payload)) + payload)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    raise EOFError("connection closed")
                data += chunk
        _corr, error = struct.unpack_from(">ih", data, 4)
        if error == 0:
            sys.exit(0)
    except Exception as exc:  # noqa: BLE001
        error = str(exc)
    time.sleep(0.5)
print(f"kafka: no group coordinator within {timeout:.0f}s (last error {error})")
sys.exit(1)
PY
}

kafka_ours_pid() {
	local pid
	pid=$(read_pid "$KAFKA_PID")
	pid_matches "$pid" kafka.Kafka && echo "$pid"
}

kafka_java_opts() {
	# shellcheck disable=SC2206
	local heap=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g})
	printf '%s\n' "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
		-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
}

kafka_up() {
	if kafka_probe >/dev/null 2>&1; then
		if [[ -n $(kafka_ours_pid) ]]; then
			log "kafka: already up on $HOST:$KAFKA_PORT (ours)"
		else
			log "kafka: already up on $HOST:$KAFKA_PORT (not started by this script)"
		fi
		return 0
	fi
	need_java
	kafka_ensure_jars
	kafka_write_config

	local pid
	pid=$(kafka_ours_pid || true)
	if [[ -z $pid ]]; then
		rm -f "$KAFKA_PID"
		local p
		for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
			if port_open "$p"; then
				ss -ltnp "sport = :$p" >&2 2>/dev/null || true
				die "kafka: port $p is taken by something that is not a working Kafka broker"
			fi
		done

		if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
			local cluster_id
			if [[ -s $KAFKA_DIR/cluster.id ]]; then
				cluster_id=$(cat "$KAFKA_DIR/cluster.id")
			else
				cluster_id=$(java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" \
					kafka.tools.StorageTool random-uuid | tail -n1)
				echo "$cluster_id" >"$KAFKA_DIR/cluster.id"
			fi
			log "kafka: formatting $KAFKA_DATA (cluster id $cluster_id)"
			if ! java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" \
				kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONF" >"$KAFKA_LOGS/format.log" 2>&1; then
				tail_log "$KAFKA_LOGS/format.log"
				die "kafka: storage format failed"
			fi
		fi

		log "kafka: starting Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (logs: $KAFKA_LOGS)"
		# Keep the previous run's logs aside so a failure report shows only this run.
		local f
		for f in server.log kafka.out; do
			if [[ -f $KAFKA_LOGS/$f ]]; then mv -f "$KAFKA_LOGS/$f" "$KAFKA_LOGS/$f.prev"; fi
		done
		local -a opts
		mapfile -t opts < <(kafka_java_opts)
		nohup java "${opts[@]}" \
			-Dkafka.logs.dir="$KAFKA_LOGS" \
			-Dlog4j2.configurationFile="$KAFKA_LOG4J" \
			-cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" \
			>"$KAFKA_OUT" 2>&1 </dev/null 9>&- &
		pid=$!
		echo "$pid" >"$KAFKA_PID"
	else
		log "kafka: process $pid is running but not answering yet; waiting"
	fi

	local start=$SECONDS
	until kafka_probe >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail_log "$KAFKA_OUT"
			tail_log "$KAFKA_LOGS/server.log"
			rm -f "$KAFKA_PID"
			die "kafka: the broker process exited during startup"
		fi
		if ((SECONDS - start >= WAIT_TIMEOUT)); then
			tail_log "$KAFKA_OUT"
			tail_log "$KAFKA_LOGS/server.log"
			die "kafka: no metadata answer on $HOST:$KAFKA_PORT within ${WAIT_TIMEOUT}s (pid $pid left running; 'down' stops it)"
		fi
		sleep 1
	done
	kafka_warm_coordinator || die "kafka: the broker answers metadata but serves no consumer group"
	log "kafka: up after $((SECONDS - start))s ($(kafka_probe))"
}

kafka_down() {
	local pid
	pid=$(kafka_ours_pid || true)
	if [[ -n $pid ]]; then
		stop_pid kafka "$pid" 60
		rm -f "$KAFKA_PID"
		log "kafka: stopped"
	elif kafka_probe >/dev/null 2>&1; then
		log "kafka: running on $HOST:$KAFKA_PORT but not started by this script; leaving it alone"
	else
		rm -f "$KAFKA_PID"
		log "kafka: not running"
	fi
}

kafka_status() {
	local info
	if info=$(kafka_probe 2>/dev/null); then
		if [[ -n $(kafka_ours_pid) ]]; then
			echo "kafka     up    $HOST:$KAFKA_PORT  pid=$(kafka_ours_pid)  $info"
		else
			echo "kafka     up    $HOST:$KAFKA_PORT  (external, not managed here)  $info"
		fi
		return 0
	fi
	if [[ -n $(kafka_ours_pid) ]]; then
		echo "kafka     down  process $(kafka_ours_pid) running but not answering (log: $KAFKA_LOGS/server.log)"
	else
		echo "kafka     down"
	fi
	return 1
}

# ---------------------------------------------------------------------------------------------

cmd_up() {
	take_lock
	local t0=$SECONDS
	pg_up
	redis_up
	kafka_up
	log "all services up ($((SECONDS - t0))s): postgres $HOST:$PG_PORT, redis $HOST:$REDIS_PORT, kafka $HOST:$KAFKA_PORT"
}

cmd_down() {
	take_lock
	kafka_down
	redis_down
	pg_down
}

cmd_status() {
	local rc=0
	pg_status || rc=1
	redis_status || rc=1
	kafka_status || rc=1
	return $rc
}

cmd_clean() {
	cmd_down
	log "deleting service data under $SERVICES_DIR (keeping Kafka jars)"
	rm -rf "$PG_DIR" "$REDIS_DIR" "$KAFKA_DATA" "$KAFKA_LOGS" "$KAFKA_DIR/cluster.id" "$KAFKA_PID"
}

cmd_logs() {
	local f
	for f in "$PG_LOG" "$REDIS_LOG" "$KAFKA_OUT" "$KAFKA_LOGS/server.log"; do
		tail_log "$f" 20 2>&1
	done
}

cmd_kafka_classpath() {
	need_java
	kafka_ensure_jars
	echo "$KAFKA_LIBS"
}

cmd_kafka_run() {
	[[ $# -ge 1 ]] || die "usage: scripts/services.sh kafka-run MAIN_CLASS [ARGS...]"
	need_java
	kafka_ensure_jars
	[[ -f $KAFKA_TOOLS_LOG4J ]] || kafka_write_config
	exec 9>&- # release the lock kafka_ensure_jars may have taken; the tool can run for long
	# shellcheck disable=SC2086 # KAFKA_TOOLS_JAVA_OPTS is a list of JVM flags
	exec java ${KAFKA_TOOLS_JAVA_OPTS:--Xmx512m} -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	restart)
		cmd_down
		cmd_up
		;;
	clean) cmd_clean ;;
	logs) cmd_logs ;;
	kafka-classpath) cmd_kafka_classpath ;;
	kafka-run) cmd_kafka_run "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

# Sourced (scripts/cluster.sh reuses the functions above): define, do not run.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
