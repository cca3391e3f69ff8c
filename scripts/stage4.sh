#!/usr/bin/env bash
# stage4.sh: run stage 4 on one machine: etcd, three Patroni members
# (PostgreSQL 15, synchronous replication), three Conduit nodes reading
# from the replicas, HAProxy in front of the nodes, and HAProxy in front of
# the members; all plain processes on 127.0.0.1.
#
#   scripts/stage4.sh start              build, start everything, wait until ready
#   scripts/stage4.sh status             what runs, and each member's role
#   scripts/stage4.sh stop               stop everything start started
#   scripts/stage4.sh kill-leader        SIGKILL the leader's Patroni and PostgreSQL
#                                        (a lost machine); prints the member's name
#   scripts/stage4.sh start-member NAME  start a member again; waits until it
#                                        is a streaming replica
#   scripts/stage4.sh switchover         planned switchover to a synchronous
#                                        standby; prints the new leader
#   scripts/stage4.sh restart-nodes      restart the Conduit nodes (e.g. with
#                                        other NODE_FLAGS)
#   scripts/stage4.sh backup [full|diff|incr]
#                                        (BACKUP=pgbackrest) a pgBackRest backup
#                                        of the cluster, taken from the leader
#   scripts/stage4.sh restore DIR PORT [TIME]
#                                        (BACKUP=pgbackrest) restore the backups
#                                        and archived WAL into DIR, up to TIME
#                                        (a PostgreSQL timestamp; default: the
#                                        end of the archive), and run it there as
#                                        a standalone server on PORT; REPO names
#                                        another repository (a copy)
#   scripts/stage4.sh stop-restored DIR  stop a server restore started
#
# Settings (environment):
#   STAGE4_DIR  state: pids, logs, configs, data (./.stage4)
#   BASE_PORT   25400: Conduit's balancer, +1 its stats, +2/+3 etcd
#               client/peer, +4 PostgreSQL primary via HAProxy, +5 all
#               replicas via HAProxy, +6..+8 one replica each via HAProxy,
#               +9 that HAProxy's stats, +10 Redis (CACHE=redis), +11..
#               Patroni REST, +21.. PostgreSQL, +31.. Conduit nodes, +41..
#               their admin listeners (/metrics, and the Go profiles under
#               /debug/pprof/: loopback only) (keep below 32768)
#   PG_ROUTE    how Conduit finds the primary and the replicas:
#               multihost (default: multi-host URLs with
#               target_session_attrs) or haproxy (the listeners above)
#   DRAIN_DELAY --drain-delay of the nodes (3s)
#   NODE_FLAGS  extra flags for every `conduit serve`
#   CACHE       redis: start a redis-server of our own on +10 (never the
#               shared one; no persistence) and give the nodes --cache-url
#               (stage 5); empty (default): in-process caches coherent
#               through PostgreSQL
#   BACKUP      pgbackrest: archive WAL with pgBackRest into a repository
#               in $STAGE4_DIR/pgbackrest (stanza "conduit", created at
#               start); empty (default): no archive (archive_command true)
#   ARCHIVE_TIMEOUT  archive_timeout of the members (60s): the most a
#               restore from the archive may lose
#
# Writes $STAGE4_DIR/cluster.env (shell-sourceable): LB_URL, PATRONI_URLS,
# PATRONI_MEMBERS, DATABASE_URL, REPLICA_URLS, NODE_URLS, ….
# Every server runs under tools/supervise, which reaps whatever it leaves
# behind, so a killed Patroni does not leave PostgreSQL running.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${STAGE4_DIR:-$root/.stage4}
base=${BASE_PORT:-25400}
route=${PG_ROUTE:-}
if [ -z "$route" ] && [ -f "$dir/cluster.env" ]; then # what start chose
	route=$(sed -n "s/^PG_ROUTE='\(.*\)'\$/\1/p" "$dir/cluster.env")
fi
route=${route:-multihost}
backup=${BACKUP:-}
if [ -z "$backup" ] && [ -f "$dir/cluster.env" ]; then # what start chose
	backup=$(sed -n "s/^BACKUP='\(.*\)'\$/\1/p" "$dir/cluster.env")
fi
cache=${CACHE:-}
if [ -z "$cache" ] && [ -f "$dir/cluster.env" ]; then # what start chose
	cache=$(sed -n "s/^CACHE='\(.*\)'\$/\1/p" "$dir/cluster.env")
