#!/usr/bin/env bash
# peer-bench.sh: Conduit's writes side by side with another RealWorld
# implementation (a "peer") on the same PostgreSQL, with one load generator
# (`conduit bench --mix writes`, which talks to the RealWorld API alone and
# registers its own users), docs/performance.md "Writes against a peer".
#
#   scripts/peer-bench.sh PEER_URL [PEER_API_PREFIX]
#
# PEER_URL is a peer already running against its own database (its schema
# is its own business; the docs say how ours was started); PEER_API_PREFIX
# is where it serves the API under that URL ("" if at the root, the
# default; "/api" for one like Conduit). The script builds Conduit, starts
# it on a fresh PostgreSQL database of its own (dropped at the end), then
# runs the same closed-loop write mix against both, alternately (the order
# flips each round, so a machine getting busier or quieter favours
# neither), ROUNDS times, and prints per write endpoint the req/s of each
# over all rounds, the median over rounds of p50 and p99, and the ratio.
#
# Settings: PG_URL (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable:
# where the database is created), PORT (34080: Conduit's), POOL (10: Conduit's
# --db-max-conns; give the peer the same, e.g. pool_max_conns=10 in its URL),
# CONNECTIONS (64), DURATION (10s), ROUNDS (3), OUT (./.peer-bench: the JSON
# of every run and the server log), CONDUIT_FLAGS (extra `conduit serve` flags),
# SERVER_BIN (a conduit binary to serve instead of this tree's build; the
# load generator is always this tree's), BEFORE_BIN (a second conduit
# binary, e.g. an older commit's: served too, on its own fresh database and
# port PORT+1, in the same rounds, so that before/peer, after/peer and
# after/before are ratios of one run; the order of the three rotates each
# round), WAITS (1: sample pg_stat_activity every 200 ms and count, per
# server and only while its own round runs, what its active backends wait
# on; "CPU" for none), PEER_DB (the peer's database name, for WAITS),
# DRAIN (1: after each of Conduit's rounds, wait, up to 120 s, until its
# outbox is empty, so that its worker's deferred work (fan-out,
# notifications) does not run during the next server's round; the time it
# took is printed, and "sustained" req/s counts it as part of the round;
# 0 to start the next round at once, as before 2026-12-01).
set -euo pipefail

peer_url=${1:?usage: scripts/peer-bench.sh PEER_URL [PEER_API_PREFIX]}
peer_prefix=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
port=${PORT:-34080}
pool=${POOL:-10}
connections=${CONNECTIONS:-64}
duration=${DURATION:-10s}
rounds=${ROUNDS:-3}
out=${OUT:-$root/.peer-bench}
export PGCONNECT_TIMEOUT=5 PGOPTIONS="-c client_min_messages=warning"

for need in jq psql curl go; do
	command -v "$need" >/dev/null || { echo "$need is not installed" >&2; exit 1; }
done
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.drain

conduit=$out/conduit
(cd "$root" && go build -o "$conduit" ./cmd/conduit)

# The database URL with another database name.
db_url() { echo "$pg_url" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$1#"; }

pids=() dbs=()
declare -A dbof=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	for d in "${dbs[@]}"; do psql -X -q "$pg_url" -c "DROP DATABASE IF EXISTS $d" || true; done
}
trap cleanup EXIT

# serve NAME BINARY PORT: a conduit on a fresh database of its own.
# No sign-up limit: the bench registers one user per connection and round.
# Logs at warn, as the peer is run: neither writes a line per request.
serve() {
	local db=peer_bench_$$_$1
	psql -X -q "$pg_url" -c "CREATE DATABASE $db"
	dbs+=("$db")
	dbof[$1]=$db
	"$2" serve --addr "127.0.0.1:$3" --database-url "$(db_url "$db")" --db-max-conns "$pool" \
		--data-dir "$out/data-$1" --signup-max-per-addr 0 --log-level warn ${CONDUIT_FLAGS:-} \
		>"$out/$1.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$3/readyz" >/dev/null 2>&1 && return
		kill -0 "$pid" 2>/dev/null || { cat "$out/$1.log"; exit 1; }
		sleep 0.2
	done
	echo "$1 did not get ready" >&2; cat "$out/$1.log"; exit 1
}
serve conduit "${SERVER_BIN:-$conduit}" "$port"
names=(conduit peer) urls=("http://127.0.0.1:$port" "$peer_url") prefixes=(/api "$peer_prefix")
if [ -n "${BEFORE_BIN:-}" ]; then
	serve before "$BEFORE_BIN" $((port + 1))
	names+=(before) urls+=("http://127.0.0.1:$((port + 1))") prefixes+=(/api)
fi

dbof[peer]=${PEER_DB:-}

# The wait sampler: the server whose round runs is in $out/current.
rm -f "$out/current" "$out/waits.txt"
if [ "${WAITS:-}" = 1 ]; then
	(
		while :; do
			cur=$(cat "$out/current" 2>/dev/null || true)
			if [ -n "$cur" ] && [ -n "${dbof[$cur]:-}" ]; then
				psql -X -A -t -q -F ' ' "$pg_url" -c "SELECT '$cur', coalesce(wait_event_type || '/' || wait_event, 'CPU')
					FROM pg_stat_activity WHERE state = 'active' AND datname = '${dbof[$cur]}'" >>"$out/waits.txt" || true
			fi
			sleep 0.2
		done
	) &
	pids+=("$!")
