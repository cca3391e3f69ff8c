#!/usr/bin/env bash
# stage7-measure.sh: the figures of docs/stage7.md ("Measurements").
# Seeds a SQLite database at SCALE (timelines built in bulk by the seeder;
# skipped when DIR already holds one), starts `conduit serve` on it with one
# in-process worker, and prints
#   1. feed p50/p99 of the heaviest and of an average reader, before (read
#      from the follows) and after (timeline), next to the article endpoint;
#   2. fan-out throughput (timeline inserts/s of the one worker);
#   3. under `conduit bench --mix api` (CONNECTIONS, DURATION): publish →
#      visible in a follower's feed p50/p99, and the bench's own table with
#      the feed and single-article lines and their ratio.
# Settings: SCALE (0.1), DIR (/tmp/conduit-stage7-$SCALE), PORT (26771),
# MAX_FOLLOWERS (--fanout-max-followers; 10000 × SCALE keeps ~100
# celebrities at any scale), CONNECTIONS (8), DURATION (30s), N (300
# requests per latency cell).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
scale=${SCALE:-0.1}
dir=${DIR:-/tmp/conduit-stage7-$scale}
port=${PORT:-26771}
admin=$((port + 1))
maxf=${MAX_FOLLOWERS:-$(awk -v s="$scale" 'BEGIN { printf "%d", 10000 * s }')}
connections=${CONNECTIONS:-8}
duration=${DURATION:-30s}
n=${N:-300}
bin=$dir/bin
mkdir -p "$bin"
(cd "$root" && go build -o "$bin/conduit" ./cmd/conduit && go build -o "$bin/stage7-measure" ./scripts/stage7-measure)

if [ ! -f "$dir/conduit.db" ]; then
	echo "== seeding scale $scale into $dir (timelines built in bulk, celebrities over $maxf followers)"
	"$bin/conduit" seed --quiet --scale "$scale" --data-dir "$dir" --fanout-max-followers "$maxf"
fi

"$bin/conduit" serve --data-dir "$dir" --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" \
	--fanout-max-followers "$maxf" --workers 1 >"$dir/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null

echo "== machine: $(nproc) vCPU, load average $(cut -d' ' -f1-3 /proc/loadavg); scale $scale, SQLite, one worker"
measure=("$bin/stage7-measure" --url "http://127.0.0.1:$port" --data-dir "$dir" --fanout-max-followers "$maxf")
"${measure[@]}" -n "$n"

echo "== under conduit bench --mix api --connections $connections --duration $duration"
"$bin/conduit" bench --url "http://127.0.0.1:$port" --mix api --connections "$connections" --duration "$duration" \
	>"$dir/bench.txt" 2>"$dir/bench.log" &
bench=$!
sleep 5 # its sign-ins and discovery first
"${measure[@]}" -lag -lags "${LAGS:-20}" || true
wait "$bench"
cat "$dir/bench.txt"
awk '$1 == "api" && $2 == "feed" { f50 = $6; f99 = $8 } $1 == "api" && $2 == "article" { a50 = $6; a99 = $8 }
	END { if (a50 > 0) printf "feed / article latency under the bench: p50 %.2f / %.2f ms = %.1f×, p99 %.2f / %.2f ms = %.1f×\n", f50, a50, f50 / a50, f99, a99, f99 / a99 }' "$dir/bench.txt"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
