package main

import (
	"strings"
	"testing"
	"time"
)

// Both kinds of process export what operators ask first: readiness as a
// gauge, the database pools, the Go runtime; the web node also its
// request limiter's capacity and body budget.
func TestProcessesExportReadinessPoolsAndRuntime(t *testing.T) {
	dir := t.TempDir()
	base, logs := serveInProcess(t, "--data-dir", dir, "--admin-addr", "127.0.0.1:0", "--workers", "0")
	wlogs, _ := workerInProcess(t, nil, "--data-dir", dir, "--admin-addr", "127.0.0.1:0")
	newClient(t, base).get("/api/tags")

	web := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener"))
	var worker *client
	for deadline := time.Now().Add(20 * time.Second); worker == nil; time.Sleep(20 * time.Millisecond) {
		if a := privateAddr(wlogs.String(), "admin listener"); a != "" && strings.Contains(wlogs.String(), `"msg":"worker ready"`) {
			worker = newClient(t, "http://"+a)
		} else if time.Now().After(deadline) {
			t.Fatalf("worker not ready:\n%s", wlogs)
		}
	}
	common := []string{"conduit_ready 1", `conduit_db_pool_max_conns{pool="sqlite_writer",replica=""} 1`,
		`conduit_db_pool_wait_seconds_total{pool="sqlite_writer",replica=""}`, "go_goroutines ", "go_gc_gomemlimit_bytes ",
		"process_resident_memory_bytes "}
	for who, c := range map[string]*client{"serve": web, "worker": worker} {
		_, metrics := c.get("/metrics")
		want := common
		if who == "serve" {
			want = append(want, "conduit_http_max_in_flight 128", "conduit_http_buffered_bytes 0", "conduit_http_max_buffered_bytes ")
		}
		for _, w := range want {
			if !strings.Contains(metrics, "\n"+w) {
				t.Errorf("%s: no %q in /metrics", who, w)
			}
		}
	}
}
