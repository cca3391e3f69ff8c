// Package store implements conduit.Store on SQL databases: embedded SQLite
// for a single server and PostgreSQL for a separate database tier. The SQL
// is shared where the dialects agree (it is written with '?' and rebound for
// PostgreSQL); what differs lives in a dialect value.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/idemkey"
	"github.com/conduit-dev/conduit/internal/store/migrations"
)

// dialect is what differs between the databases.
type dialect struct {
	name string // also the migrations folder
	// rebind turns '?' placeholders into the dialect's form.
	rebind func(q string) string
	// uniqueField names the field of a unique-constraint violation, or "".
	uniqueField func(err error) string
	// missingRef reports a foreign-key violation: the row referred to
	// (an article being favorited or commented on) was deleted meanwhile.
	missingRef func(err error) bool
	// unavailable, if set, reports errors meaning the database cannot be
	// reached right now; they are returned as conduit.ErrUnavailable.
	unavailable func(err error) bool
	// migrateLock, if set, runs first in every migration transaction.
	migrateLock string
}

// DB is a conduit.Store. Reads and writes may use separate pools: SQLite
// funnels every write through one connection so that writers queue in Go
// instead of failing with "database is locked".
type DB struct {
	read, write *sql.DB
	d           dialect
	// pool is the pgx pool under read and write on PostgreSQL (nil on
	// SQLite), for bulk COPY.
	pool *pgxpool.Pool
	// opTimeout, if set, bounds every query and transaction on the client
	// side, so a request fails instead of hanging when the network does.
	opTimeout time.Duration
	// replicas, if set, serve the reads that may lag (replicas.go).
	replicas *replicaSet
	// readStmts, if set, caches prepared statements per query text on the
	// read pool (SQLite). Writes are not cached: the single writer
	// connection is held by the transaction, so preparing on its pool
	// would wait for itself; and writes wait on fsync, not parsing.
	readStmts *stmtCache
	// jobsWaiting, if set, is called after a commit that enqueued jobs
	// (see OnJobs).
	jobsWaiting func()
	// waker sends the outbox wake-ups to other processes (PostgreSQL).
	waker *jobWaker
	// notices gathers concurrent Notify calls into one statement.
	notices noticeBatch
	// group gathers concurrent write transactions into one (SQLite).
	group txGroup
	// sqliteTracer, if set, traces SQLite reads and write transactions
	// (tracing.go); PostgreSQL is traced by its pool.
	sqliteTracer trace.Tracer
	// celebs, if set, keeps the celebrities' newest article ids for feed
	// pages (SQLite; celebcache.go).
	celebs *celebCache
}

var _ conduit.Store = (*DB)(nil)

// Close closes the pools.
func (db *DB) Close() error {
	var err error
	db.stopJobWaker()
	if db.replicas != nil {
		db.replicas.close()
	}
	if db.readStmts != nil {
		err = db.readStmts.close()
	}
	err = errors.Join(err, db.write.Close())
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	if db.pool != nil {
		db.pool.Close()
	}
	return err
}

// Ping checks that the database answers: the primary, or while it does
// not (a failover), a replica that can serve reads.
func (db *DB) Ping(ctx context.Context) error {
	if db.replicas == nil {
		ctx, cancel := db.bound(ctx)
		defer cancel()
		return db.mapErr(db.read.PingContext(ctx))
	}
	// With replicas the node serves reads while the primary is away (a
	// failover): it stays ready if a replica is usable. The primary gets a
	// short look only, so that a readiness check does not wait out the
	// connection attempts of a failover and time out on every node at once
	// (the balancer would then have no node left for the reads).
	pctx, cancel := context.WithTimeout(ctx, primaryPingBudget)
	err := db.read.PingContext(pctx)
	cancel()
	if err == nil || db.replicas.usableAny() {
		return nil
	}
	// No replica either: the primary it is, given the whole time.
	ctx, cancel = db.bound(ctx)
	defer cancel()
	return db.mapErr(db.read.PingContext(ctx))
}

// primaryPingBudget bounds Ping's look at the primary when replicas can
// answer instead: well inside a balancer's check timeout (1 s in
// deploy/haproxy).
const primaryPingBudget = 300 * time.Millisecond

// Dialect is "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.name }

// Migrate applies pending migrations and returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	return migrations.Apply(ctx, db.write, db.d.name, func(n int) string { return db.d.rebind("?") }, db.d.migrateLock)
}

// CheckSchema returns an error unless the database has every migration the
// code expects, so a server never runs against an old schema.
func (db *DB) CheckSchema(ctx context.Context) error {
	cur, err := migrations.Current(ctx, db.write)
	if err != nil {
		return err
	}
	want, err := migrations.Latest(db.d.name)
	if err != nil {
		return err
	}
	if cur < want {
		return fmt.Errorf("database schema is at version %d, this build needs %d: run 'conduit migrate'", cur, want)
	}
	return nil
}

