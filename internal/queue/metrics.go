package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Metrics are the queue's Prometheus metrics, labelled by job kind (a
// fixed set: conduit.JobKinds, else "other").
type Metrics struct {
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	lag       *prometheus.HistogramVec
	relayed   prometheus.Counter
}

// NewMetrics registers the queue's metrics on reg. stats, if not nil, is
// read on every scrape for the outbox's depth, the age of its oldest job
// and the dead letters (a grouped count of the outbox, which is small
// while workers keep up).
func NewMetrics(reg prometheus.Registerer, stats func(ctx context.Context) ([]conduit.JobStats, error)) *Metrics {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conduit_jobs_processed_total",
			Help: "Job attempts by kind and outcome: done, retried (failed, will run again) or dead (a dead letter).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "conduit_job_duration_seconds",
			Help:    "Time one attempt of a job took, by kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "conduit_job_lag_seconds",
			Help: "From the write that enqueued a job to its effect being committed, by kind " +
				"(for feed.publish: publish to visible in followers' feeds).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"kind"}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "conduit_jobs_relayed_total",
			Help: "Jobs moved from the outbox to NATS JetStream.",
		}),
	}
	reg.MustRegister(m.processed, m.duration, m.lag, m.relayed)
	for _, k := range conduit.JobKinds {
		for _, o := range []outcome{done, retry, dead} {
			m.processed.WithLabelValues(k, o.String())
		}
	}
	if stats != nil {
		reg.MustRegister(&statsCollector{stats: stats})
	}
	return m
}

func (m *Metrics) observe(j conduit.Job, took time.Duration, err error) {
	if m == nil {
		return
	}
	k := kindLabel(j.Kind)
	m.duration.WithLabelValues(k).Observe(took.Seconds())
	if err == nil && !j.CreatedAt.IsZero() {
		m.lag.WithLabelValues(k).Observe(time.Since(j.CreatedAt).Seconds())
	}
}

func (m *Metrics) outcome(j conduit.Job, out outcome) {
	if m != nil {
		m.processed.WithLabelValues(kindLabel(j.Kind), out.String()).Inc()
	}
}

func (m *Metrics) relay(n int) {
	if m != nil {
		m.relayed.Add(float64(n))
	}
}

var (
	pendingDesc = prometheus.NewDesc("conduit_jobs_pending", "Jobs in the outbox (due, leased or waiting for a retry), by kind.", []string{"kind"}, nil)
	oldestDesc  = prometheus.NewDesc("conduit_jobs_oldest_age_seconds", "Age of the oldest job in the outbox, by kind (0: none).", []string{"kind"}, nil)
	deadDesc    = prometheus.NewDesc("conduit_jobs_dead", "Dead letters (jobs that failed every attempt), by kind.", []string{"kind"}, nil)
)

// statsCollector reads the outbox on each scrape.
type statsCollector struct {
	stats func(ctx context.Context) ([]conduit.JobStats, error)
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- oldestDesc
	ch <- deadDesc
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := c.stats(ctx)
	if err != nil {
		return // the database is down: other metrics are still served
	}
	byKind := map[string]conduit.JobStats{}
	for _, s := range stats {
		k := kindLabel(s.Kind)
		t := byKind[k]
		t.Pending += s.Pending
		t.Dead += s.Dead
		if !s.Oldest.IsZero() && (t.Oldest.IsZero() || s.Oldest.Before(t.Oldest)) {
			t.Oldest = s.Oldest
		}
		byKind[k] = t
	}
	for _, k := range append(conduit.JobKinds, "other") {
		s := byKind[k]
		age := 0.0
		if s.Pending > 0 && !s.Oldest.IsZero() {
			age = max(time.Since(s.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(s.Pending), k)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, k)
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(s.Dead), k)
	}
}
