#!/usr/bin/env bash
# stage5-measure.sh: the whole-system figures of docs/stage5.md. Runs
# scripts/stage3.sh (its own PostgreSQL, HAProxy and, with CACHE=redis, its
# own redis-server) in several configurations on one seeded database and
# drives each with one `conduit bench` run, open loop at the same rate
# through the balancer; the counters are read after WARMUP and at the end,
# and for that measured part it prints
#   - the cache hit ratio of the hot reads per key kind (article,
#     favorites: an article's count, html: a rendered body, user,
#     username, tags) and over them all, summed over the nodes' admin /metrics:
#     conduit_cache_tier_lookups_total (hit = near hit or Redis hit; every
#     read counts once as a near lookup) and conduit_cache_loads_total
#     (database loads on a miss); with the in-process caches, their
#     overall conduit_cache_hits_total / misses;
#   - the anonymous first list pages: conduit_cache_hits_total and
#     misses_total of cache="pages" (the site's kept HTML pages) and
#     cache="lists" (first pages kept by the service, for the API and for
#     a page the site builds), and the share of those requests answered
#     without a database list read: (page hits + list hits) / (page hits
#     + list hits + list misses);
#   - with Redis, where the first list pages that needed a database list
#     read (list-cache misses) missed: conduit_cache_versioned_reads_total
#     of kind="listpage" (the service's lists kept in Redis for every
#     node): absent (no page of that list in Redis: the first read of it
#     cluster-wide, or one whose keeping a write prevented), changed (a
#     write since changed a version it was kept with), and the rest (the
#     node could not use the tier at that moment: a watched key being
#     tracked again, Redis slow); the list pages that appeared in Redis
#     during the measured part (first reads cluster-wide: compulsory), and
#     the ratio with those left out; and the pages a write dropped that
#     the nodes rebuilt in the background (cache="listrebuilds": read and
#     kept, not kept; cache="listrebuildsshared": found rebuilt in Redis),
#     which are not reads and count in none of these;
#   - with Redis, the usernames read at all (username keys in Redis at
#     the end) against the username loads under the fill lease over the
#     whole run: equal when every such miss was a first read;
#   - PostgreSQL read statements per second: pg_stat_statements calls of
#     statements that begin with SELECT or WITH and write nothing
#     (pg_notify, the stage-3 invalidations, is not a read), and all
#     transactions per second (pg_stat_database);
#   - the latency of each write endpoint (p50 / p99; over the whole run).
#
# Runs (RUNS, in order; default all four):
#   redis3   CACHE=redis, 3 nodes     memory3  stage 3 caches, 3 nodes
#   redis1   CACHE=redis, 1 node      memory1  stage 3 caches, 1 node
#
# Settings: STAGE3_DIR (./.stage5-measure; kept between invocations, so the
# seed is loaded once: $STAGE3_DIR/seeded marks it done), BASE_PORT (24300),
# SCALE (0.1: conduit seed --scale; 1 is the full dataset), SEED_FLAGS
# (more flags for conduit seed, e.g. --timelines=false: the full seed then
# takes ~16 min on PostgreSQL here instead of much longer), TIMELINES (N:
# after such a seed, build the home timelines of the authors of the newest N
# articles through the nodes' job workers, once, e.g. 2000; 0, the default:
# none), RATE (250 req/s), WARMUP (15s), DURATION (30s),
# CONNECTIONS (64: the most in flight), CACHE_TIMEOUT (the nodes'
# --cache-timeout; 10ms, the default), CACHE_TTL (the nodes' --cache-ttl
# with Redis; 6h, the default: a shorter one shows a run past the ttl),
# CACHE_LIST_TTL (the nodes' --cache-list-ttl with Redis: how long a list
# page kept in Redis lives; 24h, the default),
# INTERVAL (e.g. 30s: also print the hit ratios of each such interval of
# the measured part, to show a dip, with PostgreSQL's read statements per
# request and the load average at its end; 0, the default: none). Needs jq, psql, curl, haproxy,
# redis-server and PostgreSQL 15 (with pg_stat_statements, in the Debian
# package). Stops everything it started at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export STAGE3_DIR=${STAGE3_DIR:-$root/.stage5-measure}
export BASE_PORT=${BASE_PORT:-24300}
scale=${SCALE:-0.1}
seed_flags=${SEED_FLAGS:-}
timelines_for=${TIMELINES:-0}
rate=${RATE:-250}
warmup=${WARMUP:-15s}
duration=${DURATION:-30s}
connections=${CONNECTIONS:-64}
interval=${INTERVAL:-0}
runs=${RUNS:-redis3 memory3 redis1 memory1}
dir=$STAGE3_DIR
export CONDUIT_CACHE_TIMEOUT=${CACHE_TIMEOUT:-10ms} # the nodes inherit it
export CONDUIT_CACHE_TTL=${CACHE_TTL:-6h}
export CONDUIT_CACHE_LIST_TTL=${CACHE_LIST_TTL:-24h}
export PGCONNECT_TIMEOUT=5 PGOPTIONS="-c client_min_messages=warning"

