#!/usr/bin/env bash
# ci-ops.sh: build and test the deployment artifacts under deploy/ (see
# docs/operations.md). .ci/run calls it once per step; each step installs what
# it needs (idempotently) and cleans up what it started.
#
#   scripts/ci-ops.sh tools        apt packages, helm, kubeconform, newman
#   scripts/ci-ops.sh image        build the container image; run stage 1 from it
#   scripts/ci-ops.sh prometheus   promtool check config/rules, test rules
#   scripts/ci-ops.sh grafana      dashboard JSON and its metric names vs a live node
#   scripts/ci-ops.sh compose      Compose stage 1 and stage 3 (+ Prometheus) with
#                                  podman-compose, Postman suite through HAProxy
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
cleanup() {
	local c pid
	for c in "${containers[@]}"; do podman rm -f -t 10 "$c" >/dev/null 2>&1 || true; done
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
cat >"$work/containers.conf" <<'EOF'
[containers]
netns = "host"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
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

step_tools() {
	local need=() pkg
	for pkg in podman podman-compose runc prometheus mmdebstrap ca-certificates tzdata curl jq; do
		dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
	done
	if [ ${#need[@]} -gt 0 ]; then
		say "apt-get install ${need[*]}"
		apt-get update -qq
		apt-get install -y -qq "${need[@]}" >/dev/null
	fi
	# The Debian package would start Prometheus on a machine with systemd;
	# here nothing is started by apt. Tests run promtool and their own
	# short-lived server only.
	if ! helm version --short 2>/dev/null | grep -q "^$helm_version"; then
		say "go install helm $helm_version (about a minute)"
		go install "helm.sh/helm/v3/cmd/helm@$helm_version"
	fi
	if ! kubeconform -v 2>/dev/null | grep -q "$kubeconform_version"; then
		say "go install kubeconform $kubeconform_version"
		go install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
	fi
	podman --version
	podman-compose version 2>/dev/null | head -1 || true
	promtool --version 2>&1 | head -1
	helm version --short
	kubeconform -v
}

step_image() {
	say "build $image"
	deploy/container/build.sh "$image"
	podman image prune -f >/dev/null
	local size user c=ci-ops-image vol=ci-ops-image-data url=http://127.0.0.1:27010
	size=$(podman image inspect "$image" --format '{{.Size}}')
	user=$(podman image inspect "$image" --format '{{.Config.User}}')
	say "image size $((size / 1024 / 1024)) MiB, user $user"
	[ "$user" = "65532:65532" ] || fail "image runs as '$user', want 65532:65532"
	[ "$size" -lt $((64 * 1024 * 1024)) ] || fail "image is $size bytes, want < 64 MiB"

	podman rm -f "$c" >/dev/null 2>&1 || true
	podman volume rm -f "$vol" >/dev/null 2>&1 || true
	containers+=("$c")
	# Stage 1: SQLite and the generated key in a named volume; all
	# configuration by environment.
	run_stage1() {
		podman run -d --name "$c" -v "$vol:/data" \
			-e CONDUIT_ADDR=127.0.0.1:27010 -e CONDUIT_BCRYPT_COST=4 -e CONDUIT_DRAIN_DELAY=1s \
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
	podman logs "$c" 2>&1 | grep -q '"msg":"starting"' || fail "no JSON log line from the container"

	say "SIGTERM: drain and exit 0; then start again on the same volume"
	podman stop -t 20 "$c" >/dev/null
	[ "$(podman inspect "$c" --format '{{.State.ExitCode}}')" = 0 ] || fail "exit code after SIGTERM: $(podman inspect "$c" --format '{{.State.ExitCode}}')"
	podman logs "$c" 2>&1 | grep -q '"msg":"draining"' || fail "no drain on SIGTERM"
	podman rm "$c" >/dev/null
	run_stage1
	# The user and the signing key survived in the volume: the old token
	# still signs in.
	curl -fsS -H "Authorization: Token $token" "$url/api/user" | jq -e --arg u "$u" '.user.username == $u' >/dev/null ||
		fail "user or signing key lost across a restart on the same volume"
	podman rm -f -t 10 "$c" >/dev/null
	podman volume rm "$vol" >/dev/null
	say "image OK: non-root, static, stage 1 on a volume, config by environment, drains on SIGTERM"
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
	expect "$work/default.yaml" 'value: "5s"' "CONDUIT_DRAIN_DELAY 5s by default"
	expect "$work/default.yaml" 'terminationGracePeriodSeconds: 25' "grace = drain + shutdown + 5 s"
	expect "$work/full.yaml" 'seconds: 8' "preStop sleep of drain.seconds"
	expect "$work/full.yaml" '^kind: Ingress$' "an Ingress"
	expect "$work/full.yaml" 'args:$' "the worker Deployment"
	if grep -q 'name: conduit-worker' "$work/default.yaml"; then fail "the worker is on by default"; fi
	if helm template conduit "$chart" --kube-version "$kube_version" --set database.existingSecret= >/dev/null 2>"$work/err"; then
		fail "the chart rendered without a database"
	fi
	expect "$work/err" 'set database.url or database.existingSecret' "a clear error without a database"
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(all)
[ "${steps[*]}" = all ] && steps=(tools image prometheus grafana helm)
for s in "${steps[@]}"; do
	case "$s" in
	tools | image | prometheus | grafana | helm) ;;
	*) fail "unknown step '$s'" ;;
	esac
	printf '\n== ci-ops %s (%s)\n' "$s" "$(date +%T)"
	"step_$s"
done
