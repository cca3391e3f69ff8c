#!/usr/bin/env bash
# infra-image.sh: build, without any registry, one local image that holds
# PostgreSQL 15, HAProxy, Redis and NATS from Debian's packages, for the
# stage 3 Compose file where the official postgres/haproxy/redis/nats
# images cannot be pulled:
#
#   deploy/compose/infra-image.sh [IMAGE]        # localhost/conduit-infra:bookworm-2
#   POSTGRES_IMAGE=localhost/conduit-infra:bookworm-2 HAPROXY_IMAGE=localhost/conduit-infra:bookworm-2 \
#     podman-compose -f deploy/compose/stage3/compose.yaml up -d
#
# mmdebstrap (apt-get install mmdebstrap) builds a minimal Debian root file
# system from the Debian mirror (about 100 s), podman/docker import turns it
# into an image. Does nothing when the image exists, unless REBUILD=1.
# Settings: ENGINE (podman or docker), MIRROR (http://deb.debian.org/debian).
set -euo pipefail

image=${1:-localhost/conduit-infra:bookworm-2}
engine=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
mirror=${MIRROR:-http://deb.debian.org/debian}

if [ "${REBUILD:-0}" != 1 ] && "$engine" image inspect "$image" >/dev/null 2>&1; then
	echo "$image exists (REBUILD=1 to build it again)"
	exit 0
fi
command -v mmdebstrap >/dev/null || { echo "infra-image.sh: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The data directory exists and belongs to postgres, so that a named volume
# mounted there starts with that owner; /var/run/postgresql likewise.
mmdebstrap --quiet --variant=minbase --include=postgresql-15,haproxy,redis-server,nats-server,ca-certificates \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--customize-hook='chroot "$1" install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data' \
	--customize-hook='chroot "$1" install -d -o postgres -g postgres -m 2775 /var/run/postgresql' \
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
	bookworm "$tmp/rootfs.tar" "$mirror" "deb ${mirror%/debian}/debian-security bookworm-security main"
"$engine" import --change 'CMD ["/bin/bash"]' "$tmp/rootfs.tar" "$image" >/dev/null
echo "built $image with $engine"
