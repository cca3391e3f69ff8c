package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// With NATS the outbox empties as fast as the relay publishes; the
// backlog is in the stream. These are read from the server on each scrape
// (every process consuming it reports the same values: take the max
// across instances). While NATS does not answer they are not reported.
var (
	streamPendingDesc = prometheus.NewDesc("conduit_jobs_stream_pending",
		"Jobs in the NATS stream not yet delivered to a worker.", nil, nil)
	streamInFlightDesc = prometheus.NewDesc("conduit_jobs_stream_in_flight",
		"Jobs delivered from the NATS stream and not yet acknowledged (running, or waiting for a retry).", nil, nil)
	streamOldestDesc = prometheus.NewDesc("conduit_jobs_stream_oldest_age_seconds",
		"Age of the oldest job in the NATS stream (0: none).", nil, nil)
)

// RegisterStats exports the stream's backlog on reg.
func (n *NATS) RegisterStats(reg prometheus.Registerer) {
	reg.MustRegister(streamCollector{n})
}

type streamCollector struct{ n *NATS }

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamPendingDesc
	ch <- streamInFlightDesc
	ch <- streamOldestDesc
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.n.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.n.js.Stream(ctx, StreamName)
	if err != nil {
		return
	}
	si, err := s.Info(ctx)
	if err != nil {
		return
	}
	cons, err := s.Consumer(ctx, ConsumerName)
	if err != nil {
		return
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if si.State.Msgs > 0 && !si.State.FirstTime.IsZero() {
		age = max(time.Since(si.State.FirstTime).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(streamPendingDesc, prometheus.GaugeValue, float64(ci.NumPending))
	ch <- prometheus.MustNewConstMetric(streamInFlightDesc, prometheus.GaugeValue, float64(ci.NumAckPending))
	ch <- prometheus.MustNewConstMetric(streamOldestDesc, prometheus.GaugeValue, age)
}
