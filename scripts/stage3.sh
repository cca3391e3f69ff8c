#!/usr/bin/env bash
# stage3.sh: run stage 3 on one machine: PostgreSQL, N Conduit nodes and
# HAProxy in front, all as plain processes on 127.0.0.1.
#
#   scripts/stage3.sh start    build conduit, start everything, wait until ready
#   scripts/stage3.sh status   show what runs and whether it answers
#   scripts/stage3.sh stop     stop exactly the processes that start started
#
# Settings (environment):
#   STAGE3_DIR    state directory: pids, logs, configs, the database (./.stage3)
#   NODES         number of Conduit nodes (3, at most 9)
#   MONITOR       "prometheus": also run Prometheus (Debian package) with
#                 deploy/prometheus/ scraping every node's admin listener,
#                 on BASE_PORT+4
#   BASE_PORT     HAProxy listens here, its stats page on +1, PostgreSQL on
#                 +2, nodes on +11, +12, …, their admin listeners (/metrics)
#                 on +21, +22, … (24100; keep below 32768)
#   DATABASE_URL  use this PostgreSQL instead of starting a throwaway one
#   DRAIN_DELAY   --drain-delay of the nodes (3s; see deploy/haproxy/haproxy.cfg)
#   CACHE         "redis": start a redis-server of our own on +3 (never the
#                 shared one) and give the nodes --cache-url (stage 5);
#                 empty: in-process caches coherent through PostgreSQL
#   EDGE          "varnish": start Varnish (varnishd -F, its own work dir) in
#                 front of HAProxy on EDGE_PORT (+7; its admin port +8) with
#                 deploy/varnish/conduit.vcl, and give the nodes
#                 --edge-purge-url (stage 6); empty: no edge
#
# start writes $STAGE3_DIR/cluster.env (shell-sourceable): LB_URL=, and
# EDGE_URL= with EDGE=varnish.
#
# A throwaway PostgreSQL is created with initdb and run as the 'postgres'
# user (when run as root) in $STAGE3_DIR/pg. Nodes share one signing key
# (written once to $STAGE3_DIR/jwt.keys), so any node accepts any token.
# start writes $STAGE3_DIR/cluster.env (shell-sourceable): LB_URL, NODE_URLS,
# ADMIN_URLS (the nodes' /metrics listeners), DATABASE_URL, PROMETHEUS_URL.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${STAGE3_DIR:-$root/.stage3}
nodes=${NODES:-3}
base=${BASE_PORT:-24100}
drain=${DRAIN_DELAY:-3s}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
lb_port=$base
stats_port=$((base + 1))
pg_port=$((base + 2))
redis_port=$((base + 3))
cache=${CACHE:-}
# Node i listens on base+10+i, its admin listener (/metrics) on base+20+i.
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 9 ]; then
	echo "NODES must be 1..9 (admin listeners start at BASE_PORT+21)" >&2
	exit 2
fi
edge=${EDGE:-}
edge_port=${EDGE_PORT:-$((base + 7))}
edge_admin_port=$((edge_port + 1))

alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [[ $s != Z* ]]; }
pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
wait_http() { # URL SECONDS
	for _ in $(seq 1 $(($2 * 10))); do
		curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2
	return 1
}
# launch NAME CMD…: start CMD detached in its own session, log to NAME.log.
launch() {
	local name=$1
	shift
	setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/$name.pid"
}

database_url() {
	if [ -n "${DATABASE_URL:-}" ]; then echo "$DATABASE_URL"; else echo "postgres://postgres@127.0.0.1:$pg_port/conduit?sslmode=disable"; fi
}

start_postgres() {
	[ -n "${DATABASE_URL:-}" ] && return 0
	if alive "$(pid_of postgres)"; then return 0; fi
	mkdir -p "$dir/pg"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir/pg"
	if [ ! -f "$dir/pg/data/PG_VERSION" ]; then
		as_pg "$pgbin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 --no-instructions >"$dir/initdb.log"
	fi
	as_pg "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -s \
		-o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1" start
	head -1 "$dir/pg/data/postmaster.pid" >"$dir/postgres.pid"
	psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'conduit'" | grep -q 1 ||
		psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE conduit"
}