fi

run() { # NAME URL PREFIX ROUND
	echo "$1" >"$out/current"
	"$conduit" bench --mix writes --url "$2" --api-prefix="$3" --connections "$connections" \
		--duration "$duration" --seed "$4" --json "$out/$1-$4.json" >/dev/null 2>"$out/$1-$4.log" ||
		{ echo "$1 round $4 failed:" >&2; cat "$out/$1-$4.log" >&2; }
	: >"$out/current"
	[ "${DRAIN:-1}" = 1 ] && [ "$1" != peer ] && drain "$1" "$4"
	return 0
}

# drain NAME ROUND: wait until NAME's outbox is empty (at most 120 s) and
# keep the seconds it took in $out/NAME-ROUND.drain.
drain() {
	local start=$EPOCHREALTIME left
	for _ in $(seq 1200); do
		left=$(psql -X -A -t -q "$(db_url "${dbof[$1]}")" -c "SELECT count(*) FROM jobs") || left=?
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f\n", b - a}' >"$out/$1-$2.drain"
	[ "$left" = 0 ] || echo "$1 round $2: $left jobs still in the outbox after 120 s" >&2
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	n=${#names[@]}
	for i in $(seq 0 $((n - 1))); do
		k=$(((i + r - 1) % n))
		run "${names[$k]}" "${urls[$k]}" "${prefixes[$k]}" "$r"
	done
	echo "round $r done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done

# Per endpoint and server: req/s over all rounds (requests / seconds), the
# median over rounds of p50 and p99, errors.
summary() { # NAME
	jq -s '
		def median: sort | if length == 0 then 0 else .[(length - 1) / 2 | floor] end;
		(map(.seconds) | add) as $secs
		| [.[] | .endpoints[], .total] | group_by(.name)
		| map({key: .[0].name, value: {rps: ((map(.requests) | add) / $secs),
			p50: (map(.p50_ms) | median), p99: (map(.p99_ms) | median),
			errors: (map(.errors) | add)}})
		| from_entries' "$out/$1"-*.json
}
for name in "${names[@]}"; do summary "$name" >"$out/$name-summary.json"; done
# table A B: per endpoint A's and B's req/s, the ratio, their latencies.
table() {
	echo "== $1 : $2"
	jq -r -n --arg a "$1" --arg b "$2" --slurpfile c "$out/$1-summary.json" --slurpfile p "$out/$2-summary.json" '
		["endpoint", "\($a) req/s", "\($b) req/s", "ratio", "\($a) p50/p99 ms", "\($b) p50/p99 ms", "errors"],
		($c[0] | keys[] as $k | [$k, ($c[0][$k].rps | floor), ($p[0][$k].rps // 0 | floor),
			(if ($p[0][$k].rps // 0) > 0 then ($c[0][$k].rps / $p[0][$k].rps * 100 | round / 100) else "-" end),
			"\($c[0][$k].p50 | . * 10 | round / 10) / \($c[0][$k].p99 | . * 10 | round / 10)",
			"\($p[0][$k].p50 // 0 | . * 10 | round / 10) / \($p[0][$k].p99 // 0 | . * 10 | round / 10)",
			"\($c[0][$k].errors) / \($p[0][$k].errors // 0)"])
		| @tsv' | column -t -s $'\t'
}
table conduit peer
if [ -n "${BEFORE_BIN:-}" ]; then table before peer; table conduit before; fi
# Sustained: the writes of all rounds over the rounds' time plus the time
# each server's outbox took to empty after them (the peer defers nothing).
if [ "${DRAIN:-1}" = 1 ]; then
	echo "== sustained (req/s with the outbox's drain counted in each round's time)"
	peer_secs=$(jq -s 'map(.seconds) | add' "$out"/peer-*.json)
	peer_reqs=$(jq -s 'map(.total.requests) | add' "$out"/peer-*.json)
	for name in "${names[@]}"; do
		[ "$name" = peer ] && continue
		jq -r -s -n --arg n "$name" --argjson ps "$peer_secs" --argjson pr "$peer_reqs" \
			--argjson drains "$(cat "$out/$name"-*.drain | jq -s .)" \
			--slurpfile runs <(cat "$out/$name"-[0-9]*.json) '
			($runs | map(.seconds) | add) as $secs | ($runs | map(.total.requests) | add) as $reqs
			| ($drains | add) as $d
			| "\($n): \($reqs / ($secs + $d) | floor) req/s (drains \($drains | map(tostring) | join(", ")) s), \($reqs / ($secs + $d) / ($pr / $ps) * 100 | round / 100)x the peer"'
	done
fi
if [ -s "$out/waits.txt" ]; then
	echo "== active backends' waits (samples every 200 ms, each server during its own rounds)"
	for name in "${names[@]}"; do
		awk -v n="$name" '$1 == n {c[$2]++; t++} END {for (k in c) printf "%d %s %.0f%%\n", c[k], k, 100*c[k]/t}' "$out/waits.txt" |
			sort -rn | awk -v n="$name" '{s = s (s ? ", " : "") $2 " " $1 " (" $3 ")"} END {print n ": " s}'
	done
fi
echo "($rounds rounds of $duration each, $connections connections, closed loop; JSON in $out)"
