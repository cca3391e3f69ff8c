#!/usr/bin/env bash
# build.sh: build the Conduit container image from the working tree, without
# pulling any base image (see Containerfile).
#
#   deploy/container/build.sh [IMAGE]      # default localhost/conduit:latest
#
# Settings (environment):
#   ENGINE    podman (default when installed) or docker
#   VERSION   image label and the binary's version (git describe by default)
#   GOARCH    target architecture (the host's by default)
# Needs Go, and the ca-certificates and tzdata packages (Debian) or their
# equivalents at /etc/ssl/certs/ca-certificates.crt and /usr/share/zoneinfo.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
image=${1:-localhost/conduit:latest}
engine=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
version=${VERSION:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)}
certs=/etc/ssl/certs/ca-certificates.crt
zoneinfo=/usr/share/zoneinfo
for f in "$certs" "$zoneinfo/UTC"; do
	[ -e "$f" ] || { echo "build.sh: $f is missing (apt-get install ca-certificates tzdata)" >&2; exit 1; }
done

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/usr/share" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
cp "$certs" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
# -L: the host's zoneinfo may use symlinks into other trees.
cp -RL "$zoneinfo" "$ctx/rootfs/usr/share/zoneinfo"
# The "right/" and "posix/" variants are copies kept for leap-second tools.
rm -rf "$ctx/rootfs/usr/share/zoneinfo/right" "$ctx/rootfs/usr/share/zoneinfo/posix"
printf 'root:x:0:0:root:/:/sbin/nologin\nconduit:x:65532:65532:conduit:/data:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nconduit:x:65532:\n' >"$ctx/rootfs/etc/group"

# Static and reproducible: no cgo (the SQLite driver is pure Go), no local
# paths in the binary.
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/conduit" ./cmd/conduit)
cp "$root/deploy/container/Containerfile" "$ctx/Containerfile"

"$engine" build --build-arg "VERSION=$version" -t "$image" -f "$ctx/Containerfile" "$ctx"
echo "built $image ($version) with $engine"