start_redis() {
	[ "$cache" = redis ] || return 0
	alive "$(pid_of redis)" && return 0
	command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
	mkdir -p "$dir/redis"
	launch redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$dir/redis" --daemonize no
	for _ in $(seq 1 100); do
		redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.05
	done
	echo "redis-server on $redis_port did not answer" >&2
	return 1
}

start_node() { # I
	local i=$1 port=$((base + 10 + $1)) cache_url="" purge_url=""
	alive "$(pid_of node$i)" && return 0
	[ "$cache" = redis ] && cache_url="redis://127.0.0.1:$redis_port/0"
	[ "$edge" = varnish ] && purge_url="http://127.0.0.1:$edge_port/"
	CONDUIT_DATABASE_URL=$(database_url) CONDUIT_JWT_KEYS=$(cat "$dir/jwt.keys") CONDUIT_CACHE_URL=$cache_url \
		CONDUIT_EDGE_PURGE_URL=${purge_url:-} \
		launch "node$i" "$dir/conduit" serve --addr "127.0.0.1:$port" --drain-delay "$drain" \
		--admin-addr "127.0.0.1:$((base + 20 + i))" \
		--trusted-proxies 127.0.0.1 --log-format json
}

haproxy_cfg() {
	local servers="" i
	for i in $(seq 1 "$nodes"); do
		servers+="    server node$i 127.0.0.1:$((base + 10 + i))\n"
	done
	sed -e "s/@LISTEN@/127.0.0.1:$lb_port/; s/@STATS@/127.0.0.1:$stats_port/; s/^@SERVERS@\$/${servers%\\n}/" \
		"$root/deploy/haproxy/haproxy.cfg" >"$dir/haproxy.cfg"
	haproxy -q -c -f "$dir/haproxy.cfg"
}

# start_varnish: the edge cache in front of HAProxy, from the shipped VCL;
# the nodes (127.0.0.1) may purge.
start_varnish() {
	[ "$edge" = varnish ] || return 0
	alive "$(pid_of varnish)" && return 0
	# Varnish reads the VCL and keeps its work dir as an unprivileged user,
	# who may not reach $dir (mktemp makes 0700 dirs): both live in a dir
	# of their own under /tmp, and $dir/varnish links to it.
	local vdir
	vdir=$(mktemp -d /tmp/conduit-varnish-XXXXXX)
	chmod 755 "$vdir"
	rm -rf "$dir/varnish"
	ln -s "$vdir" "$dir/varnish"
	sed -e "s/@BACKEND_HOST@/127.0.0.1/; s/@BACKEND_PORT@/$lb_port/" -e 's/^@PURGERS@$/    "127.0.0.1";/' \
		"$root/deploy/varnish/conduit.vcl" >"$vdir/conduit.vcl"
	chmod 644 "$vdir/conduit.vcl"
	launch varnish varnishd -F -a "127.0.0.1:$edge_port" -T "127.0.0.1:$edge_admin_port" \
		-f "$vdir/conduit.vcl" -n "$vdir" -s malloc,256m
	wait_http "http://127.0.0.1:$edge_port/readyz" 20
}

# start_prometheus: with MONITOR=prometheus, the shipped prometheus.yml and
# alerts.yml with a targets file naming this runner's admin listeners.
start_prometheus() {
	local prom_port=$((base + 4))
	[ "${MONITOR:-}" = prometheus ] || return 0
	command -v prometheus >/dev/null || { echo "MONITOR=prometheus needs prometheus (apt-get install prometheus)" >&2; exit 1; }
	alive "$(pid_of prometheus)" && return 0
	mkdir -p "$dir/prometheus/targets"
	cp "$root/deploy/prometheus/prometheus.yml" "$root/deploy/prometheus/alerts.yml" "$dir/prometheus/"
	{
		echo "- targets:"
		for i in $(seq 1 "$nodes"); do echo "    - 127.0.0.1:$((base + 20 + i))"; done
	} >"$dir/prometheus/targets/conduit.yml"
	launch prometheus prometheus --config.file="$dir/prometheus/prometheus.yml" \
		--storage.tsdb.path="$dir/prometheus/data" --web.listen-address="127.0.0.1:$prom_port"
	wait_http "http://127.0.0.1:$prom_port/-/ready" 30
	echo "Prometheus: http://127.0.0.1:$prom_port/ (alerts: /alerts)"
}