fi
if [ -n "$cache" ] && [ "$cache" != redis ]; then
	echo "CACHE=$cache: only redis is supported" >&2
	exit 2
fi
drain=${DRAIN_DELAY:-3s}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
members=(pg1 pg2 pg3)
nodes=3
lb_port=$base
lb_stats=$((base + 1))
etcd_port=$((base + 2))
etcd_peer=$((base + 3))
pgha_primary=$((base + 4))
pgha_replicas=$((base + 5))
pgha_stats=$((base + 9))
redis_port=$((base + 10))

rest_port() { echo $((base + 10 + $1)); } # member index 1..3
pg_port() { echo $((base + 20 + $1)); }
node_port() { echo $((base + 30 + $1)); }
admin_port() { echo $((base + 40 + $1)); } # the node's admin listener (/metrics)
index_of() { # NAME -> 1..3
	local i
	for i in 1 2 3; do [ "${members[$((i - 1))]}" = "$1" ] && echo "$i" && return 0; done
	echo "unknown member $1 (want one of ${members[*]})" >&2
	return 1
}

alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [[ $s != Z* ]]; }
pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }
sup_of() { cat "$dir/$1.sup" 2>/dev/null || true; }
# as_pg_cmd: the prefix that runs a command as the postgres user (when root).
as_pg_cmd() { if [ "$(id -u)" = 0 ]; then echo setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/postgresql; fi; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" 2>/dev/null || true; }
wait_http() { # URL SECONDS
	for _ in $(seq 1 $(($2 * 10))); do
		curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no answer from $1 within $2 s" >&2
	return 1
}

# launch NAME CMD…: run CMD under the supervisor, detached, logging to
# NAME.log; NAME.pid is the command, NAME.sup its supervisor.
launch() {
	local name=$1
	shift
	rm -f "$dir/$name.pid"
	setsid "$dir/supervise" -pidfile "$dir/$name.pid" -leftovers "${LEFTOVERS:-TERM}" -- "$@" >>"$dir/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/$name.sup"
	for _ in $(seq 1 50); do [ -s "$dir/$name.pid" ] && return 0; sleep 0.1; done
	echo "$name did not start (see $dir/$name.log)" >&2
	return 1
}

member_hosts() { # the PostgreSQL members as host:port,host:port,…
	local i out=""
	for i in 1 2 3; do out+="${out:+,}127.0.0.1:$(pg_port $i)"; done
	echo "$out"
}
database_url() {
	if [ "$route" = haproxy ]; then
		echo "postgres://postgres@127.0.0.1:$pgha_primary/conduit?sslmode=disable"
	else
		echo "postgres://postgres@$(member_hosts)/conduit?sslmode=disable&target_session_attrs=read-write"
	fi
}
replica_urls() {
	if [ "$route" = haproxy ]; then
		local i out=""
		for i in 1 2 3; do out+="${out:+,}postgres://postgres@127.0.0.1:$((base + 5 + i))/conduit?sslmode=disable"; done
		echo "$out"
	else
		# One URL, one replica per host (Conduit splits it); standby only,
		# so a member that is the primary now is skipped.
		echo "postgres://postgres@$(member_hosts)/conduit?sslmode=disable&target_session_attrs=standby"
	fi
}
patroni_urls() {
	local i out=""
	for i in 1 2 3; do out+="${out:+,}http://127.0.0.1:$(rest_port $i)"; done
	echo "$out"
}

# leader: the name of the member whose REST API says it is the primary.
leader() {
	local i
	for i in 1 2 3; do
		[ "$(status_of "http://127.0.0.1:$(rest_port $i)/primary")" = 200 ] && echo "${members[$((i - 1))]}" && return 0
	done
	return 1
}
wait_leader() { # SECONDS
	for _ in $(seq 1 $(($1 * 10))); do leader >/dev/null && return 0; sleep 0.1; done
	echo "no Patroni leader within $1 s" >&2
	return 1
}
# wait_replica I SECONDS: member I is a running replica.
wait_replica() {
	local url="http://127.0.0.1:$(rest_port "$1")/replica"
	for _ in $(seq 1 $(($2 * 10))); do [ "$(status_of "$url")" = 200 ] && return 0; sleep 0.1; done
	echo "${members[$(($1 - 1))]} is not a running replica within $2 s (see $dir/${members[$(($1 - 1))]}.log)" >&2
	return 1
}
# wait_sync SECONDS: some member is the synchronous standby.
wait_sync() {
	local i
	for _ in $(seq 1 $(($1 * 10))); do
		for i in 1 2 3; do [ "$(status_of "http://127.0.0.1:$(rest_port $i)/sync")" = 200 ] && return 0; done
		sleep 0.1
	done
	echo "no synchronous standby within $1 s" >&2
	return 1
}

# wait_nodes_up SECONDS: HAProxy has every node in rotation.
wait_nodes_up() {
	local csv n
	for _ in $(seq 1 $(($1 * 10))); do
		# (Not one pipeline: with pipefail, a balancer not listening yet
		# would end the script.)
		csv=$(curl -fsS --max-time 1 "http://127.0.0.1:$lb_stats/;csv" 2>/dev/null) || csv=""
		n=$(printf '%s\n' "$csv" | awk -F, '$1 == "conduit_nodes" && $2 ~ /^node/ && $18 == "UP"' | wc -l)
		[ "$n" = "$nodes" ] && return 0
		sleep 0.1
	done
	echo "HAProxy does not have all $nodes nodes up within $1 s" >&2
	return 1
}

start_etcd() {
	alive "$(pid_of etcd)" && return 0
	mkdir -p "$dir/etcd"
	launch etcd etcd --name e1 --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
		--initial-cluster "e1=http://127.0.0.1:$etcd_peer" --log-level warn
	wait_http "http://127.0.0.1:$etcd_port/health" 20
}

member_cfg() { # I: write the member's Patroni config
	local i=$1 name=${members[$(($1 - 1))]}
	local mdir="$dir/$name"
	mkdir -p "$mdir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$mdir" && chmod 700 "$mdir"
		# shellcheck disable=SC2046
		$(as_pg_cmd) test -w "$mdir" || { echo "the postgres user cannot reach $mdir: make $dir and its parents traversable (chmod o+x)" >&2; exit 1; }
	fi
	local archive=/bin/true
	if [ "$backup" = pgbackrest ]; then
		archive="pgbackrest --config=$(pgbr_dir)/pgbackrest.conf --stanza=conduit --pg1-path=$mdir/data archive-push %p"
	fi
	sed -e "s|@NAME@|$name|; s|@RESTAPI@|127.0.0.1:$(rest_port "$i")|; s|@ETCD@|127.0.0.1:$etcd_port|" \
		-e "s|@PG@|127.0.0.1:$(pg_port "$i")|; s|@DATA@|$mdir/data|; s|@SOCKETS@|$mdir|; s|@BIN@|$pgbin|" \
		-e "s|@PGPASS@|$mdir/pgpass|; s|@ARCHIVE@|$archive|; s|@ARCHIVE_TIMEOUT@|${ARCHIVE_TIMEOUT:-60s}|" \
		"$root/deploy/patroni/patroni.yml" >"$dir/$name.yml"
	chmod 644 "$dir/$name.yml"
}

# pgBackRest: one repository for the cluster (a directory here; a backup
# host or an object store on real machines), one stanza "conduit". Every
# member archives into it with its own data directory (pgbr_cmd I);
# backups are taken from the leader.
pgbr_dir() { echo "$dir/pgbackrest"; }
pgbr_cmd() { # I: pgbackrest with member I's data directory and socket
	local name=${members[$(($1 - 1))]}
	echo "pgbackrest --config=$(pgbr_dir)/pgbackrest.conf --stanza=conduit --pg1-path=$dir/$name/data --pg1-port=$(pg_port "$1") --pg1-socket-path=$dir/$name"
}
pgbr_setup() {
	local d
	d=$(pgbr_dir)
	mkdir -p "$d/repo" "$d/log" "$d/lock" "$d/spool"
	cat >"$d/pgbackrest.conf" <<CONF
[global]
repo1-path=$d/repo
# Two full backups are kept, with what the restores of either need.
repo1-retention-full=2
log-path=$d/log
lock-path=$d/lock
spool-path=$d/spool
log-level-console=warn
log-level-file=info
compress-type=lz4
start-fast=y
process-max=2

[conduit]
pg1-user=postgres
CONF
	if [ "$(id -u)" = 0 ]; then chown -R postgres: "$d"; fi
	chmod 755 "$d"
	chmod 644 "$d/pgbackrest.conf"
}
# as_pg CMD…: run a command as the postgres user (the repository's owner).
as_pg() {
	# shellcheck disable=SC2046 # as_pg_cmd is a command line
	$(as_pg_cmd) "$@"
}

start_member() { # I
	local i=$1 name=${members[$(($1 - 1))]}
	alive "$(pid_of "$name")" && return 0
	# A lost machine's PostgreSQL may still be winding down: let the old
	# supervisor finish reaping it first.
	local sup
	sup=$(sup_of "$name")
	if [ -n "$sup" ]; then
		for _ in $(seq 1 150); do alive "$sup" || break; sleep 0.1; done
	fi
	member_cfg "$i"
	# Patroni must run as the postgres user; when it exits, the supervisor
	# stops a PostgreSQL it left running with a fast shutdown (INT).
	# shellcheck disable=SC2046 # as_pg_cmd is a command line
	LEFTOVERS=INT launch "$name" $(as_pg_cmd) patroni "$dir/$name.yml"
}

cache_url() { [ "$cache" = redis ] && echo "redis://127.0.0.1:$redis_port/0" || true; }

# start_redis: with CACHE=redis, the shared cache tier: a redis-server of
# our own, without persistence (the cache holds nothing the database does
# not: a restart loses only hits).
start_redis() {
	[ "$cache" = redis ] || return 0
	alive "$(pid_of redis)" && return 0
	mkdir -p "$dir/redis"
	launch redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$dir/redis" --daemonize no
	for _ in $(seq 1 100); do
		redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.05
	done
	echo "redis-server on $redis_port did not answer (see $dir/redis.log)" >&2
	return 1
}

start_node() { # I
	local i=$1
	alive "$(pid_of "node$i")" && return 0
	# shellcheck disable=SC2086 # NODE_FLAGS is a list of flags
	CONDUIT_DATABASE_URL=$(database_url) CONDUIT_REPLICA_URLS=$(replica_urls) CONDUIT_JWT_KEYS=$(cat "$dir/jwt.keys") \
		CONDUIT_CACHE_URL=$(cache_url) \
		launch "node$i" "$dir/conduit" serve --addr "127.0.0.1:$(node_port "$i")" --admin-addr "127.0.0.1:$(admin_port "$i")" \
		--debug-addr "127.0.0.1:$(admin_port "$i")" --drain-delay "$drain" \
		--trusted-proxies 127.0.0.1 --log-format json ${NODE_FLAGS:-}
}

haproxy_cfgs() {
	local servers="" i
	for i in 1 2 3; do servers+="    server node$i 127.0.0.1:$(node_port $i)\n"; done
	sed -e "s/@LISTEN@/127.0.0.1:$lb_port/; s/@STATS@/127.0.0.1:$lb_stats/; s/^@SERVERS@\$/${servers%\\n}/" \
		"$root/deploy/haproxy/haproxy.cfg" >"$dir/haproxy.cfg"
	haproxy -q -c -f "$dir/haproxy.cfg"

	local pgservers="" listeners="" name
	for i in 1 2 3; do
		name=${members[$((i - 1))]}
		pgservers+="    server $name 127.0.0.1:$(pg_port $i) check port $(rest_port $i)\n"
		listeners+="listen postgres_replica_$name\n    bind 127.0.0.1:$((base + 5 + i))\n"
		listeners+="    http-check send meth GET uri /replica\n"
		listeners+="    server $name 127.0.0.1:$(pg_port $i) check port $(rest_port $i)\n\n"
	done
	sed -e "s|@PRIMARY@|127.0.0.1:$pgha_primary|; s|@REPLICAS@|127.0.0.1:$pgha_replicas|; s|@STATS@|127.0.0.1:$pgha_stats|" \
		-e "s|^@SERVERS@\$|${pgservers%\\n}|; s|^@REPLICA_LISTENERS@\$|${listeners%\\n\\n}|" \
		"$root/deploy/haproxy/postgres.cfg" >"$dir/haproxy-pg.cfg"
	haproxy -q -c -f "$dir/haproxy-pg.cfg"
}

write_env() {
	local i node_urls="" admin_urls=""
	for i in $(seq 1 $nodes); do
		node_urls+="${node_urls:+,}http://127.0.0.1:$(node_port "$i")"
		admin_urls+="${admin_urls:+,}http://127.0.0.1:$(admin_port "$i")"
	done
	cat >"$dir/cluster.env" <<EOF
# stage 4 on 127.0.0.1 (scripts/stage4.sh); source this file
STAGE4_DIR='$dir'
LB_URL='http://127.0.0.1:$lb_port'
LB_STATS_URL='http://127.0.0.1:$lb_stats/'
NODE_URLS='$node_urls'
ADMIN_URLS='$admin_urls'
PATRONI_URLS='$(patroni_urls)'
PATRONI_MEMBERS='${members[*]}'
PATRONI_CONFIG='$dir/pg1.yml'
ETCD_URL='http://127.0.0.1:$etcd_port'
PG_ROUTE='$route'
BACKUP='$backup'
CACHE='$cache'
CACHE_URL='$(cache_url)'
DATABASE_URL='$(database_url)'
REPLICA_URLS='$(replica_urls)'
PG_PRIMARY_URL='postgres://postgres@127.0.0.1:$pgha_primary/conduit?sslmode=disable'
PG_REPLICAS_URL='postgres://postgres@127.0.0.1:$pgha_replicas/conduit?sslmode=disable'
PG_HAPROXY_STATS_URL='http://127.0.0.1:$pgha_stats/'
EOF
}

cmd_start() {
	local need
	for need in haproxy etcd patroni curl; do
		command -v "$need" >/dev/null || { echo "$need is not installed (apt-get install haproxy etcd-server etcd-client patroni curl)" >&2; exit 1; }
	done
	[ -x "$pgbin/postgres" ] || { echo "no PostgreSQL 15 in $pgbin (apt-get install postgresql-15)" >&2; exit 1; }
	if [ "$cache" = redis ]; then
		for need in redis-server redis-cli; do
			command -v "$need" >/dev/null || { echo "CACHE=redis needs $need (apt-get install redis-server)" >&2; exit 1; }
		done
	fi
	mkdir -p "$dir"
	chmod 755 "$dir"
	if [ "$backup" = pgbackrest ]; then
		command -v pgbackrest >/dev/null || { echo "pgbackrest is not installed (apt-get install pgbackrest)" >&2; exit 1; }
		pgbr_setup
	elif [ -n "$backup" ]; then
		echo "BACKUP=$backup: only pgbackrest is supported" >&2
		exit 1
	fi
	echo "building conduit and the supervisor"
	(cd "$root" && go build -o "$dir/conduit" ./cmd/conduit && go build -o "$dir/supervise" ./tools/supervise)
	if [ ! -s "$dir/jwt.keys" ]; then
		(umask 077 && echo "k1:$(head -c 32 /dev/urandom | base64 -w0)" >"$dir/jwt.keys")
	fi
	start_etcd
	local i
	for i in 1 2 3; do start_member "$i"; done
	wait_leader 60
	for i in 1 2 3; do
		[ "$(leader)" = "${members[$((i - 1))]}" ] || wait_replica "$i" 90
	done
	wait_sync 30
	if [ "$backup" = pgbackrest ]; then
		# shellcheck disable=SC2046 # pgbr_cmd is a command line
		as_pg $(pgbr_cmd "$(index_of "$(leader)")") stanza-create
		# shellcheck disable=SC2046
		as_pg $(pgbr_cmd "$(index_of "$(leader)")") check
	fi
	local lead_port
	lead_port=$(pg_port "$(index_of "$(leader)")")
	psql -X -q -h 127.0.0.1 -p "$lead_port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'conduit'" | grep -q 1 ||
		psql -X -q -h 127.0.0.1 -p "$lead_port" -U postgres -d postgres -c "CREATE DATABASE conduit"
	haproxy_cfgs
	alive "$(pid_of haproxy-pg)" || launch haproxy-pg haproxy -db -f "$dir/haproxy-pg.cfg"
	# The primary must answer through the route the nodes use (HAProxy
	# marks it up after its checks).
	for _ in $(seq 1 200); do
		PGCONNECT_TIMEOUT=2 psql -X -qtA "$(database_url)" -c "SELECT 1" >/dev/null 2>&1 && break
		sleep 0.1
	done
	# Migrate once up front, so the nodes do not race for the lock.
	CONDUIT_DATABASE_URL=$(database_url) "$dir/conduit" migrate
	start_redis
	for i in $(seq 1 $nodes); do start_node "$i"; done
	for i in $(seq 1 $nodes); do wait_http "http://127.0.0.1:$(node_port "$i")/readyz" 30; done
	alive "$(pid_of haproxy)" || launch haproxy haproxy -db -f "$dir/haproxy.cfg"
	wait_nodes_up 20
	write_env
	echo "stage 4 is up: http://127.0.0.1:$lb_port/ (leader $(leader); settings in $dir/cluster.env)"
}

cmd_status() {
	local name pid state i code role
	for name in etcd "${members[@]}" haproxy-pg redis $(for i in $(seq 1 $nodes); do echo "node$i"; done) haproxy; do
		pid=$(pid_of "$name")
		if [ -n "$pid" ] && alive "$pid"; then state="running (pid $pid)"; else state="stopped"; fi
		role=""
		for i in 1 2 3; do
			if [ "$name" = "${members[$((i - 1))]}" ]; then
				code=$(status_of "http://127.0.0.1:$(rest_port $i)/primary")
				if [ "$code" = 200 ]; then role="leader"
				elif [ "$(status_of "http://127.0.0.1:$(rest_port $i)/sync")" = 200 ]; then role="sync standby"
				elif [ "$(status_of "http://127.0.0.1:$(rest_port $i)/replica")" = 200 ]; then role="replica"
				else role="not serving"; fi
			fi
		done
		printf '%-11s %-22s %s\n' "$name" "$state" "$role"
	done
	curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$lb_port/readyz" 2>/dev/null &&
		echo "load balancer: ready on http://127.0.0.1:$lb_port/" || echo "load balancer: not answering"
}

# stop_one NAME SIGNAL: signal the recorded command, wait until it and its
# supervisor (and so everything it left) are gone.
stop_one() {
	local pid sup
	pid=$(pid_of "$1")
	sup=$(sup_of "$1")
	if [ -n "$pid" ] && alive "$pid"; then kill "-$2" "$pid" 2>/dev/null || true; fi
	if [ -n "$sup" ]; then
		for _ in $(seq 1 400); do alive "$sup" || break; sleep 0.1; done
		if alive "$sup"; then
			echo "$1 did not stop within 40 s; sending SIGKILL" >&2
			[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
			kill -TERM "$sup" 2>/dev/null || true
			for _ in $(seq 1 200); do alive "$sup" || break; sleep 0.1; done
		fi
	fi
	rm -f "$dir/$1.pid" "$dir/$1.sup"
}

cmd_stop() {
	local i r
	if [ -f "$dir/restored" ]; then
		while read -r r; do cmd_stop_restored "$r" || true; done <"$dir/restored"
		rm -f "$dir/restored"
	fi
	stop_one haproxy TERM
	# The nodes drain at the same time, not one after another.
	for i in $(seq 1 $nodes); do stop_one "node$i" TERM & done
	wait
	stop_one redis TERM
	stop_one haproxy-pg TERM
	# Replicas first, the leader last: no failover on the way down.
	local lead
	lead=$(leader 2>/dev/null || true)
	for i in "${members[@]}"; do [ "$i" = "$lead" ] || stop_one "$i" TERM; done
	[ -n "$lead" ] && stop_one "$lead" TERM
	stop_one etcd TERM
	echo "stopped"
}

cmd_kill_leader() {
	local name i pm
	name=$(leader) || { echo "no leader to kill" >&2; exit 1; }
	i=$(index_of "$name")
	pm=$(head -1 "$dir/$name/data/postmaster.pid" 2>/dev/null || true)
	kill -KILL "$(pid_of "$name")" 2>/dev/null || true
	[ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null || true
	echo "$name"
}

cmd_start_member() {
	local name=${1:?usage: $0 start-member NAME} i
	i=$(index_of "$name")
	start_member "$i"
	wait_replica "$i" 120
	echo "$name is back as a replica (leader $(leader))"
}

cmd_switchover() {
	local lead cand i
	lead=$(leader) || { echo "no leader" >&2; exit 1; }
	for i in 1 2 3; do
		if [ "$(status_of "http://127.0.0.1:$(rest_port $i)/sync")" = 200 ]; then cand=${members[$((i - 1))]}; fi
	done
	[ -n "${cand:-}" ] || { echo "no synchronous standby to switch over to" >&2; exit 1; }
	curl -fsS --max-time 30 -X POST -H 'Content-Type: application/json' \
		-d "{\"leader\":\"$lead\",\"candidate\":\"$cand\"}" "http://127.0.0.1:$(rest_port "$(index_of "$lead")")/switchover" >/dev/null
	for _ in $(seq 1 300); do [ "$(leader 2>/dev/null || true)" = "$cand" ] && break; sleep 0.1; done
	echo "$cand"
}

cmd_restart_nodes() {
	local i
	for i in $(seq 1 $nodes); do stop_one "node$i" TERM & done
	wait
	for i in $(seq 1 $nodes); do start_node "$i"; done
	for i in $(seq 1 $nodes); do wait_http "http://127.0.0.1:$(node_port "$i")/readyz" 30; done
	wait_nodes_up 20
	echo "nodes restarted"
}

need_backup() {
	[ "$backup" = pgbackrest ] || { echo "the cluster was not started with BACKUP=pgbackrest" >&2; exit 1; }
}

cmd_backup() {
	need_backup
	local type=${1:-full} lead
	lead=$(leader) || { echo "no leader to back up" >&2; exit 1; }
	# shellcheck disable=SC2046 # pgbr_cmd is a command line
	as_pg $(pgbr_cmd "$(index_of "$lead")") backup --type="$type"
	as_pg pgbackrest --config="$(pgbr_dir)/pgbackrest.conf" --stanza=conduit info
}

cmd_restore() {
	need_backup
	local rdir=${1:?usage: $0 restore DIR PORT [TIME]} port=${2:?usage: $0 restore DIR PORT [TIME]} target=${3:-}
	local repo=${REPO:-$(pgbr_dir)/repo} args=()
	if [ -e "$rdir/data" ]; then echo "$rdir/data exists: restore into a new directory" >&2; exit 1; fi
	mkdir -p "$rdir"
	chmod 755 "$rdir"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$rdir"; fi
	if [ -n "$target" ]; then
		# Replay up to TIME (commits at TIME included), then open for
		# writes on a new timeline.
		args=(--type=time "--target=$target" --target-action=promote)
	fi
	as_pg pgbackrest --config="$(pgbr_dir)/pgbackrest.conf" --stanza=conduit --repo1-path="$repo" \
		--pg1-path="$rdir/data" --lock-path="$rdir" --log-path="$rdir" "${args[@]}" restore
	echo "$rdir" >>"$dir/restored"
	# A standalone server: its own port and socket; never archiving into
	# the cluster's repository; no synchronous standby to wait for.
	as_pg "$pgbin/pg_ctl" -D "$rdir/data" -l "$rdir/postgres.log" -w -t 120 start -o \
		"-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$rdir -c archive_mode=off -c synchronous_standby_names= -c cluster_name=restored" >/dev/null
	# Recovery ends with the promotion.
	local rec=""
	for _ in $(seq 1 600); do
		rec=$(psql -X -qtA -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null) || rec=""
		[ "$rec" = f ] && break
		sleep 0.1
	done
	[ "$rec" = f ] || { echo "the restored server is still recovering after 60 s (see $rdir/postgres.log)" >&2; exit 1; }
	echo "restored into $rdir: postgres://postgres@127.0.0.1:$port/conduit?sslmode=disable"
}

cmd_stop_restored() {
	local rdir=${1:?usage: $0 stop-restored DIR}
	[ -f "$rdir/data/postmaster.pid" ] || return 0
	as_pg "$pgbin/pg_ctl" -D "$rdir/data" -m fast -w stop >/dev/null
}

case "${1:-}" in
start) cmd_start ;;
restart-nodes) cmd_restart_nodes ;;
stop) cmd_stop ;;
status) cmd_status ;;
kill-leader) cmd_kill_leader ;;
start-member) cmd_start_member "${2:-}" ;;
switchover) cmd_switchover ;;
backup) cmd_backup "${2:-}" ;;
restore) cmd_restore "${2:-}" "${3:-}" "${4:-}" ;;
stop-restored) cmd_stop_restored "${2:-}" ;;
*)
	echo "usage: $0 start|stop|status|kill-leader|start-member NAME|switchover|restart-nodes|backup [TYPE]|restore DIR PORT [TIME]|stop-restored DIR" >&2
	exit 2
	;;
esac
