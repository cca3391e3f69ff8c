package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the HTTP metrics. Labels use the matched route
// pattern, never the raw path, so their number stays bounded.
func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "conduit_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	RegisterRuntime(reg)
	return m
}

func (m *metrics) observe(r *http.Request, status int, elapsed time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	nameSpan(r, route)
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
}

// RegisterCacheStats exports a cache's hit and miss counters.
func RegisterCacheStats(reg *prometheus.Registry, name string, stats func() (hits, misses uint64)) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "conduit_cache_hits_total", Help: "Cache lookups that found a value.",
			ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "conduit_cache_misses_total", Help: "Cache lookups that found nothing.",
			ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { _, m := stats(); return float64(m) }),
	)
}

// registerLimiter exports the overload limiter's state.
func registerLimiter(reg *prometheus.Registry, l *httpx.Limiter) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "conduit_http_shed_total", Help: "Requests refused with 503 because the node was at its concurrency limit.",
		}, func() float64 { return float64(l.Shed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "conduit_http_in_flight", Help: "Requests being served now (limited ones only).",
		}, func() float64 { return float64(l.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "conduit_http_queued", Help: "Requests waiting for a free slot now.",
		}, func() float64 { return float64(l.Queued()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "conduit_http_max_in_flight", Help: "Requests the node serves at once at most (--max-inflight).",
		}, func() float64 { return float64(l.Capacity()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "conduit_http_buffered_bytes", Help: "Bytes of request bodies held in memory now.",
		}, func() float64 { return float64(l.Buffered()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "conduit_http_max_buffered_bytes", Help: "Bytes of request bodies the node holds at most; beyond, requests are shed.",
		}, func() float64 { return float64(l.MaxBuffered()) }),
	)
}

// RegisterReadStats exports where database reads go and the read
// replicas' state (stage 4). Labels are the configured replicas and a
// fixed set of reasons, so they stay bounded.
func RegisterReadStats(reg *prometheus.Registry, stats func() *store.ReadStats) {
	reg.MustRegister(readCollector{stats})
}

var (
	replicaReadsDesc = prometheus.NewDesc("conduit_db_replica_reads_total",
		"Reads served by each read replica.", []string{"replica"}, nil)
	primaryReadsDesc = prometheus.NewDesc("conduit_db_primary_reads_total",
		"Reads served by the primary although replicas are configured, by why: lag (no replica up within the cut-off), position (the user's own write not replayed yet), fresh (a read for a cache, ahead of the replicas), unknown (positions may have been missed), retry (a replica failed).",
		[]string{"reason"}, nil)
	replicaLagDesc = prometheus.NewDesc("conduit_db_replica_lag_seconds",
		"How far each replica is known to be behind the primary (-1: unknown or down).", []string{"replica"}, nil)
	replicaUpDesc = prometheus.NewDesc("conduit_db_replica_up",
		"1 if the replica answers as a standby, else 0.", []string{"replica"}, nil)
)

type readCollector struct {
	stats func() *store.ReadStats
}

func (c readCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicaReadsDesc
	ch <- primaryReadsDesc
	ch <- replicaLagDesc
	ch <- replicaUpDesc
}

func (c readCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	if st == nil {
		return
	}
	for _, r := range st.Replicas {
		up, lag := 0.0, -1.0
		if r.Up {
			up = 1
		}
		if r.Lag >= 0 {
			lag = r.Lag.Seconds()
		}
		ch <- prometheus.MustNewConstMetric(replicaReadsDesc, prometheus.CounterValue, float64(r.Reads), r.Name)
		ch <- prometheus.MustNewConstMetric(replicaLagDesc, prometheus.GaugeValue, lag, r.Name)
		ch <- prometheus.MustNewConstMetric(replicaUpDesc, prometheus.GaugeValue, up, r.Name)
	}
	for reason, n := range st.Primary {
		ch <- prometheus.MustNewConstMetric(primaryReadsDesc, prometheus.CounterValue, float64(n), reason)
	}
}
