package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// walCheckpointer copies the WAL's pages back into the database file
// (a checkpoint) beside the writer instead of inside its commits.
//
// SQLite's automatic checkpoint runs in the commit that takes the WAL past
// wal_autocheckpoint pages (1000), on the writer's connection: with group
// commit that is one group in every ten or so, and that group's writes
// wait for a thousand pages to be copied and the database file fsynced
// (synchronous=FULL). In the writes mix those commits took 7-11 ms at
// the median against 2-3 ms for the others, and 8-12% of the writer's
// time (docs/performance.md, "Writes on SQLite: the tail").
//
// Here a goroutine with a connection of its own runs PASSIVE checkpoints
// after commits, at most one per checkpointInterval: they take no lock a
// writer or a reader waits for. What they cannot do while writes go on is
// let the WAL start over from its beginning: SQLite restarts it at a
// write only when a checkpoint has copied every frame, and the writer
// appends new ones meanwhile. So, once a checkpoint has seen the WAL at
// restartFrames, the writer itself runs a PASSIVE checkpoint between two
// groups (finishBetweenGroups), after the last group's callers have their
// answers: it copies what the background one has not, and the next group
// writes from the WAL's start. wal_autocheckpoint stays on, at a multiple
// of restartFrames, as the bound for writes outside the groups
// (migrations, a bulk load).
type walCheckpointer struct {
	conn *sql.DB // one connection, not the writer's
	// restartFrames is how many WAL frames make the writer finish a
	// checkpoint between groups; interval spaces the background ones
	// (the constants below; tests shorten them).
	restartFrames int64
	interval      time.Duration
	stuckRetry    time.Duration
	// frames is the WAL's length in frames as the last checkpoint saw it
	// (0 after the writer's own copied all of it: the next write restarts
	// it).
	frames atomic.Int64
	// background and finished count the checkpoints run beside the
	// writer and between groups (for tests and the docs' figures).
	background, finished atomic.Int64
	// forced counts the RESTART checkpoints that restarted the WAL.
	forced     atomic.Int64
	wake       chan struct{}
	stop, done chan struct{}
	stopOnce   sync.Once
	// lastRestart is when the writer last ran a RESTART checkpoint (only
	// the group runner, one at a time, reads and sets it).
	lastRestart time.Time
}

const (
	// checkpointInterval spaces the background checkpoints. Each fsyncs
	// the WAL and the database file beside the writer's own fsyncs, and
	// copies again the pages written since the last (the hot ones each
	// time): at one per 50 ms the writes mix ran slower than with
	// SQLite's own checkpoints, at one per second not (docs/performance.md).
	checkpointInterval = time.Second
	// restartFrames: a 16 MiB WAL with 4 KiB pages. The larger, the
	// rarer the writer's own checkpoints (and the longer each).
	restartFrames = 4000
	// autoCheckpointFrames is the writer's wal_autocheckpoint: SQLite's
	// own checkpoint, for what the checkpointer does not see.
	autoCheckpointFrames = 4 * restartFrames
	// stuckFactor times restartFrames: the WAL is that long only if
	// readers kept it from restarting; the writer waits for them then.
	stuckFactor = 2
	// stuckRetry spaces those waits, restartWait bounds each.
	stuckRetry  = time.Second
	restartWait = 20 * time.Millisecond
	// sqliteCheckpointCacheKiB is the checkpointer's page cache: it
	// copies pages from the WAL to the file without caching them.
	sqliteCheckpointCacheKiB = 256
)

// startCheckpointer opens the checkpointer's connection on the database
// at path and starts it.
func startCheckpointer(path string, restart int64) (*walCheckpointer, error) {
	conn, err := openSQLitePool(path, withPragmas(cacheSize(sqliteCheckpointCacheKiB)), false)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	c := &walCheckpointer{
		conn:          conn,
		restartFrames: restart,
		interval:      checkpointInterval,
		stuckRetry:    stuckRetry,
		wake:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// committed tells the checkpointer that the writer has committed; it never
// waits.
func (c *walCheckpointer) committed() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *walCheckpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		log, _, err := checkpoint(ctx, c.conn, "PASSIVE")
		cancel()
		if err == nil {
			// The WAL's length, even if all of it was copied: the writer
			// has appended more since, so it will not restart by itself.
			c.frames.Store(log)
			c.background.Add(1)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(c.interval):
		}
	}
}

// finishBetweenGroups runs a checkpoint on the writer's connection, while
// no group runs, if the WAL has grown to restartFrames: see
// walCheckpointer. An error (the background checkpoint holding the
// checkpoint lock: SQLITE_BUSY) only leaves it to the next gap.
//
// A PASSIVE checkpoint lets the WAL restart only if no reader still reads
// a snapshot in it when the next group writes; readers that overlap
// without a pause would keep it growing (as they would keep SQLite's own
// checkpoints from restarting it). Past stuckFrames, at most once per
// stuckRetry, the writer runs a RESTART checkpoint instead, which waits up
// to restartWait for those readers to finish: the groups wait that long,
// rarely, rather than the WAL growing without end.
func (c *walCheckpointer) finishBetweenGroups(write *sql.DB) {
	frames := c.frames.Load()
	if frames < c.restartFrames {
		return
	}
	mode := "PASSIVE"
	if frames >= stuckFactor*c.restartFrames && time.Since(c.lastRestart) >= c.stuckRetry {
		mode = "RESTART"
		c.lastRestart = time.Now()
	}
	log, copied, err := checkpointWriter(write, mode)
	if err != nil {
		return
	}
	c.finished.Add(1)
	if mode == "RESTART" {
		c.forced.Add(1)
	}
	if copied == log {
		// All of it is in the database file and nothing was written
		// since: the next group's first write restarts the WAL (after a
		// RESTART, it will whatever the readers).
		log = 0
	}
	c.frames.Store(log)
}

// checkpointWriter runs a checkpoint of mode on the writer's connection.
// RESTART waits (SQLite's busy handler) for the readers of older
// snapshots, up to restartWait rather than the connection's busy timeout.
func checkpointWriter(write *sql.DB, mode string) (log, copied int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := write.Conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if mode == "RESTART" {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds())); err != nil {
			return 0, 0, err
		}
		defer conn.ExecContext(ctx, `PRAGMA `+sqliteBusyTimeout)
	}
	return checkpoint(ctx, conn, mode)
}

// close stops the checkpointer and closes its connection; it may be
// called again (as DB.Close may).
func (c *walCheckpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.conn.Close()
}

var errCheckpointBusy = errors.New("the checkpoint was kept from finishing")

// checkpoint runs a checkpoint of mode (PASSIVE or RESTART) on conn and
// returns the WAL's length and how much of it is in the database file,
// both in frames. A PASSIVE checkpoint copies what no reader still needs
// and waits for no one; the connection's busy timeout does not apply to
// it.
func checkpoint(ctx context.Context, conn interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, mode string) (log, copied int64, err error) {
	var busy int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &copied); err != nil {
		return 0, 0, err
	}
	if busy != 0 || log < 0 {
		// Another connection was checkpointing, or (RESTART) readers
		// of older snapshots outlasted the wait.
		return 0, 0, errCheckpointBusy
	}
	return log, copied, nil
}