for need in jq psql curl; do
	command -v "$need" >/dev/null || { echo "$need is not installed" >&2; exit 1; }
done

stage3() { "$root/scripts/stage3.sh" "$@"; }
trap 'stage3 stop >/dev/null 2>&1 || true' EXIT

sql() { psql -X -qtA "$DATABASE_URL" -c "$1"; }

# up CACHE NODES: (re)start stage 3 in that configuration, load its
# settings, make sure pg_stat_statements is loaded.
up() {
	stage3 stop >/dev/null
	CACHE=$1 NODES=$2 stage3 start >"$dir/start.log" 2>&1 || { cat "$dir/start.log"; exit 1; }
	# shellcheck source=/dev/null
	source "$dir/cluster.env"
	if [ "$(sql "SHOW shared_preload_libraries")" != pg_stat_statements ]; then
		sql "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
		stage3 stop >/dev/null
		CACHE=$1 NODES=$2 stage3 start >"$dir/start.log" 2>&1 || { cat "$dir/start.log"; exit 1; }
		# shellcheck source=/dev/null
		source "$dir/cluster.env"
	fi
	sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
}

seed() {
	if [ ! -e "$dir/seeded" ]; then
		if [ "$(sql "SELECT count(*) > 0 FROM articles")" = t ]; then
			# A database seeded before the marker existed (or by hand): take
			# it as it is. A seed cut off halfway also has articles; remove
			# STAGE3_DIR to start over.
			echo "the database has articles but no $dir/seeded: taking it as seeded" >&2
		else
			echo "seeding at scale $scale${seed_flags:+ ($seed_flags)}"
			local t0=$SECONDS
			# shellcheck disable=SC2086 # SEED_FLAGS is a list of flags
			CONDUIT_DATABASE_URL=$DATABASE_URL "$dir/conduit" seed --scale "$scale" --quiet $seed_flags >"$dir/seed.log" 2>&1 || { cat "$dir/seed.log"; exit 1; }
			tail -1 "$dir/seed.log"
			echo "seeded in $((SECONDS - t0)) s: $(sql "SELECT (SELECT count(*) FROM users) || ' users, ' || (SELECT count(*) FROM articles) || ' articles'")"
		fi
		date -u +%FT%TZ >"$dir/seeded"
	fi
	timelines
}

