package store

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Group commit on PostgreSQL: the writes of one statement (a favorite, a
// follow, an article create, a comment; sent without an idempotency claim)
// that arrive while a group runs wait, and then run together as the next
// group, in one transaction: one commit, one WAL flush, for all of them.
//
// Why: every write used to commit on its own, and PostgreSQL flushes the
// WAL once per group of commits that arrive together, but only the
// connections of the pool can be in a commit at once: with a pool of 10,
// ten writes per flush at most. Most of a write's time was that wait
// (LWLock/WALWrite and IO/WALSync, docs/performance.md "Writes, round of
// 2026-11-30 night"). A group carries up to maxGroupedWrites writes per
// flush on one connection.
//
// How: a group sends its statements pipelined (pgx batches: BEGIN and the
// statements in one round trip, a second one for the statements that need
// a value read first, such as a new row's id), then COMMIT. One group
// executes at a time (its turn ends when its statements have run): the
// next group starts while the one before waits for its commit's flush.
// So no two groups ever both wait for rows the other holds (a group in
// its commit waits for nothing but the disk), and the groups' own order of
// taking rows, which no write's code chose, cannot deadlock among them.
// A write alone in its group runs as it did before grouping, alone, and
// holds the turn through its commit, so that the writes arriving
// meanwhile gather into the next group.
//
// Lanes: the writes are spread over writeLanes lanes by the rows they
// contend for (a favorite's or a comment's article, a follow's follower,
// a completed job; every article create in lane 0, as creates share their
// tags' count rows), and each lane runs its groups as above, one at a
// time, beside the other lanes: on a busy machine one connection's
// backend executing every write gets one CPU's share at best. Two lanes'
// groups take no row in common (the rows one write locks are all keyed by
// its lane's key: the article's row and comment counter, the follower's
// follows, pending marks and timeline state, the creates' tag counts,
// author rows and count slots; the foreign keys' KEY SHARE locks on users
// and articles do not conflict with the counters' updates), so lanes never
// wait for each other either.
//
// What a caller sees does not change: it returns once its own write is
// committed, with its own result. If any statement of a group fails (a
// taken slug, an article deleted meanwhile, a deadlock with another
// transaction), the group is rolled back, with nothing of it written, and
// each of its writes runs again alone, where it gets its own result: a
// write is never answered with another's error, and none is applied
// twice (the group was rolled back). A commit whose outcome is unknown
// (the connection lost on the way) fails every write of the group, as a
// lone write's would. A write whose request is gone before its group
// starts is not run; once its group runs, it runs to the end.
type writeGroup struct {
	mu      sync.Mutex
	pending []*groupedWrite
	busy    bool // a group is executing: new writes wait for the next
	// groups and grouped count the groups of two or more run and the
	// writes they committed, reruns the writes run again alone after
	// their group failed (export_test.go).
	groups, grouped, reruns int64
}

// writeLanes is how many lanes run groups side by side (see above).
const writeLanes = 4

// maxGroupedWrites bounds a group: the rows a group locks are held until
// its commit, so a huge group would make others wait long for them.
const maxGroupedWrites = 64

// rowScanner is the one row a write's statement returns, from
// database/sql (a write in a transaction) or from pgx (a grouped one).
type rowScanner interface{ Scan(dest ...any) error }

// groupedWrite is one write for groupWrite.
type groupedWrite struct {
	ctx context.Context
	// lane is the key of the rows the write contends for (see Lanes).
	lane int64
	// first, if set, runs before the statement is built: a read of a value
	// the statement needs (a new row's id from its sequence). firstScan
	// reads its row; an error is the statement's failure. If firstWrites,
	// first is a write that must be in the statement's transaction.
	first       string
	firstArgs   []any
	firstScan   func(rowScanner) error
	firstWrites bool
	// build makes the write's statement, after first. A refusal (an error
	// decided from first's answer, such as a limit) ends the write without
	// a statement: its answer, once its transaction ends well.
	build func() (q string, args []any, refusal error)
	// scan reads the statement's row and sets tx.enqueued if it enqueued
	// jobs; an error is the statement's failure.
	scan func(rowScanner, *sqlTx) error
	// outcome, if set, is the write's answer decided by its statement's
	// row (read by scan), once committed: nil, or a refusal.
	outcome func() error

	st      *sqlTx // after a commit: what follows it (committedOnce)
	err     error
	alone   bool // the group failed: run the write again, alone
	done    chan struct{}
	refusal error
}

// groupWrite runs w, in a group with the writes that arrive meanwhile,
// and what follows its commit.
func (db *DB) groupWrite(w *groupedWrite) error {
	w.done = make(chan struct{})
	g := &db.writes[uint64(w.lane)%uint64(len(db.writes))]
	g.mu.Lock()
	g.pending = append(g.pending, w)
	start := !g.busy
	g.busy = true
	g.mu.Unlock()
	if start {
		db.runWriteGroup(g)
	}
	<-w.done
	if w.alone {
		w.err = db.runAlone(w) // sets w.st once committed
	}
	if w.err != nil {
		return w.err
	}
	if w.outcome != nil {
		if err := w.outcome(); err != nil {
			return err
		}
	}
	return db.committedOnce(w.ctx, w.st)
}

// runWriteGroup runs the next group of the lane's pending writes (up to
// maxGroupedWrites), then hands the turn on: to a goroutine running the
// next group if writes came meanwhile.
func (db *DB) runWriteGroup(g *writeGroup) {
	g.mu.Lock()
	batch := g.pending[:min(len(g.pending), maxGroupedWrites)]
	g.pending = g.pending[len(batch):]
	if len(g.pending) == 0 {
		g.pending = nil
	}
	g.mu.Unlock()
	handOn := func() {
		g.mu.Lock()
		if len(g.pending) > 0 {
			go db.runWriteGroup(g)
		} else {
			g.busy = false
		}
		g.mu.Unlock()
	}
	live := batch[:0:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.err = db.mapErr(err)
			close(w.done)
			continue
		}
		live = append(live, w)
	}
	switch len(live) {
	case 0:
		handOn()
		return
	case 1:
		w := live[0]
		w.err = db.runAlone(w)
		handOn()
		close(w.done)
		return
	}
	db.runGrouped(live, handOn)
	g.mu.Lock()
	g.groups++
	for _, w := range live {
		switch {
		case w.alone:
			g.reruns++
		case w.err == nil:
			g.grouped++
		}
	}
	g.mu.Unlock()
	for _, w := range live {
		close(w.done)
	}
}

