#!/bin/sh
# Entrypoint of the PostgreSQL container (runs as the postgres user): on
# the first start create the cluster with password authentication over TCP
# and a "conduit" role owning a "conduit" database; then run the server in
# the foreground. Works on the official postgres images and on a Debian
# image with the postgresql package (deploy/compose/infra-image.sh).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_PORT:=5432}" "${POSTGRES_LISTEN:=127.0.0.1}"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	case "$POSTGRES_PASSWORD" in
	*[!A-Za-z0-9]* | "") echo "postgres.sh: POSTGRES_PASSWORD must be letters and digits" >&2; exit 1 ;;
	esac
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	"$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --auth-local=trust --auth-host=scram-sha-256 \
		--pwfile="$pwfile" --no-instructions
	rm -f "$pwfile"
	# Single-user mode: no server, no socket, nothing listening yet.
	printf "CREATE ROLE conduit LOGIN PASSWORD '%s'\nCREATE DATABASE conduit OWNER conduit\n" "$POSTGRES_PASSWORD" |
		"$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -p "$POSTGRES_PORT" -k /tmp -c listen_addresses="$POSTGRES_LISTEN"