# timelines: with TIMELINES=N (a seed with --timelines=false), build the
# home timelines of the authors of the newest N articles only, once: the
# benchmark signs in authors from the first page of /api/articles, and
# building every user's timeline takes longer than the seed. The running
# nodes' job workers build them; this waits until the queue is empty.
timelines() {
	[ "$timelines_for" != 0 ] || return 0
	[ -e "$dir/timelines" ] && return 0
	local ids t0=$SECONDS
	ids=$(sql "SELECT string_agg(DISTINCT author_id::text, ',') FROM (SELECT author_id FROM articles ORDER BY id DESC LIMIT $timelines_for) a")
	echo "building the home timelines of the authors of the newest $timelines_for articles ($(tr ',' '\n' <<<"$ids" | wc -l) users)"
	CONDUIT_DATABASE_URL=$DATABASE_URL "$dir/conduit" jobs build-timelines --users "$ids" >"$dir/timelines.log" 2>&1 || { cat "$dir/timelines.log"; exit 1; }
	while :; do
		CONDUIT_DATABASE_URL=$DATABASE_URL "$dir/conduit" jobs stats >"$dir/jobs.txt" 2>&1 || { cat "$dir/jobs.txt"; exit 1; }
		awk '$1 == "timeline.build" && $2 > 0 { busy = 1 } END { exit !busy }' "$dir/jobs.txt" || break
		[ $((SECONDS - t0)) -lt 3600 ] || { cat "$dir/jobs.txt"; echo "timelines not built within an hour" >&2; exit 1; }
		sleep 5
	done
	echo "timelines built in $((SECONDS - t0)) s"
	date -u +%FT%TZ >"$dir/timelines"
}

# metrics FILE: the cache counters of every node, one "name{labels} value"
# line each, summed over the nodes.
metrics() {
	local u
	for u in ${ADMIN_URLS//,/ }; do
		curl -fsS --max-time 5 "$u/metrics" || { echo "no metrics from $u" >&2; exit 1; }
	done | awk '/^conduit_cache_((tier_lookups|loads|hits|misses|bypassed|redis_errors|versioned_reads)_total\{|generation_bumps_total )/ { s[$1] += $2 } END { for (k in s) print k, s[k] }' >"$1"
}

# listpages: how many list pages the service keeps in our Redis now.
listpages() {
	if [ "$1" = redis ]; then
		redis-cli -p "$((BASE_PORT + 3))" --scan --pattern 'conduit:c:listpage:*' | wc -l
	else
		echo 0
	fi
}

pgstats() { # reads (statements), transactions
	sql "SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
	              WHERE d.datname = 'conduit' AND s.query ~* '^\\s*(select|with)\\M'
	                AND s.query !~* '(pg_notify|pg_stat_|\\m(insert|update|delete)\\M)')
	         || '|' || (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'conduit')"
}

