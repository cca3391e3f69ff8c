package server

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
)

// conduit_ready follows what /readyz answers: 0 before the server runs,
// 1 once it does while the database answers, 0 when it stops answering.
func TestReadyGauge(t *testing.T) {
	db := &pinger{}
	s, reg, _ := newTestServer(t, db)
	ready := func() float64 { return gather(t, reg)["conduit_ready{}"] }
	if ready() != 0 {
		t.Error("ready before MarkReady")
	}
	s.MarkReady()
	if ready() != 1 {
		t.Error("not ready with a database that answers")
	}
	db.err = errors.New("down")
	if ready() != 0 {
		t.Error("ready while the database does not answer")
	}
	if code, _ := get(t, s.Handler(), "GET", "/readyz"); code != 503 {
		t.Errorf("/readyz %d while the gauge says not ready", code)
	}
}

// The limiter's capacity and body budget are exported beside its load.
func TestLimiterGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	registerLimiter(reg, httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 7, MaxBuffered: 1 << 20}))
	got := gather(t, reg)
	for k, v := range map[string]float64{
		"conduit_http_max_in_flight{}": 7, "conduit_http_max_buffered_bytes{}": 1 << 20,
		"conduit_http_buffered_bytes{}": 0, "conduit_http_in_flight{}": 0, "conduit_http_queued{}": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestPoolMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterPoolStats(reg, func() []store.PoolStat {
		return []store.PoolStat{
			{Pool: "primary", Max: 20, InUse: 3, Idle: 2, Acquires: 100, Waits: 4, WaitTime: 1500 * time.Millisecond},
			{Pool: "replica", Replica: "db2:5432", Max: 20, InUse: 1, Idle: 1, Acquires: 50},
			{Pool: "sqlite_writer", Max: 1, Acquires: -1, Waits: 2, WaitTime: time.Second},
		}
	})
	got := gather(t, reg)
	want := map[string]float64{
		`conduit_db_pool_max_conns{pool="primary",replica=""}`:                  20,
		`conduit_db_pool_in_use_conns{pool="primary",replica=""}`:               3,
		`conduit_db_pool_idle_conns{pool="primary",replica=""}`:                 2,
		`conduit_db_pool_acquires_total{pool="primary",replica=""}`:             100,
		`conduit_db_pool_waits_total{pool="primary",replica=""}`:                4,
		`conduit_db_pool_wait_seconds_total{pool="primary",replica=""}`:         1.5,
		`conduit_db_pool_max_conns{pool="replica",replica="db2:5432"}`:          20,
		`conduit_db_pool_in_use_conns{pool="replica",replica="db2:5432"}`:       1,
		`conduit_db_pool_idle_conns{pool="replica",replica="db2:5432"}`:         1,
		`conduit_db_pool_acquires_total{pool="replica",replica="db2:5432"}`:     50,
		`conduit_db_pool_waits_total{pool="replica",replica="db2:5432"}`:        0,
		`conduit_db_pool_wait_seconds_total{pool="replica",replica="db2:5432"}`: 0,
		`conduit_db_pool_max_conns{pool="sqlite_writer",replica=""}`:            1,
		`conduit_db_pool_in_use_conns{pool="sqlite_writer",replica=""}`:         0,
		`conduit_db_pool_idle_conns{pool="sqlite_writer",replica=""}`:           0,
		`conduit_db_pool_waits_total{pool="sqlite_writer",replica=""}`:          2,
		`conduit_db_pool_wait_seconds_total{pool="sqlite_writer",replica=""}`:   1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, want %d (SQLite's pools count no acquires): %v", len(got), len(want), got)
	}
}
