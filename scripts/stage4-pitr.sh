#!/usr/bin/env bash
# stage4-pitr.sh: a tested backup and point-in-time restore of a running
# stage-4 cluster started with BACKUP=pgbackrest (scripts/stage4.sh), and
# its recovery point objective measured (docs/operations.md, "Restore from
# a backup").
#
#   STAGE4_DIR=… BASE_PORT=… scripts/stage4-pitr.sh
#
# 1. A full pgBackRest backup, taken from the leader.
# 2. A writer creates articles "pitr-RUN-N" through the load balancer, one
#    after another, and notes when each was acknowledged (201). Meanwhile a
#    Patroni switchover moves the primary (WAL archiving carries on from
#    the new leader, on a new timeline), and a target time T is noted.
# 3. The writer stops; at that moment (the whole cluster "lost") the
#    repository is copied as it stands.
# 4. Point-in-time restore to T into a new directory, run as a standalone
#    server: it must hold articles 1..k with every article acknowledged
#    before T and none whose request began after T. A Conduit node on the
#    restored copy serves them to the same user's token.
# 5. Restore of the copy taken at the loss, to the end of its archive: the
#    acknowledged articles missing there are what a backup restore loses
#    (the RPO); it must stay within ARCHIVE_TIMEOUT and a margin.
#
# Settings (environment): STAGE4_DIR, BASE_PORT (as for stage4.sh);
# RESTORE_PORTS (three free ports: two restored servers and a Conduit node
# on one; default BASE_PORT+40..+42); DURATION (seconds of writing, 18);
# ARCHIVE_TIMEOUT (the cluster's, in seconds, for the RPO bound: 60);
# REPORT (a file the summary is also written to).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${STAGE4_DIR:?set STAGE4_DIR to the running stage-4 cluster}
base=${BASE_PORT:-25400}
read -r port_pitr port_latest port_node <<<"${RESTORE_PORTS:-$((base + 40)) $((base + 41)) $((base + 42))}"
duration=${DURATION:-18}
archive_timeout=${ARCHIVE_TIMEOUT:-60}
archive_timeout=${archive_timeout%s}
# shellcheck source=/dev/null
source "$dir/cluster.env"
[ "${BACKUP:-}" = pgbackrest ] || { echo "the cluster in $dir was not started with BACKUP=pgbackrest" >&2; exit 1; }
stage4() { STAGE4_DIR=$dir BASE_PORT=$base "$root/scripts/stage4.sh" "$@"; }

