// Package cdndrill holds the stage 6 drills (the _test.go files): Conduit
// behind Varnish loaded with the shipped deploy/varnish/conduit.vcl, on
// SQLite (one node) and on PostgreSQL (nodes behind HAProxy):
//
//   - anonymous answers are kept and shared, signed-in ones never;
//   - a write is seen by anonymous readers at the edge within the stated
//     bound (purge on write);
//   - conditional requests get 304s, through the edge and for private
//     answers;
//   - one copy per content coding;
//   - with every node down, cached pages are still served (grace);
//   - during a rolling deploy of two builds, every asset any page links
//     answers 200 on every node.
//
// They run when CI=true or CONDUIT_CDN_DRILL=1 (and then fail if varnishd,
// haproxy or PostgreSQL is missing):
//
//	CONDUIT_CDN_DRILL=1 go test -v -count=1 ./internal/cdndrill
package cdndrill
