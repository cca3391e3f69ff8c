package store

import (
	"context"
	"database/sql"
	"strings"
)

// groupStmts keeps the statements a group transaction (groupcommit.go) has
// prepared, by their text, for the group's later writes to run again
// without parsing them. A group runs up to 64 writes of a handful of
// kinds, one after another on the one writer, so the same INSERTs and
// UPDATEs come back many times in it; parsing them each time was a quarter
// of the writer's CPU in the writes mix (docs/performance.md, "Writes on
// SQLite: the tail"). The statements belong to the transaction: database/sql
// closes them when it commits or rolls back, so nothing outlives the
// group, and only the group's writes, one at a time, use it.
type groupStmts struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// maxGroupStmts bounds what one group keeps: query texts built from a
// list's length differ by length.
const maxGroupStmts = 64

func newGroupStmts(tx *sql.Tx) *groupStmts {
	return &groupStmts{tx: tx, stmts: map[string]*sql.Stmt{}}
}

// stmt returns the group's prepared statement for q, preparing it on first
// use, or nil where q runs unprepared: text of several statements (a
// prepared statement would run the first only, with one of the engines),
// a full cache, or a failed prepare (the plain call then reports it).
func (g *groupStmts) stmt(ctx context.Context, q string) *sql.Stmt {
	if s, ok := g.stmts[q]; ok {
		return s
	}
	if len(g.stmts) >= maxGroupStmts || strings.Contains(q, ";") {
		return nil
	}
	s, err := g.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	g.stmts[q] = s
	return s
}

// exec runs q, a statement of the group's own (its savepoints), prepared
// once per group.
func (g *groupStmts) exec(ctx context.Context, q string) (sql.Result, error) {
	if s := g.stmt(ctx, q); s != nil {
		return s.ExecContext(ctx)
	}
	return g.tx.ExecContext(ctx, q)
}
