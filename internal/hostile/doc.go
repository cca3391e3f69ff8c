// Package hostile holds the hostile-client suite (its _test.go files): a
// real `conduit serve` process, with default settings, on SQLite and on
// PostgreSQL, attacked the way docs/security.md's threat model says an
// attacker may — slow bodies, clients that never read, oversized and
// malformed input on every route and form, look-alike Unicode names, bytes
// that are not text, brute-force sign-ins, sign-up floods, stolen tokens,
// squatted idempotency keys — while a well-behaved client keeps using the
// site. Each attack checks that the well-behaved client's requests made
// during it succeed within a bound derived from the same run's unloaded
// latency, that no answer is a 5xx, and that nothing was stored.
//
//	go test -v -count=1 ./internal/hostile          # everything (~1 min per database)
//	go test -short ./internal/hostile               # without the long attacks
//
// CONDUIT_HOSTILE_REPORT names a file to which the latency table is
// written (CI prints it). Linux only: the clients take their own source
// addresses in 127.0.0.0/8, which is all local there.
package hostile
