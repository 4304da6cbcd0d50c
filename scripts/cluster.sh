#!/usr/bin/env bash
# The production topology as plain processes on one machine (issue 18; docs/topology.md):
#   Kafka       3 brokers in KRaft mode (each broker+controller), 127.0.0.1:19092-19094, controllers
#               19192-19194; replication factor 3, min.insync.replicas 2 (same jars as services.sh)
#   PostgreSQL  primary 127.0.0.1:15432 + streaming replica 127.0.0.1:15433 (pg_basebackup, hot standby)
#   Redis       127.0.0.1:16379
#   gateway     nginx, HTTPS 127.0.0.1:18443 (mTLS on /api/ and /o/), HTTP 127.0.0.1:18080 (redirect)
#   the app     every process of tradeops/topology.py (stages, execution worker, outbox relay,
#               Celery worker and beat, web tier on 127.0.0.1:18000), one process each
#
# Usage: scripts/cluster.sh up|down|status|infra|apps|setup|env|replay [LIMIT]|replay-flat [LIMIT]|FAULT (below)
#
#   up            infra, then migrate + provision topics + seed + train models once, then the app
#   infra         only Kafka, PostgreSQL (primary + replica), Redis and nginx
#   apps          only the app processes (infra must be up)
#   setup         only migrate + provision topics + seed + train (idempotent)
#   down          stop everything this script started (never the shared services of services.sh)
#   status        each part's state; exit 1 if one is down
#   env           print the environment the app processes get (eval "$(scripts/cluster.sh env)")
#   kill-broker N / start-broker N   SIGKILL / start Kafka broker N (1-3): fault drills
#   pg-restart / redis-stop / redis-start   restart the primary, stop or start Redis: fault drills
#   replay [N]    replay the next N bars (default 300) of the real EURUSD data onto the cluster's Kafka,
#                 each event settled through every stage first (--settle), so orders and fills
#                 carry their bars' market time, as in the embedded run; replay-flat [N]: flat out
#                 (after the last bar an earlier replay got to: it resumes; --from-start refused)
#
# Data and logs live in ${TRADEOPS_CLUSTER_DIR:-/var/tmp/tradeops-cluster}. The shared services on
# 5432/6379/9092 are never touched: this script reuses services.sh's functions with its own ports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED_SERVICES_DIR="${TRADEOPS_SERVICES_DIR:-/var/tmp/tradeops-services}"
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

CLUSTER_DIR="${TRADEOPS_CLUSTER_DIR:-/var/tmp/tradeops-cluster}"
SERVICES_DIR="$CLUSTER_DIR" # services.sh's lock and helpers work on the cluster's folder
# The jars services.sh fetched once (reused, never fetched twice).
KAFKA_JARS_DIR="$SHARED_SERVICES_DIR/kafka/jars-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_JARS_DIR/libs"

KAFKA_BROKER_PORTS=(19092 19093 19094)
KAFKA_CTRL_PORTS=(19192 19193 19194)
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
PG_PRIMARY_PORT=15432
PG_REPLICA_PORT=15433
PG_REPL_USER=replicator
PG_REPL_PASSWORD=replicator
CLUSTER_REDIS_PORT=16379
GATEWAY_HTTPS_PORT=18443
GATEWAY_HTTP_PORT=18080
WEB_PORT=18000
APP_DIR="$CLUSTER_DIR/app"
NGINX_DIR="$CLUSTER_DIR/nginx"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

clog() { printf '[cluster] %s\n' "$*" >&2; }

bootstrap_servers() {
	local IFS=,
	local -a list=()
	local p
	for p in "${KAFKA_BROKER_PORTS[@]}"; do list+=("$HOST:$p"); done
	echo "${list[*]}"
}