# urls OFFSET: comma-separated URLs of every node's port base+OFFSET+i.
urls() {
	local i out=""
	for i in $(seq 1 "$nodes"); do out+="${out:+,}http://127.0.0.1:$((base + $1 + i))"; done
	echo "$out"
}

write_env() {
	local prom="" edge_url=""
	[ "${MONITOR:-}" = prometheus ] && prom="http://127.0.0.1:$((base + 4))"
	[ "$edge" = varnish ] && edge_url="http://127.0.0.1:$edge_port"
	# umask: DATABASE_URL may hold a password.
	(umask 077 && cat >"$dir/cluster.env") <<EOF
# stage 3 on 127.0.0.1 (scripts/stage3.sh); source this file
LB_URL='http://127.0.0.1:$lb_port'
NODE_URLS='$(urls 10)'
ADMIN_URLS='$(urls 20)'
DATABASE_URL='$(database_url)'
PROMETHEUS_URL='$prom'
EDGE_URL='$edge_url'
EOF
}

cmd_start() {
	command -v haproxy >/dev/null || { echo "haproxy is not installed (apt-get install haproxy)" >&2; exit 1; }
	if [ "$edge" = varnish ]; then
		command -v varnishd >/dev/null || { echo "varnishd is not installed (apt-get install varnish)" >&2; exit 1; }
	fi
	mkdir -p "$dir"
	echo "building conduit"
	(cd "$root" && go build -o "$dir/conduit" ./cmd/conduit)
	if [ ! -s "$dir/jwt.keys" ]; then
		(umask 077 && echo "k1:$(head -c 32 /dev/urandom | base64 -w0)" >"$dir/jwt.keys")
	fi
	start_postgres
	start_redis
	# Migrate once up front, so the nodes do not race for the lock.
	CONDUIT_DATABASE_URL=$(database_url) "$dir/conduit" migrate
	for i in $(seq 1 "$nodes"); do start_node "$i"; done
	for i in $(seq 1 "$nodes"); do wait_http "http://127.0.0.1:$((base + 10 + i))/readyz" 30; done
	haproxy_cfg
	alive "$(pid_of haproxy)" || launch haproxy haproxy -db -f "$dir/haproxy.cfg"
	wait_http "http://127.0.0.1:$lb_port/readyz" 10
	start_prometheus
	start_varnish
	write_env
	echo "stage 3 is up: http://127.0.0.1:$lb_port/ (HAProxy stats: http://127.0.0.1:$stats_port/; settings in $dir/cluster.env)"
	[ "$edge" = varnish ] && echo "edge (Varnish): http://127.0.0.1:$edge_port/ (varnishstat -n $dir/varnish)"
	true
}

cmd_status() {
	local name pid state
	for name in postgres redis $(for i in $(seq 1 "$nodes"); do echo "node$i"; done) haproxy varnish; do
		pid=$(pid_of "$name")
		if [ -n "$pid" ] && alive "$pid"; then state="running (pid $pid)"; else state="stopped"; fi
		printf '%-9s %s\n' "$name" "$state"
	done
	pid=$(pid_of prometheus)
	[ -n "$pid" ] && alive "$pid" && echo "prometheus running (pid $pid) on http://127.0.0.1:$((base + 4))/"
	curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$lb_port/readyz" 2>/dev/null &&
		echo "load balancer: ready on http://127.0.0.1:$lb_port/" || echo "load balancer: not answering"
}

# stop_pid NAME SIGNAL: signal the recorded process and wait until it is gone.
stop_pid() {
	local pid
	pid=$(pid_of "$1")
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		kill "-$2" "$pid" 2>/dev/null || true
		for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && { echo "$1 (pid $pid) did not stop; sending SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true; }
	fi
	rm -f "$dir/$1.pid"
}

cmd_stop() {
	stop_pid prometheus TERM
	stop_pid varnish TERM
	if [ -L "$dir/varnish" ]; then
		rm -rf "$(readlink "$dir/varnish")"
		rm -f "$dir/varnish"
	fi
	stop_pid haproxy TERM
	for f in "$dir"/node*.pid; do [ -e "$f" ] && stop_pid "$(basename "$f" .pid)" TERM; done
	stop_pid redis TERM
	stop_pid postgres INT # fast shutdown
	rm -f "$dir/cluster.env"
	echo "stopped"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
