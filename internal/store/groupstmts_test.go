package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// A group's statement texts are prepared once and the same statement runs
// for each later use in the group; texts of several statements run
// unprepared; and a group keeps at most maxGroupStmts.
func TestGroupStmtsPreparedOnce(t *testing.T) {
	db, _ := openTestSQLite(t)
	ctx := context.Background()
	if _, err := db.write.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	g := newGroupStmts(tx)
	q := `INSERT INTO t (v) VALUES (?)`
	first := g.stmt(ctx, q)
	if first == nil || g.stmt(ctx, q) != first {
		t.Fatalf("the second use of %q got another statement (or none)", q)
	}
	if s := g.stmt(ctx, `INSERT INTO t (v) VALUES (1); INSERT INTO t (v) VALUES (2)`); s != nil {
		t.Error("a text of two statements was prepared")
	}
	if s := g.stmt(ctx, `SELECT nothing FROM nowhere`); s != nil {
		t.Error("a statement that does not prepare was kept")
	}
	for i := len(g.stmts); i < maxGroupStmts; i++ {
		if g.stmt(ctx, fmt.Sprintf(`SELECT %d`, i)) == nil {
			t.Fatalf("statement %d was not kept", i)
		}
	}
	if g.stmt(ctx, `SELECT -1`) != nil || len(g.stmts) != maxGroupStmts {
		t.Errorf("the group keeps %d statements, want at most %d", len(g.stmts), maxGroupStmts)
	}
}

// Through a whole group: each write sees the ones before it, a write that
// fails after running a shared statement is rolled back to its savepoint
// and the later writes still run that statement, and only the others'
// rows are committed.
func TestGroupStmtsInAGroup(t *testing.T) {
	db, _ := openTestSQLite(t)
	ctx := context.Background()
	if _, err := db.write.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	const n = 10
	seen := make([]int, n)
	var batch []*groupedTx
	for i := range n {
		batch = append(batch, &groupedTx{ctx: ctx, done: make(chan struct{}), fn: func(st *sqlTx) error {
			if err := st.queryRow(ctx, `SELECT count(*) FROM t`).Scan(&seen[i]); err != nil {
				return err
			}
			if _, err := st.exec(ctx, `INSERT INTO t (v) VALUES (?)`, i); err != nil {
				return err
			}
			if i == 4 {
				return refused
			}
			return nil
		}})
	}
	db.runGroup(batch)
	for i, w := range batch {
		want := i
		if i > 4 {
			want = i - 1 // write 4's row was rolled back
		}
		if i == 4 {
			if !errors.Is(w.err, refused) {
				t.Errorf("write 4: %v, want its own error", w.err)
			}
		} else if w.err != nil {
			t.Errorf("write %d: %v", i, w.err)
		}
		if seen[i] != want {
			t.Errorf("write %d saw %d rows, want %d", i, seen[i], want)
		}
	}
	var rows, four int
	if err := db.read.QueryRow(`SELECT count(*), count(*) FILTER (WHERE v = 4) FROM t`).Scan(&rows, &four); err != nil {
		t.Fatal(err)
	}
	if rows != n-1 || four != 0 {
		t.Errorf("%d rows committed (%d of write 4), want %d (none)", rows, four, n-1)
	}
}