work=$(mktemp -d /tmp/conduit-pitr-XXXXXX)
chmod 755 "$work"
writer=""
node=""
cleanup() {
	if [ -n "$writer" ]; then kill "$writer" 2>/dev/null || true; fi
	if [ -n "$node" ]; then kill "$node" 2>/dev/null || true; fi
	stage4 stop-restored "$work/pitr" >/dev/null 2>&1 || true
	stage4 stop-restored "$work/latest" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
say() { printf -- '-- %s\n' "$*"; }
fail() {
	printf 'stage4-pitr: FAIL: %s\n' "$*" >&2
	exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

say "full backup from the leader"
t0=$(now)
stage4 backup full >"$work/backup.txt"
backup_s=$(elapsed "$t0" "$(now)")
grep -E 'full backup|database size' "$work/backup.txt" | tail -2

run=$(date +%s)
user="pitr$run"
token=$(curl -fsS -H 'Content-Type: application/json' \
	-d "{\"user\":{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"password1\"}}" \
	"$LB_URL/api/users" | jq -r .user.token)

# The writer: article N is retried (same idempotency key, so at most one is
# created) until acknowledged; acks gets "N epoch" once it is. A 409 saying
# the key's request "was applied" but its response was lost (the primary
# moved between the commit and the answer) acknowledges it too: the client
# is told the write took effect, which is all an acknowledgement promises.
# Every other answer is tallied in codes, for the report.
acks=$work/acks
codes=$work/codes
: >"$acks"
: >"$codes"
(
	n=0
	while [ ! -e "$work/stop" ]; do
		n=$((n + 1))
		until [ -e "$work/stop" ]; do
			code=$(curl -s -o "$work/answer" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
				-H "Authorization: Token $token" -H "Idempotency-Key: pitr-$run-$n" \
				-d "{\"article\":{\"title\":\"pitr-$run-$n\",\"description\":\"d\",\"body\":\"b\"}}" \
				"$LB_URL/api/articles" || true)
			if [ "$code" = 201 ]; then
				echo "$n $(now)" >>"$acks"
				break
			fi
			if [ "$code" = 409 ] && grep -q 'was applied' "$work/answer"; then
				echo "$n $(now) applied-response-lost" >>"$acks"
				echo "409-applied" >>"$codes"
				break
			fi
			echo "$code" >>"$codes"
			sleep 0.05
		done
	done
) &
writer=$!

third=$(awk -v d="$duration" 'BEGIN { printf "%.1f", d / 3 }')
say "writing for ${duration}s; a switchover after ${third}s"
sleep "$third"
old=$(stage4 status | awk '$NF == "leader" { print $1 }')
new=$(stage4 switchover)
say "switchover: $old -> $new"
sleep "$third"
target=$(date -u +'%Y-%m-%d %H:%M:%S.%6N+00')
target_epoch=$(now)
say "target time $target"
sleep "$third"
touch "$work/stop"
wait "$writer"
writer=""
loss_epoch=$(now)
# The cluster is "lost" now: copy the repository as it stands (WAL not yet
# archived is lost with it).
cp -a "$dir/pgbackrest/repo" "$work/repo-at-loss"
acked=$(tail -1 "$acks" | cut -d' ' -f1)
if [ -z "$acked" ] || [ "$acked" -lt 20 ]; then fail "only ${acked:-0} articles acknowledged in ${duration}s"; fi
others=$(sort "$codes" | uniq -c | awk '{ printf "%s%s × %s", sep, $1, $2; sep = ", " }')
say "$acked articles acknowledged; other answers: ${others:-none}"

# count PORT: "distinct max" of this run's articles on a restored server.
count() {
	psql -X -qtA -F' ' -h 127.0.0.1 -p "$1" -U postgres -d conduit -c \
		"SELECT count(DISTINCT title), coalesce(max(split_part(title, '-', 3)::int), 0) FROM articles WHERE title LIKE 'pitr-$run-%'"
}
ack_time() { awk -v n="$1" '$1 == n { print $2 }' "$acks"; }

say "point-in-time restore to $target"
t0=$(now)
stage4 restore "$work/pitr" "$port_pitr" "$target"
restore_s=$(elapsed "$t0" "$(now)")
read -r distinct k <<<"$(count "$port_pitr")"
# a: the last acknowledged before T (must be there); b: the first
# acknowledged after T (its request may have committed before T; the next
# one began after T and must not be there).
a=$(awk -v t="$target_epoch" '$2 <= t { n = $1 } END { print n + 0 }' "$acks")
b=$(awk -v t="$target_epoch" '$2 > t { print $1; exit }' "$acks")
# None acknowledged after T: the one after a may have been in flight at T,
# the next was never begun.
b=${b:-$((a + 1))}
[ "$distinct" = "$k" ] || fail "the restored articles are not 1..$k ($distinct distinct)"
[ "$k" -ge "$a" ] || fail "restored to T: $k articles, but $a were acknowledged before T"
[ "$k" -le "$b" ] || fail "restored to T: $k articles, but article $((b + 1)) was begun after T"
say "restored to T: articles 1..$k (acknowledged before T: $a; the first after T: $b)"

# The application on the restored copy: the same user, token and articles.
CONDUIT_JWT_KEYS=$(cat "$dir/jwt.keys") "$dir/conduit" serve --addr "127.0.0.1:$port_node" --data-dir "$work/node" \
	--database-url "postgres://postgres@127.0.0.1:$port_pitr/conduit?sslmode=disable" --log-format json >"$work/node.log" 2>&1 &
node=$!
for _ in $(seq 1 200); do curl -fsS -o /dev/null "http://127.0.0.1:$port_node/readyz" 2>/dev/null && break; sleep 0.1; done
got=$(curl -fsS -H "Authorization: Token $token" "http://127.0.0.1:$port_node/api/articles?author=$user&limit=1" | jq .articlesCount)
[ "$got" = "$k" ] || fail "a node on the restored copy lists $got of the user's articles, want $k"
curl -fsS -H "Authorization: Token $token" "http://127.0.0.1:$port_node/api/user" | jq -e --arg u "$user" '.user.username == $u' >/dev/null ||
	fail "the user's token is not accepted on the restored copy"
kill "$node"
wait "$node" 2>/dev/null || true
node=""
say "a node on the restored copy serves the user's $got articles"

say "restore of the repository as it was at the loss, to the end of its archive"
REPO="$work/repo-at-loss" stage4 restore "$work/latest" "$port_latest"
read -r distinct k2 <<<"$(count "$port_latest")"
[ "$distinct" = "$k2" ] || fail "the restored articles are not 1..$k2 ($distinct distinct)"
[ "$k2" -le $((acked + 1)) ] || fail "restored $k2 articles, only $acked were written"
lost=$((acked > k2 ? acked - k2 : 0))
rpo=0
if [ "$lost" -gt 0 ]; then
	# From the last restored commit to the last acknowledged one.
	rpo=$(elapsed "$(ack_time "$k2")" "$(ack_time "$acked")")
	[ "$k2" = 0 ] && rpo=$(elapsed "$(head -1 "$acks" | cut -d' ' -f2)" "$(ack_time "$acked")")
fi
bound=$((2 * archive_timeout + 10))
awk -v r="$rpo" -v b="$bound" 'BEGIN { exit !(r <= b) }' ||
	fail "the restore lost ${rpo}s of acknowledged writes, more than 2 × archive_timeout + 10 s = ${bound}s"

summary="pgBackRest on the stage-4 cluster: full backup ${backup_s}s; ${acked} articles written over ${duration}s with a switchover ($old -> $new)
  point-in-time restore to T (after the switchover, on the new timeline) in ${restore_s}s: articles 1..$k; acknowledged before T: $a; begun after T: none
  restore of the repository at the loss (archive_timeout ${archive_timeout}s): $k2 of $acked acknowledged articles; lost $lost (RPO ${rpo}s, $(elapsed "$target_epoch" "$loss_epoch")s after T)"
echo "$summary"
if [ -n "${REPORT:-}" ]; then echo "$summary" >"$REPORT"; fi
