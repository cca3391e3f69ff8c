package server

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/store"
)

func TestReadStatsMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	stats := &store.ReadStats{
		Replicas: []store.ReplicaStat{
			{Name: "db2:5432", Up: true, Lag: 1500 * time.Millisecond, Reads: 40},
			{Name: "db3:5432", Up: false, Lag: -1, Reads: 2},
		},
		Primary: map[string]uint64{"lag": 1, "position": 3, "fresh": 0, "unknown": 0, "latest": 0, "retry": 0},
	}
	RegisterReadStats(reg, func() *store.ReadStats { return stats })
	got := gather(t, reg)
	want := map[string]float64{
		`conduit_db_replica_lag_seconds{replica="db2:5432"}`: 1.5,
		`conduit_db_replica_lag_seconds{replica="db3:5432"}`: -1,
		`conduit_db_replica_reads_total{replica="db2:5432"}`: 40,
		`conduit_db_replica_reads_total{replica="db3:5432"}`: 2,
		`conduit_db_replica_up{replica="db2:5432"}`:          1,
		`conduit_db_replica_up{replica="db3:5432"}`:          0,
		`conduit_db_primary_reads_total{reason="lag"}`:       1,
		`conduit_db_primary_reads_total{reason="position"}`:  3,
		`conduit_db_primary_reads_total{reason="fresh"}`:     0,
		`conduit_db_primary_reads_total{reason="unknown"}`:   0,
		`conduit_db_primary_reads_total{reason="latest"}`:    0,
		`conduit_db_primary_reads_total{reason="retry"}`:     0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, want %d: %v", len(got), len(want), got)
	}
	// Without replicas nothing is exported.
	empty := prometheus.NewRegistry()
	RegisterReadStats(empty, func() *store.ReadStats { return nil })
	if got := gather(t, empty); len(got) != 0 {
		t.Errorf("without replicas: %v, want no series", got)
	}
}

// gather returns every sample as name{label="value"} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName() + "{"
			for i, lp := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += lp.GetName() + `="` + lp.GetValue() + `"`
			}
			key += "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
