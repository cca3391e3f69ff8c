// Package queue delivers the jobs of the outbox (stage 7, docs/stage7.md):
// straight from the database (Local, without a broker), or through NATS
// JetStream (Relay moves outbox rows to a stream, Consumer runs them from a
// durable pull consumer). Either way delivery is at least once, handlers
// are idempotent, failures are retried with a growing delay, and jobs that
// keep failing become dead letters (the dead_jobs table) for `conduit jobs`.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Outbox is the database side of the queue (store.DB).
type Outbox interface {
	// ClaimJobs leases up to limit due jobs for lease, and deletes done
	// (jobs of an earlier claim whose effect is committed) in the same
	// transaction: all of it happens, or none.
	ClaimJobs(ctx context.Context, limit int, lease time.Duration, done ...int64) ([]conduit.Job, error)
	// CompleteJobs deletes jobs whose effect is committed (or that were
	// handed to the broker), in one transaction.
	CompleteJobs(ctx context.Context, ids ...int64) error
	// RetryJob makes a claimed job due again at at.
	RetryJob(ctx context.Context, id int64, at time.Time, reason string) error
	// BuryJob moves a job to the dead letters.
	BuryJob(ctx context.Context, j conduit.Job, reason string) error
	// JobStats counts pending jobs and dead letters per kind (metrics).
	JobStats(ctx context.Context) ([]conduit.JobStats, error)
}

// Handler runs one job (conduit.Jobs).
type Handler interface {
	Handle(ctx context.Context, j conduit.Job) error
}

