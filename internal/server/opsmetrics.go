package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/conduit-dev/conduit/internal/store"
)

// RegisterRuntime exports the Go runtime's metrics (heap, GC, goroutines,
// GOMEMLIMIT: go_*) and the process's (CPU, memory, file descriptors:
// process_*).
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// RegisterReady exports conduit_ready: 1 while ready answers nil within a
// second (what /readyz answers 200 for), else 0. It is checked on each
// scrape, so an alert on "not ready" needs nothing probing /readyz.
func RegisterReady(reg prometheus.Registerer, ready func(context.Context) error) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "conduit_ready",
		Help: "1 if the process is ready for work (started, not draining, its database and queue answer), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ready(ctx) != nil {
			return 0
		}
		return 1
	}))
}

// RegisterPoolStats exports the database connection pools' state: how
// full they are and how long queries waited for a connection. Labels are
// the pool (a fixed set) and the configured replicas.
func RegisterPoolStats(reg prometheus.Registerer, stats func() []store.PoolStat) {
	reg.MustRegister(poolCollector{stats})
}

var (
	poolLabels       = []string{"pool", "replica"}
	poolMaxDesc      = prometheus.NewDesc("conduit_db_pool_max_conns", "Connections the pool may open.", poolLabels, nil)
	poolInUseDesc    = prometheus.NewDesc("conduit_db_pool_in_use_conns", "Connections taken from the pool now.", poolLabels, nil)
	poolIdleDesc     = prometheus.NewDesc("conduit_db_pool_idle_conns", "Connections open and free now.", poolLabels, nil)
	poolAcquiresDesc = prometheus.NewDesc("conduit_db_pool_acquires_total", "Connections taken from the pool (PostgreSQL pools only).", poolLabels, nil)
	poolWaitsDesc    = prometheus.NewDesc("conduit_db_pool_waits_total", "Connection requests that found none free and waited.", poolLabels, nil)
	poolWaitDesc     = prometheus.NewDesc("conduit_db_pool_wait_seconds_total",
		"Time spent waiting for a free connection; its rate is the average number of queries waiting.", poolLabels, nil)
)

type poolCollector struct{ stats func() []store.PoolStat }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolMaxDesc, poolInUseDesc, poolIdleDesc, poolAcquiresDesc, poolWaitsDesc, poolWaitDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.stats() {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, p.Pool, p.Replica)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, p.Pool, p.Replica)
		}
		gauge(poolMaxDesc, float64(p.Max))
		gauge(poolInUseDesc, float64(p.InUse))
		gauge(poolIdleDesc, float64(p.Idle))
		if p.Acquires >= 0 {
			counter(poolAcquiresDesc, float64(p.Acquires))
		}
		counter(poolWaitsDesc, float64(p.Waits))
		counter(poolWaitDesc, p.WaitTime.Seconds())
	}
}