// bound applies opTimeout to ctx.
func (db *DB) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if db.opTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, db.opTimeout)
}

// row is a *sql.Row whose deadline ends when it is scanned.
type row struct {
	*sql.Row
	cancel context.CancelFunc
	// again, if set, is the read on another server when the last one
	// failed (replicas; nil when it should not be tried again), or nil.
	again func(error) *sql.Row
}

func (r row) Scan(dest ...any) error {
	defer r.cancel()
	err := r.Row.Scan(dest...)
	for err != nil && r.again != nil {
		other := r.again(err)
		if other == nil {
			break
		}
		err = other.Scan(dest...)
	}
	return err
}

func (db *DB) queryRow(ctx context.Context, q string, args ...any) row {
	ctx, cancel := db.bound(ctx)
	ctx, cancel = db.traceRead(ctx, q, cancel)
	q = db.d.rebind(q)
	if db.replicas != nil {
		r, again := db.replicas.queryRow(ctx, q, args...)
		return row{Row: r, cancel: cancel, again: again}
	}
	if s, err := db.cachedRead(ctx, q); err == nil && s != nil {
		return row{Row: s.QueryRowContext(ctx, args...), cancel: cancel}
	}
	return row{Row: db.read.QueryRowContext(ctx, q, args...), cancel: cancel}
}

// rows is a *sql.Rows whose deadline ends when it is closed.
type rows struct {
	*sql.Rows
	cancel context.CancelFunc
}

func (r rows) Close() error {
	defer r.cancel()
	return r.Rows.Close()
}

func (db *DB) query(ctx context.Context, q string, args ...any) (rows, error) {
	ctx, cancel := db.bound(ctx)
	ctx, cancel = db.traceRead(ctx, q, cancel)
	q = db.d.rebind(q)
	var rs *sql.Rows
	var err error
	if db.replicas != nil {
		rs, err = db.replicas.query(ctx, q, args...)
	} else if s, perr := db.cachedRead(ctx, q); perr == nil && s != nil {
		rs, err = s.QueryContext(ctx, args...)
	} else {
		rs, err = db.read.QueryContext(ctx, q, args...)
	}
	if err != nil {
		cancel()
		return rows{}, db.mapErr(err)
	}
	return rows{rs, cancel}, nil
}

// cachedRead returns the cached read statement for q, or nil.
func (db *DB) cachedRead(ctx context.Context, q string) (*sql.Stmt, error) {
	if db.readStmts == nil {
		return nil, nil
	}
	return db.readStmts.get(ctx, q)
}

// traceRead starts the span of a SQLite read, ended with the read's
// deadline (cancel): when its row is scanned or its rows are closed.
func (db *DB) traceRead(ctx context.Context, q string, cancel context.CancelFunc) (context.Context, context.CancelFunc) {
	if db.sqliteTracer == nil {
		return ctx, cancel
	}
	ctx, end := db.sqliteSpan(ctx, operation(q), q)
	return ctx, func() { cancel(); end(nil) }
}

// tx runs fn in a write transaction, committing if fn returns nil.
func (db *DB) tx(ctx context.Context, fn func(tx *sqlTx) error) error {
	ctx, end := db.sqliteSpan(ctx, "sqlite.tx", "")
	err := db.runTx(ctx, fn)
	end(err)
	return err
}

func (db *DB) runTx(ctx context.Context, fn func(tx *sqlTx) error) error {
	if db.d.name == "sqlite" {
		return db.groupTx(ctx, fn) // one commit for the writes that queue meanwhile
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	t, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return db.mapErr(err)
	}
	defer t.Rollback()
	st := &sqlTx{tx: t, d: db.d}
	if err := markClaimApplied(ctx, st); err != nil {
		return db.mapErr(err)
	}
	if err := fn(st); err != nil {
		return db.mapErr(err)
	}
	if err := t.Commit(); err != nil {
		return db.mapErr(err)
	}
	if err := db.afterCommit(ctx, st); err != nil {
		return db.mapErr(err)
	}
	if st.enqueued {
		db.jobsCommitted()
	}
	return nil
}

