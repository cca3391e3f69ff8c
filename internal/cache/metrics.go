package cache

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// redisMetrics are the Redis cache's metrics. Labels are bounded: tier
// (near, redis), kind (kinds below), result, op (a fixed list).
type redisMetrics struct {
	lookups    *prometheus.CounterVec   // tier, kind, result
	bypassed   *prometheus.CounterVec   // kind
	loads      *prometheus.CounterVec   // kind, how
	leaseWaits *prometheus.CounterVec   // kind
	versioned  *prometheus.CounterVec   // kind, result
	latency    *prometheus.HistogramVec // op
	errors     *prometheus.CounterVec   // op
	bumps      prometheus.Counter
	fenceWaits prometheus.Counter
}

// kinds are the key families the service caches; others count as "other".
var kinds = []string{"article", "favorites", "html", "user", "username", "tags", "lists", "listpage", "sitepage", "listver"}

// kindOf is the metric label of key: the part before the first colon.
func kindOf(key string) string {
	k, _, _ := strings.Cut(key, ":")
	for _, known := range kinds {
		if k == known {
			return k
		}
	}
	return "other"
}

func newRedisMetrics(reg prometheus.Registerer, open func() bool) *redisMetrics {
	m := &redisMetrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_cache_tier_lookups_total",
			Help: "Cache reads by tier (near: this node's memory, redis: the shared server), key kind and result.",
		}, []string{"tier", "kind", "result"}),
		bypassed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_cache_bypassed_total",
			Help: "Cache reads that went straight to the database because the Redis cache was not usable (breaker open).",
		}, []string{"kind"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_cache_loads_total",
			Help: "Database loads on a cache miss, by how the loader was chosen (lease: it held the fill lease; bypass, error, wait_expired, busy: without one; busy: GetOrLoadMany loaded it with other keys while another node held its lease).",
		}, []string{"kind", "how"}),
		leaseWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_cache_lease_waits_total",
			Help: "Polls of a node waiting for another node to fill a key.",
		}, []string{"kind"}),
		versioned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_cache_versioned_reads_total",
			Help: "Reads of versioned values (list pages kept for every node) by kind and result: hit, absent (none stored in this generation), changed (a version it was stored with is not current: a write since).",
		}, []string{"kind", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "conduit_cache_redis_call_seconds",
			Help:    "Latency of calls to Redis by operation (near-cache hits included under get).",
			Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_cache_redis_errors_total",
			Help: "Calls to Redis that failed or timed out, by operation.",
		}, []string{"op"}),
		bumps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "conduit_cache_generation_bumps_total",
			Help: "New cache generations started by this node after Redis was unreachable (every cached value became a miss).",
		}),
		fenceWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "conduit_cache_fence_waits_total",
			Help: "Cache reads that waited for a round trip to Redis before using the near cache (none recent enough to prove this node had every invalidation of an acknowledged write).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lookups, m.bypassed, m.loads, m.leaseWaits, m.versioned, m.latency, m.errors, m.bumps, m.fenceWaits,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "conduit_cache_circuit_open",
				Help: "1 while the Redis cache is not used (breaker open, or waiting for a new generation), else 0.",
			}, func() float64 {
				if open() {
					return 1
				}
				return 0
			}))
	}
	return m
}

func (m *redisMetrics) observe(op string, start, end time.Time) {
	m.latency.WithLabelValues(op).Observe(end.Sub(start).Seconds())
}
