package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/store"
)

// queueFlags are the settings of the workers, in serve and worker.
var queueFlags = []string{"queue-url", "workers", "fanout-max-followers", "timeline-cap", "job-lease", "job-max-attempts"}

var workerFlags = append([]string{"data-dir", "database-url", "log-format", "log-level", "admin-addr",
	"db-max-conns", "db-conn-lifetime", "db-statement-timeout", "db-connect-timeout"}, queueFlags...)

const workerSummary = `Runs only workers: the jobs that writes leave in the outbox (feed fan-out to
home timelines, notifications). No pages and no API: --admin-addr serves
/healthz, /readyz and /metrics. Run as many as the jobs need, apart from the
web nodes (which may then run 'serve --workers=0').

Without --queue-url, workers claim jobs straight from the database (several
processes share them safely); with it, they also relay the outbox to NATS
JetStream and consume from its durable consumer. The schema is migrated on
start, waiting for the database like serve.`

// worker is the `conduit worker` command.
func worker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("worker", workerSummary, workerFlags, args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.Workers == 0 {
		return errors.New("--workers must be at least 1 for conduit worker")
	}
	logger := newLogger(cfg, stdout)
	tracing, err := startTracing(ctx, getenv, "worker", logger)
	if err != nil {
		return err
	}
	defer tracing.stop()
	reg := prometheus.NewRegistry()
	ready := &workerReady{}
	server.RegisterRuntime(reg)
	server.RegisterReady(reg, ready.Ping)
	if cfg.AdminAddr != "" {
		ln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		go server.RunPrivate(ctx, ln, server.WorkerHandler(reg, ready), logger)
		logger.Info("serving health and metrics on the admin listener", slog.String("addr", ln.Addr().String()))
	}
	db, err := openWhenUp(ctx, cfg, tracing.Provider, logger, connectBackoff())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer db.Close()
	if err := migrateAndCheck(ctx, db, logger); err != nil {
		return err
	}
	server.RegisterPoolStats(reg, db.PoolStats)
	w, err := startWorkers(ctx, cfg, db, reg, tracing.Provider, logger)
	if err != nil {
		return err
	}
	ready.set(db, w.nats)
	logger.Info("worker ready", slog.String("database", cfg.DatabaseDescription()), slog.Int("workers", cfg.Workers),
		slog.String("queue", queueDescription(cfg)))
	<-ctx.Done()
	logger.Info("stopping: finishing the jobs in hand")
	w.wait()
	return nil
}

func queueDescription(cfg config.Config) string {
	if cfg.QueueURL == "" {
		return "the outbox (no broker)"
	}
	return config.MaskURL(cfg.QueueURL)
}

// workers is the delivery running in this process.
type workers struct {
	nats *queue.NATS // nil without --queue-url
	done chan struct{}
}

// wait returns once the workers stopped (their context ended and the jobs
// in hand finished).
func (w *workers) wait() {
	<-w.done
	if w.nats != nil {
		w.nats.Close()
	}
}

// startWorkers starts cfg.Workers job runners until ctx ends: straight from
// the outbox, or (with --queue-url) a relay to NATS and consumers of it.
// Writes of this process wake them at once.
func startWorkers(ctx context.Context, cfg config.Config, db *store.DB, reg prometheus.Registerer, tp trace.TracerProvider, logger *slog.Logger) (*workers, error) {
	jobs := conduit.NewJobs(db, conduit.FeedOptions{MaxFollowers: cfg.FanoutMaxFollowers, TimelineCap: cfg.TimelineCap})
	opts := queue.Options{
		Workers:     cfg.Workers,
		Lease:       cfg.JobLease,
		MaxAttempts: cfg.JobMaxAttempts,
		Logger:      logger.With(slog.String("component", "queue")),
		Metrics:     queue.NewMetrics(reg, db.JobStats),
		Tracer:      tp,
	}
	w := &workers{done: make(chan struct{})}
	if cfg.QueueURL == "" {
		local := queue.NewLocal(db, jobs, opts)
		db.OnJobs(local.Wake)
		go db.ListenJobs(ctx, local.Wake, opts.Logger) // other processes' writes
		go func() { local.Run(ctx); close(w.done) }()
		return w, nil
	}
	n, err := queue.DialNATS(cfg.QueueURL, opts)
	if err != nil {
		return nil, err
	}
	w.nats = n
	n.RegisterStats(reg)
	relay := queue.NewRelay(db, n, opts)
	db.OnJobs(relay.Wake)
	go db.ListenJobs(ctx, relay.Wake, opts.Logger) // other processes' writes (serve --workers=0)
	consumer := queue.NewConsumer(n, db, jobs, opts)
	relayDone := make(chan struct{})
	go func() { relay.Run(ctx); close(relayDone) }()
	go func() { consumer.Run(ctx); <-relayDone; close(w.done) }()
	return w, nil
}

// workerReady is a worker's readiness: its database answers, and its
// queue is connected when it has one.
type workerReady struct {
	deps atomic.Pointer[readyDeps]
}

type readyDeps struct {
	db   *store.DB
	nats *queue.NATS
}

func (r *workerReady) set(db *store.DB, n *queue.NATS) { r.deps.Store(&readyDeps{db, n}) }

func (r *workerReady) Ping(ctx context.Context) error {
	d := r.deps.Load()
	if d == nil {
		return errors.New("starting")
	}
	if err := d.db.Ping(ctx); err != nil {
		return errors.New("database unavailable")
	}
	if d.nats != nil {
		if err := d.nats.Ping(ctx); err != nil {
			return errors.New("queue unavailable")
		}
	}
	return nil
}
