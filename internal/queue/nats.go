package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// The JetStream names: one work-queue stream for every kind (subjects
// conduit.jobs.<kind>), consumed by one durable pull consumer that every
// worker process shares.
const (
	StreamName   = "CONDUIT_JOBS"
	subjectBase  = "conduit.jobs."
	ConsumerName = "conduit-workers"
	// dupWindow is how long JetStream remembers a message id: a relay that
	// published a job and died before deleting its outbox row publishes it
	// again on restart, within this window, as a duplicate it drops.
	dupWindow = 10 * time.Minute
)

// NATS is a connection to a JetStream server with the stream and consumer
// the queue uses. It reconnects by itself for as long as the process runs.
type NATS struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts Options
}

// DialNATS connects to url (nats://host:port[,nats://…]). The first
// connection may fail (NATS not up yet): the client keeps trying in the
// background, and the relay and consumer wait for it; meanwhile jobs stay
// in the outbox.
func DialNATS(url string, opts Options) (*NATS, error) {
	opts = opts.withDefaults()
	nc, err := nats.Connect(url,
		nats.Name("conduit"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.Timeout(3*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				opts.Logger.Warn("NATS disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { opts.Logger.Info("NATS reconnected", slog.String("url", c.ConnectedUrlRedacted())) }),
	)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", redactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &NATS{nc: nc, js: js, opts: opts}, nil
}

// Close closes the connection.
func (n *NATS) Close() { n.nc.Close() }

// Ping reports whether the connection is up (readiness of a worker).
func (n *NATS) Ping(context.Context) error {
	if !n.nc.IsConnected() {
		return errors.New("NATS is not connected")
	}
	return nil
}

// ensure creates or updates the stream and the consumer; it is run at
// start and again after errors (a server that lost its storage).
func (n *NATS) ensure(ctx context.Context) (jetstream.Consumer, error) {
	s, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       StreamName,
		Subjects:   []string{subjectBase + ">"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: dupWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:   ConsumerName,
		AckPolicy: jetstream.AckExplicitPolicy,
		// A worker that died mid-job has it delivered again after this.
		AckWait: n.opts.Lease,
		// Retries are counted and delayed by the consumer (NakWithDelay);
		// the server never drops a job on its own.
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return c, nil
}

// Pending returns how many jobs wait in the stream and how many are being
// worked on (delivered, not yet acknowledged).
func (n *NATS) Pending(ctx context.Context) (waiting, inFlight uint64, err error) {
	c, err := n.js.Consumer(ctx, StreamName, ConsumerName)
	if err != nil {
		return 0, 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.NumPending, uint64(info.NumAckPending), nil
}

// msgID is a job's Nats-Msg-Id: its outbox id, and its creation time so
// that ids stay unique even across a database restored from a backup.
func msgID(j conduit.Job) string {
	return strconv.FormatInt(j.ID, 10) + "-" + strconv.FormatInt(j.CreatedAt.UnixMilli(), 10)
}

// Relay moves jobs from the outbox to JetStream: it claims rows like a
// worker, publishes each with its Nats-Msg-Id and waits for the server's
// acknowledgement before deleting the row. Publishing twice (a relay that
// died between the two) is dropped by the server as a duplicate. Several
// relays may run (SKIP LOCKED); while NATS is down, rows wait.
type Relay struct {
	outbox Outbox
	nats   *NATS
	opts   Options
	wake   chan struct{}
	ready  bool // the stream exists
}

// NewRelay returns a relay from o to n.
func NewRelay(o Outbox, n *NATS, opts Options) *Relay {
	opts = opts.withDefaults()
	return &Relay{outbox: o, nats: n, opts: opts, wake: make(chan struct{}, 1)}
}

// Wake makes the relay look at the outbox now (store.DB.OnJobs).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	pollLoop(ctx, r.wake, r.opts.Poll,
		func(failures int) time.Duration { return min(r.opts.retryDelay(failures), 5*time.Second) },
		func() (int, error) { return r.relayOnce(ctx) },
		func(err error, failures int, _ time.Duration) {
			if failures == 1 || failures%20 == 0 {
				r.opts.Logger.Warn("relaying jobs to NATS failed; they wait in the outbox", slog.Any("error", err),
					slog.Int("failures", failures))
			}
		})
}

// relayOnce publishes one batch.
func (r *Relay) relayOnce(ctx context.Context) (int, error) {
	if !r.nats.nc.IsConnected() {
		return 0, errors.New("NATS is not connected")
	}
	if !r.ready {
		if _, err := r.nats.ensure(ctx); err != nil {
			return 0, err
		}
		r.ready = true
	}
	jobs, err := r.outbox.ClaimJobs(ctx, 100, r.opts.Lease)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	var sent []int64
	var firstErr error
	for _, j := range jobs {
		if firstErr != nil {
			// Give the rest back at once rather than after the lease.
			_ = r.outbox.RetryJob(ctx, j.ID, time.Now(), "relay: "+firstErr.Error())
			continue
		}
		body, err := json.Marshal(j)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = r.nats.js.Publish(pctx, subjectBase+kindLabel(j.Kind), body, jetstream.WithMsgID(msgID(j)))
			cancel()
		}
		if err != nil {
			firstErr = err
			_ = r.outbox.RetryJob(ctx, j.ID, time.Now(), "relay: "+err.Error())
			continue
		}
		sent = append(sent, j.ID)
	}
	// The published jobs leave the outbox in one statement. If that fails
	// they are published again after the lease and dropped as duplicates.
	if err := r.outbox.CompleteJobs(ctx, sent...); err != nil {
		if firstErr == nil {
			firstErr = err
		}
		sent = nil
	}
	r.opts.Metrics.relay(len(sent))
	if firstErr != nil && isMissingStream(firstErr) {
		r.ready = false
	}
	return len(sent), firstErr
}

func isMissingStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// Consumer runs jobs from the durable pull consumer: each worker fetches a
// few, runs them, and acknowledges each once its effect is committed. A
// failed job is delivered again after a growing delay (NakWithDelay); one
// that failed MaxAttempts times (or is poison) is written to the dead
// letters in the database and terminated on the stream.
type Consumer struct {
	nats    *NATS
	dead    Outbox // where dead letters go
	handler Handler
	opts    Options
}

// NewConsumer returns a consumer of n's jobs.
func NewConsumer(n *NATS, dead Outbox, h Handler, opts Options) *Consumer {
	return &Consumer{nats: n, dead: dead, handler: h, opts: opts.withDefaults()}
}

// Run consumes until ctx ends; jobs in hand finish first.
func (c *Consumer) Run(ctx context.Context) { inParallel(c.opts.Workers, func() { c.work(ctx) }) }

func (c *Consumer) work(ctx context.Context) {
	var cons jetstream.Consumer
	failures := 0
	for ctx.Err() == nil {
		var err error
		if cons == nil {
			cons, err = c.nats.ensure(ctx)
		}
		if err == nil {
			err = c.fetch(ctx, cons)
		}
		if err == nil || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		if failures%5 == 0 {
			cons = nil // ensure again: the server may have lost the stream
		}
		if failures == 1 || failures%20 == 0 {
			c.opts.Logger.Warn("fetching jobs from NATS failed", slog.Any("error", err), slog.Int("failures", failures))
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(c.opts.retryDelay(failures), 5*time.Second)):
		}
	}
}

// fetch runs one batch.
func (c *Consumer) fetch(ctx context.Context, cons jetstream.Consumer) error {
	batch, err := cons.Fetch(c.opts.Batch, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return err
	}
	for m := range batch.Messages() {
		c.handle(context.WithoutCancel(ctx), m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, nats.ErrTimeout) {
		return err
	}
	return nil
}

func (c *Consumer) handle(ctx context.Context, m jetstream.Msg) {
	var j conduit.Job
	if err := json.Unmarshal(m.Data(), &j); err != nil {
		c.opts.Logger.Error("undecodable message on the job stream; terminated", slog.String("subject", m.Subject()), slog.Any("error", err))
		_ = m.Term()
		return
	}
	if meta, err := m.Metadata(); err == nil {
		j.Attempts = int(meta.NumDelivered)
	}
	// A long job tells the server it is still at it, so that it is not
	// delivered to another worker meanwhile.
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(c.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	err := run(ctx, c.handler, j, c.opts)
	close(stop)
	out := c.opts.judge(j, err)
	c.opts.record(j, out, err)
	var aerr error
	switch out {
	case done:
		aerr = m.Ack()
	case retry:
		aerr = m.NakWithDelay(c.opts.retryDelay(j.Attempts))
	case dead:
		if aerr = c.dead.BuryJob(ctx, j, err.Error()); aerr == nil {
			aerr = m.Term()
		} else {
			_ = m.NakWithDelay(c.opts.RetryFirst)
		}
	}
	if aerr != nil {
		// Not acknowledged: the server delivers it again after AckWait,
		// and the handler's idempotence makes that harmless.
		c.opts.Logger.Warn("acknowledging a job failed", slog.Int64("job", j.ID), slog.Any("error", aerr))
	}
}

// redactURL hides a password in a NATS URL.
func redactURL(u string) string {
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i >= 0 && j > i {
		return u[:i+3] + "***" + u[j:]
	}
	return u
}