app_env() {
	cat <<ENV
export DJANGO_SETTINGS_MODULE=tradeops.settings.local
export DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PRIMARY_PORT/$PG_DB
export MIGRATE_DATABASE_URL=postgres://$PG_OWNER:$PG_OWNER_PASSWORD@$HOST:$PG_PRIMARY_PORT/$PG_DB
export DATABASE_REPLICA_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_REPLICA_PORT/$PG_DB
export REDIS_URL=redis://$HOST:$CLUSTER_REDIS_PORT/0
export KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_servers)
export EVENT_BUS=kafka
export CLUSTER_WEB_PORT=$WEB_PORT
export BEHIND_TLS_GATEWAY=1
export DEBUG=0
export EXECUTION_PAPER_JOURNAL_DIR=$CLUSTER_DIR/paper-journal
export EXECUTION_STATE_DIR=$CLUSTER_DIR/execution
export ML_MODEL_DIR=$CLUSTER_DIR/models
export REPORTS_DIR=$CLUSTER_DIR/reports
export AUDIT_CHECKPOINT_DIR=$CLUSTER_DIR/audit-checkpoints
ENV
}

# ---------------------------------------------------------------------------------------------
# Kafka: three nodes, each broker and controller (KRaft, static quorum)

kafka_node_dir() { echo "$CLUSTER_DIR/kafka/node-$1"; }
kafka_node_pid() {
	local pid
	pid=$(read_pid "$(kafka_node_dir "$1")/kafka.pid")
	pid_matches "$pid" kafka.Kafka && echo "$pid"
}

kafka_node_config() {
	local n=$1 dir voters="" i
	dir=$(kafka_node_dir "$n")
	for i in 1 2 3; do voters+="${voters:+,}$i@$HOST:${KAFKA_CTRL_PORTS[i - 1]}"; done
	mkdir -p "$dir/data" "$dir/logs"
	cat >"$dir/server.properties" <<CONF
# Managed by scripts/cluster.sh; rewritten on every start.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:${KAFKA_BROKER_PORTS[n - 1]},CONTROLLER://$HOST:${KAFKA_CTRL_PORTS[n - 1]}
advertised.listeners=PLAINTEXT://$HOST:${KAFKA_BROKER_PORTS[n - 1]}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
unclean.leader.election.enable=false
log.retention.hours=24
log.segment.bytes=67108864
CONF
}

kafka_node_start() {
	local n=$1 dir pid
	dir=$(kafka_node_dir "$n")
	if [[ -n $(kafka_node_pid "$n") ]]; then
		clog "kafka-$n: already running"
		return 0
	fi
	kafka_node_config "$n"
	[[ -f $KAFKA_LOG4J ]] || kafka_write_config
	if [[ ! -f $dir/data/meta.properties ]]; then
		local cluster_id
		if [[ ! -s $CLUSTER_DIR/kafka/cluster.id ]]; then
			java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" kafka.tools.StorageTool random-uuid |
				tail -n1 >"$CLUSTER_DIR/kafka/cluster.id"
		fi
		cluster_id=$(cat "$CLUSTER_DIR/kafka/cluster.id")
		java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" kafka.tools.StorageTool format \
			-t "$cluster_id" -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 ||
			{
				tail_log "$dir/logs/format.log"
				die "kafka-$n: storage format failed"
			}
	fi
	local -a opts
	mapfile -t opts < <(kafka_java_opts)
	clog "kafka-$n: starting on $HOST:${KAFKA_BROKER_PORTS[n - 1]} (controller ${KAFKA_CTRL_PORTS[n - 1]})"
	nohup java "${opts[@]}" -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
		-cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/logs/kafka.out" 2>&1 </dev/null 9>&- &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"
}

kafka_cluster_up() {
	need_java
	kafka_ensure_jars
	KAFKA_DIR="$CLUSTER_DIR/kafka"
	KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
	KAFKA_TOOLS_LOG4J="$KAFKA_DIR/tools-log4j2.properties"
	KAFKA_CONF="$KAFKA_DIR/unused.properties"
	KAFKA_DATA="$KAFKA_DIR/unused-data"
	KAFKA_LOGS="$KAFKA_DIR/logs"
	mkdir -p "$KAFKA_DIR"
	kafka_write_config
	local n
	for n in 1 2 3; do kafka_node_start "$n"; done
	for n in 1 2 3; do
		KAFKA_PORT=${KAFKA_BROKER_PORTS[n - 1]}
		wait_for "kafka-$n" "$WAIT_TIMEOUT" kafka_probe || {
			tail_log "$(kafka_node_dir "$n")/logs/server.log"
			die "kafka-$n did not answer"
		}
	done
	KAFKA_PORT=${KAFKA_BROKER_PORTS[0]}
	wait_for "kafka: three brokers registered" "$WAIT_TIMEOUT" kafka_three_brokers || die "kafka: fewer than 3 brokers"
	kafka_warm_coordinator || die "kafka: no group coordinator"
}

