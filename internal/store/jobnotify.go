package store

import (
	"context"
	"log/slog"
	"time"
)

// jobsChannel is the PostgreSQL NOTIFY channel on which a process that
// committed jobs tells every listening process (ListenJobs), after the
// commit (jobWaker):
// worker processes then relay or run them at once instead of at their next
// poll. A notification is only a wake-up; the outbox rows are the truth, so
// one lost while a listener reconnects costs a poll interval, nothing more.
const jobsChannel = "conduit_jobs"

// The wake-up is sent after the commit, by one goroutine (jobWaker), and
// never from inside the write's transaction: PostgreSQL serializes the
// commits of all transactions that NOTIFY on one global lock, held through
// each commit's WAL flush, so a NOTIFY in every write made the writes of
// the whole server commit one at a time (docs/performance.md, "Writes
// against a peer"). Sent after the commit and coalesced (while one is on
// its way, the commits meanwhile get a single next one), the wake-ups cost
// one NOTIFY per round trip's worth of commits instead of one per write;
// a wake-up lost to a crash between the commit and the NOTIFY costs a poll
// interval, as one lost while a listener reconnects does.
type jobWaker struct {
	kick chan struct{} // capacity 1: a pending wake-up
	stop context.CancelFunc
	done chan struct{}
}

// startJobWaker starts the goroutine that sends the wake-ups (PostgreSQL).
func (db *DB) startJobWaker() {
	ctx, cancel := context.WithCancel(context.Background())
	w := &jobWaker{kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
			}
			nctx, cancel := context.WithTimeout(ctx, db.opTimeout)
			// An error loses a wake-up: the listeners poll.
			_, _ = db.write.ExecContext(nctx, `SELECT pg_notify('`+jobsChannel+`', '')`)
			cancel()
		}
	}()
	db.waker = w
}

// stopJobWaker ends the goroutine; a pending wake-up is dropped.
func (db *DB) stopJobWaker() {
	if db.waker != nil {
		db.waker.stop()
		<-db.waker.done
	}
}

// jobsCommitted runs after a commit that enqueued jobs: this process's
// worker is called at once (OnJobs), the others are woken by NOTIFY.
func (db *DB) jobsCommitted() {
	if db.jobsWaiting != nil {
		db.jobsWaiting()
	}
	if db.waker != nil {
		select {
		case db.waker.kick <- struct{}{}:
		default: // one is pending already: it covers this commit too
		}
	}
}

// ListenJobs calls wake whenever a transaction of any process commits jobs,
// until ctx ends, on a connection of its own taken from the pool (and
// reconnected after a failure, a failover for instance; wake is called on
// each new connection too, for what was committed meanwhile). On SQLite it
// returns at once.
func (db *DB) ListenJobs(ctx context.Context, wake func(), logger *slog.Logger) {
	if db.pool == nil {
		return
	}
	failures := 0
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			logger.Warn("listening for new jobs failed; workers poll meanwhile", slog.Any("error", err), slog.Int("failures", failures))
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(failures)*250*time.Millisecond, 5*time.Second)):
		}
	}
}

// listenOnce listens on one connection until it fails or ctx ends.
func (db *DB) listenOnce(ctx context.Context, wake func()) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// Out of the pool for good: a listening connection is nobody else's.
	c := pc.Hijack()
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `LISTEN `+jobsChannel); err != nil {
		return err
	}
	wake()
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}
