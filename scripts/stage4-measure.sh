#!/usr/bin/env bash
# stage4-measure.sh: the figures of docs/stage4.md, measured on a running
# stage-4 runner (scripts/stage4.sh start, then conduit seed into it):
# `conduit bench` through the balancer twice, with the nodes reading from
# the replicas and with every read on the primary, and for each run
#   - the share of database reads the replicas served (the nodes' admin
#     listeners' /metrics),
#   - the primary's load: transactions and buffer accesses on it
#     (pg_stat_database), per benchmark request,
#   - replica lag under the mix: pg_stat_replication.replay_lag sampled
#     every 100 ms on the primary (p50, p99, max per replica).
#
# Settings: STAGE4_DIR and BASE_PORT as for stage4.sh; DURATION (20s),
# CONNECTIONS (16); RUNS (both, or "replicas" for the first run only).
# Exits non-zero if a benchmark request failed. Needs jq and psql.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${STAGE4_DIR:-$root/.stage4}
duration=${DURATION:-20s}
connections=${CONNECTIONS:-16}
# shellcheck source=/dev/null
source "$dir/cluster.env"

export PGCONNECT_TIMEOUT=3
primary() { timeout 10 psql -X -qtA "$DATABASE_URL" -c "$1"; }
metric_sum() { # PREFIX: sum of a counter over the nodes
	local u total=0 v
	for u in ${ADMIN_URLS//,/ }; do
		v=$(curl -fsS --max-time 5 "$u/metrics" | awk -v p="$1" 'index($0, p) == 1 { s += $2 } END { printf "%d", s }') || {
			echo "no metrics from $u" >&2
			exit 1
		}
		total=$((total + v))
	done
	echo "$total"
}
pct() { # FILE P: the P-th percentile of the numbers in FILE
	local n
	n=$(wc -l <"$1")
	[ "$n" -gt 0 ] || { echo "-"; return; }
	sort -n "$1" | awk -v p="$2" -v n="$n" 'NR == int((n - 1) * p / 100) + 1 { print; exit }'
}

# run LABEL: one benchmark with the nodes as they are.
run() {
	local label=$1 lagfile="$dir/lag-$1.txt" sampler
	: >"$lagfile"
	local r0 p0 s0
	r0=$(metric_sum conduit_db_replica_reads_total)
	p0=$(metric_sum conduit_db_primary_reads_total)
	s0=$(primary "SELECT xact_commit + xact_rollback, blks_hit + blks_read, tup_returned + tup_fetched FROM pg_stat_database WHERE datname = 'conduit'")
	(
		while :; do
			primary "SELECT application_name || ' ' || coalesce(extract(epoch FROM replay_lag) * 1000, 0) FROM pg_stat_replication" >>"$lagfile" 2>/dev/null || true
			sleep 0.1
		done
	) &
	sampler=$!
	local rc=0
	timeout $((${duration%s} + 120)) "$dir/conduit" bench --url "$LB_URL" --duration "$duration" --connections "$connections" --json "$dir/bench-$label.json" >"$dir/bench-$label.txt" || rc=$?
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	[ $rc = 0 ] || { cat "$dir/bench-$label.txt"; echo "bench failed" >&2; exit 1; }
	local r1 p1 s1 requests
	r1=$(metric_sum conduit_db_replica_reads_total)
	p1=$(metric_sum conduit_db_primary_reads_total)
	s1=$(primary "SELECT xact_commit + xact_rollback, blks_hit + blks_read, tup_returned + tup_fetched FROM pg_stat_database WHERE datname = 'conduit'")
	requests=$(jq '.total.requests' "$dir/bench-$label.json")
	echo "== $label"
	grep -E '^total|errors' "$dir/bench-$label.txt" | head -3
	local dr=$((r1 - r0)) dp=$((p1 - p0))
	if [ $((dr + dp)) -gt 0 ]; then
		echo "database reads: $((dr + dp)) through Conduit's router, $((100 * dr / (dr + dp)))% on replicas"
	fi
	IFS='|' read -r x0 b0 t0 <<<"$s0"
	IFS='|' read -r x1 b1 t1 <<<"$s1"
	awk -v x=$((x1 - x0)) -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v n="$requests" \
		'BEGIN { printf "primary per request: %.2f transactions, %.1f buffer accesses, %.1f rows read (%d requests)\n", x / n, b / n, t / n, n }'
	local m
	for m in $(awk '{ print $1 }' "$lagfile" | sort -u); do
		awk -v m="$m" '$1 == m { print $2 }' "$lagfile" >"$lagfile.$m"
		echo "replay lag of $m (ms, $(wc -l <"$lagfile.$m") samples): p50 $(pct "$lagfile.$m" 50), p99 $(pct "$lagfile.$m" 99), max $(pct "$lagfile.$m" 100)"
	done
}

run replicas
[ "${RUNS:-both}" = replicas ] && exit 0
NODE_FLAGS="--replica-urls=" STAGE4_DIR="$dir" "$root/scripts/stage4.sh" restart-nodes >/dev/null
run primary-only
STAGE4_DIR="$dir" "$root/scripts/stage4.sh" restart-nodes >/dev/null