# interval_line BEFORE AFTER NEWPAGES: the hit ratios between two metrics
# snapshots, on one line: the cached hot reads (article, favorites, user,
# username, tags) together, articles, users by id and usernames alone, and
# the first list pages, raw and without the NEWPAGES list pages that
# appeared in Redis meanwhile (compulsory misses).
interval_line() {
	awk -v newpages="${3:-0}" '
		FNR == NR { before[$1] = $2; next }
		{ d = $2 - before[$1]
		  if ($1 ~ /^conduit_cache_tier_lookups_total/ && $1 ~ /kind="(article|favorites|user|username|tags)"/) {
			k = $1; sub(/.*kind="/, "", k); sub(/".*/, "", k)
			if ($1 ~ /tier="near"/) { reads += d; kr[k] += d }
			if ($1 ~ /result="hit"/) { hits += d; kh[k] += d }
		  } else if ($1 ~ /^conduit_cache_loads_total/) loads += d
		  else if ($1 ~ /^conduit_cache_hits_total\{cache="(lists|pages)"/) lh += d
		  else if ($1 ~ /^conduit_cache_misses_total\{cache="lists"/) lm += d
		}
		function r(k) { return kr[k] ? sprintf("%.1f%%", 100 * kh[k] / kr[k]) : "-" }
		END {
			printf "hot reads %d, hit ratio %.1f%% (article %s, user %s, username %s of %d), database loads %d; first list pages %d, %.1f%% without a database list read",
				reads, reads ? 100 * hits / reads : 0, r("article"), r("user"), r("username"), kr["username"], loads, lh + lm, lh + lm ? 100 * lh / (lh + lm) : 0
			if (newpages > 0 && lh + lm > newpages) printf ", %.1f%% without the %d compulsory", 100 * lh / (lh + lm - newpages), newpages
			printf "\n"
		}' "$1" "$2"
}

run() { # LABEL CACHE NODES
	local label=$1
	up "$2" "$3"
	seed
	# One benchmark for the warm-up and the measured part: it picks its
	# articles and authors when it starts (the newest first), and writes
	# articles as it runs, so a second invocation would read another hot
	# set. The counters are read when the warm-up has passed and at the end.
	local w=${warmup%s} d=${duration%s} rc=0
	: >"$dir/bench-$label.txt"
	timeout $((w + d + 180)) "$dir/conduit" bench --url "$LB_URL" --rate "$rate" --connections "$connections" \
		--duration "$((w + d))s" --json "$dir/bench-$label.json" >"$dir/bench-$label.txt" 2>&1 &
	local pid=$!
	until grep -q '^open loop against' "$dir/bench-$label.txt"; do
		kill -0 "$pid" 2>/dev/null || { cat "$dir/bench-$label.txt"; exit 1; }
		sleep 0.2
	done
	sleep "$w"
	metrics "$dir/m0-$label"
	local p0 p1
	p0=$(listpages "$2")
	sql "SELECT pg_stat_statements_reset()" >/dev/null
	local s0 s1 t0 t1 l0 l1
	s0=$(pgstats)
	t0=$(date +%s.%N)
	l0=$(cut -d' ' -f1-3 /proc/loadavg)
	if [ "$interval" != 0 ]; then # a line per interval of the measured part
		local i=0 prev="$dir/m0-$label" pprev=$p0 pi sprev=$s0 si ti tprev=$t0
		while kill -0 "$pid" 2>/dev/null; do
			sleep "${interval%s}"
			kill -0 "$pid" 2>/dev/null || break
			i=$((i + 1))
			metrics "$dir/mi$i-$label"
			pi=$(listpages "$2")
			si=$(pgstats)
			ti=$(date +%s.%N)
			printf '  %4s s after the warm-up: ' "$((i * ${interval%s}))"
			interval_line "$prev" "$dir/mi$i-$label" $((pi - pprev))
			# PostgreSQL's reads in the interval (pg_stat_statements was
			# reset after s0), per request at the open loop's rate.
			awk -v a="${sprev%%|*}" -v b="${si%%|*}" -v t0="$tprev" -v t1="$ti" -v r="$rate" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
				'BEGIN { s = t1 - t0; printf "        PostgreSQL %.0f read statements/s (%.2f per request); load average %s\n", (b - a) / s, (b - a) / (s * r), l }'
			prev="$dir/mi$i-$label" pprev=$pi sprev=$si tprev=$ti
		done
	fi
	wait "$pid" || rc=$?
	t1=$(date +%s.%N)
	l1=$(cut -d' ' -f1-3 /proc/loadavg)
	s1=$(pgstats)
	metrics "$dir/m1-$label"
	p1=$(listpages "$2")
	[ $rc = 0 ] || { cat "$dir/bench-$label.txt"; echo "bench failed" >&2; exit 1; }
	local secs requests
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	requests=$(awk -v s="$secs" -v r="$rate" 'BEGIN { printf "%d", s * r }') # open loop: the rate
	echo "== $label: $3 node(s), cache ${2:-in-process (stage 3)}; measured the last $secs s of $(jq -r '"\(.seconds | floor) s: \(.total.requests) requests (\(.total.rps | floor) req/s), \(.total.errors) errors, p50 \(.total.p50_ms) ms, p99 \(.total.p99_ms) ms (latencies: whole run)"' "$dir/bench-$label.json")"
	IFS='|' read -r r0 x0 <<<"$s0"
	IFS='|' read -r r1 x1 <<<"$s1"
	# pg_stat_statements was reset after s0 was read: r0 is 0 or nearly.
	echo "load average (1, 5, 15 min): $l0 when the measured part began, $l1 at its end"
	awk -v r="$r1" -v x=$((x1 - x0)) -v s="$secs" -v n="$requests" \
		'BEGIN { printf "PostgreSQL: %.0f read statements/s (%.2f per request), %.0f transactions/s (%.2f per request)\n", r / s, r / n, x / s, x / n }'
	# Hit ratios from the counter deltas.
	awk -v newpages=$((p1 - p0)) '
		FNR == NR { before[$1] = $2; next }
		{ d = $2 - before[$1]
		  if (match($1, /kind="[a-z]+"/)) kind = substr($1, RSTART + 6, RLENGTH - 7); else kind = ""
		  if ($1 ~ /^conduit_cache_tier_lookups_total/) {
			if ($1 ~ /tier="near"/) reads[kind] += d
			if ($1 ~ /result="hit"/) hits[kind] += d
		  } else if ($1 ~ /^conduit_cache_loads_total/) loads[kind] += d
		  else if ($1 ~ /^conduit_cache_bypassed_total/) bypassed[kind] += d
		  else if ($1 ~ /^conduit_cache_versioned_reads_total\{.*kind="listpage"/) { r = $1; sub(/.*result="/, "", r); sub(/".*/, "", r); shared[r] += d }
		  else if ($1 ~ /^conduit_cache_redis_errors_total/) rerrors += d
		  else if ($1 ~ /^conduit_cache_generation_bumps_total/) bumps += d
		  else if ($1 ~ /^conduit_cache_hits_total\{cache="listrebuildsshared"/) rshared += d
		  else if ($1 ~ /^conduit_cache_misses_total\{cache="listrebuildsshared"/) d = d
		  else if ($1 ~ /^conduit_cache_hits_total\{cache="listrebuilds"/) rkept += d
		  else if ($1 ~ /^conduit_cache_misses_total\{cache="listrebuilds"/) rlost += d
		  else if ($1 ~ /^conduit_cache_hits_total\{cache="(lists|pages)"/) { c = $1; sub(/.*cache="/, "", c); sub(/".*/, "", c); lh[c] += d }
		  else if ($1 ~ /^conduit_cache_misses_total\{cache="(lists|pages)"/) { c = $1; sub(/.*cache="/, "", c); sub(/".*/, "", c); lm[c] += d }
		  else if ($1 ~ /^conduit_cache_hits_total/) allhits += d
		  else if ($1 ~ /^conduit_cache_misses_total/) allmisses += d
		}
		END {
			if (allhits + allmisses > 0) printf "cache reads: %d, hit ratio %.1f%% (all kinds)\n", allhits + allmisses, 100 * allhits / (allhits + allmisses)
			for (c in lh) if (lh[c] + lm[c] > 0) printf "  %-9s %7d reads, hit ratio %.1f%% (anonymous first list pages kept by each node)\n", c, lh[c] + lm[c], 100 * lh[c] / (lh[c] + lm[c])
			n = lh["pages"] + lh["lists"] + lm["lists"]
			if (n > 0) printf "  first list pages: %d requests, %.1f%% answered without a database list read\n", n, 100 * (lh["pages"] + lh["lists"]) / n
			# A background rebuild reads Redis first too (kind="listpage"):
			# those it found are its own hits, and one that then read the
			# database had found its page changed (it was kept before),
			# so both are taken out to leave those of readers.
			shared["hit"] -= rshared; shared["changed"] -= rkept + rlost
			if (n > 0 && shared["hit"] + shared["absent"] + shared["changed"] > 0) {
				printf "    of the lists kept by the nodes, %d were served from Redis\n", shared["hit"]
				printf "    database list reads %d: no page of that list in Redis %d, a write changed the page kept %d, the tier not usable at that moment %d\n",
					lm["lists"], shared["absent"], shared["changed"], lm["lists"] - shared["absent"] - shared["changed"]
				printf "    list pages that appeared in Redis meanwhile (first reads cluster-wide: compulsory misses) %d; without them %.1f%% answered without a database list read\n",
					newpages, 100 * (lh["pages"] + lh["lists"]) / (n - newpages)
			}
			if (rkept + rlost + rshared > 0) printf "    pages a write dropped, rebuilt in the background: %d read from the database and kept, %d found rebuilt in Redis by another node, %d not kept\n", rkept, rshared, rlost
			n = split("article favorites html user username tags", ks, " ")
			for (i = 1; i <= n; i++) { k = ks[i]
				if (reads[k] > 0) printf "  %-9s %7d reads, hit ratio %.1f%%, database loads %d, reads past the cache (breaker open) %d\n", k, reads[k], 100 * hits[k] / reads[k], loads[k], bypassed[k]
				allr += reads[k]; allh += hits[k]
			}
			if (allr > 0) printf "  all these %7d reads, hit ratio %.1f%%\n", allr, 100 * allh / allr
			if (rerrors + bumps > 0) printf "failed or timed-out Redis calls: %d; new cache generations (each makes every cached value a miss): %d\n", rerrors, bumps
		}' "$dir/m0-$label" "$dir/m1-$label"
	if [ "$2" = redis ] && command -v redis-cli >/dev/null; then
		local names loads
		names=$(redis-cli -p "$((BASE_PORT + 3))" --scan --pattern 'conduit:c:username:*' | wc -l)
		loads=$(awk '/^conduit_cache_loads_total\{.*kind="username"/ { s[$1 ~ /how="lease"/ ? "lease" : "other"] += $2 }
			END { printf "%d under the fill lease, %d others (breaker open, failed loads: names nobody has)", s["lease"], s["other"] }' "$dir/m1-$label")
		echo "usernames: $names in Redis at the end; database loads over the whole run: $loads"
		# What the pages kept for --cache-list-ttl take, and what Redis
		# does when full (the runner sets no maxmemory: none is evicted).
		echo "redis: $(listpages redis) list pages, $(redis-cli -p "$((BASE_PORT + 3))" --scan --pattern 'conduit:c:sitepage:*' | wc -l) site pages, $(redis-cli -p "$((BASE_PORT + 3))" dbsize) keys, used_memory $(redis-cli -p "$((BASE_PORT + 3))" info memory | awk -F: '/^used_memory_human:/ { sub(/\r/, "", $2); print $2 }'), maxmemory $(redis-cli -p "$((BASE_PORT + 3))" config get maxmemory | tail -1), maxmemory-policy $(redis-cli -p "$((BASE_PORT + 3))" config get maxmemory-policy | tail -1), evicted_keys $(redis-cli -p "$((BASE_PORT + 3))" info stats | awk -F: '/^evicted_keys:/ { sub(/\r/, "", $2); print $2 }')"
	fi
	jq -r '.endpoints[] | select(.name | startswith("write")) | "  \(.name): \(.requests) requests, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms"' "$dir/bench-$label.json"
}

mkdir -p "$dir"
echo "stage 5 measurement: open loop at $rate req/s, warm-up $warmup, measured $duration, --cache-timeout $CONDUIT_CACHE_TIMEOUT, --cache-ttl $CONDUIT_CACHE_TTL, --cache-list-ttl $CONDUIT_CACHE_LIST_TTL (Redis); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
for r in $runs; do
	case $r in
	redis3) run redis3 redis 3 ;;
	memory3) run memory3 "" 3 ;;
	redis1) run redis1 redis 1 ;;
	memory1) run memory1 "" 1 ;;
	*) echo "unknown run $r (want redis3, memory3, redis1, memory1)" >&2; exit 2 ;;
	esac
done
