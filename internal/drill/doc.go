// Package drill holds the stage 3 failover drill (drill_test.go): three
// Conduit nodes behind HAProxy on a throwaway PostgreSQL, under a steady
// mix of reads and keyed writes, while one node is SIGKILLed and restarted
// and then every node is restarted with SIGTERM. It runs when CI=true or
// CONDUIT_DRILL=1, unless -short (and then fails if haproxy or PostgreSQL
// is missing):
//
//	CONDUIT_DRILL=1 go test -v -count=1 -run TestDrill ./internal/drill
package drill