// writeOnce runs a write that is one statement q, on PostgreSQL, with what
// a transaction does around it: a statement is a transaction of its own,
// so without an idempotency claim to mark in the same transaction
// (markClaimApplied) it is sent alone, one round trip instead of BEGIN,
// the statement and COMMIT. scan reads the statement's row and sets
// tx.enqueued if it enqueued jobs.
func (db *DB) writeOnce(ctx context.Context, q string, args []any, scan func(*sql.Row, *sqlTx) error) error {
	if _, claimed := idemkey.ClaimFrom(ctx); claimed {
		return db.tx(ctx, func(tx *sqlTx) error { return scan(tx.queryRow(ctx, q, args...), tx) })
	}
	bctx, cancel := db.bound(ctx)
	defer cancel()
	st := &sqlTx{d: db.d}
	if err := scan(db.write.QueryRowContext(bctx, db.d.rebind(q), args...), st); err != nil {
		return db.mapErr(err)
	}
	return db.committedOnce(ctx, st)
}

// writeOnceAfter is writeOnce for a statement that needs a value read
// first (a new row's id from its sequence): read's one column is scanned
// into dest, then build makes the statement. Both are sent on one
// connection, taken from the pool once: under load a request waits for a
// pooled connection each time it takes one, which costs more than the
// round trip. A read that is not a write leaves nothing to undo if the
// statement fails (a sequence value is only skipped).
func (db *DB) writeOnceAfter(ctx context.Context, read string, dest any, build func() (string, []any), scan func(*sql.Row, *sqlTx) error) error {
	if _, claimed := idemkey.ClaimFrom(ctx); claimed {
		return db.tx(ctx, func(tx *sqlTx) error {
			if err := tx.queryRow(ctx, read).Scan(dest); err != nil {
				return err
			}
			q, args := build()
			return scan(tx.queryRow(ctx, q, args...), tx)
		})
	}
	bctx, cancel := db.bound(ctx)
	defer cancel()
	conn, err := db.write.Conn(bctx)
	if err != nil {
		return db.mapErr(err)
	}
	st := &sqlTx{d: db.d}
	err = conn.QueryRowContext(bctx, db.d.rebind(read)).Scan(dest)
	if err == nil {
		q, args := build()
		err = scan(conn.QueryRowContext(bctx, db.d.rebind(q), args...), st)
	}
	// Back to the pool before anything else: what follows the commit may
	// take connections of its own (jobs run inline in tests).
	conn.Close()
	if err != nil {
		return db.mapErr(err)
	}
	return db.committedOnce(ctx, st)
}

// committedOnce is what follows the commit of a statement sent alone.
func (db *DB) committedOnce(ctx context.Context, st *sqlTx) error {
	if err := db.afterCommit(ctx, st); err != nil {
		return db.mapErr(err)
	}
	if st.enqueued {
		db.jobsCommitted()
	}
	return nil
}

// sqlTx rebinds queries like DB does.
type sqlTx struct {
	tx *sql.Tx
	d  dialect
	// users wrote besides the request's user (see wroteFor).
	users []int64
	// enqueued is set once the transaction wrote jobs to the outbox.
	enqueued bool
	// stmts, if set, are the statements of the group transaction this
	// write runs in (SQLite, groupstmts.go).
	stmts *groupStmts
}

// wroteFor names a user whose next reads must see this transaction,
// besides the user making the request: a new account, registered
// anonymously.
func (t *sqlTx) wroteFor(id int64) { t.users = append(t.users, id) }

func (t *sqlTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := t.prepared(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, t.d.rebind(q), args...)
}

func (t *sqlTx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s := t.prepared(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
}

// prepared is the group's prepared statement for q, if it keeps one.
func (t *sqlTx) prepared(ctx context.Context, q string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	return t.stmts.stmt(ctx, t.d.rebind(q))
}

// mapErr turns driver errors into the domain's.
func (db *DB) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return conduit.ErrNotFound
	case errors.Is(err, conduit.ErrNotFound), errors.Is(err, conduit.ErrUnavailable):
		return err // mapped already
	}
	var dup *conduit.DuplicateError
	if errors.As(err, &dup) {
		return err
	}
	if f := db.d.uniqueField(err); f != "" {
		return &conduit.DuplicateError{Field: f}
	}
	if db.d.missingRef != nil && db.d.missingRef(err) {
		return fmt.Errorf("%w: %w", conduit.ErrNotFound, err)
	}
	if db.d.unavailable != nil && db.d.unavailable(err) {
		return fmt.Errorf("%w: %w", conduit.ErrUnavailable, err)
	}
	return err
}

// fieldOfIndex names the field guarded by one of our unique indexes, found
// in a driver's error text.
func fieldOfIndex(msg string) string {
	for _, f := range []string{"username", "email", "slug"} {
		if strings.Contains(msg, f) {
			return f
		}
	}
	return "unique"
}

// dollarRebind turns '?' into $1, $2, … (no '?' appears inside our SQL
// string literals, so a plain scan is enough).
func dollarRebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
