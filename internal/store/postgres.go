package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/trace"
)

// PostgresOptions tunes the connection pool. Zero values take the defaults
// noted on each field.
type PostgresOptions struct {
	// MaxConns is the pool size (default 4 × GOMAXPROCS, at least 10).
	MaxConns int
	// ConnLifetime closes connections older than this, so a pool follows
	// DNS changes and failovers and spreads over new replicas (default 30m).
	ConnLifetime time.Duration
	// StatementTimeout is the server-side statement_timeout of every
	// session (default 5s). The client also gives up on any single
	// operation after StatementTimeout + ConnectTimeout, so a request
	// never hangs on a black-holed network.
	StatementTimeout time.Duration
	// ConnectTimeout bounds dialing and the start-up handshake (default 3s).
	ConnectTimeout time.Duration
	// Tracer, if not nil, records a span per statement (tracing.go), on
	// the primary and on every replica.
	Tracer trace.TracerProvider
}

func (o PostgresOptions) withDefaults() PostgresOptions {
	if o.MaxConns <= 0 {
		o.MaxConns = max(10, 4*runtime.GOMAXPROCS(0))
	}
	if o.ConnLifetime <= 0 {
		o.ConnLifetime = 30 * time.Minute
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 5 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	return o
}

// migrateLockKey is the advisory lock that keeps concurrent migrators apart
// (an arbitrary constant: "conduit" in ASCII).
const migrateLockKey = 0x636f6e64756974

// OpenPostgres connects a pgx pool to the database at url
// (postgres://user:pass@host:port/db?sslmode=…) and exposes it through
// database/sql, so every query in this package is shared with SQLite.
// Statements go over the extended protocol and are prepared once per
// connection (pgx's statement cache). The pool is opened lazily except for
// one ping: an unreachable database fails here with conduit.ErrUnavailable.
func OpenPostgres(ctx context.Context, url string, opts PostgresOptions) (*DB, error) {
	o := opts.withDefaults()
	cfg, err := poolConfig(url, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	sqldb := stdlib.OpenDBFromPool(pool)
	db := &DB{read: sqldb, write: sqldb, pool: pool, opTimeout: o.StatementTimeout + o.ConnectTimeout, d: dialect{
		name:        "postgres",
		rebind:      dollarRebind,
		uniqueField: postgresUniqueField,
		missingRef:  postgresMissingRef,
		unavailable: postgresUnavailable,
		// A migration may take long on a big database, and a second node
		// waits for the first one's lock: no statement timeout for either.
		migrateLock: fmt.Sprintf("SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(%d)", migrateLockKey),
	}}
	pctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		db.Close()
		if !connectWontHeal(err) {
			err = db.mapErr(err) // unavailable: worth waiting for
		}
		return nil, fmt.Errorf("connect to %s: %w", describeConfig(cfg), err)
	}
	db.startJobWaker()
	return db, nil
}

// poolConfig parses url into a pool configuration with o's settings (the
// primary's and every replica's pool are set up alike).
func poolConfig(url string, o PostgresOptions) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: don't wrap it.
		return nil, errors.New("invalid PostgreSQL URL (expected postgres://user:password@host:port/dbname?options)")
	}
	cfg.MaxConns = int32(min(o.MaxConns, 10000))
	cfg.MaxConnLifetime = o.ConnLifetime
	cfg.MaxConnLifetimeJitter = o.ConnLifetime / 10
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	cfg.ConnConfig.Tracer = newPGTracer(o.Tracer)
	rp := cfg.ConnConfig.RuntimeParams
	if _, set := rp["statement_timeout"]; !set {
		rp["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	if _, set := rp["idle_in_transaction_session_timeout"]; !set {
		rp["idle_in_transaction_session_timeout"] = strconv.FormatInt((2 * o.StatementTimeout).Milliseconds(), 10)
	}
	if _, set := rp["application_name"]; !set {
		rp["application_name"] = "conduit"
	}
	// Times are compared and returned in UTC like SQLite's.
	rp["timezone"] = "UTC"
	return cfg, nil
}

// connectWontHeal reports a connect error that waiting will not fix: the
// server refused these credentials (class 28), does not have this
// database (3D000), or denies this role access to it (42501). Opening the
// store fails on it at once; once running, a request that meets it is
// still told the database is unavailable (503), like any connect error.
func connectWontHeal(err error) bool {
	var (
		ce *pgconn.ConnectError
		pe *pgconn.PgError
	)
	return errors.As(err, &ce) && errors.As(err, &pe) &&
		(strings.HasPrefix(pe.Code, "28") || pe.Code == "3D000" || pe.Code == "42501")
}

// describeConfig names the server without credentials, for errors.
func describeConfig(cfg *pgxpool.Config) string {
	return fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

func postgresUniqueField(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fieldOfIndex(pe.ConstraintName)
	}
	return ""
}

func postgresMissingRef(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// postgresUnavailable reports errors that mean "the database is not there
// right now" rather than "this request is wrong": failed connects, broken
// connections, timeouts, server shutdown and overload.
func postgresUnavailable(err error) bool {
	// Whatever the server said while we were connecting (a database that
	// refuses connections, 55000; too many clients; starting up), no
	// statement of this request ran: the database is not there for it.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources (too many connections…)
			strings.HasPrefix(pe.Code, "57P"),      // admin/crash shutdown, cannot connect now
			pe.Code == "57014",                     // query canceled: statement_timeout
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock: retry later
			pe.Code == "25006", // read-only transaction: a standby, mid-failover
			pe.Code == "55000" && strings.Contains(pe.Message, "recovery is in progress"): // a WAL function on a standby, mid-failover
			return true
		}
		return false
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		pgconn.Timeout(err):
		return true
	}
	// pgx reports use of a connection that a failure already closed as
	// "conn closed"; the pool discards it and the next request gets a new one.
	return strings.Contains(err.Error(), "conn closed")
}
