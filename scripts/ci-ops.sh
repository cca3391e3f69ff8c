#!/usr/bin/env bash
# ci-ops.sh: build and test the deployment artifacts under deploy/ (see
# docs/operations.md). .ci/run calls it once per step; each step installs what
# it needs (idempotently) and cleans up what it started.
#
#   scripts/ci-ops.sh tools        apt packages, helm, kubeconform, newman
#   scripts/ci-ops.sh image        build the container image; run stage 1 from it
#   scripts/ci-ops.sh prometheus   promtool check config/rules, test rules
#   scripts/ci-ops.sh grafana      dashboard JSON and its metric names vs a live node
#   scripts/ci-ops.sh compose      Compose stage 1 and stage 3 (docker-compose on
#                                  Podman), Postman suite on each, Prometheus
#                                  scraping the stage 3 nodes' admin listeners
#   scripts/ci-ops.sh helm         helm lint/template, kubeconform against the
#                                  Kubernetes schemas (offline)
#   scripts/ci-ops.sh all          all of the above, in that order (the default)
#
# Environment: NEWMAN (a newman executable; installed with npm when unset),
# IMAGE (localhost/conduit:ci). Fixed ports: 27000-27099.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
image=${IMAGE:-localhost/conduit:ci}
gobin=$(go env GOPATH)/bin
export PATH="$gobin:$PATH" DEBIAN_FRONTEND=noninteractive
helm_version=v3.22.0
kubeconform_version=v0.8.0

work=$(mktemp -d /tmp/ci-ops.XXXXXX)
pids=()
containers=()
projects=() # "name file" of Compose projects brought up
cleanup() {
	local c pid p
	for p in "${projects[@]}"; do compose_down $p || true; done
	for c in "${containers[@]}"; do podman rm -f -v -t 10 "$c" >/dev/null 2>&1 || true; done
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf -- '-- %s\n' "$*"; }
fail() {
	printf 'ci-ops: FAIL: %s\n' "$*" >&2
	exit 1
}

# Podman on this kind of machine: runc (crun fails here), cgroupfs (no
# systemd), host networking (bridges would use private address ranges),
# modest ulimits. CONTAINERS_CONF replaces the system configuration for the
# podman processes of this script only.
# HAProxy's maxconn 4096 needs about 8200 descriptors.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
cat >"$work/containers.conf" <<EOF
[containers]
netns = "host"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$work/containers.conf"

# wait_ready URL SECONDS: poll URL/readyz.
wait_ready() {
	for _ in $(seq 1 $(($2 * 10))); do
		curl -fsS -o /dev/null --max-time 1 "$1/readyz" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no ready answer from $1/readyz within $2 s"
}

# metrics_private PUBLIC_URL ADMIN_URL: Prometheus metrics are served on
# the node's admin listener and not on its public address.
metrics_private() {
	local code
	code=$(curl -s -o "$work/public-metrics" -w '%{http_code}' "$1/metrics")
	[ "$code" = 404 ] || fail "$1/metrics answered $code, want 404: metrics must not be on the public address"
	if grep -q '^conduit_http_requests_total' "$work/public-metrics"; then fail "$1/metrics serves metrics"; fi
	# Not a pipe into grep -q: grep would stop reading early and curl fail.
	curl -fsS -o "$work/admin-metrics" "$2/metrics" || fail "no answer from the admin listener $2/metrics"
	grep -q '^conduit_http_requests_total{' "$work/admin-metrics" || fail "no conduit_http_requests_total on the admin listener $2/metrics"
}

