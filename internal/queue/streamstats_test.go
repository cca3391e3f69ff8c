package queue_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/queue/natstest"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The stream's backlog is exported: jobs relayed with no consumer running
// wait there and age; once consumed, nothing is left; with NATS down
// nothing is reported (rather than a zero that looks healthy).
func TestStreamStats(t *testing.T) {
	db := storetest.OpenSQLite(t)
	db.OnJobs(nil)
	srv := natstest.Start(t)
	n, err := queue.DialNATS(srv.URL, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	reg := prometheus.NewRegistry()
	n.RegisterStats(reg)
	for i := range 3 {
		if err := db.Enqueue(ctx, conduit.TimelineBuildJob(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	run := func(f func(context.Context)) func() {
		c, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); f(c) }()
		return func() { stop(); wg.Wait() }
	}
	stopRelay := run(queue.NewRelay(db, n, testOpts).Run)
	defer stopRelay()
	waitFor(t, reg, func(m map[string]float64) bool { return m["conduit_jobs_stream_pending"] == 3 })
	time.Sleep(1100 * time.Millisecond) // the oldest job is at least a second old
	m := gatherAll(t, reg)
	if m["conduit_jobs_stream_oldest_age_seconds"] < 1 || m["conduit_jobs_stream_in_flight"] != 0 {
		t.Errorf("three waiting jobs: %v", m)
	}
	stopConsumer := run(queue.NewConsumer(n, db, conduit.NewJobs(db, conduit.FeedOptions{}), testOpts).Run)
	defer stopConsumer()
	waitFor(t, reg, func(m map[string]float64) bool {
		return m["conduit_jobs_stream_pending"] == 0 && m["conduit_jobs_stream_in_flight"] == 0 && m["conduit_jobs_stream_oldest_age_seconds"] == 0
	})
	srv.Kill()
	waitFor(t, reg, func(m map[string]float64) bool { return len(m) == 0 })
}

func waitFor(t *testing.T, reg *prometheus.Registry, ok func(map[string]float64) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := gatherAll(t, reg)
		if ok(m) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never as expected: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gatherAll maps the names of unlabelled gauges to their values.
func gatherAll(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "conduit_jobs_stream_") {
			out[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out
}
