package store

import (
	"context"
	"sync"
)

// txGroup gathers the write transactions that arrive on SQLite while
// another commits, and runs them together in the next transaction, each
// in a savepoint of its own: one BEGIN IMMEDIATE … COMMIT and one WAL
// fsync (synchronous=FULL) for the group instead of one each. SQLite has
// one writer, so the writes of a busy server committed one at a time, one
// fsync after another, and at 64 connections a write waited for up to
// dozens of others' fsyncs (docs/performance.md, "Writes on SQLite").
//
// Nothing a caller sees changes: Tx returns once its own writes are
// committed, with its own error; a write that fails is rolled back to its
// savepoint and leaves the others alone; a commit that fails fails all of
// the group, with nothing of any written. Writes run in arrival order, one
// after another as before, so each sees the ones before it. A write whose
// request is gone before its turn is not run; once it runs, it runs to
// the end (not cut off by its request's end: on SQLite an interrupted
// statement rolls back the whole transaction, the others' writes too).
type txGroup struct {
	mu      sync.Mutex
	pending []*groupedTx
	running bool // a caller is running a group: the others wait
}

type groupedTx struct {
	ctx  context.Context
	fn   func(*sqlTx) error
	st   *sqlTx
	err  error
	done chan struct{}
}

// maxGroupedTx bounds a group, so that the first in it does not wait for
// an endless stream of others.
const maxGroupedTx = 64

// groupTx runs fn in the next group transaction (SQLite).
func (db *DB) groupTx(ctx context.Context, fn func(*sqlTx) error) error {
	t := &groupedTx{ctx: ctx, fn: fn, done: make(chan struct{})}
	g := &db.group
	g.mu.Lock()
	g.pending = append(g.pending, t)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		db.runGroups(t)
	}
	<-t.done
	if t.err != nil {
		return t.err
	}
	// As runTx does after its commit, here in the caller's goroutine: what
	// follows may write again (jobs run inline in tests), in a next group.
	if err := db.afterCommit(ctx, t.st); err != nil {
		return db.mapErr(err)
	}
	if t.st.enqueued {
		db.jobsCommitted()
	}
	return nil
}

// runGroups runs groups of the pending transactions until mine (the
// caller's) has run, then leaves any still pending to a goroutine.
func (db *DB) runGroups(mine *groupedTx) {
	g := &db.group
	for {
		g.mu.Lock()
		batch := g.pending[:min(len(g.pending), maxGroupedTx)]
		g.pending = g.pending[len(batch):]
		if len(batch) == 0 {
			g.pending = nil
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		db.runGroup(batch)
		for _, t := range batch {
			if t == mine {
				g.mu.Lock()
				more := len(g.pending) > 0
				g.running = more
				g.mu.Unlock()
				if more {
					go db.runGroups(nil)
				}
				return
			}
		}
	}
}

// runGroup runs batch in one transaction and tells each its result.
func (db *DB) runGroup(batch []*groupedTx) {
	defer func() {
		for _, t := range batch {
			close(t.done)
		}
	}()
	ctx, cancel := db.bound(context.Background())
	defer cancel()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		for _, t := range batch {
			t.err = db.mapErr(err)
		}
		return
	}
	defer tx.Rollback()
	stmts := newGroupStmts(tx)
	var ran []*groupedTx
	var lost error // the transaction itself failed: every write in it fails
	for _, t := range batch {
		if lost != nil {
			t.err = lost
			continue
		}
		if err := t.ctx.Err(); err != nil {
			t.err = db.mapErr(err)
			continue
		}
		if _, err := stmts.exec(ctx, `SAVEPOINT grouped`); err != nil {
			lost = db.mapErr(err)
			t.err = lost
			continue
		}
		st := &sqlTx{tx: tx, d: db.d, stmts: stmts}
		tctx := context.WithoutCancel(t.ctx)
		err := markClaimApplied(tctx, st)
		if err == nil {
			err = t.fn(st)
		}
		if err != nil {
			t.err = db.mapErr(err)
			if _, rerr := stmts.exec(ctx, `ROLLBACK TO grouped`); rerr != nil {
				lost = db.mapErr(rerr)
				continue
			}
		}
		if _, err := stmts.exec(ctx, `RELEASE grouped`); err != nil {
			lost = db.mapErr(err)
			t.err = lost
			continue
		}
		if t.err == nil {
			t.st = st
			ran = append(ran, t)
		}
	}
	err = lost
	if err == nil {
		err = db.mapErr(tx.Commit())
	}
	if err != nil {
		for _, t := range ran {
			t.err, t.st = err, nil
		}
	}
}