kafka_three_brokers() {
	local info
	info=$(KAFKA_PORT=${KAFKA_BROKER_PORTS[0]} kafka_probe) || return 1
	[[ $(grep -o '[0-9]@' <<<"$info" | wc -l) -ge 3 ]]
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: primary (services.sh's pg_up on other ports and folders) + streaming replica

pg_primary_vars() {
	PG_PORT=$PG_PRIMARY_PORT
	PG_DIR="$CLUSTER_DIR/postgres-primary"
	PG_DATA="$PG_DIR/data"
	PG_SOCK="$PG_DIR/run"
	PG_LOG="$PG_DIR/log/postgres.log"
}

pg_replica_dir() { echo "$CLUSTER_DIR/postgres-replica"; }

pg_primary_up() {
	pg_primary_vars
	pg_up
	# Replication: a role and an hba line, then reload (pg_write_config rewrote the hba on start).
	pg_admin_sql <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_REPL_USER') THEN CREATE ROLE $PG_REPL_USER; END IF;
END \$\$;
ALTER ROLE $PG_REPL_USER WITH LOGIN REPLICATION PASSWORD '$PG_REPL_PASSWORD';
SQL
	if ! grep -q "^host *replication" "$PG_DATA/pg_hba.conf"; then
		printf 'host    replication  %s  127.0.0.1/32  scram-sha-256\n' "$PG_REPL_USER" >>"$PG_DATA/pg_hba.conf"
		pg_admin_sql -c "SELECT pg_reload_conf()" >/dev/null
	fi
}

pg_replica_running() {
	local dir
	dir=$(pg_replica_dir)
	[[ -f $dir/data/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

pg_replica_up() {
	local dir
	dir=$(pg_replica_dir)
	find_pg_bin
	if pg_replica_running; then
		clog "postgres replica: already running"
		return 0
	fi
	mkdir -p "$dir/run" "$dir/log"
	chown postgres:postgres "$dir" "$dir/run" "$dir/log"
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		clog "postgres replica: pg_basebackup from $HOST:$PG_PRIMARY_PORT"
		rm -rf "$dir/data"
		as_pg env PGPASSWORD=$PG_REPL_PASSWORD "$PG_BIN/pg_basebackup" -h "$HOST" -p "$PG_PRIMARY_PORT" \
			-U "$PG_REPL_USER" -D "$dir/data" -R -X stream -c fast >"$dir/log/basebackup.log" 2>&1 ||
			{
				tail_log "$dir/log/basebackup.log"
				die "postgres replica: pg_basebackup failed"
			}
	fi
	cat >"$dir/data/tradeops.conf" <<CONF
# Managed by scripts/cluster.sh: the streaming replica (hot standby, read-only).
listen_addresses = '$HOST'
port = $PG_REPLICA_PORT
unix_socket_directories = '$dir/run'
max_connections = 200
shared_buffers = 64MB
hot_standby = on
log_timezone = 'UTC'
timezone = 'UTC'
CONF
	chown postgres:postgres "$dir/data/tradeops.conf"
	as_pg "$PG_BIN/pg_ctl" start -D "$dir/data" -l "$dir/log/postgres.log" -w -t "$WAIT_TIMEOUT" >/dev/null 2>&1 9>&- ||
		{
			tail_log "$dir/log/postgres.log"
			die "postgres replica: failed to start"
		}
	clog "postgres replica: up on $HOST:$PG_REPLICA_PORT"
}

pg_replica_streaming() {
	pg_primary_vars
	pg_admin_sql -tAc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" | grep -qx 1
}

# ---------------------------------------------------------------------------------------------
# Redis (services.sh's redis_up on the cluster's port and folder)

redis_vars() {
	REDIS_PORT=$CLUSTER_REDIS_PORT
	REDIS_DIR="$CLUSTER_DIR/redis"
	REDIS_CONF="$REDIS_DIR/redis.conf"
	REDIS_PID="$REDIS_DIR/redis.pid"
	REDIS_LOG="$REDIS_DIR/redis.log"
}

# ---------------------------------------------------------------------------------------------
# nginx gateway: config rendered from docker/nginx/ by tradeops.gateway, certificates made here

nginx_pid() {
	local pid
	pid=$(read_pid "$NGINX_DIR/nginx.pid")
	pid_matches "$pid" nginx && echo "$pid"
}

nginx_certs() {
	local d="$NGINX_DIR/certs"
	[[ -f $d/client.crt ]] && return 0
	mkdir -p "$d"
	clog "gateway: making a CA, a server and a client certificate in $d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=tradeops cluster CA" \
		-keyout "$d/ca.key" -out "$d/client-ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/client-ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
		-extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=integration-client" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
	openssl x509 -req -in "$d/client.csr" -CA "$d/client-ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
		-out "$d/client.crt" 2>/dev/null
}

nginx_up() {
	command -v nginx >/dev/null || apt_install nginx
	if [[ -n $(nginx_pid) ]]; then
		clog "gateway: already running"
		return 0
	fi
	mkdir -p "$NGINX_DIR"
	nginx_certs
	"$PYTHON" -m tradeops.gateway render --https-port "$GATEWAY_HTTPS_PORT" --http-port "$GATEWAY_HTTP_PORT" \
		--upstream "$HOST:$WEB_PORT" --certs "$NGINX_DIR/certs" --dir "$NGINX_DIR" >"$NGINX_DIR/nginx.conf"
	nginx -t -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" >"$NGINX_DIR/test.log" 2>&1 || {
		tail_log "$NGINX_DIR/test.log"
		die "gateway: nginx -t failed"
	}
	nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" 9>&-
	wait_for "gateway ($HOST:$GATEWAY_HTTPS_PORT)" 30 port_open "$GATEWAY_HTTPS_PORT" || die "gateway did not start"
}

nginx_down() {
	local pid
	pid=$(nginx_pid || true)
	[[ -n $pid ]] && stop_pid nginx "$pid" 10
	rm -f "$NGINX_DIR/nginx.pid"
}

# ---------------------------------------------------------------------------------------------
# the app

in_app_env() { (eval "$(app_env)" && cd "$ROOT" && "$@"); }

app_setup() {
	clog "app: migrate, provision topics, seed"
	in_app_env "$PYTHON" manage.py migrate --noinput -v 0
	in_app_env "$PYTHON" manage.py provision_topics
	# Appended, each run dated: the passwords are printed once, when a user is made (an `up` that
	# overwrote the file lost them; 2026-12-06, wip/walk50).
	{
		printf '== %s: manage.py seed\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		in_app_env "$PYTHON" manage.py seed
	} >>"$CLUSTER_DIR/seed.log"
	# Active models whose artifacts this cluster's model folder lacks (trained by another checkout,
	# into its own var/models, before the folder was the cluster's: the prediction stage then served
	# nothing and the replay made no signal; 2026-12-06, wip/walk50) are trained again, as are none.
	local missing
	missing=$(in_app_env "$PYTHON" manage.py shell -c "from mlmodels.models import ModelVersion; from mlmodels.selectors import model_artifacts_missing; print('no active model' if not ModelVersion.objects.filter(is_active=True).exists() else '; '.join(model_artifacts_missing()))" 2>/dev/null) ||
		die "app: cannot read the model registry (manage.py shell failed)"
	if [[ -n $missing ]]; then
		clog "app: training the models once ($missing; no edge: the demo's reason, audited)"
		in_app_env "$PYTHON" manage.py train_models --activate --allow-no-edge \
			--reason "cluster demo: the shipped models have no edge over the baselines; activated only to run the pipeline on paper" \
			>>"$CLUSTER_DIR/train.log"
	fi
}

apps_up() { in_app_env "$PYTHON" -m tradeops.topology up --dir "$APP_DIR"; }
apps_down() { [[ -d $APP_DIR ]] && in_app_env "$PYTHON" -m tradeops.topology down --dir "$APP_DIR" || true; }

infra_up() {
	take_lock
	local t0=$SECONDS
	kafka_cluster_up
	pg_primary_up
	pg_replica_up
	wait_for "postgres replica streaming" 60 pg_replica_streaming || die "postgres: the replica does not stream"
	redis_vars
	redis_up
	nginx_up
	exec 9>&-
	clog "infra up ($((SECONDS - t0))s): kafka $(bootstrap_servers), postgres $HOST:$PG_PRIMARY_PORT (+ replica $PG_REPLICA_PORT), redis $HOST:$CLUSTER_REDIS_PORT, gateway https://$HOST:$GATEWAY_HTTPS_PORT"
}

cmd_cluster_down() {
	apps_down
	take_lock
	nginx_down
	redis_vars
	redis_down
	find_pg_bin
	if pg_replica_running; then as_pg "$PG_BIN/pg_ctl" stop -D "$(pg_replica_dir)/data" -m fast -w >/dev/null; fi
	pg_primary_vars
	pg_down
	# All three at once: the last broker of a KRaft quorum stopped one by one has no majority left
	# for its controlled shutdown and waits out the whole grace period.
	local n pid i
	local -a pids=()
	for n in 3 2 1; do
		pid=$(kafka_node_pid "$n" || true)
		if [[ -n $pid ]]; then
			clog "kafka-$n: stopping (pid $pid)"
			kill -TERM "$pid"
			pids+=("$pid")
		fi
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	done
	return 0
}

cmd_cluster_status() {
	local rc=0 n
	for n in 1 2 3; do
		if KAFKA_PORT=${KAFKA_BROKER_PORTS[n - 1]} kafka_probe >/dev/null 2>&1; then
			echo "kafka-$n   up    $HOST:${KAFKA_BROKER_PORTS[n - 1]}  pid=$(kafka_node_pid "$n")"
		else
			echo "kafka-$n   down"
			rc=1
		fi
	done
	pg_primary_vars
	find_pg_bin
	pg_status | sed 's/^postgres /pg-primary/' || rc=1
	if pg_replica_running && pg_replica_streaming; then
		echo "pg-replica up    $HOST:$PG_REPLICA_PORT  streaming"
	else
		echo "pg-replica down"
		rc=1
	fi
	redis_vars
	redis_status || rc=1
	if [[ -n $(nginx_pid) ]]; then echo "gateway   up    https://$HOST:$GATEWAY_HTTPS_PORT"; else
		echo "gateway   down"
		rc=1
	fi
	if [[ -d $APP_DIR ]]; then in_app_env "$PYTHON" -m tradeops.topology status --dir "$APP_DIR" || rc=1; fi
	return $rc
}

cluster_main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	mkdir -p "$CLUSTER_DIR"
	chmod 755 "$CLUSTER_DIR"
	case $cmd in
	up)
		infra_up
		app_setup
		apps_up
		;;
	infra) infra_up ;;
	apps) apps_up ;;
	setup) app_setup ;;
	down) cmd_cluster_down ;;
	status) cmd_cluster_status ;;
	env) app_env ;;
	kill-broker)
		local pid
		pid=$(kafka_node_pid "${1:?broker number}" || true)
		[[ -n $pid ]] && kill -KILL "$pid" && clog "kafka-$1: killed (pid $pid)"
		;;
	start-broker)
		KAFKA_DIR="$CLUSTER_DIR/kafka"
		KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
		KAFKA_TOOLS_LOG4J="$KAFKA_DIR/tools-log4j2.properties"
		kafka_node_start "${1:?broker number}"
		KAFKA_PORT=${KAFKA_BROKER_PORTS[$1 - 1]}
		wait_for "kafka-$1" "$WAIT_TIMEOUT" kafka_probe
		;;
	pg-restart)
		pg_primary_vars
		find_pg_bin
		as_pg "$PG_BIN/pg_ctl" restart -D "$PG_DATA" -m fast -w -t "$WAIT_TIMEOUT" -l "$PG_LOG" >/dev/null 9>&-
		clog "postgres primary: restarted"
		;;
	redis-stop)
		redis_vars
		redis_down
		;;
	redis-start)
		redis_vars
		redis_up
		;;
	replay)
		# Settled: flat out, the replay's quotes overtook the signals made from them and the worker
		# decided every signal at the last quote's time (2026-12-06, wip/walk49: 16 signals of
		# 2017-04-23 to 2017-05-01 filled at 2017-05-05 21:00, one trading date in the reports).
		in_app_env "$PYTHON" manage.py replay --source embedded --limit "${1:-300}" --settle
		;;
	replay-flat)
		in_app_env "$PYTHON" manage.py replay --source embedded --limit "${1:-300}"
		;;
	-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
	*)
		sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
}

cluster_main "$@"