// runGrouped runs batch (two writes or more) in one transaction, calling
// handOn once its statements have run. Each write ends committed (w.st
// set), refused or failed (w.err), or to be run again alone (w.alone).
func (db *DB) runGrouped(batch []*groupedWrite, handOn func()) {
	// Not bound to any one request's end, which would fail the others.
	ctx, cancel := db.bound(context.WithoutCancel(batch[0].ctx))
	defer cancel()
	runAgain := func() {
		for _, w := range batch {
			w.alone, w.err, w.st = true, nil, nil
		}
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		handOn()
		runAgain() // each gets its own error, or a connection of its own
		return
	}
	defer conn.Release() // destroyed if left in a transaction
	var later []*groupedWrite
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, w := range batch {
		w.st = &sqlTx{d: db.d}
		if w.first != "" {
			b.Queue(db.d.rebind(w.first), w.firstArgs...).QueryRow(func(r pgx.Row) error { return w.firstScan(r) })
			later = append(later, w)
			continue
		}
		db.queueStatement(b, w)
	}
	err = conn.SendBatch(ctx, b).Close()
	if err == nil && len(later) > 0 {
		b = &pgx.Batch{}
		for _, w := range later {
			db.queueStatement(b, w)
		}
		if b.Len() > 0 {
			err = conn.SendBatch(ctx, b).Close()
		}
	}
	handOn()
	if err != nil {
		rctx, rcancel := context.WithTimeout(context.Background(), db.opTimeout)
		conn.Exec(rctx, "ROLLBACK") // if it fails, Release destroys the connection
		rcancel()
		runAgain()
		return
	}
	tag, err := conn.Exec(ctx, "COMMIT")
	var pe *pgconn.PgError
	switch {
	case err == nil && tag.String() == "COMMIT":
		for _, w := range batch {
			w.err = w.refusal
		}
	case err == nil, errors.As(err, &pe):
		// The server rolled the group back: nothing of it was written.
		runAgain()
	default:
		// The outcome is unknown: as for a lone write, an error.
		for _, w := range batch {
			w.err, w.st = db.mapErr(err), nil
		}
	}
}

// queueStatement adds w's statement to b, unless build refuses the write.
func (db *DB) queueStatement(b *pgx.Batch, w *groupedWrite) {
	q, args, refusal := w.build()
	if refusal != nil {
		w.refusal = refusal
		return
	}
	b.Queue(db.d.rebind(q), args...).QueryRow(func(r pgx.Row) error { return w.scan(r, w.st) })
}

// runAlone runs w on a pooled connection of its own, as a write did
// before grouping: a statement alone is a transaction of its own; with a
// first that writes, BEGIN and first, then the statement and COMMIT, in
// two round trips; with a first that only reads, first and then the
// statement, each alone. It sets w.st once committed.
func (db *DB) runAlone(w *groupedWrite) error {
	ctx, cancel := db.bound(w.ctx)
	defer cancel()
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return db.mapErr(err)
	}
	defer conn.Release()
	st := &sqlTx{d: db.d}
	if w.first != "" && w.firstWrites {
		return db.runAloneInTx(ctx, conn, w, st)
	}
	if w.first != "" {
		if err := w.firstScan(conn.QueryRow(ctx, db.d.rebind(w.first), w.firstArgs...)); err != nil {
			return db.mapErr(err)
		}
	}
	q, args, refusal := w.build()
	if refusal != nil {
		return refusal
	}
	if err := w.scan(conn.QueryRow(ctx, db.d.rebind(q), args...), st); err != nil {
		return db.mapErr(err)
	}
	w.st = st
	return nil
}

// runAloneInTx is runAlone for a write whose first writes.
func (db *DB) runAloneInTx(ctx context.Context, conn *pgxpool.Conn, w *groupedWrite, st *sqlTx) error {
	rollback := func(err error) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), db.opTimeout)
		defer cancel()
		conn.Exec(rctx, "ROLLBACK") // a failure leaves the transaction open: Release destroys the connection
		return db.mapErr(err)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(db.d.rebind(w.first), w.firstArgs...).QueryRow(func(r pgx.Row) error { return w.firstScan(r) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return rollback(err)
	}
	q, args, refusal := w.build()
	if refusal != nil {
		return rollback(refusal)
	}
	b = &pgx.Batch{}
	b.Queue(db.d.rebind(q), args...).QueryRow(func(r pgx.Row) error { return w.scan(r, st) })
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return rollback(err)
	}
	w.st = st
	return nil
}