step_tools() {
	local need=() pkg
	for pkg in podman runc prometheus mmdebstrap ca-certificates tzdata curl jq postgresql-client-15; do
		dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
	done
	if [ ${#need[@]} -gt 0 ] || ! dpkg -s docker-compose >/dev/null 2>&1; then
		say "apt-get install ${need[*]} docker-compose"
		apt-get update -qq
		[ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null
		# Without recommends: they would bring the Docker engine, which is
		# not used (docker-compose talks to Podman).
		apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
	fi
	# The Debian package would start Prometheus on a machine with systemd;
	# here nothing is started by apt. Tests run promtool and their own
	# short-lived server only.
	# A go-installed helm reports its version as v3.22 (no build metadata).
	if ! grep -q "^${helm_version%.0}" <<<"$(helm version --short 2>/dev/null)"; then
		say "go install helm $helm_version (about a minute)"
		go install "helm.sh/helm/v3/cmd/helm@$helm_version"
	fi
	# kubeconform reports "development" when go-installed: check the build info.
	if ! grep -q "mod.*kubeconform.*$kubeconform_version" <<<"$(go version -m "$(command -v kubeconform 2>/dev/null || echo /nonexistent)" 2>/dev/null)"; then
		say "go install kubeconform $kubeconform_version"
		go install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
	fi
	podman --version
	docker-compose version --short
	promtool --version 2>&1 | head -1
	helm version --short
	go version -m "$(command -v kubeconform)" | grep 'mod.*kubeconform'
}

step_image() {
	say "build $image"
	deploy/container/build.sh "$image"
	podman image prune -f >/dev/null
	local size user c=ci-ops-image vol=ci-ops-image-data url=http://127.0.0.1:27010 admin=http://127.0.0.1:27012
	size=$(podman image inspect "$image" --format '{{.Size}}')
	user=$(podman image inspect "$image" --format '{{.Config.User}}')
	say "image size $((size / 1024 / 1024)) MiB, user $user"
	[ "$user" = "65532:65532" ] || fail "image runs as '$user', want 65532:65532"
	[ "$size" -lt $((64 * 1024 * 1024)) ] || fail "image is $size bytes, want < 64 MiB"

	podman rm -f "$c" >/dev/null 2>&1 || true
	podman volume rm -f "$vol" >/dev/null 2>&1 || true
	containers+=("$c")
	# Stage 1: SQLite and the generated key in a named volume; all
	# configuration by environment; metrics on a loopback admin listener.
	run_stage1() {
		podman run -d --name "$c" -v "$vol:/data" \
			-e CONDUIT_ADDR=127.0.0.1:27010 -e CONDUIT_ADMIN_ADDR=127.0.0.1:27012 \
			-e CONDUIT_BCRYPT_COST=4 -e CONDUIT_DRAIN_DELAY=1s \
			"$image" >/dev/null
		wait_ready "$url" 30
	}
	run_stage1
	[ "$(podman exec "$c" /usr/local/bin/conduit help 2>&1 | head -c 7)" = "Conduit" ] || fail "conduit help in the container"
	local pid
	pid=$(podman inspect "$c" --format '{{.State.Pid}}')
	[ "$(ps -o uid= -p "$pid" | tr -d ' ')" = 65532 ] || fail "the process runs as uid $(ps -o uid= -p "$pid"), want 65532"
	local u token
	u="img$(date +%s%N)"
	token=$(curl -fsS -H 'Content-Type: application/json' \
		-d "{\"user\":{\"username\":\"$u\",\"email\":\"$u@example.com\",\"password\":\"password1\"}}" \
		"$url/api/users" | jq -r .user.token)
	[ -n "$token" ] && [ "$token" != null ] || fail "sign-up in the container"
	grep -q '"msg":"starting"' <<<"$(podman logs "$c" 2>&1)" || fail "no JSON log line from the container"
	metrics_private "$url" "$admin"

	say "SIGTERM: drain and exit 0; then start again on the same volume"
	podman stop -t 20 "$c" >/dev/null
	[ "$(podman inspect "$c" --format '{{.State.ExitCode}}')" = 0 ] || fail "exit code after SIGTERM: $(podman inspect "$c" --format '{{.State.ExitCode}}')"
	grep -q '"msg":"draining"' <<<"$(podman logs "$c" 2>&1)" || fail "no drain on SIGTERM"
	podman rm "$c" >/dev/null
	run_stage1
	# The user and the signing key survived in the volume: the old token
	# still signs in.
	curl -fsS -H "Authorization: Token $token" "$url/api/user" | jq -e --arg u "$u" '.user.username == $u' >/dev/null ||
		fail "user or signing key lost across a restart on the same volume"

	say "stage 1 backup and restore (docs/operations.md): stop, export the volume, import into a new one"
	podman stop -t 20 "$c" >/dev/null
	podman volume export "$vol" -o "$work/stage1-backup.tar"
	podman rm -v "$c" >/dev/null
	podman volume rm "$vol" >/dev/null
	podman volume create "$vol" >/dev/null
	podman volume import "$vol" "$work/stage1-backup.tar"
	run_stage1
	curl -fsS -H "Authorization: Token $token" "$url/api/user" | jq -e --arg u "$u" '.user.username == $u' >/dev/null ||
		fail "user or signing key missing after restoring the volume backup"
	podman rm -f -v -t 10 "$c" >/dev/null
	podman volume rm "$vol" >/dev/null
	rotate_keys
	say "image OK: non-root, static, stage 1 on a volume, config by environment, metrics only on the admin listener, drains on SIGTERM, volume backup restores, keys rotate"
}

# rotate_keys: the three passes of the key rotation runbook
# (docs/operations.md), each a restart with a new CONDUIT_JWT_KEYS: tokens
# signed with the old key stay valid until the last pass removes it, and
# tokens issued in pass 2 are signed with the new key.
rotate_keys() {
	say "signing key rotation in three passes"
	local c=ci-ops-keys vol=ci-ops-keys-data url=http://127.0.0.1:27011 u t1 tp1 t2
	local old new
	old="k1:$(head -c 32 /dev/urandom | base64 -w0)" new="k2:$(head -c 32 /dev/urandom | base64 -w0)"
	podman rm -f -v "$c" >/dev/null 2>&1 || true
	podman volume rm -f "$vol" >/dev/null 2>&1 || true
	containers+=("$c")
	start_with() {
		podman rm -f -v -t 10 "$c" >/dev/null 2>&1 || true
		podman run -d --name "$c" -v "$vol:/data" -e CONDUIT_ADDR=127.0.0.1:27011 -e CONDUIT_BCRYPT_COST=4 \
			-e CONDUIT_JWT_KEYS="$1" "$image" >/dev/null
		wait_ready "$url" 30
	}
	status_with() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $1" "$url/api/user"; }
	sign_in() {
		curl -fsS -H 'Content-Type: application/json' \
			-d "{\"user\":{\"email\":\"$u@example.com\",\"password\":\"password1\"}}" "$url/api/users/login" | jq -r .user.token
	}
	u="key$(date +%s%N)"
	start_with "$old"
	t1=$(curl -fsS -H 'Content-Type: application/json' \
		-d "{\"user\":{\"username\":\"$u\",\"email\":\"$u@example.com\",\"password\":\"password1\"}}" \
		"$url/api/users" | jq -r .user.token)
	start_with "$old,$new" # pass 1: accept the new key, still sign with the old
	[ "$(status_with "$t1")" = 200 ] || fail "pass 1 rejects an old token"
	tp1=$(sign_in)
	start_with "$new,$old" # pass 2: sign with the new key
	[ "$(status_with "$t1")" = 200 ] || fail "pass 2 rejects an old token"
	t2=$(sign_in)
	start_with "$new" # pass 3: the old key is gone
	[ "$(status_with "$t2")" = 200 ] || fail "pass 3 rejects a token issued in pass 2 (not signed with the new key?)"
	[ "$(status_with "$t1")" = 401 ] || fail "pass 3 still accepts a token signed with the removed key"
	[ "$(status_with "$tp1")" = 401 ] || fail "pass 3 accepts a pass-1 token: pass 1 signed with the new key"
	podman rm -f -v -t 10 "$c" >/dev/null
	podman volume rm "$vol" >/dev/null
}

step_prometheus() {
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
}

# The dashboard is valid JSON with a row per tier, and every metric it and
# the alert rules name is exported by a freshly started node (the test
# builds and starts one).
step_grafana() {
	jq empty deploy/grafana/conduit.json
	go test -count=1 -v ./deploy/
}

# The chart lints, renders with the default and the full values, and what
# it renders is valid for Kubernetes $kube_version: the schemas come from
# the OpenAPI document inside the k8s.io/kubernetes Go module (the only
# network this CI has is the Go module proxy, Debian and npm), converted by
# tools/kubeschema, checked by kubeconform. No cluster runs here.
kube_version=1.34.4
step_helm() {
	local chart=deploy/helm/conduit full=deploy/helm/conduit/ci/full-values.yaml spec
	helm lint --strict "$chart" --kube-version "$kube_version"
	helm lint --strict "$chart" -f "$full" --kube-version "$kube_version"
	helm template conduit "$chart" --namespace web --kube-version "$kube_version" >"$work/default.yaml"
	helm template conduit "$chart" --namespace web --kube-version "$kube_version" -f "$full" >"$work/full.yaml"

	spec=$(cd "$work" && go mod download -json "k8s.io/kubernetes@v$kube_version" | jq -r .Dir)/api/openapi-spec/swagger.json
	go run ./tools/kubeschema -spec "$spec" -out "$work/schemas"
	kubeconform -strict -summary -kubernetes-version "$kube_version" \
		-schema-location "$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
		"$work/default.yaml" "$work/full.yaml"

	say "rendered manifests say what docs/operations.md promises"
	expect() { # FILE PATTERN WHAT
		grep -Eq -- "$2" "$1" || fail "$(basename "$1"): $3 (no match for '$2')"
	}
	local f
	for f in "$work/default.yaml" "$work/full.yaml"; do
		expect "$f" '^kind: PodDisruptionBudget$' "a PodDisruptionBudget"
		expect "$f" '^kind: HorizontalPodAutoscaler$' "an HPA"
		expect "$f" 'helm.sh/hook: pre-install,pre-upgrade' "the migration Job is a hook"
		expect "$f" 'args: \["migrate"\]' "the Job runs conduit migrate"
		expect "$f" 'path: /readyz' "readiness on /readyz"
		expect "$f" 'path: /healthz' "liveness on /healthz"
		expect "$f" 'name: CONDUIT_JWT_KEYS' "shared signing keys from a Secret"
		expect "$f" 'readOnlyRootFilesystem: true' "a read-only root filesystem"
	done
	for f in "$work/default.yaml" "$work/full.yaml"; do
		expect "$f" 'name: CONDUIT_ADMIN_ADDR' "metrics on the admin listener"
		expect "$f" 'prometheus.io/path: /metrics' "scrape annotations"
		expect "$(rendered "$f" metrics-service.yaml)" 'clusterIP: None' "a headless metrics Service"
		expect "$(rendered "$f" metrics-service.yaml)" 'targetPort: metrics' "the metrics Service targets the admin port"
		if grep -Eq 'metrics|9090|9102' "$(rendered "$f" service.yaml)"; then
			fail "$(basename "$f"): the public Service exposes the metrics port"
		fi
	done
	expect "$work/default.yaml" 'value: ":9090"' "CONDUIT_ADMIN_ADDR :9090 by default"
	expect "$work/default.yaml" 'prometheus.io/port: "9090"' "the annotation names the admin port"
	expect "$work/full.yaml" 'value: ":9102"' "CONDUIT_ADMIN_ADDR from metrics.port"
	expect "$work/full.yaml" '^kind: NetworkPolicy$' "a NetworkPolicy"
	expect "$(rendered "$work/full.yaml" networkpolicy.yaml)" 'kubernetes.io/metadata.name: observability' "the metrics port open to metricsFrom"
	helm template conduit "$chart" --kube-version "$kube_version" --set metrics.enabled=false >"$work/nometrics.yaml"
	if grep -Eq 'CONDUIT_ADMIN_ADDR|prometheus.io|-metrics$' "$work/nometrics.yaml"; then fail "metrics.enabled=false still renders metrics"; fi
	refuses() { # WHAT ERROR-PATTERN HELM-ARGS...
		local what=$1 pattern=$2
		shift 2
		if helm template conduit "$chart" --kube-version "$kube_version" "$@" >/dev/null 2>"$work/err"; then
			fail "the chart rendered $what"
		fi
		expect "$work/err" "$pattern" "a clear error for $what"
	}
	refuses "metrics on the public port" 'metrics.port must differ from containerPort' --set metrics.port=8080
	refuses "CONDUIT_ADMIN_ADDR under config" 'set by the chart' --set config.CONDUIT_ADMIN_ADDR=:9999
	refuses "a NetworkPolicy admitting everyone to metrics" 'networkPolicy.metricsFrom is empty' \
		--set networkPolicy.enabled=true --set networkPolicy.metricsFrom=null
	expect "$work/default.yaml" 'value: "5s"' "CONDUIT_DRAIN_DELAY 5s by default"
	expect "$work/default.yaml" 'terminationGracePeriodSeconds: 25' "grace = drain + shutdown + 5 s"
	expect "$work/full.yaml" 'seconds: 8' "preStop sleep of drain.seconds"
	expect "$work/full.yaml" '^kind: Ingress$' "an Ingress"
	local worker web
	worker=$(rendered "$work/full.yaml" worker-deployment.yaml)
	web=$(rendered "$work/full.yaml" deployment.yaml)
	expect "$worker" 'args: \["worker"\]' "the worker Deployment runs conduit worker"
	expect "$worker" 'path: /readyz' "the worker's readiness on its admin listener"
	expect "$worker" 'port: metrics' "the worker's probes on the metrics port"
	expect "$worker" 'prometheus.io/scrape: "true"' "the worker scraped"
	expect "$(rendered "$work/full.yaml" networkpolicy.yaml)" 'name: conduit-worker' "a NetworkPolicy for the workers"
	grep -A1 'name: CONDUIT_WORKERS' "$web" | grep -q 'value: "0"' || fail "web pods still run jobs beside the workers"
	grep -A1 'name: CONDUIT_WORKERS' "$worker" | grep -q 'value: "8"' || fail "worker.concurrency is not the workers' CONDUIT_WORKERS"
	for f in "$web" "$worker"; do
		grep -A4 'name: CONDUIT_CACHE_URL' "$f" | grep -q 'name: conduit-redis' || fail "CONDUIT_CACHE_URL not from cache.existingSecret"
		grep -A4 'name: CONDUIT_QUEUE_URL' "$f" | grep -q 'key: nats-url' || fail "CONDUIT_QUEUE_URL not from the chart's Secret"
		grep -A4 'name: CONDUIT_REPLICA_URLS' "$f" | grep -q 'key: replica-urls' || fail "CONDUIT_REPLICA_URLS not from the chart's Secret"
	done
	if grep -q 'name: conduit-worker' "$work/default.yaml"; then fail "the worker is on by default"; fi
	if grep -Eq 'CONDUIT_(CACHE|QUEUE|REPLICA)_URL|CONDUIT_WORKERS' "$work/default.yaml"; then fail "later tiers set by default"; fi
	refuses "a Redis URL in the ConfigMap" 'may hold a secret' --set config.CONDUIT_CACHE_URL=redis://x:6379
	refuses "without a database" 'set database.url or database.existingSecret' --set database.existingSecret=
}

# rendered FILE TEMPLATE: the manifest helm template rendered from
# templates/TEMPLATE, written next to FILE; prints its path.
rendered() {
	local out=$1.$2
	awk -v src="# Source: conduit/templates/$2" '/^---/ { p = 0 } $0 == src { p = 1 } p' "$1" >"$out"
	[ -s "$out" ] || fail "$(basename "$1"): nothing rendered from templates/$2"
	echo "$out"
}

# compose_down PROJECT FILE: stop and remove a Compose project, its volumes
# included, then anything of it that a restart policy brought back meanwhile.
compose_down() {
	docker-compose -p "$1" -f "$2" down -v -t 10 >/dev/null 2>&1 || true
	podman ps -aq --filter "label=com.docker.compose.project=$1" | xargs -r podman rm -f -v -t 5 >/dev/null 2>&1 || true
	podman volume ls -q --filter "label=com.docker.compose.project=$1" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
}

# postman URL: the RealWorld Postman suite once against URL (newman fails
# on any failed assertion).
postman() {
	local newman=${NEWMAN:-} u
	if [ -z "$newman" ]; then
		npm install --no-audit --no-fund --silent --prefix "$work/newman" newman@6 >/dev/null
		newman=$work/newman/node_modules/.bin/newman
	fi
	u="ops$(date +%s%N)"
	"$newman" run "$root/../shared/realworld/Conduit.postman_collection.json" \
		--global-var "APIURL=$1/api" --global-var "USERNAME=$u" \
		--global-var "EMAIL=$u@example.com" --global-var "PASSWORD=password" \
		--reporters cli --reporter-cli-no-assertions --reporter-cli-no-console
}

# Compose files brought up with docker-compose (Debian's 1.29) talking to
# Podman's Docker-compatible API: Debian's podman-compose 1.0.3 cannot run
# services with network_mode: host (it adds --net and --network-alias,
# which Podman refuses with host networking). PostgreSQL, HAProxy, Redis
# and NATS run from one image built offline from Debian packages
# (infra-image.sh).
step_compose() {
	local infra=localhost/conduit-infra:bookworm-2 sock=$work/podman.sock
	podman image exists "$image" || deploy/container/build.sh "$image"
	deploy/compose/infra-image.sh "$infra"
	podman system service --time=0 "unix://$sock" >"$work/podman-api.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] || fail "podman system service did not create $sock"
	export DOCKER_HOST="unix://$sock" CONDUIT_IMAGE="$image" CONDUIT_BCRYPT_COST=4

	local s1=deploy/compose/stage1/compose.yaml s3=deploy/compose/stage3/compose.yaml
	say "stage 1: one container, a volume"
	compose_down ci-ops-stage1 "$s1"
	projects+=("ci-ops-stage1 $s1")
	CONDUIT_ADDR=127.0.0.1:27020 CONDUIT_ADMIN_ADDR=127.0.0.1:27021 docker-compose -p ci-ops-stage1 -f "$s1" up -d
	wait_ready http://127.0.0.1:27020 60
	postman http://127.0.0.1:27020
	metrics_private http://127.0.0.1:27020 http://127.0.0.1:27021
	compose_down ci-ops-stage1 "$s1"

	say "stage 3: PostgreSQL, three nodes, HAProxy; profiles cache (Redis) and queue (NATS, a worker)"
	CONDUIT_JWT_KEYS="k1:$(head -c 32 /dev/urandom | base64 -w0)"
	export POSTGRES_IMAGE="$infra" HAPROXY_IMAGE="$infra" POSTGRES_PASSWORD="ci$RANDOM$RANDOM" CONDUIT_JWT_KEYS \
		POSTGRES_PORT=27032 NODE1_PORT=27041 NODE2_PORT=27042 NODE3_PORT=27043 \
		NODE1_ADMIN_PORT=27051 NODE2_ADMIN_PORT=27052 NODE3_ADMIN_PORT=27053 \
		LB_ADDR=127.0.0.1:27030 STATS_PORT=27031 \
		COMPOSE_PROFILES=cache,queue REDIS_IMAGE="$infra" NATS_IMAGE="$infra" \
		REDIS_PORT=27233 NATS_PORT=27234 WORKER_ADMIN_PORT=27254 \
		CONDUIT_CACHE_URL=redis://127.0.0.1:27233/0 CONDUIT_QUEUE_URL=nats://127.0.0.1:27234 CONDUIT_WORKERS=0
	compose_down ci-ops-stage3 "$s3"
	projects+=("ci-ops-stage3 $s3")
	docker-compose -p ci-ops-stage3 -f "$s3" up -d
	local n
	for n in 27041 27042 27043; do wait_ready "http://127.0.0.1:$n" 120; done
	wait_ready http://127.0.0.1:27030 30
	postman http://127.0.0.1:27030
	for n in 1 2 3; do metrics_private "http://127.0.0.1:2704$n" "http://127.0.0.1:2705$n"; done
	later_tiers
	prometheus_scrapes 127.0.0.1:27051 127.0.0.1:27052 127.0.0.1:27053 127.0.0.1:27254
	restore_stage3
	compose_down ci-ops-stage3 "$s3"
}

# later_tiers: in the stage 3 Compose project with the cache and queue
# profiles, the nodes use Redis (breaker closed, reads through its tiers)
# and run no jobs; the worker is ready and ran the jobs of the Postman
# suite's articles, which went through NATS.
later_tiers() {
	local n m w=http://127.0.0.1:27254 ran=0
	for n in 1 2 3; do
		m=$(curl -fsS "http://127.0.0.1:2705$n/metrics")
		grep -q '^conduit_cache_circuit_open 0$' <<<"$m" || fail "node$n: the Redis cache is not in use"
		grep -Eq '^conduit_cache_tier_lookups_total\{.*tier="(redis|near)"' <<<"$m" || fail "node$n: no reads through Redis"
		if grep -q '^conduit_jobs_processed_total' <<<"$m"; then fail "node$n runs jobs with CONDUIT_WORKERS=0"; fi
	done
	wait_ready "$w" 60
	for _ in $(seq 1 300); do
		m=$(curl -fsS "$w/metrics")
		ran=$(awk '/^conduit_jobs_processed_total\{kind="feed.publish",outcome="done"\}/ { print $2 }' <<<"$m")
		[ "${ran:-0}" != 0 ] && break
		sleep 0.1
	done
	[ "${ran:-0}" != 0 ] || fail "the worker ran no feed.publish job"
	grep -q '^conduit_jobs_relayed_total [1-9]' <<<"$m" || fail "the worker relayed no job to NATS"
	grep -q '^conduit_ready 1$' <<<"$m" || fail "the worker reports not ready"
	say "Redis used by the three nodes; the worker ran $ran feed.publish jobs through NATS"
}

# restore_stage3: the stage 2/3 backup runbook (docs/operations.md): a
# pg_dump of the running database, restored into a new database, then a
# node from the image on the restored copy serves the same articles.
restore_stage3() {
	say "stage 3 backup (pg_dump) and restore (pg_restore into a new database)"
	export PGPASSWORD=$POSTGRES_PASSWORD
	local pg="-X -q -h 127.0.0.1 -p 27032 -U postgres" c=ci-ops-restored want got u token
	# Something to find after the restore: a user with an article.
	u="rs$(date +%s%N)"
	token=$(curl -fsS -H 'Content-Type: application/json' \
		-d "{\"user\":{\"username\":\"$u\",\"email\":\"$u@example.com\",\"password\":\"password1\"}}" \
		http://127.0.0.1:27030/api/users | jq -r .user.token)
	curl -fsS -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Token $token" \
		-d '{"article":{"title":"Kept by the backup","description":"d","body":"b","tagList":["restore"]}}' \
		http://127.0.0.1:27030/api/articles
	pg_dump -h 127.0.0.1 -p 27032 -U conduit -Fc -f "$work/conduit.dump" conduit
	psql $pg -d postgres -c "CREATE DATABASE conduit_restored OWNER conduit"
	pg_restore -h 127.0.0.1 -p 27032 -U conduit --no-owner -d conduit_restored "$work/conduit.dump"
	podman rm -f -v "$c" >/dev/null 2>&1 || true
	containers+=("$c")
	podman run -d --name "$c" -e CONDUIT_ADDR=127.0.0.1:27044 -e CONDUIT_JWT_KEYS="$CONDUIT_JWT_KEYS" \
		-e CONDUIT_DATABASE_URL="postgres://conduit:$POSTGRES_PASSWORD@127.0.0.1:27032/conduit_restored?sslmode=disable" \
		"$image" >/dev/null
	wait_ready http://127.0.0.1:27044 30
	want=$(curl -fsS 'http://127.0.0.1:27030/api/articles?limit=1' | jq .articlesCount)
	got=$(curl -fsS 'http://127.0.0.1:27044/api/articles?limit=1' | jq .articlesCount)
	[ "$want" -ge 1 ] && [ "$want" = "$got" ] || fail "restored database has $got articles, the original $want"
	curl -fsS -H "Authorization: Token $token" http://127.0.0.1:27044/api/user | jq -e --arg u "$u" '.user.username == $u' >/dev/null ||
		fail "the user's token is not accepted by a node on the restored database"
	[ "$(psql $pg -d conduit_restored -tAc 'SELECT count(*) FROM users')" = "$(psql $pg -d conduit -tAc 'SELECT count(*) FROM users')" ] ||
		fail "restored database has a different number of users"
	podman rm -f -v -t 10 "$c" >/dev/null
	say "restored copy serves the same $got article(s) and users"
}

# prometheus_scrapes TARGET...: run the shipped prometheus.yml and alerts.yml
# (Debian's Prometheus, for under a minute, on 127.0.0.1:27090) with a
# targets file naming TARGET... (the nodes' admin listeners), and require
# every node to be scraped and every rule to evaluate.
prometheus_scrapes() {
	local dir=$work/prometheus url=http://127.0.0.1:27090 t pid up rules want
	want=$(grep -cE '^ +- (record|alert):' deploy/prometheus/alerts.yml)
	mkdir -p "$dir/targets"
	cp deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml "$dir/"
	{
		echo "- targets:"
		for t in "$@"; do echo "    - $t"; done
		echo "  labels: {stage: ci}"
	} >"$dir/targets/conduit.yml"
	prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
		--web.listen-address=127.0.0.1:27090 --log.level=warn >"$dir/log" 2>&1 &
	pid=$!
	pids+=("$pid")
	say "Prometheus: waiting for $# conduit targets up and the rules evaluated (up to 60 s)"
	for _ in $(seq 1 60); do
		up=$(curl -fsS "$url/api/v1/query" --data-urlencode 'query=sum(up{job="conduit"})' 2>/dev/null | jq -r '.data.result[0].value[1] // 0' || echo 0)
		rules=$(curl -fsS "$url/api/v1/rules" 2>/dev/null |
			jq '[.data.groups[].rules[] | select(.health == "ok" and .lastEvaluation != "0001-01-01T00:00:00Z")] | length' 2>/dev/null || echo 0)
		[ "$up" = "$#" ] && [ "$rules" -ge "$want" ] && break
		sleep 1
	done
	curl -fsS "$url/api/v1/rules" | jq -r '.data.groups[].rules[] | select(.health != "ok") | "rule \(.name): \(.health) \(.lastError)"'
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$up" = "$#" ] || { cat "$dir/log"; fail "Prometheus scraped $up of $# nodes"; }
	[ "$rules" -ge "$want" ] || fail "only $rules of $want rules evaluated healthy"
	say "Prometheus scraped all $# nodes; $rules rules evaluated"
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(all)
[ "${steps[*]}" = all ] && steps=(tools image prometheus grafana helm compose)
for s in "${steps[@]}"; do
	case "$s" in
	tools | image | prometheus | grafana | helm | compose) ;;
	*) fail "unknown step '$s'" ;;
	esac
	printf '\n== ci-ops %s (%s)\n' "$s" "$(date +%T)"
	"step_$s"
done
