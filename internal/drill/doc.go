// Package drill holds the failover drills: stage 3 (drill_test.go): three
// Conduit nodes behind HAProxy on a throwaway PostgreSQL, under a steady
// mix of reads and keyed writes, while one node is SIGKILLed and restarted
// and then every node is restarted with SIGTERM; stage 4 (stage4_test.go,
// through scripts/stage4.sh); stage 5 (redis_test.go): the same three
// nodes sharing a Redis cache tier while Redis is killed, restarted empty
// and paused. Each runs when CI=true or its variable is set, unless -short
// (and then fails if a binary it needs is missing):
//
//	CONDUIT_DRILL=1 go test -v -count=1 -run 'TestDrill$' ./internal/drill
//	CONDUIT_DRILL5=1 go test -v -count=1 -run TestDrillRedis ./internal/drill
//
// The stage-3, stage-5 and queue drills run in parallel with each other:
// each starts its own servers, on ports testproc.StablePorts hands out
// once per process and outside the stage-4 drill's area, in directories of
// its own. The stage-4 drill runs alone, before them: it is timing
// sensitive, and it makes the test process a subreaper that, when it
// ends, reaps any exited child, which could be another drill's.
package drill
