package store

import (
	"context"
	"log/slog"
	"time"
)

// jobsChannel is the PostgreSQL NOTIFY channel on which a transaction that
// enqueued jobs tells every listening process (ListenJobs) once it commits:
// worker processes then relay or run them at once instead of at their next
// poll. A notification is only a wake-up; the outbox rows are the truth, so
// one lost while a listener reconnects costs a poll interval, nothing more.
const jobsChannel = "conduit_jobs"

// notifyJobs queues the wake-up in tx, once per transaction (PostgreSQL
// sends it at commit, and not at all on rollback). SQLite has no
// cross-process notification: other processes poll.
func (t *sqlTx) notifyJobs(ctx context.Context) error {
	if t.d.name != "postgres" || t.enqueued {
		return nil
	}
	_, err := t.exec(ctx, `SELECT pg_notify('`+jobsChannel+`', '')`)
	return err
}

// notifyReturning is a RETURNING clause that queues the same wake-up as
// notifyJobs from the statement that inserts the jobs, saving the write a
// round trip ("" when none is needed: SQLite, or already queued). Every
// inserted row calls pg_notify, and PostgreSQL sends identical
// notifications of one transaction once.
func (t *sqlTx) notifyReturning() string {
	if t.d.name != "postgres" || t.enqueued {
		return ""
	}
	return ` RETURNING pg_notify('` + jobsChannel + `', '')`
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