// Options tune delivery; zero values take the defaults noted.
type Options struct {
	// Workers is how many jobs run at once in this process (default 1).
	Workers int
	// Lease is how long a job is a worker's before it is delivered again
	// to another (a worker that died), default 1 minute. A job still
	// running tells the broker it is (NATS) or simply runs again later
	// (idempotent handlers make that safe).
	Lease time.Duration
	// Poll is how often an idle worker looks for due jobs (default 500ms);
	// jobs written by this process wake it at once (Local.Wake).
	Poll time.Duration
	// MaxAttempts: a job that failed this often becomes a dead letter
	// (default 8).
	MaxAttempts int
	// RetryFirst and RetryMax bound the delay before a failed job runs
	// again: RetryFirst, doubling per attempt, up to RetryMax (defaults 1s
	// and 5m), with jitter.
	RetryFirst, RetryMax time.Duration
	// Batch is how many jobs one worker claims at once (default 10).
	Batch   int
	Logger  *slog.Logger
	Metrics *Metrics // nil: none
	// Tracer, if not nil, records a span per attempt at a job (tracing.go).
	Tracer trace.TracerProvider
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.RetryFirst <= 0 {
		o.RetryFirst = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// retryDelay is how long to wait before attempt number attempts+1.
func (o Options) retryDelay(attempts int) time.Duration {
	d := o.RetryFirst
	for i := 1; i < attempts && d < o.RetryMax; i++ {
		d *= 2
	}
	d = min(d, o.RetryMax)
	// Up to a quarter less, so that jobs failing together spread out.
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// outcome is what becomes of a job after one attempt.
type outcome int

const (
	done outcome = iota
	retry
	dead
)

func (o outcome) String() string { return [...]string{"done", "retried", "dead"}[o] }

// judge decides what becomes of a job that ended with err.
func (o Options) judge(j conduit.Job, err error) outcome {
	switch {
	case err == nil:
		return done
	case errors.Is(err, conduit.ErrPoison), j.Attempts >= o.MaxAttempts:
		return dead
	}
	return retry
}

// run handles one job, timing it for the metrics and the log.
func run(ctx context.Context, h Handler, j conduit.Job, o Options) error {
	ctx, end := o.span(ctx, j)
	start := time.Now()
	err := safeHandle(ctx, h, j)
	o.Metrics.observe(j, time.Since(start), err)
	end(err)
	return err
}

// safeHandle turns a handler's panic into an error: one bad job must not
// stop the worker.
func safeHandle(ctx context.Context, h Handler, j conduit.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v", conduit.ErrPoison, p)
		}
	}()
	return h.Handle(ctx, j)
}

// record counts an attempt's outcome and logs a failed one.
func (o Options) record(j conduit.Job, out outcome, err error) {
	o.Metrics.outcome(j, out)
	if out == done {
		return
	}
	level := slog.LevelWarn
	if out == dead {
		level = slog.LevelError
	}
	o.Logger.Log(context.Background(), level, "job failed", slog.Int64("job", j.ID), slog.String("kind", j.Kind),
		slog.Int("attempt", j.Attempts), slog.String("outcome", out.String()), slog.Any("error", err))
}

// Local runs jobs straight from the outbox, in this process: the queue of
// stage 1 and small deployments. Several processes may run it on one
// PostgreSQL database: claims skip each other's rows.
type Local struct {
	outbox  Outbox
	handler Handler
	opts    Options
	wake    chan struct{}
}

// NewLocal returns a runner of the outbox's jobs.
func NewLocal(o Outbox, h Handler, opts Options) *Local {
	return &Local{outbox: o, handler: h, opts: opts.withDefaults(), wake: make(chan struct{}, 1)}
}

// Wake makes an idle worker look for jobs now. It never blocks (give it to
// store.DB.OnJobs).
func (l *Local) Wake() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx ends, then lets the jobs in hand finish (their
// effect is committed or their lease runs out; nothing is lost either way).
func (l *Local) Run(ctx context.Context) { inParallel(l.opts.Workers, func() { l.work(ctx) }) }

// inParallel runs f in n goroutines and returns when all have returned.
func inParallel(n int, f func()) {
	done := make(chan struct{})
	for range n {
		go func() {
			defer func() { done <- struct{}{} }()
			f()
		}()
	}
	for range n {
		<-done
	}
}

func (l *Local) work(ctx context.Context) {
	pollLoop(ctx, l.wake, l.opts.Poll, l.opts.retryDelay,
		func() (int, error) { return l.runDue(context.WithoutCancel(ctx), ctx) },
		func(err error, _ int, delay time.Duration) {
			l.opts.Logger.Warn("claiming jobs failed", slog.Any("error", err), slog.Duration("retry_in", delay))
		})
}

// pollLoop calls batch until ctx ends: at once, whenever wake is signalled,
// and every poll. After a batch that found work it signals wake (there may
// be more: this loop, or another idle one on the same channel, looks again
// at once); after a failure it waits backoff(failures) instead, and tells
// failed.
func pollLoop(ctx context.Context, wake chan struct{}, poll time.Duration, backoff func(failures int) time.Duration,
	batch func() (int, error), failed func(err error, failures int, delay time.Duration)) {
	t := time.NewTimer(0)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
		n, err := batch()
		if err != nil {
			failures++
			delay := backoff(failures)
			failed(err, failures, delay)
			t.Reset(delay)
			continue
		}
		failures = 0
		if n > 0 {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		t.Reset(poll)
	}
}

// RunDue runs the due jobs a batch at a time: it claims a batch, runs its
// jobs, and claims the next while the last claim came back full (there
// may be more) and ctx has not ended. It returns how many jobs it claimed.
//
// A failed job is retried or buried at once, in a transaction of its own.
// The jobs that are done are deleted together: in the transaction of the
// next claim, or, after the last batch, in one statement. Deleting later
// than each job's own effect is safe because delivery is at least once
// anyway: a worker that dies before the delete leaves its done jobs to run
// again after the lease, and every handler is idempotent (conduit.Jobs).
// What keeps those repeats rare is that a done job's delete never waits
// for more than half the lease: a batch that runs that long records what
// it has done before going on.
func (l *Local) RunDue(ctx context.Context) (int, error) {
	return l.runDue(ctx, ctx)
}

// runDue is RunDue with the jobs' context apart from stop, which ends the
// loop between batches (the worker is stopping; the jobs in hand finish).
func (l *Local) runDue(ctx, stop context.Context) (int, error) {
	var done []int64
	claimed := 0
	for {
		jobs, err := l.outbox.ClaimJobs(ctx, l.opts.Batch, l.opts.Lease, done...)
		if err != nil {
			// The claim's transaction rolled back the deletes with it;
			// try them alone, so that a failed claim does not make the
			// done jobs run again.
			l.complete(ctx, done)
			return claimed, err
		}
		claimed += len(jobs)
		full := len(jobs) == l.opts.Batch
		if full {
			l.Wake() // another idle worker may share what is left
		}
		done = l.runBatch(ctx, jobs)
		if !full || stop.Err() != nil {
			l.complete(ctx, done)
			return claimed, nil
		}
	}
}

// runBatch runs a claim's jobs one after the other and returns those that
// are done and not yet deleted.
func (l *Local) runBatch(ctx context.Context, jobs []conduit.Job) []int64 {
	start := time.Now()
	var finished []int64
	for _, j := range jobs {
		if len(finished) > 0 && time.Since(start) >= l.opts.Lease/2 {
			l.complete(ctx, finished)
			finished = nil
		}
		err := run(ctx, l.handler, j, l.opts)
		out := l.opts.judge(j, err)
		l.opts.record(j, out, err)
		var ferr error
		switch out {
		case done:
			finished = append(finished, j.ID)
		case retry:
			ferr = l.outbox.RetryJob(ctx, j.ID, time.Now().Add(l.opts.retryDelay(j.Attempts)), err.Error())
		case dead:
			ferr = l.outbox.BuryJob(ctx, j, err.Error())
		}
		if ferr != nil {
			// The lease runs out and the job is delivered again.
			l.opts.Logger.Warn("recording a job's outcome failed", slog.Int64("job", j.ID), slog.Any("error", ferr))
		}
	}
	return finished
}

// complete deletes done jobs in one statement. If that fails, their leases
// run out and they are delivered again (to an idempotent handler).
func (l *Local) complete(ctx context.Context, done []int64) {
	if len(done) == 0 {
		return
	}
	if err := l.outbox.CompleteJobs(ctx, done...); err != nil {
		l.opts.Logger.Warn("recording jobs as done failed", slog.Int("jobs", len(done)), slog.Any("error", err))
	}
}

// Drain runs due jobs until none is left (tests, `conduit jobs run`). Jobs
// that fail are retried at once up to their attempts, then buried.
func Drain(ctx context.Context, o Outbox, h Handler, opts Options) error {
	opts = opts.withDefaults()
	opts.RetryFirst, opts.RetryMax = time.Nanosecond, time.Nanosecond
	l := NewLocal(o, h, opts)
	for {
		n, err := l.RunDue(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

// kindLabel keeps metric labels to the known kinds.
func kindLabel(kind string) string {
	if slices.Contains(conduit.JobKinds, kind) {
		return kind
	}
	return "other"
}
