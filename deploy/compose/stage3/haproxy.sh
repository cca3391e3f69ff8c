#!/bin/sh
# Entrypoint of the HAProxy container: fill in the shared template
# (deploy/haproxy/haproxy.cfg, mounted read-only) with LISTEN, STATS and one
# server line per address in NODES, check it, and run HAProxy in the
# foreground. Works on the official haproxy images and on Debian's package.
set -eu
servers="" i=0
for addr in $NODES; do
	i=$((i + 1))
	servers="${servers}    server node$i $addr\\n"
done
sed -e "s/@LISTEN@/$LISTEN/; s/@STATS@/$STATS/; s/^@SERVERS@\$/${servers%\\n}/" \
	/etc/conduit/haproxy.cfg.in >/tmp/haproxy.cfg
haproxy -q -c -f /tmp/haproxy.cfg
exec haproxy -db -f /tmp/haproxy.cfg
