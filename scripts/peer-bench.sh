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
# SERVER_BIN (a conduit binary to serve instead of this tree's build, e.g. an
# older commit's for a before/after; the load generator is always this
# tree's).
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
db=peer_bench_conduit_$$
export PGCONNECT_TIMEOUT=5 PGOPTIONS="-c client_min_messages=warning"

for need in jq psql curl go; do
	command -v "$need" >/dev/null || { echo "$need is not installed" >&2; exit 1; }
done
mkdir -p "$out"
rm -f "$out"/*.json

conduit=$out/conduit
(cd "$root" && go build -o "$conduit" ./cmd/conduit)

# The database URL with another database name.
db_url=$(echo "$pg_url" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$db#")
psql -X -q "$pg_url" -c "CREATE DATABASE $db"

pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	psql -X -q "$pg_url" -c "DROP DATABASE IF EXISTS $db" || true
}
trap cleanup EXIT

# No sign-up limit: the bench registers one user per connection and round.
# Logs at warn, as the peer is run: neither writes a line per request.
"${SERVER_BIN:-$conduit}" serve --addr "127.0.0.1:$port" --database-url "$db_url" --db-max-conns "$pool" \
	--data-dir "$out/data" --signup-max-per-addr 0 --log-level warn ${CONDUIT_FLAGS:-} \
	>"$out/conduit.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$out/conduit.log"; exit 1; }
	sleep 0.2
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "conduit did not get ready" >&2; cat "$out/conduit.log"; exit 1; }

run() { # NAME URL PREFIX ROUND
	"$conduit" bench --mix writes --url "$2" --api-prefix="$3" --connections "$connections" \
		--duration "$duration" --seed "$4" --json "$out/$1-$4.json" >/dev/null 2>"$out/$1-$4.log" ||
		{ echo "$1 round $4 failed:" >&2; cat "$out/$1-$4.log" >&2; }
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then
		run conduit "http://127.0.0.1:$port" /api "$r"; run peer "$peer_url" "$peer_prefix" "$r"
	else
		run peer "$peer_url" "$peer_prefix" "$r"; run conduit "http://127.0.0.1:$port" /api "$r"
	fi
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
summary conduit >"$out/conduit-summary.json"
summary peer >"$out/peer-summary.json"
jq -r -n --slurpfile c "$out/conduit-summary.json" --slurpfile p "$out/peer-summary.json" '
	["endpoint", "conduit req/s", "peer req/s", "ratio", "conduit p50/p99 ms", "peer p50/p99 ms", "errors c/p"],
	($c[0] | keys[] as $k | [$k, ($c[0][$k].rps | floor), ($p[0][$k].rps // 0 | floor),
		(if ($p[0][$k].rps // 0) > 0 then ($c[0][$k].rps / $p[0][$k].rps * 100 | round / 100) else "-" end),
		"\($c[0][$k].p50 | . * 10 | round / 10) / \($c[0][$k].p99 | . * 10 | round / 10)",
		"\($p[0][$k].p50 // 0 | . * 10 | round / 10) / \($p[0][$k].p99 // 0 | . * 10 | round / 10)",
		"\($c[0][$k].errors) / \($p[0][$k].errors // 0)"])
	| @tsv' | column -t -s $'\t'
echo "($rounds rounds of $duration each, $connections connections, closed loop; JSON in $out)"
