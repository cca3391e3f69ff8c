#!/usr/bin/env bash
# Stage 2 for real on one machine: PostgreSQL and Conduit on two "hosts" —
# two network namespaces with their own addresses, joined by a veth pair —
# and the RealWorld Postman suite run across that link from the Conduit side.
#
#   sudo scripts/two-hosts.sh            # builds ./conduit if CONDUIT_BIN is unset
#
# Environment (all optional):
#   CONDUIT_BIN  conduit binary to run (default: go build ./cmd/conduit)
#   NEWMAN       newman executable (default: newman on PATH, else installed
#                once with npm into ~/.cache/conduit-newman)
#   PGBIN        PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   NET          first three octets of the private /24 used (default 10.231.0)
#
# Traffic stays between the two namespaces this script creates: nothing is
# sent from the root namespace to their addresses (on some machines the root
# namespace routes 10.x to a gateway), and both are deleted on exit.
# Needs root (ip netns) and the PostgreSQL server binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
NET=${NET:-10.231.0}
DB_IP=$NET.1 WEB_IP=$NET.2
ID=$$
DB_NS=conduit-db-$ID WEB_NS=conduit-web-$ID
VETH_DB=cdb$ID VETH_WEB=cweb$ID
COLLECTION=${COLLECTION:-$ROOT/../shared/realworld/Conduit.postman_collection.json}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'two-hosts: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$PGBIN/postgres" ] || die "no PostgreSQL binaries in $PGBIN (apt-get install postgresql-15, or set PGBIN)"
[ -f "$COLLECTION" ] || die "no Postman collection at $COLLECTION"
id postgres >/dev/null 2>&1 || die "no postgres user"

R=$(mktemp -d /tmp/conduit-two-hosts.XXXXXX)
chmod 711 "$R"
WEB_PID=
cleanup() {
	set +e
	[ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null && wait "$WEB_PID" 2>/dev/null
	if [ -f "$R/pg/postmaster.pid" ]; then
		ip netns exec "$DB_NS" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$R/pg" -m fast -w stop >/dev/null 2>&1
	fi
	for ns in "$WEB_NS" "$DB_NS"; do
		# Only processes inside the namespaces this script created.
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$R"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------
if [ -z "${CONDUIT_BIN:-}" ]; then
	log "building conduit"
	(cd "$ROOT" && go build -o "$R/conduit" ./cmd/conduit)
	CONDUIT_BIN=$R/conduit
fi
if [ -z "${NEWMAN:-}" ]; then
	if command -v newman >/dev/null; then
		NEWMAN=$(command -v newman)
	else
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/conduit-newman
		if [ ! -x "$cache/node_modules/.bin/newman" ]; then
			log "installing newman 6 into $cache"
			npm install --silent --prefix "$cache" newman@6 >/dev/null
		fi
		NEWMAN=$cache/node_modules/.bin/newman
	fi
fi

# --- two hosts --------------------------------------------------------------
log "namespaces $DB_NS ($DB_IP) and $WEB_NS ($WEB_IP), veth pair"
ip netns add "$DB_NS"
ip netns add "$WEB_NS"
ip link add "$VETH_DB" netns "$DB_NS" type veth peer name "$VETH_WEB" netns "$WEB_NS"
ip -n "$DB_NS" addr add "$DB_IP/24" dev "$VETH_DB"
ip -n "$WEB_NS" addr add "$WEB_IP/24" dev "$VETH_WEB"
for ns in "$DB_NS" "$WEB_NS"; do ip -n "$ns" link set lo up; done
ip -n "$DB_NS" link set "$VETH_DB" up
ip -n "$WEB_NS" link set "$VETH_WEB" up
in_db() { ip netns exec "$DB_NS" "$@"; }
in_web() { ip netns exec "$WEB_NS" "$@"; }

# --- database host ----------------------------------------------------------
log "PostgreSQL on $DB_IP:5432"
mkdir -p "$R/pg" "$R/run" && chown postgres: "$R/pg" "$R/run"
runuser -u postgres -- "$PGBIN/initdb" -D "$R/pg" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
cat >>"$R/pg/postgresql.conf" <<EOF
listen_addresses = '$DB_IP'
port = 5432
unix_socket_directories = '$R/run'
EOF
# Only the web host's network may connect (trust: a lab network; use
# scram-sha-256 and TLS on real machines, see docs/upgrade.md).
echo "host all all $NET.0/24 trust" >>"$R/pg/pg_hba.conf"
in_db runuser -u postgres -- "$PGBIN/pg_ctl" -D "$R/pg" -l "$R/run/pg.log" -w start >/dev/null

# --- web host ---------------------------------------------------------------
in_web "$PGBIN/psql" -X -q -h "$DB_IP" -U postgres -c "CREATE DATABASE conduit" postgres
if in_web bash -c "exec 3<>/dev/tcp/127.0.0.1/5432" 2>/dev/null; then
	die "something answers on 127.0.0.1:5432 inside the web namespace: the split is not real"
fi
DB_URL="postgres://postgres@$DB_IP:5432/conduit?sslmode=disable"
log "conduit serve on $WEB_IP:8080 -> $DB_URL"
mkdir -p "$R/web"
in_web "$CONDUIT_BIN" serve --addr "$WEB_IP:8080" --data-dir "$R/web" --database-url "$DB_URL" \
	--log-level warn >"$R/conduit.log" 2>&1 &
WEB_PID=$!

readyz() { in_web curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$WEB_IP:8080/readyz" || true; }
wait_ready() {
	for _ in $(seq 150); do
		[ "$(readyz)" = 200 ] && return 0
		kill -0 "$WEB_PID" 2>/dev/null || { cat "$R/conduit.log" >&2; die "conduit exited"; }
		sleep 0.2
	done
	cat "$R/conduit.log" >&2
	die "conduit not ready after 30s"
}
wait_ready

# --- the API suite across the link ------------------------------------------
log "Postman collection from $WEB_NS against http://$WEB_IP:8080/api"
u=u$(date +%s%N)
in_web "$NEWMAN" run "$COLLECTION" --bail \
	--global-var "APIURL=http://$WEB_IP:8080/api" \
	--global-var "USERNAME=$u" --global-var "EMAIL=$u@example.com" --global-var "PASSWORD=password"

# --- the database host goes away and comes back -----------------------------
log "stopping PostgreSQL: /readyz must say not ready"
in_db runuser -u postgres -- "$PGBIN/pg_ctl" -D "$R/pg" -m fast -w stop >/dev/null
code=$(readyz)
[ "$code" = 503 ] || die "/readyz answered $code with the database down, want 503"
api=$(in_web curl -s -o /dev/null -w '%{http_code}' --max-time 15 "http://$WEB_IP:8080/api/articles" || true)
[ "$api" = 503 ] || die "GET /api/articles answered $api with the database down, want 503"
log "starting PostgreSQL again: conduit must recover by itself"
in_db runuser -u postgres -- "$PGBIN/pg_ctl" -D "$R/pg" -l "$R/run/pg.log" -w start >/dev/null
wait_ready
api=$(in_web curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$WEB_IP:8080/api/articles")
[ "$api" = 200 ] || die "GET /api/articles answered $api after recovery"

log "two hosts: OK"
